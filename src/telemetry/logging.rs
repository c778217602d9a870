//! Logs through `tracing`: human-readable text by default, one JSON object per line with
//! `--log-format json`; the level comes from `RUST_LOG` (default `info`).
//!
//! Colours only on a terminal: a log file, a pipe or a container runtime's log gets plain text
//! (escape codes there are noise that breaks grep and log pipelines), and `NO_COLOR` turns them
//! off everywhere (<https://no-color.org>).
//!
//! Reconcile log lines carry the resource's `namespace` and `name` (a span around each
//! reconcile), Graph request lines its `client_request_id` and Graph's `request_id`. Secrets and
//! tokens never reach a log field: credentials are wrapped in a type whose `Debug` and `Display`
//! are redacted.

use std::io::IsTerminal;

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
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
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

/// Colour when writing to a terminal, unless `NO_COLOR` is set to anything non-empty.
fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::use_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }
}
