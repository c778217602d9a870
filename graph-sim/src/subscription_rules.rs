//! What a subscription request must say, and how it is read: the change types, the URLs, the
//! one supported resource and the lifetime rules of Teams app installation subscriptions
//! (<https://learn.microsoft.com/graph/teams-changenotifications-appinstallation>: at most
//! 4,320 minutes, a `lifecycleNotificationUrl` past one hour).

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};

use super::errors::GraphError;
use super::faults::FaultConfig;
use super::odata::percent_decode;

/// The longest lifetime Graph grants this resource: 4,320 minutes (3 days).
pub(crate) const MAX_LIFETIME_MINUTES: i64 = 4320;
/// Past this many minutes a `lifecycleNotificationUrl` is required.
const LIFECYCLE_URL_REQUIRED_AFTER_MINUTES: i64 = 60;

/// Graph's documented message when the lifecycle URL is missing past one hour.
const LIFECYCLE_URL_REQUIRED: &str = "lifecycleNotificationUrl is a required property for \
     subscription creation on this resource when the expirationDateTime value is set to \
     greater than 1 hour.";

/// A kind of change a subscription asks for (`changeType`, comma-separated on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Deleted]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// `created,updated,deleted` → the change types, each once.
pub(crate) fn parse_change_types(text: &str) -> Result<Vec<ChangeType>, GraphError> {
    let mut types = Vec::new();
    for part in text.split(',') {
        let change = ChangeType::parse(part).ok_or_else(|| {
            GraphError::bad_request(format!(
                "'{}' is not a supported changeType for this resource: use created, updated \
                 and/or deleted.",
                part.trim()
            ))
        })?;
        if !types.contains(&change) {
            types.push(change);
        }
    }
    Ok(types)
}

/// An absolute http(s) URL. Graph requires HTTPS; the simulator also takes plain HTTP so that a
/// test's receiver needs no certificate.
pub(crate) fn checked_url(name: &str, text: &str) -> Result<String, GraphError> {
    match url::Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.trim().to_string())
        }
        _ => Err(GraphError::bad_request(format!(
            "Invalid {name}: '{text}'. It must be an absolute HTTPS URL."
        ))),
    }
}

/// The catalog app id of the one supported resource, the way Graph's docs write it
/// (`/appCatalogs/teamsApps/{id}/installations?$filter=(scopeInfo/scope eq 'personal')`), URL
/// encoded or not, with or without the leading slash and the parentheses.
pub(crate) fn app_of_resource(resource: &str) -> Result<String, GraphError> {
    let unsupported = || {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            format!(
                "Resource '{resource}' is not supported. Supported: \
                 /appCatalogs/teamsApps/{{teams-app-id}}/installations?$filter=(scopeInfo/scope \
                 eq 'personal')."
            ),
        )
    };
    let decoded = percent_decode(resource.trim());
    let (path, query) = decoded.split_once('?').ok_or_else(unsupported)?;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let app = match segments.as_slice() {
        [ac, ta, id, inst]
            if ac.eq_ignore_ascii_case("appCatalogs")
                && ta.eq_ignore_ascii_case("teamsApps")
                && inst.eq_ignore_ascii_case("installations")
                && !id.trim().is_empty() =>
        {
            id.trim().to_string()
        }
        _ => return Err(unsupported()),
    };
    let filter = query
        .split('&')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("$filter").then_some(v)
        })
        .ok_or_else(unsupported)?;
    let normal: String = filter
        .replace('+', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let normal = normal
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim()
        .to_ascii_lowercase();
    if normal != "scopeinfo/scope eq 'personal'" {
        return Err(unsupported());
    }
    Ok(app)
}

pub(crate) fn parse_expiration(text: &str) -> Result<Timestamp, GraphError> {
    text.trim().parse::<Timestamp>().map_err(|_| {
        GraphError::bad_request(format!(
            "Cannot convert '{text}' to a DateTimeOffset for 'expirationDateTime'."
        ))
    })
}

