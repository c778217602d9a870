//! The `TeamsAppInstallation`s a rollout owns: their names, labels and spec, reading them from
//! the shared cache, and writing them.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};

use crate::api::{
    ABSENT_SINCE_ANNOTATION, DeletionPolicy, PlannedAction, RemovalPolicy, TeamsAppInstallation,
    TeamsAppRollout, UNINSTALL_FINALIZER,
};
use crate::kit::conditions::{self, Conditioned, READY};
use crate::kit::names::{MAX_NAME, digest, shorten};

use super::super::core::{Child, ChildState, ChildToApply};

/// The rollout an installation belongs to (its name, shortened to fit a label value).
pub const ROLLOUT_LABEL: &str = "teamsapps.dev/rollout";
/// The wave an installation was created in.
pub const WAVE_LABEL: &str = "teamsapps.dev/wave";
/// The rollout revision an installation was last written for.
pub const REVISION_ANNOTATION: &str = "teamsapps.dev/rollout-revision";
/// The installation reason for Ready only because nothing is written (`managementPolicy:
/// Observe`).
const OBSERVED: &str = "Observed";
/// The field manager of the rollout controller's writes to installations.
pub const ROLLOUT_MANAGER: &str = "teams-app-operator-rollout";

/// Writes in flight at once: the API server, not Graph, is the limit here.
const CONCURRENT_WRITES: usize = 8;

/// Installations the rollout owns (by ownerReference uid), from the installation controller's
/// cache: one copy of every object in memory, however many controllers read it.
pub fn owned(store: &Store<TeamsAppInstallation>, rollout: &TeamsAppRollout) -> Vec<Child> {
    let Some(uid) = rollout.metadata.uid.as_deref() else {
        return Vec::new();
    };
    let namespace = rollout.namespace();
    store
        .state()
        .iter()
        .filter(|obj| obj.namespace() == namespace)
        .filter(|obj| obj.owner_references().iter().any(|o| o.uid == uid))
        .map(|obj| view(obj))
        .collect()
}

fn view(obj: &TeamsAppInstallation) -> Child {
    let ready = conditions::find(obj.conditions(), READY);
    let state = if conditions::is_ready_for_generation(obj) {
        if ready.is_some_and(|c| c.reason == OBSERVED) {
            ChildState::Observed
        } else {
            ChildState::Ready
        }
    } else if conditions::is_stalled_for_generation(obj) {
        ChildState::Stalled {
            reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
            message: ready.map(|c| c.message.clone()).unwrap_or_default(),
        }
    } else {
        ChildState::Pending
    };
    Child {
        name: obj.name_any(),
        user_id: obj.spec.user.to_lowercase(),
        wave: obj.labels().get(WAVE_LABEL).cloned(),
        revision: obj.annotations().get(REVISION_ANNOTATION).cloned(),
        state,
        deleting: obj.metadata.deletion_timestamp.is_some(),
        // An unreadable mark counts as none: the user's absence is timed afresh.
        absent_since: (obj.annotations().get(ABSENT_SINCE_ANNOTATION))
            .and_then(|t| t.parse().ok())
            .map(Time),
        // Children written before the field existed were managed.
        policy: obj.spec.management_policy.unwrap_or_default(),
        plan: current_plan(obj),
    }
}

/// The installation's `status.plan`, when it is for its current generation (an older one
/// says what a spec that is gone would have done).
fn current_plan(obj: &TeamsAppInstallation) -> Option<(PlannedAction, Option<String>)> {
    let plan = obj.status.as_ref()?.plan.as_ref()?;
    (plan.generation.is_some() && plan.generation == obj.metadata.generation)
        .then(|| (plan.action, plan.blocked_reason.clone()))
}

/// `{rollout}-{user object id}`: stable across audience reads, distinct per user, and within
/// the 253 characters of an object name (a long rollout name is shortened with a digest).
pub fn child_name(rollout: &str, user_id: &str) -> String {
    let user = if user_id.len() <= 63
        && user_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        user_id.to_string()
    } else {
        digest(user_id, 16)
    };
    let room = MAX_NAME - user.len() - 1;
    format!("{}-{user}", shorten(rollout, room))
}

/// The rollout label's value: the name when it fits a label (63 characters, no dots needed
/// beyond what names allow), else a shortened name with a digest.
pub fn rollout_label(rollout: &str) -> String {
    shorten(rollout, 63).replace('.', "-")
}

/// The installation the rollout wants for one user.
fn desired(rollout: &TeamsAppRollout, child: &ChildToApply, revision: &str) -> serde_json::Value {
    let spec = &rollout.spec;
    let owner = rollout
        .controller_owner_ref(&())
        .map(|mut o| {
            o.block_owner_deletion = Some(true);
            o
        })
        .expect("a rollout read from the API server has a name and uid");
    let mut installation = serde_json::json!({
        "apiVersion": TeamsAppInstallation::api_version(&()),
        "kind": TeamsAppInstallation::kind(&()),
        "metadata": {
            "name": child_name(&rollout.name_any(), &child.user_id),
            "namespace": rollout.namespace(),
            "labels": {
                ROLLOUT_LABEL: rollout_label(&rollout.name_any()),
                WAVE_LABEL: child.wave,
            },
            "annotations": { REVISION_ANNOTATION: revision },
            "ownerReferences": [owner],
        },
        "spec": {
            "user": child.user_id,
            "app": spec.app,
            "installPolicy": spec.install_policy,
            "deletionPolicy": spec.template.deletion_policy,
            "suspend": spec.template.suspend,
            "ensure": spec.ensure,
            "managementPolicy": child.policy,
        },
    });
    let fields = &mut installation["spec"];
    if let Some(version) = &spec.target_version {
        fields["targetVersion"] = version.clone().into();
    }
    if let Some(consent) = &spec.consent {
        fields["consent"] = serde_json::json!(consent);
    }
    if let Some(interval) = &spec.template.interval {
        fields["interval"] = interval.clone().into();
    }
    // The installations work through the rollout's connection (immutable on both).
    if let Some(reference) = &spec.connection_ref {
        fields["connectionRef"] = serde_json::json!(reference);
    }
    installation
}

