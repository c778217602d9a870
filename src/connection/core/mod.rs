//! The pure core of the connection kinds: no Kubernetes and no network — who may use a
//! connection ([`policy`]), what the operator needs of it ([`permissions`]) and how one check
//! of it reads ([`judge`]).

pub mod judge;
pub mod permissions;
pub mod policy;
mod verdict;

pub use judge::{Failure, Findings, Granted, Judgment, judge};
pub use policy::{Reach, Refusal, Request, Rule, admit};
pub use verdict::{Reason, Verdict};
