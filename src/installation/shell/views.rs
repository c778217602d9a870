//! Graph's answers and failures as the pure core sees them.

use crate::api::TeamsAppInstallation;
use crate::graph::{AppRef, CatalogApp, GraphError, Installation};
use crate::kit::Announcement;
use crate::kit::conditions;

use kube::ResourceExt;

use super::super::core::{
    CatalogView, Claim, Failure, GraphStep, InstalledView, Reason, verdict_for_failure,
};

/// The core's view of a Graph error (a failed sign-in reads as `AuthenticationFailed`, see
/// [`GraphError::status_class`]).
pub(super) fn failure_of(err: &GraphError) -> Failure {
    Failure {
        class: err.status_class(),
        message: err.to_string(),
    }
}

/// The Warning Event for a Graph call that failed at `step`, with the reason and message its
/// condition would carry.
pub(super) fn failure_event(
    step: GraphStep,
    err: &GraphError,
    action: &'static str,
) -> Announcement {
    let verdict = verdict_for_failure(step, &failure_of(err));
    Announcement::warning(verdict.reason.as_str(), action, verdict.message)
}

pub(super) fn app_ref(obj: &TeamsAppInstallation) -> Option<AppRef> {
    match (&obj.spec.app.id, &obj.spec.app.external_id) {
        (Some(id), None) => Some(AppRef::Id(id.clone())),
        (None, Some(ext)) => Some(AppRef::ExternalId(ext.clone())),
        _ => None,
    }
}

pub(super) fn catalog_view(catalog: &CatalogApp) -> CatalogView {
    CatalogView {
        app_id: catalog.id.clone(),
        display_name: catalog.display_name.clone(),
        latest_published: catalog.latest_published().map(|d| d.version.clone()),
        required: catalog
            .latest_published()
            .map(|d| d.required.clone())
            .unwrap_or_default(),
    }
}

pub(super) fn installed_view(installation: &Installation) -> InstalledView {
    InstalledView {
        id: installation.id.clone(),
        version: installation.version.clone(),
        app_display_name: installation.app_display_name.clone(),
        consented: installation.consented.application(),
    }
}

/// A resource's claim on a Graph installation (see the core's ownership rules).
pub(super) fn claim_of(obj: &TeamsAppInstallation) -> Claim {
    let status = obj.status.as_ref();
    let app = obj
        .spec
        .app
        .id
        .as_ref()
        .or(obj.spec.app.external_id.as_ref());
    Claim {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        created: obj.metadata.creation_timestamp.clone(),
        user: obj.spec.user.to_lowercase(),
        app: app.map(|a| a.to_lowercase()).unwrap_or_default(),
        catalog_app_id: status
            .and_then(|s| s.catalog_app_id.as_ref())
            .map(|a| a.to_lowercase()),
        installation_id: status.and_then(|s| s.installation_id.clone()),
        tenant: status
            .and_then(|s| s.tenant_id.as_ref())
            .map(|t| t.to_lowercase()),
        refused: status.is_some_and(|s| {
            conditions::find(&s.conditions, conditions::READY).is_some_and(|c| {
                c.reason == Reason::ConnectionNotFound.as_str()
                    || c.reason == Reason::ConnectionNotAllowed.as_str()
            })
        }),
        deleting: obj.metadata.deletion_timestamp.is_some(),
    }
}
