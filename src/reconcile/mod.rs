//! The reconcile logic that needs no Kubernetes and no network: the decision table, Graph
//! failure classification, and the conditions each outcome produces.

mod decision;
mod failure;
mod verdict;

pub use decision::{
    Action, CatalogView, Decision, InstalledView, Observed, Wanted, announce_install, decide,
    install_in_flight, upgrade_in_flight,
};
pub use failure::{GraphStep, verdict_for_failure};
pub use verdict::{Reason, Standing, Verdict};
