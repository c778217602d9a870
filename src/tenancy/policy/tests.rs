use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::*;
use crate::api::{ConnectionCloud, ConnectionCredential, SecretKeyRef};

fn settings(apps: Option<&[&str]>, groups: Option<&[&str]>) -> ConnectionSettings {
    let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    ConnectionSettings {
        tenant_id: "contoso.onmicrosoft.com".into(),
        client_id: "11111111-2222-3333-4444-555555555555".into(),
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
        graph_url: None,
        login_url: None,
        allowed_apps: apps.map(owned),
        allowed_groups: groups.map(owned),
    }
}

fn by_id(id: &str) -> AppReference {
    AppReference {
        id: Some(id.into()),
        external_id: None,
    }
}

fn by_external_id(id: &str) -> AppReference {
    AppReference {
        id: None,
        external_id: Some(id.into()),
    }
}

struct Ask {
    namespace: &'static str,
    labels: BTreeMap<String, String>,
    app: AppReference,
    groups: Vec<String>,
}

impl Ask {
    fn new(namespace: &'static str) -> Self {
        Self {
            namespace,
            labels: BTreeMap::new(),
            app: by_id("app-1"),
            groups: Vec::new(),
        }
    }

    fn request(&self) -> Request<'_> {
        Request {
            namespace: self.namespace,
            namespace_labels: &self.labels,
            app: &self.app,
            groups: &self.groups,
        }
    }
}

fn refusal(result: Result<(), Refusal>) -> Refusal {
    result.expect_err("refused")
}

#[test]
fn a_namespaced_connection_serves_its_own_namespace_only() {
    let own = Ask::new("team-a");
    assert_eq!(
        admit("gc", Reach::Namespace("team-a"), None, &own.request()),
        Ok(())
    );
    let other = Ask::new("team-b");
    let refused = refusal(admit(
        "GraphConnection a",
        Reach::Namespace("team-a"),
        None,
        &other.request(),
    ));
    assert_eq!(refused.rule, Rule::Namespace);
    assert!(
        refused
            .message
            .contains("serves only its own namespace (team-a)"),
        "{}",
        refused.message
    );
}

#[test]
fn a_cluster_connection_serves_no_namespace_unless_it_names_it() {
    let ask = Ask::new("team-a");
    let refused = refusal(admit("cgc", Reach::Cluster(None), None, &ask.request()));
    assert!(
        refused.message.contains("allowedNamespaces is empty"),
        "{}",
        refused.message
    );

    let empty = AllowedNamespaces {
        names: vec![],
        selector: None,
    };
    assert_eq!(
        refusal(admit(
            "cgc",
            Reach::Cluster(Some(&empty)),
            None,
            &ask.request()
        ))
        .rule,
        Rule::Namespace
    );

    let named = AllowedNamespaces {
        names: vec!["team-a".into()],
        selector: None,
    };
    assert_eq!(
        admit("cgc", Reach::Cluster(Some(&named)), None, &ask.request()),
        Ok(())
    );
}

#[test]
fn a_cluster_connection_follows_the_namespace_labels() {
    let allowed = AllowedNamespaces {
        names: vec![],
        selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "teams".to_string(),
                "enabled".to_string(),
            )])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["sandbox".into()]),
            }]),
        }),
    };
    let mut ask = Ask::new("team-a");
    assert_eq!(
        refusal(admit(
            "cgc",
            Reach::Cluster(Some(&allowed)),
            None,
            &ask.request()
        ))
        .rule,
        Rule::Namespace
    );
    ask.labels.insert("teams".into(), "enabled".into());
    assert_eq!(
        admit("cgc", Reach::Cluster(Some(&allowed)), None, &ask.request()),
        Ok(())
    );
    ask.labels.insert("tier".into(), "sandbox".into());
    let refused = refusal(admit(
        "cgc",
        Reach::Cluster(Some(&allowed)),
        None,
        &ask.request(),
    ));
    assert!(
        refused
            .message
            .contains("do not match allowedNamespaces.selector"),
        "{}",
        refused.message
    );
}

#[test]
fn an_invalid_selector_refuses_rather_than_allows() {
    let allowed = AllowedNamespaces {
        names: vec![],
        selector: Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "teams".into(),
                operator: "Sometimes".into(),
                values: None,
            }]),
        }),
    };
    let ask = Ask::new("team-a");
    let refused = refusal(admit(
        "cgc",
        Reach::Cluster(Some(&allowed)),
        None,
        &ask.request(),
    ));
    assert!(refused.message.contains("not valid"), "{}", refused.message);
}

#[test]
fn the_default_connection_serves_every_namespace_unless_limited() {
    let ask = Ask::new("team-a");
    assert_eq!(
        admit("default", Reach::Default(&[]), None, &ask.request()),
        Ok(())
    );
    let limited = ["platform".to_string()];
    let refused = refusal(admit(
        "the operator's connection",
        Reach::Default(&limited),
        None,
        &ask.request(),
    ));
    assert!(
        refused.message.contains("--default-connection-namespaces"),
        "{}",
        refused.message
    );
    let ask = Ask::new("platform");
    assert_eq!(
        admit("default", Reach::Default(&limited), None, &ask.request()),
        Ok(())
    );
}

#[test]
fn allowed_apps_compare_the_id_as_the_resource_names_it() {
    let conn = settings(Some(&["APP-1", "com.contoso.tasks"]), None);
    let mut ask = Ask::new("team-a");
    assert_eq!(
        admit(
            "gc",
            Reach::Namespace("team-a"),
            Some(&conn),
            &ask.request()
        ),
        Ok(())
    );
    ask.app = by_external_id("com.contoso.tasks");
    assert_eq!(
        admit(
            "gc",
            Reach::Namespace("team-a"),
            Some(&conn),
            &ask.request()
        ),
        Ok(())
    );
    ask.app = by_id("app-2");
    let refused = refusal(admit(
        "GraphConnection a",
        Reach::Namespace("team-a"),
        Some(&conn),
        &ask.request(),
    ));
    assert_eq!(refused.rule, Rule::App);
    assert!(
        refused.message.contains("does not allow app id app-2"),
        "{}",
        refused.message
    );
}

#[test]
fn allowed_groups_must_hold_every_group_a_rollout_names() {
    let conn = settings(None, Some(&["g-1", "g-2"]));
    let mut ask = Ask::new("team-a");
    ask.groups = vec!["g-1".into()];
    assert_eq!(
        admit(
            "gc",
            Reach::Namespace("team-a"),
            Some(&conn),
            &ask.request()
        ),
        Ok(())
    );
    ask.groups = vec!["g-2".into(), "g-3".into()];
    let refused = refusal(admit(
        "gc",
        Reach::Namespace("team-a"),
        Some(&conn),
        &ask.request(),
    ));
    assert_eq!(refused.rule, Rule::Group);
    assert!(
        refused.message.contains("group(s) g-3"),
        "{}",
        refused.message
    );
}

#[test]
fn the_namespace_rule_comes_first() {
    let conn = settings(Some(&["other"]), None);
    let ask = Ask::new("team-b");
    assert_eq!(
        refusal(admit(
            "gc",
            Reach::Namespace("team-a"),
            Some(&conn),
            &ask.request()
        ))
        .rule,
        Rule::Namespace
    );
}

#[test]
fn long_lists_are_cut_in_messages() {
    let many: Vec<String> = (0..8).map(|i| format!("ns-{i}")).collect();
    assert_eq!(list(&many), "ns-0, ns-1, ns-2, ns-3, ns-4 and 3 more");
    assert_eq!(list(&[]), "nothing");
}
