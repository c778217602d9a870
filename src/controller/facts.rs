//! What the operator knows about a resource's app in Graph: the status fields besides the
//! conditions, carried over from the last status and updated with what a reconcile learned.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{TeamsAppInstallation, TeamsAppInstallationStatus};
use crate::graph::Installation;
use crate::reconcile::InstalledView;
use crate::version::AppVersion;

#[derive(Debug, Clone, Default)]
pub(super) struct Facts {
    pub catalog_app_id: Option<String>,
    pub app_display_name: Option<String>,
    pub installation_id: Option<String>,
    pub installed_version: Option<String>,
    pub latest_version: Option<String>,
    pub last_install_time: Option<Time>,
    pub last_upgrade_time: Option<Time>,
    pub last_handled_reconcile_at: Option<String>,
}

impl Facts {
    pub fn from_previous(obj: &TeamsAppInstallation) -> Self {
        let s = obj.status.clone().unwrap_or_default();
        Self {
            catalog_app_id: s.catalog_app_id,
            app_display_name: s.app_display_name,
            installation_id: s.installation_id,
            installed_version: s.installed_version,
            latest_version: s.latest_version,
            last_install_time: s.last_install_time,
            last_upgrade_time: s.last_upgrade_time,
            last_handled_reconcile_at: s.last_handled_reconcile_at,
        }
    }

    /// Records what a read of the user's installation showed (`None`: not installed).
    pub fn observe(&mut self, installation: Option<&Installation>) {
        self.installation_id = installation.map(|i| i.id.clone());
        self.installed_version =
            installation.and_then(|i| i.version.as_ref().map(ToString::to_string));
        if let Some(name) = installation.and_then(|i| i.app_display_name.clone()) {
            self.app_display_name = Some(name);
        }
    }

    pub fn installation_view(&self) -> Option<InstalledView> {
        self.installation_id.as_ref().map(|id| InstalledView {
            id: id.clone(),
            version: self.installed_version.as_deref().map(AppVersion::parse),
        })
    }

    /// The app's name for Event messages.
    pub fn app_name(&self) -> String {
        self.app_display_name
            .clone()
            .or_else(|| self.catalog_app_id.clone())
            .unwrap_or_else(|| "the app".to_string())
    }

    pub fn into_status(
        self,
        observed_generation: Option<i64>,
        conditions: Vec<Condition>,
    ) -> TeamsAppInstallationStatus {
        TeamsAppInstallationStatus {
            observed_generation,
            catalog_app_id: self.catalog_app_id,
            app_display_name: self.app_display_name,
            installation_id: self.installation_id,
            installed_version: self.installed_version,
            latest_version: self.latest_version,
            last_install_time: self.last_install_time,
            last_upgrade_time: self.last_upgrade_time,
            last_handled_reconcile_at: self.last_handled_reconcile_at,
            conditions,
        }
    }
}

pub(super) fn installed_view(installation: &Installation) -> InstalledView {
    InstalledView {
        id: installation.id.clone(),
        version: installation.version.clone(),
    }
}
