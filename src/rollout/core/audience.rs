//! Who a rollout is for: the members read from Graph, minus exclusions, sifted by eligibility.

use std::collections::{BTreeMap, HashSet};

use crate::api::{AudienceStatus, Eligibility, SkippedCounts};
use crate::graph::{DirectoryUser, Licence};

/// What the controller read from Graph for one rollout.
#[derive(Debug, Default)]
pub struct AudienceRead {
    /// Members of `audience.groups` and the users of `audience.users` that exist (duplicates
    /// allowed: a user in two groups appears twice).
    pub included: Vec<DirectoryUser>,
    /// Object ids of the members of `audience.exclude.groups`.
    pub excluded_ids: HashSet<String>,
    /// `audience.users` entries the directory does not know.
    pub not_found: Vec<String>,
}

/// A user who gets the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibleUser {
    /// The Entra object id, lowercase.
    pub id: String,
    pub upn: Option<String>,
}

/// The sifted audience: the eligible users (by object id) and the counts for status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Audience {
    pub eligible: BTreeMap<String, EligibleUser>,
    pub counts: AudienceStatus,
}

/// Graph answered, but not with what eligibility needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceError {
    #[error(
        "Graph returned the audience's users without the properties eligibility is judged by (user {example} has no accountEnabled, userType or assignedPlans: the permission User.ReadBasic.All, or none, shows only names): the app registration needs the User.Read.All application permission (admin-consented) for the eligibility rules; nothing is installed or removed until then"
    )]
    MissingUserProperties { example: String },
}

/// Removes duplicates and exclusions, then applies the eligibility rules.
///
/// `exclude_users` are matched by object id or user principal name, case-insensitively, so
/// excluding needs no extra Graph calls. A user Graph returned without properties cannot be
/// judged: when any rule needs them, that is a missing permission, not an ineligible user.
pub fn sift(
    read: AudienceRead,
    exclude_users: &[String],
    rules: &Eligibility,
) -> Result<Audience, AudienceError> {
    let excluded_names: HashSet<String> = exclude_users.iter().map(|u| u.to_lowercase()).collect();
    let needs_properties = rules.skip_guests || rules.skip_disabled || rules.require_teams_license;
    let mut seen = HashSet::new();
    let mut audience = Audience::default();
    let counts = &mut audience.counts;
    counts.not_found = count(read.not_found.len());
    for user in read.included {
        let id = user.id.to_lowercase();
        if !seen.insert(id.clone()) {
            continue;
        }
        counts.members += 1;
        let upn = user.user_principal_name.as_ref().map(|u| u.to_lowercase());
        if read.excluded_ids.contains(&id)
            || excluded_names.contains(&id)
            || upn.as_ref().is_some_and(|u| excluded_names.contains(u))
        {
            counts.excluded += 1;
            continue;
        }
        if needs_properties && user.lacks_properties() {
            return Err(AudienceError::MissingUserProperties { example: user.id });
        }
        match skip_reason(&user, rules) {
            Some(reason) => reason.count(&mut counts.skipped),
            None => {
                counts.eligible += 1;
                if user.licence == Some(Licence::UnknownState) {
                    counts.unknown_licence_states += 1;
                }
                let upn = user.user_principal_name;
                audience
                    .eligible
                    .insert(id.clone(), EligibleUser { id, upn });
            }
        }
    }
    Ok(audience)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Guest,
    Disabled,
    Unlicensed,
}

impl Skip {
    fn count(self, skipped: &mut SkippedCounts) {
        match self {
            Skip::Guest => skipped.guests += 1,
            Skip::Disabled => skipped.disabled += 1,
            Skip::Unlicensed => skipped.unlicensed += 1,
        }
    }
}

/// The first rule that skips the user. A property Graph left out (but not all of them) does
/// not skip: only what Graph says is judged.
fn skip_reason(user: &DirectoryUser, rules: &Eligibility) -> Option<Skip> {
    if rules.skip_guests && user.is_guest == Some(true) {
        Some(Skip::Guest)
    } else if rules.skip_disabled && user.account_enabled == Some(false) {
        Some(Skip::Disabled)
    } else if rules.require_teams_license && user.licence == Some(Licence::Unlicensed) {
        Some(Skip::Unlicensed)
    } else {
        None
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, guest: bool, enabled: bool, licensed: bool) -> DirectoryUser {
        DirectoryUser {
            id: id.to_string(),
            user_principal_name: Some(format!("{id}@contoso.com")),
            account_enabled: Some(enabled),
            is_guest: Some(guest),
            licence: Some(if licensed {
                Licence::Licensed
            } else {
                Licence::Unlicensed
            }),
        }
    }

    #[test]
    fn members_are_deduplicated_excluded_and_sifted_by_reason() {
        let read = AudienceRead {
            included: vec![
                user("A", false, true, true),
                user("a", false, true, true),
                user("g", true, true, true),
                user("d", false, false, true),
                user("n", false, true, false),
                user("x", false, true, true),
                user("y", false, true, true),
            ],
            excluded_ids: HashSet::from(["x".to_string()]),
            not_found: vec!["ghost@contoso.com".into()],
        };
        let audience = sift(read, &["Y@Contoso.com".into()], &Eligibility::default()).unwrap();
        let c = &audience.counts;
        assert_eq!(
            (c.members, c.excluded, c.eligible, c.not_found),
            (6, 2, 1, 1)
        );
        assert_eq!(
            (c.skipped.guests, c.skipped.disabled, c.skipped.unlicensed),
            (1, 1, 1)
        );
        assert_eq!(audience.eligible.keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn rules_turned_off_admit_everyone() {
        let rules = Eligibility {
            skip_guests: false,
            skip_disabled: false,
            require_teams_license: false,
        };
        let read = AudienceRead {
            included: vec![user("g", true, false, false)],
            ..Default::default()
        };
        assert_eq!(sift(read, &[], &rules).unwrap().counts.eligible, 1);
    }

    #[test]
    fn users_without_properties_are_a_missing_permission_not_disabled_users() {
        let bare = DirectoryUser {
            id: "b".into(),
            user_principal_name: None,
            account_enabled: None,
            is_guest: None,
            licence: None,
        };
        let read = AudienceRead {
            included: vec![bare.clone()],
            ..Default::default()
        };
        let err = sift(read, &[], &Eligibility::default()).unwrap_err();
        assert!(err.to_string().contains("User.Read.All"), "{err}");
        // With no rule to judge by, the id is all that is needed.
        let rules = Eligibility {
            skip_guests: false,
            skip_disabled: false,
            require_teams_license: false,
        };
        let read = AudienceRead {
            included: vec![bare],
            ..Default::default()
        };
        assert_eq!(sift(read, &[], &rules).unwrap().counts.eligible, 1);
    }
}
