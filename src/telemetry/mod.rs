//! Telemetry: what a platform team watches the operator by.
//!
//! - [`metrics`]: Prometheus series (controller-runtime's names, Graph traffic, resource states).
//! - [`notifications`]: the change-notification series, read from the receiver and the
//!   subscription manager.
//! - [`health`]: the readiness state behind `/readyz`.
//! - [`http`]: the `--metrics-addr` server for `/metrics`, `/livez` and `/readyz`.
//! - [`logging`]: text or JSON logs through `tracing`.

pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod notifications;

pub use health::Health;
pub use logging::LogFormat;
pub use metrics::Metrics;

use std::sync::Arc;

/// What the process reports to: metrics and readiness.
#[derive(Clone, Default)]
pub struct Telemetry {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}
