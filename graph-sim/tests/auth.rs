//! Entra's token endpoint (client secret, certificate and federated assertions) and the
//! token checks every Graph call goes through.
//! Over HTTP the way a client following graph-contract.md would; every test starts its own
//! in-process `SimServer` (or the binary), and one that cannot start fails the test.

mod support;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn token_endpoint_checks_the_client_secret_and_tenant() {
    let sim = start().await;
    let form = |secret: &'static str| {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
    };
    let good = sim.token_form(TENANT, &form("s3cret")).await;
    assert_eq!(good.status, 200);
    assert_eq!(good.body["token_type"], "Bearer");
    assert_eq!(good.body["expires_in"], 3599);
    assert_eq!(good.body["ext_expires_in"], 3599);
    assert!(
        good.body["access_token"]
            .as_str()
            .is_some_and(|t| t.len() > 20)
    );

    let bad = sim.token_form(TENANT, &form("wrong")).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["error"], "invalid_client");
    assert_eq!(bad.body["error_codes"], json!([7000215]));
    assert!(
        bad.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: ")
    );
    assert!(bad.body["trace_id"].is_string() && bad.body["correlation_id"].is_string());

    let other_tenant = sim
        .token_form("99999999-9999-9999-9999-999999999999", &form("s3cret"))
        .await;
    assert_eq!(other_tenant.status, 400);
    assert_eq!(other_tenant.body["error_codes"], json!([90002]));

    let mut no_default = form("s3cret");
    no_default[3].1 = "https://graph.microsoft.com/User.Read";
    let scope = sim.token_form(TENANT, &no_default).await;
    assert_eq!(
        (scope.status.as_u16(), scope.body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    let mut unknown_client = form("s3cret");
    unknown_client[1].1 = "99999999-9999-9999-9999-999999999999";
    let unknown = sim.token_form(TENANT, &unknown_client).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );

    let no_secret = sim.token_form(TENANT, &form("s3cret")[..2]).await;
    assert_eq!(no_secret.status, 400, "{:?}", no_secret.body);
}

fn assertion(key_pem: &str, claims: Value, thumbprint: Option<String>) -> String {
    let der = pem::parse(key_pem).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_der(der.contents());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    header.x5t_s256 = thumbprint;
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn cert_thumbprint() -> String {
    use sha2::Digest;
    let der = pem::parse(CERT).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der.contents()))
}

#[tokio::test]
async fn certificate_client_assertions_are_verified() {
    let sim = start().await;
    let now = jiff::Timestamp::now().as_second();
    let aud = sim.url(&format!("/{TENANT}/oauth2/v2.0/token"));
    let claims = |aud: &str, iss: &str, exp: i64| {
        json!({"aud": aud, "iss": iss, "sub": iss, "exp": exp, "nbf": now - 5,
               "jti": uuid::Uuid::new_v4().to_string()})
    };
    let exchange = |jwt: String| {
        let sim = &sim;
        async move {
            sim.token_form(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", CERT_CLIENT),
                    ("scope", "https://graph.microsoft.com/.default"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &jwt),
                ],
            )
            .await
        }
    };
    let good = exchange(assertion(
        KEY,
        claims(&aud, CERT_CLIENT, now + 600),
        Some(cert_thumbprint()),
    ))
    .await;
    assert_eq!(good.status, 200, "{:?}", good.body);
    let token = good.body["access_token"].as_str().unwrap();
    assert_eq!(
        sim.installed(token, "alice@contoso.com", BOT).await.len(),
        1
    );

    let cases = [
        (
            "signed by another key",
            assertion(
                UNRELATED_KEY,
                claims(&aud, CERT_CLIENT, now + 600),
                Some(cert_thumbprint()),
            ),
            700027,
        ),
        (
            "unknown thumbprint",
            assertion(
                KEY,
                claims(&aud, CERT_CLIENT, now + 600),
                Some("AAAA".into()),
            ),
            700027,
        ),
        (
            "expired",
            assertion(
                KEY,
                claims(&aud, CERT_CLIENT, now - 60),
                Some(cert_thumbprint()),
            ),
            700024,
        ),
        (
            "wrong audience",
            assertion(
                KEY,
                claims(
                    "https://login.microsoftonline.com/other/oauth2/v2.0/token",
                    CERT_CLIENT,
                    now + 600,
                ),
                Some(cert_thumbprint()),
            ),
            50027,
        ),
        (
            "wrong issuer",
            assertion(
                KEY,
                claims(&aud, CLIENT, now + 600),
                Some(cert_thumbprint()),
            ),
            700021,
        ),
        ("not a JWT", "garbage".to_string(), 50027),
    ];
    for (why, jwt, code) in cases {
        let reply = exchange(jwt).await;
        assert!(
            reply.status == 400 || reply.status == 401,
            "{why}: {}",
            reply.status
        );
        assert_eq!(
            reply.body["error_codes"],
            json!([code]),
            "{why}: {:?}",
            reply.body
        );
    }
}

