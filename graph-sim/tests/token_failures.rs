//! Scripted answers of the token endpoint (issue 23): any HTTP status, OAuth `error` and Entra
//! AADSTS code, as Entra shapes them, `count` times. Over HTTP against an in-process `SimServer`,
//! like the other tests here.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

fn secret_form() -> [(&'static str, &'static str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT),
        ("client_secret", "s3cret"),
        ("scope", GRAPH_SCOPE),
    ]
}

async fn set_failures(sim: &Sim, failures: Value) {
    let reply = sim
        .admin(Method::PUT, "/faults", Some(json!({"failures": failures})))
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

fn description(reply: &Reply) -> &str {
    reply.body["error_description"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_scripted_token_failure_carries_any_status_error_and_aadsts_code() {
    let sim = start().await;
    set_failures(
        &sim,
        json!([{"pathContains": "/oauth2/", "status": 400, "code": "invalid_client",
                "aadsts": 700213, "count": 2}]),
    )
    .await;
    for _ in 0..2 {
        let reply = sim.token_form(TENANT, &secret_form()).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body["error"], "invalid_client");
        assert_eq!(reply.body["error_codes"], json!([700213]));
        assert!(
            description(&reply).starts_with(
                "AADSTS700213: No matching federated identity record found for presented \
                 assertion subject."
            ),
            "{}",
            reply.body
        );
        assert!(
            description(&reply).contains("Trace ID: "),
            "as Entra appends"
        );
        assert!(reply.body["trace_id"].is_string() && reply.body["correlation_id"].is_string());
    }
    assert_eq!(
        sim.token_form(TENANT, &secret_form()).await.status,
        200,
        "used up"
    );

    // A retryable one with Retry-After, and one with its own message.
    set_failures(
        &sim,
        json!([
            {"pathContains": "/oauth2/", "status": 503, "code": "temporarily_unavailable",
             "retryAfter": 2},
            {"pathContains": "/oauth2/", "status": 400, "code": "invalid_request", "aadsts": 70021,
             "message": "No matching federated identity record found for presented assertion. \
                         Assertion Issuer: 'https://kubernetes.default.svc'."},
        ]),
    )
    .await;
    let busy = sim.token_form(TENANT, &secret_form()).await;
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after"), Some("2"));
    assert_eq!(busy.body["error"], "temporarily_unavailable");
    assert_eq!(busy.body["error_codes"], json!([90033]));
    assert!(description(&busy).starts_with("AADSTS90033: A transient error has occurred."));
    let federated = sim.token_form(TENANT, &secret_form()).await;
    assert_eq!(federated.body["error_codes"], json!([70021]));
    assert!(description(&federated).starts_with(
        "AADSTS70021: No matching federated identity record found for presented assertion. \
         Assertion Issuer: 'https://kubernetes.default.svc'."
    ));
    // Unknown to the simulator: the code as given, a generic description.
    set_failures(
        &sim,
        json!([{"pathContains": "/oauth2/", "status": 401, "code": "invalid_client",
                "aadsts": 7000000}]),
    )
    .await;
    let odd = sim.token_form(TENANT, &secret_form()).await;
    assert_eq!(
        (odd.status.as_u16(), odd.body["error_codes"].clone()),
        (401, json!([7000000]))
    );
    assert!(description(&odd).starts_with("AADSTS7000000: "));
}

#[tokio::test]
async fn token_failures_can_be_in_force_from_the_seed() {
    let mut seed = seed();
    seed.faults = serde_json::from_value(json!({"failures": [
        {"pathContains": "/oauth2/", "status": 401, "code": "invalid_client"},
    ]}))
    .unwrap();
    let sim = start_with(seed).await;
    let refused = sim.token_form(TENANT, &secret_form()).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error_codes"], json!([7000215]));
    assert!(description(&refused).starts_with("AADSTS7000215: Invalid client secret provided."));
    assert_eq!(sim.token_form(TENANT, &secret_form()).await.status, 200);
    // Graph calls are not touched by a failure that names the token endpoint.
    let token = sim.token().await;
    assert_eq!(
        sim.get("/v1.0/appCatalogs/teamsApps", &token).await.status,
        200
    );
}
