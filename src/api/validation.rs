//! What the API server accepts in a `TeamsAppInstallation` spec, and the same rules in Rust.
//!
//! The CEL rules and their messages below go into the CRD (`x-kubernetes-validations`), so
//! `kubectl apply` refuses a value that could never work, with a message that says what is
//! accepted. `TeamsAppInstallationSpec::validate` applies the same rules to objects the
//! operator reads: an object stored before the rules existed must get a clear `InvalidSpec`, never
//! a Graph call with a value that changes the request's meaning (`spec.user: ..` is a dot segment
//! that URL normalisation removes, which sends the request to another path).
//!
//! The regular expressions run on the API server (CEL `matches`, RE2): `[0-9]` and `[A-Za-z]`
//! are ASCII there, so full-width digits and accented letters are refused.

use std::time::Duration;

use super::interval::parse_interval;

/// An Entra object id (a GUID) or a user principal name (`local@domain`). Entra allows letters,
/// digits and `' . - _ ! # ^ ~` in a UPN's local part, not starting or ending with `.`; `$` is
/// accepted too (`$`-prefixed UPNs exist). Guests look like `ann_fabrikam.com#EXT#@contoso.onmicrosoft.com`.
pub const USER_RULE: &str = r#"self.matches("^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9'_!#^~$-]([A-Za-z0-9'._!#^~$-]*[A-Za-z0-9'_!#^~$-])?@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)*)$")"#;
pub const USER_MESSAGE: &str = "spec.user must be an Entra object id (a GUID like 22222222-2222-2222-2222-222222222222) or a user principal name like alice@contoso.com: letters, digits and ' . - _ ! # ^ ~ $ before the @ (not starting or ending with a dot), letters, digits, - and . after it; no spaces";
/// [`USER_RULE`] for every item of a list of users.
pub fn all_users_rule() -> String {
    format!("self.all(u, {})", USER_RULE.replacen("self", "u", 1))
}

/// Entra's documented limit for a UPN: 64 characters, `@`, 48 characters.
pub const USER_MAX_LENGTH: usize = 113;

/// Dotted decimal numbers, as Teams app manifests version apps. Components of at most 18 digits
/// always fit the operator's numeric comparison (u64).
pub const TARGET_VERSION_RULE: &str = r#"self.matches("^[0-9]{1,18}([.][0-9]{1,18}){0,3}$")"#;
pub const TARGET_VERSION_MESSAGE: &str = "spec.targetVersion must be 1 to 4 dot-separated numbers of ASCII digits (at most 18 digits each) like 1.4.0, without a v prefix; omit it to follow the latest published version";
pub const TARGET_VERSION_MAX_LENGTH: usize = 64;

/// A duration CEL rule: `<number><unit>` pairs (units `h`, `m`, `s`, `ms`) adding up to at most
/// `$hours` hours. Each number is short enough for its unit (4 digits of hours, 6 of minutes, 8
/// of seconds, 10 of milliseconds: about three years at most) that no value of the allowed
/// length overflows the API server's `duration()` (int64 nanoseconds) or [`parse_interval`];
/// every value up to the limit in a single unit still fits.
macro_rules! duration_rule {
    ($hours:literal) => {
        concat!(
            r#"self.matches("^([0-9]{1,4}h|[0-9]{1,6}m|[0-9]{1,8}s|[0-9]{1,10}ms)+$") && duration(self) <= duration(""#,
            $hours,
            r#"h")"#
        )
    };
}

/// Periods the operator repeats (drift checks, audience reads): at most a week. Anything longer
/// is no longer a re-check, and the operator's timers hold it comfortably.
pub const INTERVAL_RULE: &str = duration_rule!("168");
pub const MAX_INTERVAL: Duration = Duration::from_secs(168 * 3600);
pub const INTERVAL_MESSAGE: &str = "spec.interval must be a duration like 30m, 1h30m, 90s or 1500ms (numbers each followed by a unit h, m, s or ms) of at most 168h (7 days)";
pub const INTERVAL_MAX_LENGTH: usize = 64;

/// Waits a person sets once (a wave's bake time, how long a leaver stays): at most 30 days.
pub const LONG_WAIT_RULE: &str = duration_rule!("720");
pub const MAX_LONG_WAIT: Duration = Duration::from_secs(720 * 3600);

/// The largest count a rollout takes (a wave's `count`, `maxFailures`, `removalLimit`): far
/// more users than one rollout reads, and far inside the operator's `u32`/`i32`.
pub const MAX_COUNT: u32 = 1_000_000;

/// A spec the API server would refuse today; the message is the CRD rule's. Shown, it names
/// the field first (most rules' messages already do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", naming(.field, .message))]
pub struct InvalidSpec {
    /// The offending field, e.g. `spec.user`.
    pub field: &'static str,
    pub message: String,
}

fn naming(field: &str, message: &str) -> String {
    if message.starts_with(field) {
        message.to_string()
    } else {
        format!("{field}: {message}")
    }
}

pub(super) fn invalid(field: &'static str, message: &str) -> InvalidSpec {
    InvalidSpec {
        field,
        message: message.to_string(),
    }
}

/// [`USER_RULE`] and [`USER_MAX_LENGTH`].
pub fn is_valid_user(user: &str) -> bool {
    user.len() <= USER_MAX_LENGTH && (is_guid(user) || is_upn(user))
}

pub(super) fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_upn(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'._!#^~$-".contains(&b));
    let domain_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    local_ok && domain_ok
}

