//! The pure core of `TeamsAppInstallation`, no Kubernetes and no network: reading the resource
//! ([`Pass`]), the decision table ([`decide`]), Graph failure classification
//! ([`verdict_for_failure`]), and the conclusion ([`conclude`]: status, Events, requeue).

mod conclusion;
mod decision;
mod failure;
mod ownership;
mod pass;
mod plan;
mod provisioning;
mod schedule;
mod verdict;

pub use conclusion::{Findings, Outcome, conclude};
pub use decision::{
    Action, CatalogView, Decision, InstalledView, Observed, Wanted, announce_install, decide,
    install_in_flight, upgrade_in_flight,
};
pub use failure::{Failure, GraphStep, verdict_for_failure, verdict_for_refused_consent};
pub use ownership::{Claim, owner_other_than, wanted_by_another};
pub use pass::{Pass, Timing};
pub use schedule::drift_delay;
pub use verdict::{Reason, Verdict};
