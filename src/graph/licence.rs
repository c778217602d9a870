//! Whether a user's `assignedPlans` give them Microsoft Teams, as Graph reports it.
//!
//! Microsoft Teams comes with several service plans — one per cloud and offer. The ids are from
//! Microsoft's "Product names and service plan identifiers for licensing" reference
//! (<https://learn.microsoft.com/entra/identity/users/licensing-service-plan-reference>), as
//! also listed in "Teams license requirements" of Azure Communication Services:
//!
//! | Service plan | Id | Comes with |
//! |---|---|---|
//! | TEAMS1 | 57ff2da0-773e-42df-b2af-ffb7a2317929 | Microsoft 365 / Office 365 E, A, F, Business; Teams Exploratory, Teams Trial, Teams Rooms |
//! | TEAMS_FREE | 4fa4026d-ce74-4962-a151-8e96d57ea8e4 | Microsoft Teams (free) |
//! | TEAMS_GOV | 304767db-7d23-49e8-a945-4a7eb65f9f28 | GCC |
//! | TEAMS_AR_GCCHIGH | 9953b155-8aef-4c56-92f3-72b0487fce41 | GCC High |
//! | TEAMS_AR_DOD | fd500458-c24c-478e-856c-a6067a8376cd | DoD |
//!
//! Each assigned plan has a `capabilityStatus` (Graph's `assignedPlan` resource): `Enabled`,
//! `Warning` (the subscription is in its grace period and "available for normal use"),
//! `Suspended`, `LockedOut` and `Deleted`. A user may carry several Teams entries — one per
//! licence, old ones `Deleted`.

/// Every Microsoft Teams service plan id (see the module docs for their source).
pub const TEAMS_SERVICE_PLAN_IDS: [&str; 5] = [
    "57ff2da0-773e-42df-b2af-ffb7a2317929",
    "4fa4026d-ce74-4962-a151-8e96d57ea8e4",
    "304767db-7d23-49e8-a945-4a7eb65f9f28",
    "9953b155-8aef-4c56-92f3-72b0487fce41",
    "fd500458-c24c-478e-856c-a6067a8376cd",
];

/// A user's Teams licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Licence {
    /// A Teams plan `Enabled` or in its grace period (`Warning`).
    Licensed,
    /// No Teams plan, or only `Suspended`, `LockedOut` or `Deleted` ones.
    Unlicensed,
    /// A Teams plan in a state the operator does not know: treated as licensed (never a reason
    /// to uninstall), and counted so a person can look.
    UnknownState,
}

/// The licence `plans` (service plan id, capability status) give: any usable Teams plan wins,
/// then any Teams plan in an unknown state, else unlicensed.
pub fn teams_licence<'a>(plans: impl IntoIterator<Item = (&'a str, &'a str)>) -> Licence {
    let mut licence = Licence::Unlicensed;
    for (plan, status) in plans {
        if !TEAMS_SERVICE_PLAN_IDS
            .iter()
            .any(|id| id.eq_ignore_ascii_case(plan))
        {
            continue;
        }
        match status {
            "Enabled" | "Warning" => return Licence::Licensed,
            "Suspended" | "LockedOut" | "Deleted" => {}
            _ => licence = Licence::UnknownState,
        }
    }
    licence
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEAMS1: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";
    const GCC: &str = "304767db-7d23-49e8-a945-4a7eb65f9f28";
    const GCC_HIGH: &str = "9953B155-8AEF-4C56-92F3-72B0487FCE41";
    const DOD: &str = "fd500458-c24c-478e-856c-a6067a8376cd";
    const FREE: &str = "4fa4026d-ce74-4962-a151-8e96d57ea8e4";
    const EXCHANGE: &str = "efb87545-963c-4e0d-99df-69c6916d9eb0";

    /// Every row of the licence table.
    #[test]
    fn the_licence_table() {
        use Licence::*;
        let rows: &[(&[(&str, &str)], Licence)] = &[
            (&[], Unlicensed),
            (&[(EXCHANGE, "Enabled")], Unlicensed),
            (&[(TEAMS1, "Enabled")], Licensed),
            (&[(TEAMS1, "Warning")], Licensed),
            (&[(TEAMS1, "Suspended")], Unlicensed),
            (&[(TEAMS1, "LockedOut")], Unlicensed),
            (&[(TEAMS1, "Deleted")], Unlicensed),
            // An old licence deleted, the new one enabled: licensed.
            (&[(TEAMS1, "Deleted"), (TEAMS1, "Enabled")], Licensed),
            (&[(TEAMS1, "Suspended"), (GCC, "Warning")], Licensed),
            // Government clouds and Teams (free) have their own plans.
            (&[(GCC, "Enabled")], Licensed),
            (&[(GCC_HIGH, "Enabled")], Licensed),
            (&[(DOD, "Enabled")], Licensed),
            (&[(FREE, "Enabled")], Licensed),
            // A state Graph may add later: never a reason to take the app away.
            (&[(TEAMS1, "PendingActivation")], UnknownState),
            (&[(TEAMS1, "Deleted"), (TEAMS1, "Frozen")], UnknownState),
            (&[(TEAMS1, "Frozen"), (TEAMS1, "Enabled")], Licensed),
            (&[(EXCHANGE, "Frozen")], Unlicensed),
        ];
        for (plans, expected) in rows {
            assert_eq!(teams_licence(plans.iter().copied()), *expected, "{plans:?}");
        }
    }
}
