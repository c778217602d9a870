//! The pure core of the connection kinds: no Kubernetes and no network — what the operator
//! needs of a connection ([`permissions`]) and how one check of it reads ([`judge`]). Who may
//! use a connection is [`crate::tenancy::policy`]'s: every kind asks it.

pub mod judge;
pub mod permissions;
mod verdict;

pub use judge::{Failure, Findings, Granted, Judgment, judge, wants_fresh_token};
pub use verdict::{Reason, Verdict};
