//! The controller kit: what every kind of the operator needs from Kubernetes, written once and
//! generic over the kind `K` — as Flux's `runtime` and linkerd's `patch_status::<K>` do.
//!
//! - [`conditions`]: kstatus conditions for any [`Conditioned`] kind — rendering, reading,
//!   comparing statuses ignoring order, and the kstatus state.
//! - [`status`]: the status writer (server-side apply, only when changed).
//! - [`verdict`]: a standing, a reason of the kind's own enum, a message.
//! - [`events`]: one Event type and its recorder (Event names that fit); [`finalizer`]: add,
//!   remove, holds; [`names`]: names made from names, within Kubernetes' limits.
//! - [`watch`]: the scoped `Api`, the kind's objects (one by one: [`decode`]), the CRD-served
//!   check, the trigger hash, the cache diet.
//! - [`backoff`]: per-object failure backoff with `Retry-After`; [`clock`]: the one clock.
//! - [`failing`]: how long resources spend failing (throttled, Graph or sign-in down), by
//!   reason, from the watch.
//! - [`plumbing`]: a controller's shared parts, one reconcile's bookkeeping, the error policy,
//!   outcome logging; [`metrics`]: the `controller_runtime_*` series by controller and the
//!   objects-by-state gauge.
//!
//! A kind (see `crate::installation`, `crate::rollout`) adds its pure core and its I/O shell on
//! top; the kit knows no kind.

pub mod backoff;
pub mod clock;
pub mod conditions;
pub mod decode;
pub mod events;
pub mod failing;
pub mod finalizer;
pub mod metrics;
pub mod names;
pub mod plumbing;
pub mod status;
pub mod verdict;
pub mod watch;

pub use conditions::{Conditioned, KindStatus, ResourceState, Standing};
pub use events::{Announcement, Recorder};
pub use failing::{FailingTime, FailureClock};
pub use metrics::{ControllerMetrics, ControllerSeries, StateGauge};
pub use plumbing::{HasPlumbing, Plumbing, ReconcileFailure, error_policy, log_outcome};
pub use status::{MANAGER, apply_status};
pub use verdict::{ReasonCode, Verdict};
