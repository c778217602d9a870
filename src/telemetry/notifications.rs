//! The change-notification series: what the receiver did with what Graph sent, and the
//! subscriptions by health. Read from the receiver and the subscription manager at each scrape
//! (through [`Figures`], so telemetry knows neither); absent until notifications start — with
//! leader election, on the leader only.

use std::sync::{Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The figures of one scrape.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Figures {
    /// `(kind, result, total)`: kind `validation`, `change`, `lifecycle` or `request` (a whole
    /// request refused); result `accepted` or why not.
    pub received: Vec<(&'static str, &'static str, u64)>,
    /// `(state, subscriptions)`: state `healthy`, `failing` or `missing`.
    pub subscriptions: Vec<(&'static str, i64)>,
}

type Source = Box<dyn Fn() -> Figures + Send + Sync>;

/// `teams_app_operator_notifications_received_total{kind,result}` and
/// `teams_app_operator_subscriptions{state}`.
#[derive(Default)]
pub struct NotificationSeries {
    source: Mutex<Option<Source>>,
}

impl std::fmt::Debug for NotificationSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotificationSeries")
    }
}

impl NotificationSeries {
    /// Where the figures come from from now on (when notifications start).
    pub fn attach(&self, source: impl Fn() -> Figures + Send + Sync + 'static) {
        *self.source.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(source));
    }

    fn figures(&self) -> Option<Figures> {
        let source = self.source.lock().unwrap_or_else(PoisonError::into_inner);
        source.as_ref().map(|source| source())
    }
}

impl Collector for NotificationSeries {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(figures) = self.figures() else {
            return Ok(());
        };
        let mut received = encoder.encode_descriptor(
            "teams_app_operator_notifications_received",
            "Graph change notifications, lifecycle events and validation handshakes the receiver answered, by kind and result (accepted, or why refused)",
            None,
            MetricType::Counter,
        )?;
        for (kind, result, total) in &figures.received {
            let labels = [("kind", *kind), ("result", *result)];
            ConstCounter::new(*total).encode(received.encode_family(&labels)?)?;
        }
        let mut subscriptions = encoder.encode_descriptor(
            "teams_app_operator_subscriptions",
            "Graph change-notification subscriptions the operator keeps (one per connection and app), by state: healthy, failing (a create or renewal failed, retried), missing",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in &figures.subscriptions {
            ConstGauge::new(*count).encode(subscriptions.encode_family(&[("state", *state)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;
    use std::sync::Arc;

    #[test]
    fn the_series_appear_once_notifications_start() {
        let series = Arc::new(NotificationSeries::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(series.clone()));
        let render = |registry: &Registry| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, registry).expect("encodes");
            out
        };
        assert!(!render(&registry).contains("notifications_received"));
        series.attach(|| Figures {
            received: vec![
                ("change", "accepted", 3),
                ("change", "wrong_client_state", 1),
            ],
            subscriptions: vec![("healthy", 2), ("failing", 0), ("missing", 1)],
        });
        let text = render(&registry);
        assert!(text.contains(
            r#"teams_app_operator_notifications_received_total{kind="change",result="accepted"} 3"#
        ));
        assert!(text.contains(r#"teams_app_operator_subscriptions{state="missing"} 1"#));
    }
}
