//! Who may use a connection for what: checked before any Graph call, so a refusal costs nothing.
//!
//! The rules, in the order they are checked (the first that refuses names itself):
//! 1. **Namespace.** A `GraphConnection` serves its own namespace only. A
//!    `ClusterGraphConnection` serves the namespaces `allowedNamespaces` names or selects by
//!    label, and none when it has neither (opt-in). The operator's flag-configured connection
//!    serves the namespaces `--default-connection-namespaces` lists, or every namespace when
//!    that is empty (as before connections existed).
//! 2. **App.** With `allowedApps`, the resource must name its app by one of the listed ids, as
//!    it names it (catalog id or manifest id): the check runs before the catalog is read, so a
//!    resource naming the manifest id of an app listed by catalog id is refused, not guessed.
//! 3. **Groups.** With `allowedGroups`, every group a rollout's audience or exclusions name
//!    must be listed.

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};

use crate::api::{AllowedNamespaces, AppReference, ConnectionSettings};

/// Which namespaces a connection serves, by the kind of connection.
#[derive(Debug, Clone, Copy)]
pub enum Reach<'a> {
    /// A `GraphConnection`: its own namespace.
    Namespace(&'a str),
    /// A `ClusterGraphConnection`: what it allows (`None`: nothing).
    Cluster(Option<&'a AllowedNamespaces>),
    /// The flag-configured connection: the listed namespaces, or every one when empty.
    Default(&'a [String]),
}

/// What a resource asks of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub namespace: &'a str,
    /// The labels of the resource's namespace (for a `ClusterGraphConnection`'s selector).
    pub namespace_labels: &'a BTreeMap<String, String>,
    pub app: &'a AppReference,
    /// The groups a rollout names (audience and exclusions); empty for an installation.
    pub groups: &'a [String],
}

/// Which rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Namespace,
    App,
    Group,
}

/// A refusal, with a message for the resource's condition that names the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
}

/// Whether a connection (`reach`, and its `settings` for the app and group lists; none for
/// the flag-configured one) serves `request`.
pub fn admit(
    connection: &str,
    reach: Reach<'_>,
    settings: Option<&ConnectionSettings>,
    request: &Request<'_>,
) -> Result<(), Refusal> {
    admit_namespace(connection, reach, request)?;
    let Some(settings) = settings else {
        return Ok(());
    };
    if let Some(apps) = &settings.allowed_apps {
        let named = [&request.app.id, &request.app.external_id];
        let listed = named
            .iter()
            .filter_map(|id| id.as_deref())
            .any(|id| apps.iter().any(|allowed| allowed.eq_ignore_ascii_case(id)));
        if !listed {
            return Err(Refusal {
                rule: Rule::App,
                message: format!(
                    "{connection} does not allow app {}: its allowedApps lists {} (ids are compared as the resource names them, catalog id or externalId)",
                    request.app.describe(),
                    list(apps)
                ),
            });
        }
    }
    if let Some(groups) = &settings.allowed_groups {
        let outside: Vec<&String> = request
            .groups
            .iter()
            .filter(|g| !groups.iter().any(|allowed| allowed.eq_ignore_ascii_case(g)))
            .collect();
        if !outside.is_empty() {
            let outside: Vec<String> = outside.into_iter().cloned().collect();
            return Err(Refusal {
                rule: Rule::Group,
                message: format!(
                    "{connection} does not allow group(s) {}: its allowedGroups lists {}",
                    list(&outside),
                    list(groups)
                ),
            });
        }
    }
    Ok(())
}

fn admit_namespace(
    connection: &str,
    reach: Reach<'_>,
    request: &Request<'_>,
) -> Result<(), Refusal> {
    let ns = request.namespace;
    let refused = |why: String| {
        Err(Refusal {
            rule: Rule::Namespace,
            message: format!("{connection} does not serve namespace {ns}: {why}"),
        })
    };
    match reach {
        Reach::Namespace(own) if own == ns => Ok(()),
        Reach::Namespace(own) => refused(format!(
            "a GraphConnection serves only its own namespace ({own}); use a ClusterGraphConnection that allows {ns}, or a GraphConnection in {ns}"
        )),
        Reach::Default(names) if names.is_empty() || names.iter().any(|n| n == ns) => Ok(()),
        Reach::Default(names) => refused(format!(
            "the operator's own connection serves only {} (--default-connection-namespaces); name a connection with spec.connectionRef",
            list(names)
        )),
        Reach::Cluster(None) => refused(
            "its allowedNamespaces is empty, and a ClusterGraphConnection serves no namespace unless it names it".into(),
        ),
        Reach::Cluster(Some(allowed)) => {
            if allowed.names.iter().any(|n| n == ns) {
                return Ok(());
            }
            match &allowed.selector {
                Some(selector) => match Selector::try_from(selector.clone()) {
                    Ok(selector) if selector.matches(request.namespace_labels) => Ok(()),
                    Ok(_) => refused(format!(
                        "the namespace is not in allowedNamespaces.names and its labels do not match allowedNamespaces.selector{}",
                        names_suffix(&allowed.names)
                    )),
                    Err(e) => refused(format!("allowedNamespaces.selector is not valid: {e}")),
                },
                None => refused(format!(
                    "the namespace is not in allowedNamespaces.names{}",
                    names_suffix(&allowed.names)
                )),
            }
        }
    }
}

fn names_suffix(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" ({})", list(names))
    }
}

/// A short list for a message: the first few, then how many more.
fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    if text.is_empty() {
        text.push_str("nothing");
    }
    text
}

#[cfg(test)]
mod tests;
