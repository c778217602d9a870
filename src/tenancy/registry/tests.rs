//! The registry's decisions, from caches filled by hand: no API server and no Graph is
//! reached (the clients are built, never used).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Client, Config};

use super::*;
use crate::api::{
    AllowedNamespaces, ClusterGraphConnectionSpec, ConnectionCredential, GraphConnectionSpec,
    GraphConnectionStatus, SecretKeyRef,
};

const TENANT_A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const TENANT_B: &str = "bbbbbbbb-0000-0000-0000-000000000002";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";

fn kube() -> Client {
    Client::try_from(Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap()
}

fn settings(tenant: &str) -> ConnectionSettings {
    ConnectionSettings {
        tenant_id: tenant.into(),
        client_id: CLIENT.into(),
        cloud: ConnectionCloud::Public,
        credential: ConnectionCredential {
            secret_ref: Some(SecretKeyRef {
                name: "graph".into(),
                key: "secret".into(),
            }),
            certificate_secret_ref: None,
            workload_identity: None,
        },
        budgets: None,
        graph_url: Some("http://127.0.0.1:9".into()),
        login_url: Some("http://127.0.0.1:9".into()),
        allowed_apps: None,
        allowed_groups: None,
    }
}

fn ready(yes: bool) -> Option<GraphConnectionStatus> {
    Some(GraphConnectionStatus {
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: if yes { "True" } else { "False" }.into(),
            reason: if yes {
                "Connected"
            } else {
                "AuthenticationFailed"
            }
            .into(),
            message: if yes { "signed in" } else { "AADSTS7000215" }.into(),
            observed_generation: None,
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }],
        ..GraphConnectionStatus::default()
    })
}

fn meta(name: &str, namespace: Option<&str>, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..ObjectMeta::default()
    }
}

struct World {
    connections: Writer<GraphConnection>,
    cluster: Writer<ClusterGraphConnection>,
    namespaces: Writer<Namespace>,
    registry: Connections,
}

impl World {
    fn new(default: Option<Vec<String>>) -> Self {
        let (gc_reader, connections) = reflector::store();
        let (cgc_reader, cluster) = reflector::store();
        let (ns_reader, namespaces) = reflector::store();
        let template = GraphSettings::new(
            "",
            "",
            CredentialSource::ClientSecret(crate::graph::Secret::new(String::new())),
        );
        let default = default.map(|namespaces| {
            let mut own = template.clone();
            own.tenant_id = TENANT_A.into();
            own.client_id = CLIENT.into();
            own.credential = CredentialSource::ClientSecret(crate::graph::Secret::new("s"));
            own.graph_url = Some("http://127.0.0.1:9".parse().unwrap());
            own.login_url = own.graph_url.clone();
            DefaultConnection {
                client: GraphClient::new(own).unwrap(),
                namespaces,
            }
        });
        let registry = Connections::new(
            kube(),
            "operator".into(),
            template,
            default,
            Caches {
                connections: gc_reader,
                cluster_connections: cgc_reader,
                namespaces: ns_reader,
            },
            Arc::new(|_: &str| -> Arc<dyn crate::graph::GraphMetrics> {
                Arc::new(crate::graph::NoopMetrics)
            }),
        );
        Self {
            connections,
            cluster,
            namespaces,
            registry,
        }
    }

    fn connection(&mut self, ns: &str, name: &str, settings: ConnectionSettings, is_ready: bool) {
        let obj = GraphConnection {
            metadata: meta(name, Some(ns), &[]),
            spec: GraphConnectionSpec {
                connection: settings,
            },
            status: ready(is_ready),
        };
        self.connections
            .apply_watcher_event(&watcher::Event::Apply(obj));
    }

    fn cluster_connection(&mut self, name: &str, allowed: Option<AllowedNamespaces>) {
        let obj = ClusterGraphConnection {
            metadata: meta(name, None, &[]),
            spec: ClusterGraphConnectionSpec {
                connection: settings(TENANT_B),
                allowed_namespaces: allowed,
            },
            status: ready(true),
        };
        self.cluster
            .apply_watcher_event(&watcher::Event::Apply(obj));
    }

    fn namespace(&mut self, name: &str, labels: &[(&str, &str)]) {
        let obj = Namespace {
            metadata: meta(name, None, labels),
            ..Namespace::default()
        };
        self.namespaces
            .apply_watcher_event(&watcher::Event::Apply(obj));
    }

    fn resolve(&self, ns: &str, reference: Option<ConnectionRef>) -> Result<Resolved, Refused> {
        let app = AppReference {
            id: Some("app-1".into()),
            external_id: None,
        };
        self.registry.resolve(&Asking {
            namespace: ns,
            connection_ref: reference.as_ref(),
            app: &app,
            groups: &[],
        })
    }
}

fn gc(name: &str, namespace: Option<&str>) -> Option<ConnectionRef> {
    Some(ConnectionRef {
        kind: ConnectionKind::GraphConnection,
        name: name.into(),
        namespace: namespace.map(str::to_string),
    })
}

fn cgc(name: &str) -> Option<ConnectionRef> {
    Some(ConnectionRef {
        kind: ConnectionKind::ClusterGraphConnection,
        name: name.into(),
        namespace: None,
    })
}

