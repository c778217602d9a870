//! What the API server accepts in a `TeamsAppRollout` spec, and the same rules in Rust.
//!
//! The CEL rules and messages below go into the CRD, so `kubectl apply` refuses a rollout that
//! cannot work, naming the field. [`TeamsAppRolloutSpec::validate`] applies them to objects the
//! operator reads: one stored before a rule existed is `Stalled` with `InvalidSpec` and the
//! same message, and gets no installations.
//!
//! **Waves.** Each wave is a cumulative share of the eligible audience: a `count` (users) or a
//! `percent`. A share can only be compared with a share of the same kind before the audience is
//! read, so the order is fixed: every count wave comes before the first percent wave (a small
//! pilot of so many people, then ever larger shares of everyone), and within each kind the
//! shares never go down. A percent wave after count waves covers at least the users the count
//! waves did (with an audience small enough, a percentage can cover fewer users than the count
//! before it; that wave is then empty and completes at once).

use super::rollout::{TeamsAppRolloutSpec, Wave};
use super::validation::{
    InvalidSpec, MAX_COUNT, MAX_INTERVAL, MAX_LONG_WAIT, TARGET_VERSION_MESSAGE, invalid, is_guid,
    is_valid_duration, is_valid_target_version, is_valid_user,
};

pub(super) const GROUPS_RULE: &str = r#"self.all(g, g.matches("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"))"#;
pub(super) const GROUPS_MESSAGE: &str =
    "groups must be Entra group object ids (GUIDs like 44444444-4444-4444-4444-444444444444)";
pub(super) const USERS_MESSAGE: &str =
    "users must be Entra object ids (GUIDs) or user principal names like alice@contoso.com";
pub(super) const AUDIENCE_RULE: &str =
    "(has(self.groups) ? size(self.groups) : 0) + (has(self.users) ? size(self.users) : 0) > 0";
pub(super) const AUDIENCE_MESSAGE: &str = "spec.audience needs at least one group or user";

pub(super) const WAVE_NAMES_RULE: &str = "self.all(w, self.exists_one(x, x.name == w.name))";
pub(super) const WAVE_NAMES_MESSAGE: &str = "wave names must be unique";
/// Count waves map to 0, percent waves to 1: sorted means every count wave comes first.
pub(super) const WAVE_KINDS_RULE: &str = "self.map(w, has(w.count) ? 0 : 1).isSorted()";
pub(super) const WAVE_KINDS_MESSAGE: &str = "spec.waves: every wave with a count must come before the first wave with a percent (a count cannot be compared with a percentage until the audience is read)";
pub(super) const WAVE_COUNTS_RULE: &str = "self.filter(w, has(w.count)).map(w, w.count).isSorted()";
pub(super) const WAVE_COUNTS_MESSAGE: &str = "spec.waves: counts must not decrease from wave to wave: a wave's count is the number of users in it and every wave before it";
pub(super) const WAVE_PERCENTS_RULE: &str =
    "self.filter(w, has(w.percent)).map(w, w.percent).isSorted()";
pub(super) const WAVE_PERCENTS_MESSAGE: &str = "spec.waves: percentages must not decrease from wave to wave: a wave's percent is the share of the audience in it and every wave before it";
pub(super) const WAVE_ONE_OF_RULE: &str = "has(self.percent) != has(self.count)";
pub(super) const WAVE_ONE_OF_MESSAGE: &str = "set exactly one of percent or count on a wave";
pub(super) const WAVE_NAME_RULE: &str = r#"self.matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")"#;
pub(super) const WAVE_NAME_MESSAGE: &str = "a wave name must be lowercase letters, digits and '-', starting and ending with a letter or digit";
const WAVE_COUNT_MESSAGE: &str = "spec.waves[].count must be 1 to 1000000";
const WAVE_PERCENT_MESSAGE: &str = "spec.waves[].percent must be 1 to 100";

/// A count (0 to [`MAX_COUNT`]) or a whole percentage.
pub(super) const MAX_FAILURES_RULE: &str =
    "type(self) == int ? self >= 0 && self <= 1000000 : self.matches('^(100|[1-9]?[0-9])%$')";
