//! `TeamsAppRollout`: an app for everyone in some groups, in waves that halt on failure.
//!
//! [`core`] decides without I/O (who is eligible, which wave, what one pass does);
//! [`shell`] reads the directory, writes installations, and reports through the kit.

pub mod core;
pub mod shell;

use crate::api::{TeamsAppRollout, TeamsAppRolloutStatus};
use crate::kit::conditions::conditioned;

pub use shell::controller::{CONTROLLER, Wakeups, Wiring, owner_of, run};

conditioned!(TeamsAppRollout, TeamsAppRolloutStatus);
