//! The reconcile logic that needs no Kubernetes and no network: reading the resource, the
//! decision table, Graph failure classification, the conclusion (status, Events, requeue), and
//! the conditions each outcome produces.

pub mod conditions;
mod decision;
mod failure;
mod outcome;
mod schedule;
mod verdict;

pub use decision::{
    Action, CatalogView, Decision, InstalledView, Observed, Wanted, announce_install, decide,
    install_in_flight, upgrade_in_flight,
};
pub use failure::{Failure, FailureClass, GraphStep, verdict_for_failure};
pub use outcome::{
    Announcement, Findings, Outcome, Pass, RECONCILE_REQUESTED_ANNOTATION, Timing, conclude,
};
pub use schedule::drift_delay;
pub use verdict::{Reason, Standing, Verdict};