pub(super) const MAX_FAILURES_MESSAGE: &str =
    "spec.maxFailures must be a count (0 to 1000000) or a percentage like \"5%\"";
pub(super) const REMOVAL_LIMIT_RULE: &str =
    "type(self) == int ? self >= 0 && self <= 1000000 : self.matches('^(100|[1-9]?[0-9])%$')";
pub(super) const REMOVAL_LIMIT_MESSAGE: &str =
    "spec.removalLimit must be a count (0 to 1000000) or a percentage like \"10%\"";

pub(super) const MEMBERSHIP_INTERVAL_MESSAGE: &str = "spec.membershipInterval must be a duration like 10m, 1h30m or 90s (numbers each followed by a unit h, m, s or ms) of at most 168h (7 days)";
pub(super) const TEMPLATE_INTERVAL_MESSAGE: &str = "spec.template.interval must be a duration like 30m, 1h30m or 90s (numbers each followed by a unit h, m, s or ms) of at most 168h (7 days)";
pub(super) const REMOVAL_DELAY_MESSAGE: &str = "spec.removalDelay must be a duration like 1h, 30m or 0s (numbers each followed by a unit h, m, s or ms) of at most 720h (30 days)";
pub(super) const BAKE_TIME_MESSAGE: &str = "spec.waves[].bakeTime must be a duration like 1h, 30m or 90s (numbers each followed by a unit h, m, s or ms) of at most 720h (30 days)";

impl TeamsAppRolloutSpec {
    /// Checks what the CRD's rules check, with their messages. The API server refuses all of
    /// this; objects stored before a rule was added are what this catches.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        if self.app.id.is_some() == self.app.external_id.is_some() {
            return Err(invalid(
                "spec.app",
                "set exactly one of app.id or app.externalId",
            ));
        }
        if let Some(version) = &self.target_version
            && !is_valid_target_version(version)
        {
            return Err(invalid("spec.targetVersion", TARGET_VERSION_MESSAGE));
        }
        let audience = &self.audience;
        if audience.members.groups.is_empty() && audience.members.users.is_empty() {
            return Err(invalid("spec.audience", AUDIENCE_MESSAGE));
        }
        for principals in [&audience.members, &audience.exclude] {
            if !principals.groups.iter().all(|g| is_guid(g)) {
                return Err(invalid("spec.audience.groups", GROUPS_MESSAGE));
            }
            if !principals.users.iter().all(|u| is_valid_user(u)) {
                return Err(invalid("spec.audience.users", USERS_MESSAGE));
            }
        }
        validate_waves(&self.waves)?;
        check_count_or_percentage(
            self.max_failures.as_ref(),
            "spec.maxFailures",
            MAX_FAILURES_MESSAGE,
        )?;
        check_count_or_percentage(
            self.removal_limit.as_ref(),
            "spec.removalLimit",
            REMOVAL_LIMIT_MESSAGE,
        )?;
        let durations = [
            (
                &self.membership_interval,
                MAX_INTERVAL,
                "spec.membershipInterval",
                MEMBERSHIP_INTERVAL_MESSAGE,
            ),
            (
                &self.template.interval,
                MAX_INTERVAL,
                "spec.template.interval",
                TEMPLATE_INTERVAL_MESSAGE,
            ),
            (
                &self.removal_delay,
                MAX_LONG_WAIT,
                "spec.removalDelay",
                REMOVAL_DELAY_MESSAGE,
            ),
        ];
        for (value, max, field, message) in durations {
            if let Some(text) = value
                && !is_valid_duration(text, max)
            {
                return Err(invalid(field, message));
            }
        }
        Ok(())
    }
}

