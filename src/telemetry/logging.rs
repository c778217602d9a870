//! Logs through `tracing`: human-readable text by default, one JSON object per line with
//! `--log-format json`; the level comes from `RUST_LOG` (default `info`).
//!
//! Reconcile log lines carry the resource's `namespace` and `name` (a span around each
//! reconcile), Graph request lines its `client_request_id` and Graph's `request_id`. Secrets and
//! tokens never reach a log field: credentials are wrapped in a type whose `Debug` and `Display`
//! are redacted.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber, writing to stderr.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        // Span fields (namespace, name) go into each line, so a log pipeline can filter by
        // resource without parsing messages.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
