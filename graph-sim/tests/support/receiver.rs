//! A subscriber's endpoint for the change-notification tests: answers Graph's validation
//! handshake as told and keeps every notification it is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How the receiver answers `?validationToken=…`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// 200, the token as `text/plain`: what Graph requires.
    Echo,
    /// 200 `text/plain` with something else.
    Wrong,
    /// 500.
    Fail,
}

#[derive(Clone)]
struct Seen {
    mode: Handshake,
    validations: Arc<Mutex<u32>>,
    notifications: Arc<Mutex<Vec<Value>>>,
}

pub struct Receiver {
    pub url: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(
    State(seen): State<Seen>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(token) = query.get("validationToken") {
        *seen.validations.lock().unwrap() += 1;
        return match seen.mode {
            Handshake::Echo => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain")],
                token.clone(),
            )
                .into_response(),
            Handshake::Wrong => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain")],
                "not the token",
            )
                .into_response(),
            Handshake::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.notifications.lock().unwrap().push(value);
    StatusCode::ACCEPTED.into_response()
}

pub async fn receiver(mode: Handshake) -> Receiver {
    let seen = Seen {
        mode,
        validations: Arc::default(),
        notifications: Arc::default(),
    };
    let app = Router::new().fallback(hook).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url, seen, task }
}

impl Receiver {
    pub fn validations(&self) -> u32 {
        *self.seen.validations.lock().unwrap()
    }

    /// Every notification item received so far (the `value` arrays flattened).
    pub fn items(&self) -> Vec<Value> {
        let bodies = self.seen.notifications.lock().unwrap().clone();
        bodies
            .iter()
            .flat_map(|b| b["value"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Waits (up to 10 s) until `n` notification items have arrived; fails the test otherwise.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let items = self.items();
            if items.len() >= n {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} notifications, got {:?}", self.items());
    }
}
