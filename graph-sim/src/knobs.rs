//! The knobs in force for one tenant at one moment: the tenant's settings (seed, admin PATCH)
//! with `PUT /_sim/faults` overriding them for every tenant while it sets them.

use std::time::{Duration, Instant};

use super::faults::FaultConfig;
use super::seed::TenantSettings;

pub(crate) struct Knobs {
    pub now: Instant,
    /// `directoryLagMs`; zero = none.
    pub directory_lag: Duration,
}

impl Knobs {
    pub fn for_tenant(tenant: &TenantSettings, faults: &FaultConfig, now: Instant) -> Knobs {
        let knobs = tenant.merged(&faults.tenant_overrides());
        let ms = |ms: Option<u64>| Duration::from_millis(ms.unwrap_or(0));
        Knobs {
            now,
            directory_lag: ms(knobs.directory_lag_ms),
        }
    }
}