#[tokio::test]
async fn federated_assertions_match_issuer_subject_and_audience() {
    let sim = start().await;
    let now = jiff::Timestamp::now().as_second();
    let sa_token = |sub: &str, exp: i64| {
        // A projected service-account token is signed by the cluster; graph-sim only checks the
        // signature when the credential names an issuerKey.
        assertion(
            UNRELATED_KEY,
            json!({"iss": "https://kubernetes.default.svc", "sub": sub, "aud": ["api://AzureADTokenExchange"], "exp": exp}),
            None,
        )
    };
    let exchange = |jwt: String| {
        let sim = &sim;
        async move {
            sim.token_form(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", FED_CLIENT),
                    ("scope", "https://graph.microsoft.com/.default"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &jwt),
                ],
            )
            .await
        }
    };
    let good = exchange(sa_token("system:serviceaccount:teams:operator", now + 3600)).await;
    assert_eq!(good.status, 200, "{:?}", good.body);
    let stranger = exchange(sa_token("system:serviceaccount:default:other", now + 3600)).await;
    assert_eq!(
        (
            stranger.status.as_u16(),
            stranger.body["error_codes"].clone()
        ),
        (400, json!([70021]))
    );
    let expired = exchange(sa_token("system:serviceaccount:teams:operator", now - 10)).await;
    assert_eq!(expired.body["error_codes"], json!([700024]));
}

#[tokio::test]
async fn graph_calls_need_a_live_token_of_this_simulator() {
    let sim = start().await;
    let path = "/v1.0/users/alice@contoso.com/teamwork/installedApps";
    let missing = sim.call(Method::GET, path, None, None).await;
    assert_eq!(
        (missing.status.as_u16(), missing.code()),
        (401, "InvalidAuthenticationToken")
    );
    let forged = sim.get(path, "not-a-token").await;
    assert_eq!(
        (forged.status.as_u16(), forged.code()),
        (401, "InvalidAuthenticationToken")
    );

    let token = sim.token().await;
    assert_eq!(sim.get(path, &token).await.status, 200);
    assert_eq!(
        sim.admin(Method::POST, "/tokens/expire", None).await.status,
        204
    );
    let expired = sim.get(path, &token).await;
    assert_eq!(
        (expired.status.as_u16(), expired.code()),
        (401, "InvalidAuthenticationToken")
    );
    // A refreshed token works again: what a client does on 401.
    assert_eq!(sim.get(path, &sim.token().await).await.status, 200);

    // A token of another simulator (another tenant's issuer) means nothing here.
    let other = start().await;
    let foreign = other.token().await;
    assert_eq!(sim.get(path, &foreign).await.status, 401);
}

/// The claims of a token the simulator issued (its payload; the signature is not a real one).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn a_rotated_secret_refuses_the_old_one_and_tokens_carry_the_new_roles() {
    let sim = start().await;
    let form = |secret: &'static str| {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
    };
    let before = sim.token_form(TENANT, &form("s3cret")).await;
    assert_eq!(before.status, 200);
    let claims = claims_of(before.body["access_token"].as_str().unwrap());
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["appid"], CLIENT);
    assert!(claims["roles"].as_array().is_some_and(|r| !r.is_empty()));

    let patch = json!({"secret": "rotated", "roles": ["AppCatalog.Read.All"]});
    let path = format!("/tenants/{TENANT}/clients/{CLIENT}");
    let patched = sim.admin(Method::PATCH, &path, Some(patch)).await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);

    assert_eq!(sim.token_form(TENANT, &form("s3cret")).await.status, 401);
    let after = sim.token_form(TENANT, &form("rotated")).await;
    assert_eq!(after.status, 200);
    let claims = claims_of(after.body["access_token"].as_str().unwrap());
    assert_eq!(claims["roles"], json!(["AppCatalog.Read.All"]));

    let missing = format!("/tenants/{TENANT}/clients/nobody");
    let unknown = sim
        .admin(Method::PATCH, &missing, Some(json!({"secret": "x"})))
        .await;
    assert_eq!(unknown.status, 404);
}