/// The wave rules: each wave on its own, then the order of their shares.
fn validate_waves(waves: &[Wave]) -> Result<(), InvalidSpec> {
    for (i, wave) in waves.iter().enumerate() {
        if waves[..i].iter().any(|w| w.name == wave.name) {
            return Err(invalid("spec.waves", WAVE_NAMES_MESSAGE));
        }
        if !is_wave_name(&wave.name) {
            return Err(invalid("spec.waves[].name", WAVE_NAME_MESSAGE));
        }
        match (wave.percent, wave.count) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid("spec.waves", WAVE_ONE_OF_MESSAGE));
            }
            (Some(percent), None) if !(1..=100).contains(&percent) => {
                return Err(invalid("spec.waves[].percent", WAVE_PERCENT_MESSAGE));
            }
            (None, Some(count)) if !(1..=MAX_COUNT).contains(&count) => {
                return Err(invalid("spec.waves[].count", WAVE_COUNT_MESSAGE));
            }
            _ => {}
        }
        if let Some(bake) = &wave.bake_time
            && !is_valid_duration(bake, MAX_LONG_WAIT)
        {
            return Err(invalid("spec.waves[].bakeTime", BAKE_TIME_MESSAGE));
        }
    }
    let first_percent = waves.iter().position(|w| w.percent.is_some());
    if let Some(first) = first_percent
        && waves[first..].iter().any(|w| w.count.is_some())
    {
        return Err(invalid("spec.waves", WAVE_KINDS_MESSAGE));
    }
    let counts: Vec<u32> = waves.iter().filter_map(|w| w.count).collect();
    if !counts.is_sorted() {
        return Err(invalid("spec.waves", WAVE_COUNTS_MESSAGE));
    }
    let percents: Vec<u32> = waves.iter().filter_map(|w| w.percent).collect();
    if !percents.is_sorted() {
        return Err(invalid("spec.waves", WAVE_PERCENTS_MESSAGE));
    }
    Ok(())
}

fn is_wave_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=63).contains(&bytes.len())
        && bytes.first().is_some_and(inner)
        && bytes.last().is_some_and(inner)
        && bytes.iter().all(|b| inner(b) || *b == b'-')
}

/// `maxFailures` and `removalLimit`: a count from 0 to [`MAX_COUNT`], or `0%` to `100%`.
fn check_count_or_percentage(
    value: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    field: &'static str,
    message: &str,
) -> Result<(), InvalidSpec> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let ok = match value {
        None => true,
        Some(IntOrString::Int(n)) => u32::try_from(*n).is_ok_and(|n| n <= MAX_COUNT),
        Some(IntOrString::String(s)) => is_percentage(s),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(field, message))
    }
}

