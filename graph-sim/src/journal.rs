//! The request log behind `GET /_sim/requests`: every Graph and token request answered, in order,
//! so tests can assert which calls a client made (not just what it ended up with).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Oldest entries are dropped past this, so a long benchmark cannot exhaust memory.
const CAPACITY: usize = 200_000;

/// A logged body longer than this (as JSON) is replaced by a note of its size, so that the log
/// stays bounded by `CAPACITY` entries of modest size whatever clients send.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The body a POST or PATCH sent, as the log keeps it (see [`RequestRecord::body`]).
pub(crate) fn logged_body(method: &str, body: Option<&Value>) -> Option<Value> {
    if method != "POST" && method != "PATCH" {
        return None;
    }
    let body = body?;
    let size = body.to_string().len();
    Some(if size > MAX_BODY_BYTES {
        json!({"@sim.truncated": size})
    } else {
        body.clone()
    })
}

/// One answered request. `$batch` items appear individually (`batch: true`, path normalised to
/// `/v1.0/…` or `/beta/…`), followed by the envelope itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    /// The path as Graph reads it: percent-decoded as a whole (before splitting, so `%2F` shows
    /// as `/`), otherwise as sent, e.g. `/v1.0/users/alice@contoso.com/teamwork/installedApps`
    /// or `/v1.0/users('$adm@contoso.com')/teamwork/installedApps`.
    pub path: String,
    /// The user a `/users/…` call addressed, decoded and unquoted whichever form the client
    /// used (`/users/{key}` or `/users('{key}')`): assert on this, not on `path`, to check which
    /// user a client named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The throttling class the call counts against, as `budgets` names it
    /// (`installedAppsRead`, `catalogRead`, `install`, `delete`, `other`, `directoryRead`);
    /// `None` for token requests, `$batch` envelopes (their items count) and calls with no Graph
    /// version prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The JSON body of a POST or PATCH (a `$batch` item's own `body`), so a test can check
    /// exactly what a client sent (e.g. its `consentedPermissionSet`); absent without one, and
    /// on `$batch` envelopes (their items carry theirs). A body over 16 KiB is logged as
    /// `{"@sim.truncated": <bytes>}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    pub status: u16,
    /// The tenant of the caller's token (or of the token URL); `None` when unauthenticated.
    pub tenant: Option<String>,
    /// The app (client) id of the caller, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// True for an item of a `$batch`.
    pub batch: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_item_id: Option<String>,
    pub time: jiff::Timestamp,
    pub request_id: String,
    pub client_request_id: String,
}

#[derive(Debug, Default)]
pub(crate) struct Journal {
    records: VecDeque<RequestRecord>,
}

impl Journal {
    pub fn push(&mut self, record: RequestRecord) {
        if self.records.len() >= CAPACITY {
            self.records.pop_front();
        }
        tracing::debug!(
            method = %record.method,
            path = %record.path,
            status = record.status,
            tenant = record.tenant.as_deref().unwrap_or("-"),
            batch = record.batch,
            request_id = %record.request_id,
            "served"
        );
        self.records.push_back(record);
    }

    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.records.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.records.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_post_and_patch_bodies_are_logged_and_big_ones_are_cut() {
        let body = json!({"consentedPermissionSet": {"resourceSpecificPermissions": []}});
        assert_eq!(logged_body("POST", Some(&body)), Some(body.clone()));
        assert_eq!(logged_body("PATCH", Some(&body)), Some(body.clone()));
        assert_eq!(logged_body("GET", Some(&body)), None);
        assert_eq!(logged_body("DELETE", Some(&body)), None);
        assert_eq!(logged_body("POST", None), None);
        let big = json!({"x": "y".repeat(MAX_BODY_BYTES)});
        let logged = logged_body("POST", Some(&big)).unwrap();
        assert!(logged["@sim.truncated"].as_u64().unwrap() > MAX_BODY_BYTES as u64);
    }
}
