use std::time::Duration;

use super::*;
use crate::graph::error::AuthError;

fn unavailable(retry_after: Option<Duration>) -> GraphError {
    GraphError::Auth(Box::new(AuthError {
        status: Some(503),
        error: "temporarily_unavailable".into(),
        description: None,
        error_codes: Vec::new(),
        trace_id: None,
        correlation_id: None,
        retry_after,
    }))
}

#[test]
fn margin_is_five_minutes_or_ten_percent() {
    let settings = TokenSettings::default();
    assert_eq!(
        settings.refresh_margin(Duration::from_secs(3599)),
        Duration::from_secs(300)
    );
    assert_eq!(
        settings.refresh_margin(Duration::from_secs(60)),
        Duration::from_secs(6)
    );
    assert_eq!(settings.refresh_margin(Duration::ZERO), Duration::ZERO);
}

#[test]
fn an_odd_refresh_fraction_never_panics() {
    for fraction in [f64::NAN, f64::INFINITY, -1.0, 7.0] {
        let settings = TokenSettings {
            refresh_fraction: fraction,
            max_refresh_margin: Duration::MAX,
            ..TokenSettings::default()
        };
        assert!(settings.refresh_margin(Duration::from_secs(60)) <= Duration::from_secs(60));
    }
}

#[test]
fn a_failure_stands_for_the_jittered_hold_or_a_longer_retry_after_capped() {
    let settings = TokenSettings::default();
    for _ in 0..50 {
        let held = settings.hold_for(&unavailable(None));
        assert!(held >= Duration::from_secs(1) && held <= Duration::from_secs(2));
        // A shorter Retry-After does not shorten the hold…
        let held = settings.hold_for(&unavailable(Some(Duration::from_millis(200))));
        assert!(held >= Duration::from_secs(1) && held <= Duration::from_secs(2));
    }
    // …a longer one lengthens it, up to the cap.
    assert_eq!(
        settings.hold_for(&unavailable(Some(Duration::from_secs(10)))),
        Duration::from_secs(10)
    );
    assert_eq!(
        settings.hold_for(&unavailable(Some(Duration::from_secs(3600)))),
        MAX_FAILURE_HOLD
    );
}