fn refusal(result: Result<Resolved, Refused>) -> Refused {
    result.expect_err("refused")
}

#[tokio::test]
async fn a_resource_gets_its_own_namespaces_connection_and_tenant() {
    let mut world = World::new(None);
    world.connection("team-a", "graph", settings(TENANT_A), true);
    world.connection("team-b", "graph", settings(TENANT_B), true);
    let a = world.resolve("team-a", gc("graph", None)).expect("allowed");
    let b = world.resolve("team-b", gc("graph", None)).expect("allowed");
    assert_eq!(a.client.tenant_id(), TENANT_A);
    assert_eq!(b.client.tenant_id(), TENANT_B);
    assert_eq!(a.connection, "GraphConnection team-a/graph");
}

#[tokio::test]
async fn naming_another_namespaces_connection_is_not_allowed() {
    let mut world = World::new(None);
    world.connection("team-a", "graph", settings(TENANT_A), true);
    match refusal(world.resolve("team-b", gc("graph", Some("team-a")))) {
        Refused::NotAllowed(message) => {
            assert!(
                message.contains("serves only its own namespace"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Not even whether it exists is told.
    match refusal(world.resolve("team-b", gc("nothing-here", Some("team-a")))) {
        Refused::NotAllowed(_) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_and_unready_connections() {
    let mut world = World::new(None);
    assert!(matches!(
        refusal(world.resolve("team-a", gc("graph", None))),
        Refused::NotFound(_)
    ));
    world.connection("team-a", "graph", settings(TENANT_A), false);
    match refusal(world.resolve("team-a", gc("graph", None))) {
        Refused::NotReady(message) => {
            assert!(message.contains("AuthenticationFailed"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_operators_own_connection_can_be_off_or_limited() {
    let off = World::new(None);
    match refusal(off.resolve("team-a", None)) {
        Refused::NotFound(message) => assert!(message.contains("--default-connection=none")),
        other => panic!("{other:?}"),
    }
    let limited = World::new(Some(vec!["platform".into()]));
    assert!(limited.resolve("platform", None).is_ok());
    assert!(matches!(
        refusal(limited.resolve("team-a", None)),
        Refused::NotAllowed(_)
    ));
    let everyone = World::new(Some(vec![]));
    assert_eq!(
        everyone.resolve("team-a", None).unwrap().connection,
        "default"
    );
}

#[tokio::test]
async fn a_cluster_connection_follows_namespace_labels() {
    let mut world = World::new(None);
    world.cluster_connection(
        "shared",
        Some(AllowedNamespaces {
            names: vec![],
            selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("teams".into(), "on".into())])),
                match_expressions: None,
            }),
        }),
    );
    world.namespace("team-a", &[]);
    assert!(matches!(
        refusal(world.resolve("team-a", cgc("shared"))),
        Refused::NotAllowed(_)
    ));
    world.namespace("team-a", &[("teams", "on")]);
    let resolved = world
        .resolve("team-a", cgc("shared"))
        .expect("label matches");
    assert_eq!(resolved.client.tenant_id(), TENANT_B);
    world.cluster_connection("closed", None);
    assert!(matches!(
        refusal(world.resolve("team-a", cgc("closed"))),
        Refused::NotAllowed(_)
    ));
}

#[tokio::test]
async fn one_budget_per_tenant_and_client_and_a_new_client_for_a_new_spec() {
    let mut world = World::new(Some(vec![]));
    world.connection("team-a", "graph", settings(TENANT_A), true);
    world.connection("team-b", "graph", settings(TENANT_B), true);
    let a = world.resolve("team-a", gc("graph", None)).unwrap().client;
    let own = world.resolve("team-a", None).unwrap().client;
    let b = world.resolve("team-b", gc("graph", None)).unwrap().client;
    // The operator's own connection is tenant A with the same client id: one budget.
    assert!(Arc::ptr_eq(a.budget(), own.budget()));
    assert!(!Arc::ptr_eq(a.budget(), b.budget()));

    let again = world.resolve("team-a", gc("graph", None)).unwrap().client;
    assert!(Arc::ptr_eq(a.budget(), again.budget()));
    let mut changed = settings(TENANT_A);
    changed.graph_url = Some("http://127.0.0.2:9".into());
    world.connection("team-a", "graph", changed, true);
    let rebuilt = world.resolve("team-a", gc("graph", None)).unwrap().client;
    let base = rebuilt.endpoints().api_base();
    assert!(base.starts_with("http://127.0.0.2:9"), "{base}");
    assert!(
        Arc::ptr_eq(a.budget(), rebuilt.budget()),
        "the budget outlives a spec change"
    );
}

#[test]
fn a_described_connection_reads_back_and_the_default_is_none() {
    for key in [
        ConnectionKey {
            kind: ConnectionKind::GraphConnection,
            namespace: Some("team-a".into()),
            name: "graph".into(),
        },
        ConnectionKey {
            kind: ConnectionKind::ClusterGraphConnection,
            namespace: None,
            name: "shared".into(),
        },
    ] {
        assert_eq!(ConnectionKey::described(&key.describe()), Some(key));
    }
    assert_eq!(ConnectionKey::described("default"), None);
    assert_eq!(ConnectionKey::described("GraphConnection no-slash"), None);
}
