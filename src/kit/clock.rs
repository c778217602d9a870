//! The one clock of the controllers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Now, to the second: the API server stores times to the second, and a status that differs
/// from what was read back only by a fraction would be written on every pass.
pub fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}
