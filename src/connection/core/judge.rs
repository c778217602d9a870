//! One check of a connection → its verdict and what its status shows. Pure: the shell gets the
//! token and makes the read, and hands over what happened.

use std::time::{Duration, SystemTime};

use super::permissions::missing;
use super::verdict::{Reason, Verdict};
use crate::graph::ErrorClass;

/// Why a step of the check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The credential could not be loaded (its Secret, key or ServiceAccount token).
    Credential(String),
    /// The token endpoint or Graph answered with an error of this class.
    Graph { class: ErrorClass, message: String },
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Findings {
    /// The token's granted roles and expiry, or why there is no token.
    pub token: Result<Granted, Failure>,
    /// The cheap Graph read (a page of the catalog), when a token was had.
    pub probe: Option<Result<(), Failure>>,
    /// Whether any rollout uses the connection (rollouts need two more permissions).
    pub used_by_rollouts: bool,
    /// Whether any user of the connection consents RSC application permissions.
    pub used_for_consent: bool,
}

/// What a token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Granted {
    pub roles: Vec<String>,
    pub expires_at: Option<SystemTime>,
}

/// The verdict of one check, the permissions it lacks, and when to check again.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgment {
    pub verdict: Verdict,
    pub missing: Vec<&'static str>,
    pub recheck: Duration,
}

/// How often a Ready connection is checked again (a permission revoked shows within this).
pub const RECHECK: Duration = Duration::from_secs(10 * 60);

/// How often a connection that needs a person is checked again: a fixed Secret or a granted
/// permission (admin consent) shows within this, with a fresh token (see [`wants_fresh_token`]).
pub const STALLED_RECHECK: Duration = Duration::from_secs(60);

/// Whether the next check must get a new token rather than use the cached one: granted roles
/// are read from the token, so a permission granted since it was issued shows only in a new one.
pub fn wants_fresh_token(last_reason: Option<&str>) -> bool {
    last_reason == Some(Reason::MissingPermissions.as_str())
}

/// Judges one check. Failures that pass on their own leave the check to the caller's backoff;
/// a refused credential or a missing permission needs a person and is rechecked at
/// [`RECHECK`] (and at once when the connection or its Secret changes).
pub fn judge(findings: &Findings) -> Judgment {
    let granted = match &findings.token {
        Ok(granted) => granted,
        Err(failure) => return failed("getting a token", failure),
    };
    let missing = missing(
        &granted.roles,
        findings.used_by_rollouts,
        findings.used_for_consent,
    );
    if !missing.is_empty() {
        let needed_by = match (findings.used_by_rollouts, findings.used_for_consent) {
            (true, true) => {
                "the operator needs (rollouts use this connection, and resources consent resource-specific permissions through it)"
            }
            (true, false) => "the operator needs (rollouts use this connection)",
            (false, true) => {
                "the operator needs (resources consent resource-specific permissions through this connection)"
            }
            (false, false) => "the operator needs",
        };
        let granted_text = if granted.roles.is_empty() {
            "none".to_string()
        } else {
            granted.roles.join(", ")
        };
        return Judgment {
            verdict: Verdict::stalled(
                Reason::MissingPermissions,
                format!(
                    "the app registration lacks application permission(s) {needed_by}: {} (granted: {granted_text}); grant them with admin consent",
                    missing.join(", ")
                ),
            ),
            missing,
            recheck: STALLED_RECHECK,
        };
    }
    match &findings.probe {
        Some(Err(failure)) => failed("reading the app catalog", failure),
        _ => Judgment {
            verdict: Verdict::settled(
                Reason::Connected,
                format!(
                    "signed in; {} application permission(s) granted",
                    granted.roles.len()
                ),
            ),
            missing: Vec::new(),
            recheck: RECHECK,
        },
    }
}

