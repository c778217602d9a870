//! The pure core of `TeamsAppRollout`, no Kubernetes and no network: [`audience`] (who is
//! eligible), [`waves`] (which wave a user is in), [`progress`] (one pass: what to create,
//! remove and report), the Graph failure table ([`audience_failure`]) and the reasons.

pub mod audience;
pub mod children;
mod failure;
pub mod progress;
pub mod removals;
mod spec;
mod verdict;
pub mod waves;

pub use children::{Child, ChildState, ChildToApply};
pub use failure::audience_failure;
pub use progress::{Catalog, Plan, Seen, blocked, plan, plan_revision};
pub use spec::{app_name, revision, validate_spec};
pub use verdict::{Reason, Verdict};
