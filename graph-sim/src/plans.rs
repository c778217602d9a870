//! A user's service plans — Graph's `assignedPlans` — and what they mean for Teams: a user may
//! use Teams while a `TeamspaceAPI` plan is `Enabled` or `Warning` (an expired subscription in
//! its grace period still works); `Suspended`, `LockedOut` and `Deleted` plans do not count.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::seed::PlanSeed;

/// The Teams service plan `TEAMS1`: what the `teamsEnabled` shorthand assigns.
const TEAMS_SERVICE_PLAN_ID: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";
/// Exchange Online (Plan 2), on every shorthand user, so a client has to look at the plan id.
const EXCHANGE_SERVICE_PLAN_ID: &str = "efb87545-963c-4e0d-99df-69c6916d9eb0";
/// The `service` of Teams plans in `assignedPlans`.
const TEAMS_SERVICE: &str = "TeamspaceAPI";
/// Fixed, so responses do not change from run to run.
const PLANS_ASSIGNED_AT: Timestamp = Timestamp::constant(1_705_309_200, 0); // 2024-01-15T09:00:00Z

/// One `assignedPlan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub service_plan_id: String,
    pub capability_status: String,
    pub service: Option<String>,
    pub assigned: Timestamp,
}

impl Plan {
    fn new(service_plan_id: &str, capability_status: &str) -> Plan {
        Plan {
            service_plan_id: service_plan_id.to_string(),
            capability_status: capability_status.to_string(),
            service: known_service(service_plan_id).map(str::to_string),
            assigned: PLANS_ASSIGNED_AT,
        }
    }

    fn is_teams(&self) -> bool {
        self.service
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(TEAMS_SERVICE))
    }

    /// Graph's `assignedPlan` shape.
    pub fn render(&self) -> Value {
        json!({
            "assignedDateTime": self.assigned.to_string(),
            "capabilityStatus": self.capability_status,
            "service": self.service,
            "servicePlanId": self.service_plan_id,
        })
    }
}

fn known_service(service_plan_id: &str) -> Option<&'static str> {
    if service_plan_id.eq_ignore_ascii_case(TEAMS_SERVICE_PLAN_ID) {
        Some(TEAMS_SERVICE)
    } else if service_plan_id.eq_ignore_ascii_case(EXCHANGE_SERVICE_PLAN_ID) {
        Some("exchange")
    } else {
        None
    }
}

/// The plans of the `teamsEnabled` shorthand: Exchange, and Teams `Enabled` or (a removed
/// licence) `Deleted`.
pub(crate) fn shorthand(teams_enabled: bool) -> Vec<Plan> {
    let teams = if teams_enabled { "Enabled" } else { "Deleted" };
    vec![
        Plan::new(EXCHANGE_SERVICE_PLAN_ID, "Enabled"),
        Plan::new(TEAMS_SERVICE_PLAN_ID, teams),
    ]
}

/// The plans a seed (or the admin API) lists; an error names what is wrong.
pub(crate) fn from_seed(seeds: &[PlanSeed]) -> Result<Vec<Plan>, String> {
    seeds
        .iter()
        .map(|seed| {
            if seed.service_plan_id.trim().is_empty() || seed.capability_status.trim().is_empty() {
                return Err("a plan needs a servicePlanId and a capabilityStatus".to_string());
            }
            let mut plan = Plan::new(&seed.service_plan_id, &seed.capability_status);
            if let Some(service) = &seed.service {
                plan.service = Some(service.clone());
            }
            if let Some(at) = seed.assigned_date_time {
                plan.assigned = at;
            }
            Ok(plan)
        })
        .collect()
}

/// True while some Teams plan is usable.
pub(crate) fn teams_licensed(plans: &[Plan]) -> bool {
    plans.iter().any(|p| {
        p.is_teams()
            && ["Enabled", "Warning"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&p.capability_status))
    })
}

/// The admin API's `teamsEnabled`: every Teams plan `Enabled` (the `TEAMS1` plan added when
/// there is none), or every Teams plan `Deleted`.
pub(crate) fn set_teams_enabled(plans: &mut Vec<Plan>, enabled: bool) {
    let status = if enabled { "Enabled" } else { "Deleted" };
    let mut found = false;
    for plan in plans.iter_mut().filter(|p| p.is_teams()) {
        plan.capability_status = status.to_string();
        found = true;
    }
    if enabled && !found {
        plans.push(Plan::new(TEAMS_SERVICE_PLAN_ID, status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(id: &str, status: &str, service: Option<&str>) -> PlanSeed {
        PlanSeed {
            service_plan_id: id.into(),
            capability_status: status.into(),
            service: service.map(str::to_string),
            assigned_date_time: None,
        }
    }

    #[test]
    fn the_teams_licence_follows_the_teams_plans_states() {
        assert!(teams_licensed(&shorthand(true)));
        assert!(!teams_licensed(&shorthand(false)));
        for (status, licensed) in [
            ("Enabled", true),
            ("Warning", true),
            ("Suspended", false),
            ("LockedOut", false),
            ("Deleted", false),
        ] {
            let plans = from_seed(&[seed(TEAMS_SERVICE_PLAN_ID, status, None)]).unwrap();
            assert_eq!(teams_licensed(&plans), licensed, "{status}");
        }
        let other_teams_plan = from_seed(&[seed(
            "4fa4026d-0000-0000-0000-000000000000",
            "Enabled",
            Some("TeamspaceAPI"),
        )])
        .unwrap();
        assert!(
            teams_licensed(&other_teams_plan),
            "by service, not only by id"
        );
        let exchange_only = from_seed(&[seed(EXCHANGE_SERVICE_PLAN_ID, "Enabled", None)]).unwrap();
        assert!(!teams_licensed(&exchange_only));
        assert!(from_seed(&[seed(" ", "Enabled", None)]).is_err());
    }

    #[test]
    fn teams_enabled_flips_the_teams_plans_and_adds_one_when_missing() {
        let mut plans = from_seed(&[seed(TEAMS_SERVICE_PLAN_ID, "Warning", None)]).unwrap();
        set_teams_enabled(&mut plans, false);
        assert_eq!(plans[0].capability_status, "Deleted");
        let mut none = Vec::new();
        set_teams_enabled(&mut none, false);
        assert!(none.is_empty());
        set_teams_enabled(&mut none, true);
        assert_eq!(none, vec![Plan::new(TEAMS_SERVICE_PLAN_ID, "Enabled")]);
        assert_eq!(PLANS_ASSIGNED_AT.to_string(), "2024-01-15T09:00:00Z");
    }
}