fn failed(step: &str, failure: &Failure) -> Judgment {
    let verdict = match failure {
        Failure::Credential(message) => Verdict::stalled(
            Reason::CredentialUnavailable,
            format!("{step} failed: {message}"),
        ),
        Failure::Graph { class, message } => {
            let message = format!("{step} failed: {message}");
            match class {
                ErrorClass::Throttled => Verdict::progressing(Reason::Throttled, message),
                ErrorClass::Unauthorized => Verdict::stalled(Reason::AuthenticationFailed, message),
                ErrorClass::Forbidden => Verdict::stalled(Reason::MissingPermissions, message),
                ErrorClass::BadRequest | ErrorClass::NotFound => {
                    Verdict::stalled(Reason::InvalidSpec, message)
                }
                _ => Verdict::progressing(Reason::GraphUnavailable, message),
            }
        }
    };
    Judgment {
        verdict,
        missing: Vec::new(),
        recheck: STALLED_RECHECK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::Standing;

    fn all_roles() -> Vec<String> {
        [
            "TeamsAppInstallation.ReadWriteForUser.All",
            "AppCatalog.Read.All",
            "GroupMember.Read.All",
            "User.Read.All",
        ]
        .map(String::from)
        .to_vec()
    }

    fn findings(roles: Vec<String>, probe: Option<Result<(), Failure>>) -> Findings {
        Findings {
            token: Ok(Granted {
                roles,
                expires_at: None,
            }),
            probe,
            used_by_rollouts: false,
            used_for_consent: false,
        }
    }

    #[test]
    fn a_token_and_a_read_is_connected() {
        let j = judge(&findings(all_roles(), Some(Ok(()))));
        assert_eq!(j.verdict.reason, Reason::Connected);
        assert_eq!(j.verdict.standing, Standing::Ready);
        assert!(j.missing.is_empty());
    }

    #[test]
    fn missing_permissions_are_named_and_stall() {
        let roles = vec!["AppCatalog.Read.All".to_string()];
        let j = judge(&findings(roles, Some(Ok(()))));
        assert_eq!(j.verdict.reason, Reason::MissingPermissions);
        assert!(j.verdict.is_stalled());
        assert_eq!(j.missing, ["TeamsAppInstallation.ReadWriteForUser.All"]);
        assert!(
            j.verdict
                .message
                .contains("TeamsAppInstallation.ReadWriteForUser.All")
        );
        assert!(j.verdict.message.contains("granted: AppCatalog.Read.All"));
        assert_eq!(j.recheck, STALLED_RECHECK);
        assert!(wants_fresh_token(Some("MissingPermissions")));
        assert!(!wants_fresh_token(Some("Connected")));
    }

    #[test]
    fn rollouts_make_the_directory_roles_needed() {
        let roles = all_roles()[..2].to_vec();
        assert_eq!(
            judge(&findings(roles.clone(), Some(Ok(())))).verdict.reason,
            Reason::Connected
        );
        let mut used = findings(roles, Some(Ok(())));
        used.used_by_rollouts = true;
        let j = judge(&used);
        assert_eq!(j.missing, ["GroupMember.Read.All", "User.Read.All"]);
        assert!(j.verdict.message.contains("rollouts use this connection"));
    }

    #[test]
    fn token_failures_by_class() {
        let cases = [
            (
                Failure::Credential("secret graph has no key secret".into()),
                Reason::CredentialUnavailable,
                true,
            ),
            (
                Failure::Graph {
                    class: ErrorClass::Unauthorized,
                    message: "AADSTS7000215".into(),
                },
                Reason::AuthenticationFailed,
                true,
            ),
            (
                Failure::Graph {
                    class: ErrorClass::Unavailable,
                    message: "503".into(),
                },
                Reason::GraphUnavailable,
                false,
            ),
            (
                Failure::Graph {
                    class: ErrorClass::Throttled,
                    message: "429".into(),
                },
                Reason::Throttled,
                false,
            ),
        ];
        for (failure, reason, stalled) in cases {
            let j = judge(&Findings {
                token: Err(failure.clone()),
                probe: None,
                used_by_rollouts: false,
                used_for_consent: false,
            });
            assert_eq!(j.verdict.reason, reason, "{failure:?}");
            assert_eq!(j.verdict.is_stalled(), stalled, "{failure:?}");
            assert!(j.verdict.message.starts_with("getting a token failed"));
        }
    }

    #[test]
    fn a_failed_read_after_a_token_is_reported_as_the_read() {
        let probe = Some(Err(Failure::Graph {
            class: ErrorClass::Unavailable,
            message: "503 ServiceUnavailable".into(),
        }));
        let j = judge(&findings(all_roles(), probe));
        assert_eq!(j.verdict.reason, Reason::GraphUnavailable);
        assert!(j.verdict.is_reconciling());
        assert!(
            j.verdict
                .message
                .starts_with("reading the app catalog failed")
        );
    }
}
