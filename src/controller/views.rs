//! Graph's answers as the pure core sees them.

use crate::api::TeamsAppInstallation;
use crate::graph::{AppRef, CatalogApp, ErrorClass, GraphError, Installation};
use crate::reconcile::{CatalogView, Failure, FailureClass, InstalledView};

/// The core's neutral view of a Graph error.
pub(super) fn failure_of(err: &GraphError) -> Failure {
    let class = match err.class() {
        ErrorClass::Throttled => FailureClass::Throttled,
        ErrorClass::Unavailable => FailureClass::Unavailable,
        ErrorClass::NotFound => FailureClass::NotFound,
        ErrorClass::Forbidden => FailureClass::Forbidden,
        ErrorClass::NotLicensed => FailureClass::NotLicensed,
        ErrorClass::BlockedByPolicy => FailureClass::BlockedByPolicy,
        ErrorClass::Unauthorized => FailureClass::Unauthorized,
        ErrorClass::BadRequest => FailureClass::BadRequest,
        ErrorClass::Conflict => FailureClass::Conflict,
        ErrorClass::Other => FailureClass::Other,
    };
    Failure {
        class,
        message: err.to_string(),
    }
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