/// Creates or updates the installations, a few at a time. Server-side apply makes each write
/// idempotent: a retried pass never duplicates an installation.
pub async fn apply(
    api: &Api<TeamsAppInstallation>,
    rollout: &TeamsAppRollout,
    children: &[ChildToApply],
    revision: &str,
) -> Result<(), kube::Error> {
    let writes: Vec<(String, serde_json::Value)> = children
        .iter()
        .map(|child| {
            let name = child_name(&rollout.name_any(), &child.user_id);
            (name, desired(rollout, child, revision))
        })
        .collect();
    futures::stream::iter(writes)
        .map(|(name, body)| {
            let api = api.clone();
            async move {
                let params = PatchParams::apply(ROLLOUT_MANAGER).force();
                api.patch(&name, &params, &Patch::Apply(&body)).await
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// Deletes installations whose users left the audience. Their `deletionPolicy` is set first to
/// what `removalPolicy` says, so the installation controller uninstalls (or not) accordingly.
pub async fn remove(
    api: &Api<TeamsAppInstallation>,
    names: &[String],
    policy: RemovalPolicy,
) -> Result<(), kube::Error> {
    let deletion = match policy {
        RemovalPolicy::Orphan => DeletionPolicy::Orphan,
        RemovalPolicy::Uninstall => DeletionPolicy::Uninstall,
    };
    futures::stream::iter(names.to_vec())
        .map(|name| {
            let api = api.clone();
            async move {
                set_deletion_policy(&api, &name, deletion).await?;
                delete(&api, &name).await
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// Marks installations absent since `since` (`Some`), or clears the mark (`None`). A merge
/// patch of one annotation: it wakes no reconcile of the installation (annotations are not
/// among its triggers).
pub async fn mark_absent(
    api: &Api<TeamsAppInstallation>,
    names: &[String],
    since: Option<&Time>,
) -> Result<(), kube::Error> {
    let value = since.map(|t| t.0.to_string());
    let patch = serde_json::json!({"metadata": {"annotations": {ABSENT_SINCE_ANNOTATION: value}}});
    futures::stream::iter(names.to_vec())
        .map(|name| {
            let (api, patch) = (api.clone(), patch.clone());
            async move {
                let params = PatchParams::default();
                match api.patch(&name, &params, &Patch::Merge(&patch)).await {
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    other => other.map(drop),
                }
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// Deletes installations as they are (each by its own `deletionPolicy`): the rollout is gone.
pub async fn delete_all(
    api: &Api<TeamsAppInstallation>,
    names: &[String],
) -> Result<(), kube::Error> {
    futures::stream::iter(names.to_vec())
        .map(|name| {
            let api = api.clone();
            async move { delete(&api, &name).await }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_for_each(|_| async { Ok(()) })
        .await
}

async fn set_deletion_policy(
    api: &Api<TeamsAppInstallation>,
    name: &str,
    policy: DeletionPolicy,
) -> Result<(), kube::Error> {
    let Some(obj) = api.get_opt(name).await? else {
        return Ok(());
    };
    // The policy and the installation controller's finalizer change in one patch (guarded by
    // resourceVersion): the delete follows at once, before that controller would add the
    // finalizer itself, and it removes the finalizer from an installation it sees with
    // `Orphan`. A merge patch, not an apply: an apply of one field would drop the others this
    // manager owns.
    let mut finalizers: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != UNINSTALL_FINALIZER)
        .cloned()
        .collect();
    if policy == DeletionPolicy::Uninstall {
        finalizers.push(UNINSTALL_FINALIZER.to_string());
    }
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": obj.metadata.resource_version,
        },
        "spec": { "deletionPolicy": policy },
    });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn delete(api: &Api<TeamsAppInstallation>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_distinct_and_fit() {
        let id = "22222222-2222-2222-2222-000000000001";
        assert_eq!(child_name("helpdesk", id), format!("helpdesk-{id}"));
        assert_ne!(
            child_name("helpdesk", id),
            child_name("helpdesk", "22222222-2222-2222-2222-000000000002")
        );
        let long = "r".repeat(253);
        let name = child_name(&long, id);
        assert!(name.len() <= 253, "{}", name.len());
        assert!(name.ends_with(id));
        assert_ne!(name, child_name(&"r".repeat(252), id));
        let label = rollout_label(&long);
        assert!(label.len() <= 63);
        assert_eq!(rollout_label("helpdesk.bot"), "helpdesk-bot");
        // Not a DNS-safe id: a digest stands in.
        assert!(child_name("r", "Weird_ID").starts_with("r-"));
        assert_eq!(child_name("r", "Weird_ID").len(), 2 + 16);
    }
}