/// `^(100|[1-9]?[0-9])%$`.
fn is_percentage(text: &str) -> bool {
    let Some(number) = text.strip_suffix('%') else {
        return false;
    };
    let digits_only = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    digits_only
        && (number == "100" || number.len() == 1 || (number.len() == 2 && !number.starts_with('0')))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn spec(extra: Value) -> TeamsAppRolloutSpec {
        let mut spec = json!({
            "app": {"id": "33333333-3333-3333-3333-333333333333"},
            "audience": {"groups": ["44444444-4444-4444-4444-444444444444"]},
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            spec[k] = v;
        }
        serde_json::from_value(spec).expect("a spec")
    }

    fn field(extra: Value) -> Option<&'static str> {
        spec(extra).validate().err().map(|e| e.field)
    }

    fn waves(waves: Value) -> Result<(), String> {
        spec(json!({ "waves": waves }))
            .validate()
            .map_err(|e| e.message)
    }

    #[test]
    fn waves_are_counts_then_percentages_never_shrinking() {
        for good in [
            json!([]),
            json!([{"name": "a", "percent": 1}, {"name": "b", "percent": 100}]),
            json!([{"name": "a", "count": 10}, {"name": "b", "count": 10}, {"name": "c", "percent": 5}, {"name": "d", "percent": 100}]),
            json!([{"name": "a", "count": 1000000, "bakeTime": "720h"}]),
        ] {
            assert_eq!(waves(good.clone()), Ok(()), "{good}");
        }
        let refused = [
            (
                json!([{"name": "a", "percent": 50}, {"name": "b", "percent": 10}]),
                WAVE_PERCENTS_MESSAGE,
            ),
            // Shrinking percentages with a count between them: the count comes too late.
            (
                json!([{"name": "a", "percent": 50}, {"name": "b", "count": 10}, {"name": "c", "percent": 20}]),
                WAVE_KINDS_MESSAGE,
            ),
            (
                json!([{"name": "a", "count": 50}, {"name": "b", "count": 10}, {"name": "c", "percent": 100}]),
                WAVE_COUNTS_MESSAGE,
            ),
            (
                json!([{"name": "a", "percent": 10}, {"name": "b", "count": 500}]),
                WAVE_KINDS_MESSAGE,
            ),
            (
                json!([{"name": "a", "count": 5000000000u64}]),
                WAVE_COUNT_MESSAGE,
            ),
            (json!([{"name": "a", "count": 0}]), WAVE_COUNT_MESSAGE),
            (json!([{"name": "a", "percent": 101}]), WAVE_PERCENT_MESSAGE),
            (
                json!([{"name": "a", "percent": 10, "bakeTime": "876000000h"}]),
                BAKE_TIME_MESSAGE,
            ),
            (
                json!([{"name": "a", "percent": 10, "bakeTime": "721h"}]),
                BAKE_TIME_MESSAGE,
            ),
            (
                json!([{"name": "a", "percent": 10}, {"name": "a", "percent": 20}]),
                WAVE_NAMES_MESSAGE,
            ),
            (json!([{"name": "A", "percent": 10}]), WAVE_NAME_MESSAGE),
            (
                json!([{"name": "a", "percent": 10, "count": 1}]),
                WAVE_ONE_OF_MESSAGE,
            ),
        ];
        for (bad, message) in refused {
            assert_eq!(waves(bad.clone()), Err(message.to_string()), "{bad}");
        }
    }

    #[test]
    fn numbers_and_durations_are_bounded() {
        assert_eq!(field(json!({"maxFailures": 1000000})), None);
        assert_eq!(field(json!({"maxFailures": "100%"})), None);
        assert_eq!(
            field(json!({"maxFailures": 3000000000u64})),
            Some("spec.maxFailures")
        );
        assert_eq!(field(json!({"maxFailures": -1})), Some("spec.maxFailures"));
        assert_eq!(
            field(json!({"maxFailures": "05%"})),
            Some("spec.maxFailures")
        );
        assert_eq!(
            field(json!({"removalLimit": 1000001})),
            Some("spec.removalLimit")
        );
        assert_eq!(field(json!({"membershipInterval": "1ms"})), None);
        assert_eq!(
            field(json!({"membershipInterval": "169h"})),
            Some("spec.membershipInterval")
        );
        assert_eq!(field(json!({"removalDelay": "720h"})), None);
        assert_eq!(
            field(json!({"removalDelay": "30d"})),
            Some("spec.removalDelay")
        );
        assert_eq!(
            field(json!({"template": {"interval": "999999999h"}})),
            Some("spec.template.interval")
        );
    }

    #[test]
    fn the_rest_of_the_crds_rules_hold_for_stored_objects_too() {
        assert_eq!(
            field(json!({"app": {"id": "x", "externalId": "y"}})),
            Some("spec.app")
        );
        assert_eq!(
            field(json!({"targetVersion": "latest"})),
            Some("spec.targetVersion")
        );
        assert_eq!(field(json!({"audience": {}})), Some("spec.audience"));
        assert_eq!(
            field(json!({"audience": {"groups": ["sales"]}})),
            Some("spec.audience.groups")
        );
        assert_eq!(
            field(json!({"audience": {"users": ["x"], "exclude": {"users": [".."]}}})),
            Some("spec.audience.users")
        );
        for (text, ok) in [
            ("0%", true),
            ("5%", true),
            ("99%", true),
            ("100%", true),
            ("101%", false),
            ("%", false),
            ("5", false),
            ("05%", false),
            ("1000%", false),
        ] {
            assert_eq!(is_percentage(text), ok, "{text}");
        }
    }
}
