//! The live subscriptions, kept in a Secret in the operator's namespace, so that replicas and
//! restarts agree.
//!
//! - A new leader (a restart, or a standby taking over) goes on with the subscriptions Graph
//!   still holds instead of making new ones: those would live out up to three days beside
//!   the new ones, their notifications refused for want of a secret.
//! - A standby checks a notification's `clientState` as the leader would, and learns where the
//!   leader's receiver is (the `leader` key) to forward it there.
//!
//! It is a Secret because each subscription's `clientState` is the proof that Graph sent a
//! notification. Only the leader writes it, with server-side apply; everyone reads it. One
//! subscription takes about 300 bytes, so a Secret's 1 MiB holds some 3,000 (connection, app)
//! pairs.

use std::collections::BTreeMap;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use super::Kept;
use crate::notification::ClientState;

const SUBSCRIPTIONS_KEY: &str = "subscriptions.json";
const LEADER_KEY: &str = "leader";
const FIELD_MANAGER: &str = "teams-app-operator-notifications";

/// What the Secret holds: the leader's receiver and its live subscriptions, keyed by the
/// connection as resources name it (`default`, `GraphConnection ns/name`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The base URL at which other replicas reach the leader's receiver.
    pub leader: Option<url::Url>,
    pub subscriptions: Vec<Kept<String>>,
}

/// One subscription as written in the Secret.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    connection: String,
    teams_app_id: String,
    tenant_id: String,
    id: String,
    client_state: String,
    granted: Timestamp,
    expiration: Timestamp,
}

/// The Secret, by namespace and name.
#[derive(Clone)]
pub struct SecretStore {
    api: Api<Secret>,
    name: String,
}

/// Reading or writing the Secret failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the Secret {0} could not be read or written: {1}")]
    Api(String, #[source] kube::Error),
    #[error("the Secret {0} does not hold a readable subscription list: {1}")]
    Unreadable(String, #[source] serde_json::Error),
}

impl SecretStore {
    pub fn new(client: Client, namespace: &str, name: impl Into<String>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the Secret holds; nothing when it does not exist yet.
    pub async fn load(&self) -> Result<Published, StoreError> {
        let secret = (self.api.get_opt(&self.name).await)
            .map_err(|e| StoreError::Api(self.name.clone(), e))?;
        match secret {
            Some(secret) => read(&secret).map_err(|e| StoreError::Unreadable(self.name.clone(), e)),
            None => Ok(Published::default()),
        }
    }

    /// Replaces what the Secret holds (creating it when missing).
    pub async fn save(&self, published: &Published) -> Result<(), StoreError> {
        let records: Vec<Record> = (published.subscriptions.iter())
            .map(|k| Record {
                connection: k.key.clone(),
                teams_app_id: k.teams_app_id.clone(),
                tenant_id: k.tenant_id.clone(),
                id: k.id.clone(),
                client_state: k.client_state.expose().to_string(),
                granted: k.granted,
                expiration: k.expiration,
            })
            .collect();
        let list = serde_json::to_vec(&records).unwrap_or_default();
        let mut data = BTreeMap::from([(SUBSCRIPTIONS_KEY.to_string(), ByteString(list))]);
        if let Some(leader) = &published.leader {
            let url = leader.as_str().as_bytes().to_vec();
            data.insert(LEADER_KEY.to_string(), ByteString(url));
        }
        let secret = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "labels": {"app.kubernetes.io/managed-by": "teams-app-operator"},
            },
            "type": "Opaque",
            "data": data,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        (self
            .api
            .patch(&self.name, &params, &Patch::Apply(&secret))
            .await)
            .map_err(|e| StoreError::Api(self.name.clone(), e))?;
        Ok(())
    }

    /// What the Secret holds, every time it changes (a watch; errors are retried with backoff
    /// and logged, an unreadable version skipped).
    pub fn changes(&self) -> impl Stream<Item = Published> + Send + 'static {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let name = self.name.clone();
        watcher(self.api.clone(), config)
            .default_backoff()
            .applied_objects()
            .filter_map(move |event| {
                let read = match event {
                    Ok(secret) => read(&secret).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(error) = &read {
                    tracing::warn!(secret = %name, %error, "reading the kept subscriptions failed");
                }
                futures::future::ready(read.ok())
            })
    }
}

fn read(secret: &Secret) -> Result<Published, serde_json::Error> {
    let data = secret.data.as_ref();
    let value = |key: &str| data.and_then(|d| d.get(key)).map(|b| b.0.as_slice());
    let records: Vec<Record> = match value(SUBSCRIPTIONS_KEY) {
        Some(bytes) => serde_json::from_slice(bytes)?,
        None => Vec::new(),
    };
    let leader = value(LEADER_KEY)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| url::Url::parse(s.trim()).ok());
    let subscriptions = records
        .into_iter()
        .map(|r| Kept {
            key: r.connection,
            teams_app_id: r.teams_app_id,
            tenant_id: r.tenant_id,
            id: r.id,
            client_state: ClientState::new(r.client_state),
            granted: r.granted,
            expiration: r.expiration,
        })
        .collect();
    Ok(Published {
        leader,
        subscriptions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let kept = Kept {
            key: "GraphConnection team-a/graph".to_string(),
            teams_app_id: "app-1".into(),
            tenant_id: "tenant".into(),
            id: "sub-1".into(),
            client_state: ClientState::new("s3cret"),
            granted: "2026-12-06T10:00:00Z".parse().unwrap(),
            expiration: "2026-12-09T00:30:00Z".parse().unwrap(),
        };
        let record = Record {
            connection: kept.key.clone(),
            teams_app_id: kept.teams_app_id.clone(),
            tenant_id: kept.tenant_id.clone(),
            id: kept.id.clone(),
            client_state: "s3cret".into(),
            granted: kept.granted,
            expiration: kept.expiration,
        };
        let secret = Secret {
            data: Some(BTreeMap::from([
                (
                    SUBSCRIPTIONS_KEY.to_string(),
                    ByteString(serde_json::to_vec(&[record]).unwrap()),
                ),
                (
                    LEADER_KEY.to_string(),
                    ByteString(b"http://10.0.0.7:8443/".to_vec()),
                ),
            ])),
            ..Secret::default()
        };
        let published = read(&secret).unwrap();
        assert_eq!(published.subscriptions, vec![kept]);
        assert_eq!(published.leader.unwrap().as_str(), "http://10.0.0.7:8443/");
        assert_eq!(read(&Secret::default()).unwrap(), Published::default());
    }
}
