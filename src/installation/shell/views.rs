//! Graph's answers and failures as the pure core sees them.

use crate::api::TeamsAppInstallation;
use crate::graph::{AppRef, CatalogApp, GraphError, Installation};
use crate::kit::Announcement;

use super::super::core::{CatalogView, Failure, GraphStep, InstalledView, verdict_for_failure};

/// The core's view of a Graph error.
pub(super) fn failure_of(err: &GraphError) -> Failure {
    Failure {
        class: err.class(),
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
    }
}

pub(super) fn installed_view(installation: &Installation) -> InstalledView {
    InstalledView {
        id: installation.id.clone(),
        version: installation.version.clone(),
        app_display_name: installation.app_display_name.clone(),
    }
}