/// The lifetime rules: in the future, at most 4,320 minutes ahead, past an hour only with a
/// lifecycle URL; then `subscriptionLifetimeCapMinutes` shortens it.
pub(crate) fn checked_expiration(
    requested: Timestamp,
    has_lifecycle_url: bool,
    faults: &FaultConfig,
) -> Result<Timestamp, GraphError> {
    let now = Timestamp::now();
    let ahead = requested.duration_since(now);
    if ahead <= SignedDuration::ZERO {
        return Err(GraphError::bad_request(
            "Subscription expiration can only be in the future.",
        ));
    }
    if ahead > SignedDuration::from_mins(MAX_LIFETIME_MINUTES) {
        return Err(GraphError::bad_request(format!(
            "Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future."
        )));
    }
    if ahead > SignedDuration::from_mins(LIFECYCLE_URL_REQUIRED_AFTER_MINUTES) && !has_lifecycle_url
    {
        return Err(GraphError::bad_request(LIFECYCLE_URL_REQUIRED));
    }
    let cap = faults
        .subscription_lifetime_cap_minutes
        .and_then(|m| i64::try_from(m).ok())
        .and_then(|m| now.checked_add(SignedDuration::from_mins(m)).ok());
    Ok(match cap {
        Some(cap) if cap < requested => cap,
        _ => requested,
    })
}

/// `includeResourceData` needs a certificate (base64 DER X.509 with an RSA key) and its id.
pub(crate) fn check_certificate(
    certificate: Option<&str>,
    id: Option<&str>,
) -> Result<(), GraphError> {
    let (Some(certificate), Some(_)) = (certificate, id) else {
        return Err(GraphError::bad_request(
            "A subscription with includeResourceData needs encryptionCertificate and \
             encryptionCertificateId.",
        ));
    };
    super::rich::certificate_key(certificate)
        .map(|_| ())
        .map_err(|e| GraphError::bad_request(format!("Invalid encryptionCertificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_as_graph_writes_it() {
        let app = "e6f1c0b2-1111-2222-3333-444455556666";
        for resource in [
            format!(
                "/appCatalogs/teamsApps/{app}/installations?$filter=(scopeInfo/scope eq 'personal')"
            ),
            format!(
                "appCatalogs/teamsApps/{app}/installations?$filter=scopeInfo/scope eq 'personal'"
            ),
            format!(
                "/appCatalogs/teamsApps/{app}/installations?%24filter=(scopeInfo%2Fscope%20eq%20%27personal%27)"
            ),
            format!(
                "/appcatalogs/TEAMSAPPS/{app}/installations?$filter=( scopeInfo/scope  eq 'personal' )"
            ),
        ] {
            assert_eq!(app_of_resource(&resource).unwrap(), app, "{resource}");
        }
        for resource in [
            format!("/appCatalogs/teamsApps/{app}/installations"),
            format!(
                "/appCatalogs/teamsApps/{app}/installations?$filter=(scopeInfo/scope eq 'team')"
            ),
            "/users/x/teamwork/installedApps?$filter=(scopeInfo/scope eq 'personal')".to_string(),
            "/me/messages".to_string(),
        ] {
            assert_eq!(
                app_of_resource(&resource).unwrap_err().status,
                400,
                "{resource}"
            );
        }
    }

    #[test]
    fn change_types() {
        assert_eq!(
            parse_change_types("created, deleted,created").unwrap(),
            vec![ChangeType::Created, ChangeType::Deleted]
        );
        assert!(parse_change_types("created,moved").is_err());
    }

    #[test]
    fn lifetimes() {
        let none = FaultConfig::default();
        let in_mins = |m: i64| Timestamp::now() + SignedDuration::from_mins(m);
        assert!(checked_expiration(in_mins(30), false, &none).is_ok());
        assert_eq!(
            checked_expiration(in_mins(120), false, &none)
                .unwrap_err()
                .message,
            LIFECYCLE_URL_REQUIRED
        );
        assert!(checked_expiration(in_mins(4300), true, &none).is_ok());
        assert!(checked_expiration(in_mins(4400), true, &none).is_err());
        assert!(checked_expiration(in_mins(-1), true, &none).is_err());
        let capped = FaultConfig {
            subscription_lifetime_cap_minutes: Some(5),
            ..FaultConfig::default()
        };
        let got = checked_expiration(in_mins(50), false, &capped).unwrap();
        assert!(got <= in_mins(5));
    }
}