/// [`TARGET_VERSION_RULE`] and [`TARGET_VERSION_MAX_LENGTH`].
pub fn is_valid_target_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    version.len() <= TARGET_VERSION_MAX_LENGTH
        && parts.len() <= 4
        && parts
            .iter()
            .all(|p| (1..=18).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// [`INTERVAL_RULE`]: a duration of at most [`MAX_INTERVAL`].
pub fn is_valid_interval(interval: &str) -> bool {
    is_valid_duration(interval, MAX_INTERVAL)
}

/// A duration CEL rule (`duration_rule!`) in Rust, for the limit `max`: every value accepted
/// also parses.
pub fn is_valid_duration(text: &str, max: Duration) -> bool {
    if text.len() > INTERVAL_MAX_LENGTH || text.is_empty() {
        return false;
    }
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        rest = &rest[digits..];
        let (unit, most_digits) = if rest.starts_with("ms") {
            ("ms", 10)
        } else if rest.starts_with('h') {
            ("h", 4)
        } else if rest.starts_with('m') {
            ("m", 6)
        } else if rest.starts_with('s') {
            ("s", 8)
        } else {
            return false;
        };
        if !(1..=most_digits).contains(&digits) {
            return false;
        }
        rest = &rest[unit.len()..];
    }
    parse_interval(text).is_ok_and(|d| d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_entra_accepts_pass() {
        for good in [
            "alice@contoso.com",
            "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "o'neil@contoso.com",
            "$adm@contoso.com",
            "22222222-2222-2222-2222-222222222222",
            "3F7A2B8E-0000-4000-8000-ABCDEFabcdef",
            "a.b-c~d^e!f@sub-1.contoso.com",
        ] {
            assert!(is_valid_user(good), "{good:?} should pass");
        }
    }

    #[test]
    fn users_that_could_never_work_are_refused() {
        for bad in [
            "",
            " ",
            ".",
            "..",
            "alice",
            " alice@contoso.com",
            "alice@contoso.com ",
            "al ice@contoso.com",
            "alice\t@contoso.com",
            "alice\n@contoso.com",
            "alice\u{7f}@contoso.com",
            ".alice@contoso.com",
            "alice.@contoso.com",
            "@contoso.com",
            "alice@",
            "alice@..",
            "alice@contoso..com",
            "alice@contoso.com.",
            "alice@bob@contoso.com",
            "alice/../x@contoso.com",
            "alice%2F@contoso.com",
            "alice?x=1@contoso.com",
            "józef@contoso.com",
            "2222222-2222-2222-2222-222222222222",
            "22222222-2222-2222-2222-22222222222g",
        ] {
            assert!(!is_valid_user(bad), "{bad:?} should be refused");
        }
        let long = format!("{}@contoso.com", "a".repeat(USER_MAX_LENGTH));
        assert!(!is_valid_user(&long));
    }

    #[test]
    fn target_versions_are_dotted_ascii_numbers() {
        for good in [
            "1",
            "1.4",
            "1.4.0",
            "1.4.0.7",
            "0.9",
            "01.0",
            "999999999999999999.0",
        ] {
            assert!(is_valid_target_version(good), "{good:?} should pass");
            // Every accepted version compares numerically, part by part.
            let parsed = crate::version::AppVersion::parse(good);
            assert!(parsed >= crate::version::AppVersion::parse("0"));
        }
        for bad in [
            "",
            " ",
            "latest",
            "-1",
            "v2",
            "1.",
            ".1",
            "1..0",
            "1.2.3.4.5",
            "1.0-beta",
            "１.０",
            "1.0 ",
            "1e3",
            "9999999999999999999",
        ] {
            assert!(!is_valid_target_version(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn durations_accepted_always_parse_and_stay_within_the_limit() {
        for good in [
            "30m",
            "1h30m",
            "90s",
            "1500ms",
            "168h",
            "10080m",
            "604800s",
            "604800000ms",
            "1ms1s1m1h",
            "0s",
        ] {
            assert!(is_valid_interval(good), "{good:?} should pass");
        }
        for bad in [
            "",
            "m",
            "30",
            "1.5h",
            "-1m",
            "1h 30m",
            " 30m",
            "1d",
            "169h",
            "168h1ms",
            "10081m",
            "99999h",
            "9999999999h",
            "99999999999999999999h",
            "１m",
        ] {
            assert!(!is_valid_interval(bad), "{bad:?} should be refused");
        }
        assert!(is_valid_duration("720h", MAX_LONG_WAIT));
        assert!(!is_valid_duration("721h", MAX_LONG_WAIT));
        // The largest numbers each unit takes, as long as the CRD allows: no overflow anywhere.
        for unit in ["9999h", "999999m", "99999999s", "9999999999ms"] {
            let longest = unit.repeat(INTERVAL_MAX_LENGTH / unit.len());
            assert!(parse_interval(&longest).is_ok(), "{longest}");
            assert!(!is_valid_duration(&longest, MAX_LONG_WAIT));
            // The API server's duration() counts int64 nanoseconds.
            let nanos = parse_interval(&longest)
                .map(|d| d.as_nanos())
                .unwrap_or(u128::MAX);
            assert!(nanos < i64::MAX as u128, "{longest}");
        }
    }

    #[test]
    fn the_rules_say_the_limits_the_checks_apply() {
        let hours = |d: Duration| format!(r#"duration("{}h")"#, d.as_secs() / 3600);
        assert!(
            INTERVAL_RULE.contains(&hours(MAX_INTERVAL)),
            "{INTERVAL_RULE}"
        );
        assert!(
            LONG_WAIT_RULE.contains(&hours(MAX_LONG_WAIT)),
            "{LONG_WAIT_RULE}"
        );
        assert!(INTERVAL_MESSAGE.contains("168h"));
    }
}
