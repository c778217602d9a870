//! The operator's HTTP endpoint (`--metrics-addr`): `/metrics`, `/livez`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::{Health, Metrics};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Telemetry {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Binds `addr` now (so a taken port is a start-up error, not a silent gap in monitoring) and
/// serves in a background task for the life of the process. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(Telemetry { metrics, health });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "the metrics and health server stopped");
        }
    });
    Ok(bound)
}

async fn metrics_text(State(t): State<Telemetry>) -> Response {
    match t.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

/// Answering at all proves the process and its async runtime are alive.
async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(t): State<Telemetry>) -> Response {
    match t.health.readiness() {
        Ok(why) => (StatusCode::OK, format!("ok: {why}\n")).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}
