//! `TeamsAppInstallation`: one user, one app, at least one version.
//!
//! [`core`] decides without I/O (what the resource asks → what to do → what to report);
//! [`shell`] observes Graph, acts, and reports through the kit.

pub mod core;
pub mod shell;

use crate::api::{TeamsAppInstallation, TeamsAppInstallationStatus};
use crate::kit::conditions::conditioned;

pub use shell::{CONTROLLER, ControllerSettings, Coverage, Notice, Wiring, run};

conditioned!(TeamsAppInstallation, TeamsAppInstallationStatus);
