//! The simulator's behaviour table, exercised over HTTP the way a client following
//! graph-contract.md would. Every test starts its own in-process `SimServer`; a server that cannot
//! start fails the test.

mod sim_support;

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use sim_support::*;
use teams_app_operator::sim::{Seed, SimOptions, SimServer};

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

#[tokio::test]
async fn list_filters_and_expands_installed_apps() {
    let sim = start().await;
    let token = sim.token().await;
    let bob = sim
        .get("/v1.0/users/bob@contoso.com/teamwork/installedApps", &token)
        .await;
    assert_eq!(bob.status, 200);
    assert_eq!(bob.body["value"], json!([]));

    let by_id = sim.installed(&token, "ALICE@contoso.com", BOT).await;
    assert_eq!(by_id.len(), 1);
    let item = &by_id[0];
    assert_eq!(
        item["@odata.type"],
        "#microsoft.graph.userScopeTeamsAppInstallation"
    );
    assert_eq!(item["id"], b64(&format!("{ALICE}##{BOT}")));
    assert_eq!(item["consentedPermissionSet"], Value::Null);
    assert_eq!(item["teamsApp"]["externalId"], "com.contoso.bot");
    assert_eq!(item["teamsApp"]["distributionMethod"], "organization");
    assert_eq!(item["teamsAppDefinition"]["version"], "1.0.0");
    assert_eq!(item["teamsAppDefinition"]["teamsAppId"], BOT);
    assert_eq!(item["teamsAppDefinition"]["publishingState"], "published");
    assert_eq!(
        item["teamsAppDefinition"]["id"],
        b64(&format!("{BOT}##1.0.0##published"))
    );

    let by_object_id = sim
        .get(
            &format!("/v1.0/users/{ALICE}/teamwork/installedApps?$filter=teamsApp/externalId eq 'com.contoso.bot'"),
            &token,
        )
        .await;
    assert_eq!(by_object_id.body["value"].as_array().unwrap().len(), 1);
    let unexpanded = &by_object_id.body["value"][0];
    assert!(unexpanded.get("teamsApp").is_none() && unexpanded.get("teamsAppDefinition").is_none());

    let other_app = sim.installed(&token, "alice@contoso.com", TASKS).await;
    assert!(other_app.is_empty());

    let one = sim
        .get(
            &format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{}?$expand=teamsAppDefinition", item["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["teamsAppDefinition"]["version"], "1.0.0");
    assert!(one.body.get("teamsApp").is_none());

    let bad_filter = sim
        .get(
            "/v1.0/users/alice@contoso.com/teamwork/installedApps?$filter=startswith(id,'x')",
            &token,
        )
        .await;
    assert_eq!(
        (bad_filter.status.as_u16(), bad_filter.code()),
        (400, "BadRequest")
    );
}

#[tokio::test]
async fn lists_page_with_absolute_next_links() {
    let sim = start().await;
    let token = sim.token().await;
    for app in [BOT, TASKS] {
        assert_eq!(
            sim.install(&token, "bob@contoso.com", app).await.status,
            201
        );
    }
    let mut url =
        sim.url("/v1.0/users/bob@contoso.com/teamwork/installedApps?$expand=teamsApp&$top=1");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = sim.get(&url, &token).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        pages += 1;
        for item in page.body["value"].as_array().unwrap() {
            seen.push(item["teamsApp"]["id"].as_str().unwrap().to_string());
        }
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&sim.server.base_url()) && next.contains("$skiptoken="),
                    "{next}"
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 2);
    seen.sort();
    assert_eq!(seen, vec![BOT, TASKS]);
}

#[tokio::test]
async fn install_then_conflict_and_only_published_versions_install() {
    let sim = start().await;
    let token = sim.token().await;
    let first = sim.install(&token, "carol@contoso.com", TASKS).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body, Value::Null, "201 has no body");
    let again = sim.install(&token, "carol@contoso.com", TASKS).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "Conflict"));
    let installed = sim.installed(&token, "carol@contoso.com", TASKS).await;
    // 2.2.0 is only submitted: the highest *published* definition is installed.
    assert_eq!(installed[0]["teamsAppDefinition"]["version"], "2.1.0");

    let odd_bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/beta/appCatalogs/teamsApps('{BOT}')")});
    let odd = sim
        .post(
            "/v1.0/users/carol@contoso.com/teamwork/installedApps",
            &token,
            Some(odd_bind),
        )
        .await;
    assert_eq!(odd.status, 201);
}

#[tokio::test]
async fn upgrade_moves_to_the_highest_published_definition() {
    let sim = start().await;
    let token = sim.token().await;
    let before = sim.installed(&token, "alice@contoso.com", BOT).await;
    let id = before[0]["id"].as_str().unwrap().to_string();
    let upgrade = format!("/v1.0/users/alice@contoso.com/teamwork/installedApps/{id}/upgrade");

    let published = sim.publish(BOT, "1.1.0", "published").await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    assert_eq!(published.body["version"], "1.1.0");
    assert_eq!(sim.publish(BOT, "1.2.0", "submitted").await.status, 201);

    let reply = sim.post(&upgrade, &token, None).await;
    assert_eq!(reply.status, 204);
    let after = sim.installed(&token, "alice@contoso.com", BOT).await;
    assert_eq!(
        after[0]["id"],
        id.as_str(),
        "the installation id survives upgrades"
    );
    assert_eq!(
        after[0]["teamsAppDefinition"]["version"], "1.1.0",
        "submitted 1.2.0 ignored"
    );

    // Already latest: still 204, still recorded.
    let consent = json!({"consentedPermissionSet": {"resourceSpecificPermissions": [
        {"permissionType": "application", "permissionValue": "ChatMessage.Read.Chat"}]}});
    assert_eq!(sim.post(&upgrade, &token, Some(consent)).await.status, 204);
    let state = sim.admin(Method::GET, "/state", None).await.body;
    let install = state["tenants"][0]["installations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(install["upgradeCount"], 2);
    assert_eq!(install["version"], "1.1.0");

    // Approving the submitted version makes it the upgrade target.
    assert_eq!(sim.publish(BOT, "1.2.0", "published").await.status, 200);
    assert_eq!(sim.post(&upgrade, &token, None).await.status, 204);
    let latest = sim.installed(&token, "alice@contoso.com", BOT).await;
    assert_eq!(latest[0]["teamsAppDefinition"]["version"], "1.2.0");
    assert_eq!(
        latest[0]["consentedPermissionSet"]["resourceSpecificPermissions"][0]["permissionValue"],
        "ChatMessage.Read.Chat"
    );

    let unknown = sim
        .post(
            &format!(
                "/v1.0/users/alice@contoso.com/teamwork/installedApps/{}/upgrade",
                b64("nope##nope")
            ),
            &token,
            None,
        )
        .await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "NotFound"));
}

#[tokio::test]
async fn uninstall_then_not_found() {
    let sim = start().await;
    let token = sim.token().await;
    let path = format!(
        "/v1.0/users/alice@contoso.com/teamwork/installedApps/{}",
        b64(&format!("{ALICE}##{BOT}"))
    );
    assert_eq!(
        sim.call(Method::DELETE, &path, Some(&token), None)
            .await
            .status,
        204
    );
    let again = sim.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!((again.status.as_u16(), again.code()), (404, "NotFound"));
    assert_eq!(sim.get(&path, &token).await.status, 404);
    assert!(
        sim.installed(&token, "alice@contoso.com", BOT)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_users_apps_bad_bodies_and_policies() {
    let sim = start().await;
    let token = sim.token().await;
    let nobody = sim.install(&token, "nobody@contoso.com", BOT).await;
    assert_eq!((nobody.status.as_u16(), nobody.code()), (404, "NotFound"));
    let no_app = sim
        .install(
            &token,
            "bob@contoso.com",
            "99999999-9999-9999-9999-999999999999",
        )
        .await;
    assert_eq!((no_app.status.as_u16(), no_app.code()), (404, "NotFound"));
    assert_eq!(
        sim.get(
            "/v1.0/users/nobody@contoso.com/teamwork/installedApps",
            &token
        )
        .await
        .status,
        404
    );

    let path = "/v1.0/users/bob@contoso.com/teamwork/installedApps";
    for body in [
        json!({}),
        json!({"teamsApp@odata.bind": "nonsense"}),
        json!([1]),
        json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}"), "colour": "blue"}),
    ] {
        let reply = sim.post(path, &token, Some(body.clone())).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "BadRequest"),
            "{body}"
        );
    }
    let not_json = read(
        sim.http
            .post(sim.url(path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(not_json.status, 400);

    let blocked = sim.install(&token, "dave@contoso.com", BOT).await;
    assert_eq!(
        (blocked.status.as_u16(), blocked.code()),
        (403, "Forbidden")
    );
    assert_eq!(
        blocked.body["error"]["message"],
        "App is blocked by app permission policy"
    );
    assert_eq!(
        sim.install(&token, "dave@contoso.com", TASKS).await.status,
        201,
        "only that app is blocked"
    );

    let unlicensed = sim.install(&token, "erin@contoso.com", BOT).await;
    assert_eq!(
        (unlicensed.status.as_u16(), unlicensed.code()),
        (403, "Forbidden")
    );

    let route = sim
        .get("/v1.0/users/bob@contoso.com/teamwork/nothingHere", &token)
        .await;
    assert_eq!((route.status.as_u16(), route.code()), (400, "BadRequest"));
}

#[tokio::test]
async fn blocked_app_upgrade_is_forbidden() {
    let sim = start().await;
    let token = sim.token().await;
    let dave = "77777777-7777-7777-7777-777777777777";
    let installed = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/installations"),
            Some(json!({"user": "dave@contoso.com", "app": BOT})),
        )
        .await;
    assert_eq!(installed.status, 201, "{:?}", installed.body);
    let id = b64(&format!("{dave}##{BOT}"));
    let reply = sim
        .post(
            &format!("/v1.0/users/{dave}/teamwork/installedApps/{id}/upgrade"),
            &token,
            None,
        )
        .await;
    assert_eq!((reply.status.as_u16(), reply.code()), (403, "Forbidden"));
}

#[tokio::test]
async fn catalog_filters_and_expands_definitions() {
    let sim = start().await;
    let token = sim.token().await;
    let by_ext = sim
        .get("/v1.0/appCatalogs/teamsApps?$filter=externalId eq 'com.contoso.tasks'&$expand=appDefinitions", &token)
        .await;
    assert_eq!(by_ext.status, 200);
    let apps = by_ext.body["value"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["id"], TASKS);
    let states: Vec<(&str, &str)> = apps[0]["appDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["version"].as_str().unwrap(),
                d["publishingState"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, vec![("2.1.0", "published"), ("2.2.0", "submitted")]);

    let by_id = sim
        .get(
            &format!("/v1.0/appCatalogs/teamsApps?$filter=id eq '{BOT}'"),
            &token,
        )
        .await;
    assert_eq!(by_id.body["value"][0]["displayName"], "Contoso Bot");
    assert!(by_id.body["value"][0].get("appDefinitions").is_none());
    let org = sim
        .get(
            "/v1.0/appCatalogs/teamsApps?$filter=distributionMethod eq 'organization'",
            &token,
        )
        .await;
    assert_eq!(org.body["value"].as_array().unwrap().len(), 2);
    let none = sim
        .get(
            "/v1.0/appCatalogs/teamsApps?$filter=distributionMethod eq 'store'",
            &token,
        )
        .await;
    assert_eq!(none.body["value"], json!([]));
}

#[tokio::test]
async fn scripted_failures_answer_in_order_then_stop() {
    let sim = start().await;
    let token = sim.token().await;
    let faults = json!({"failures": [
        {"method": "POST", "pathContains": "/upgrade", "status": 503, "count": 2},
        {"method": "GET", "pathContains": "/appCatalogs", "status": 429, "count": 1, "retryAfter": 2.128},
    ]});
    assert_eq!(
        sim.admin(Method::PUT, "/faults", Some(faults)).await.status,
        204
    );
    let upgrade = format!(
        "/v1.0/users/alice@contoso.com/teamwork/installedApps/{}/upgrade",
        b64(&format!("{ALICE}##{BOT}"))
    );
    for _ in 0..2 {
        let reply = sim.post(&upgrade, &token, None).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (503, "ServiceUnavailable")
        );
        assert!(reply.body["error"]["innerError"]["request-id"].is_string());
    }
    assert_eq!(sim.post(&upgrade, &token, None).await.status, 204);

    let throttled = sim.get("/v1.0/appCatalogs/teamsApps", &token).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("2.128"));
    assert_eq!(
        sim.get("/v1.0/appCatalogs/teamsApps", &token).await.status,
        200
    );

    let bad = sim
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"failures": [{"status": 200}]})),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sim = start().await;
    let token = sim.token().await;
    let path = "/v1.0/users/alice@contoso.com/teamwork/installedApps";
    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"rateLimitPerSecond": 1})),
    )
    .await;
    assert_eq!(sim.get(path, &token).await.status, 200);
    // The second call within the same second is over the limit (a local round trip takes
    // milliseconds; the window is a full second).
    let over = sim.get(path, &token).await;
    assert_eq!(
        (over.status.as_u16(), over.code()),
        (429, "TooManyRequests")
    );
    assert_eq!(over.header("retry-after"), Some("1"));

    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"rateLimitPerSecond": 1, "retryAfterSeconds": 1.5})),
    )
    .await;
    sim.get(path, &token).await;
    let fractional = sim.get(path, &token).await;
    assert_eq!(
        (fractional.status.as_u16(), fractional.header("retry-after")),
        (429, Some("1.5"))
    );
    let log = sim.requests().await;
    assert_eq!(
        log.iter().filter(|r| r["status"] == 429).count(),
        2,
        "throttled calls are logged"
    );
}

#[tokio::test]
async fn batch_answers_each_item_and_rejects_bad_envelopes() {
    let sim = start().await;
    let token = sim.token().await;
    let bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")});
    let requests = json!({"requests": [
        batch_item("1", "POST", "/users/bob@contoso.com/teamwork/installedApps", Some(bind.clone())),
        batch_item("2", "POST", "/users/alice@contoso.com/teamwork/installedApps", Some(bind.clone())),
        batch_item("3", "GET", "/users/nobody@contoso.com/teamwork/installedApps", None),
        batch_item("4", "GET", &format!("/users/bob@contoso.com/teamwork/installedApps?$expand=teamsAppDefinition&$filter=teamsApp/id eq '{BOT}'"), None),
    ]});
    let reply = sim.post("/v1.0/$batch", &token, Some(requests)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let responses = reply.body["responses"].as_array().unwrap();
    let by_id = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id("1")["status"], 201);
    assert_eq!(by_id("2")["status"], 409);
    assert_eq!(by_id("2")["body"]["error"]["code"], "Conflict");
    assert_eq!(by_id("3")["status"], 404);
    assert_eq!(by_id("4")["status"], 200);
    assert_eq!(
        by_id("4")["body"]["value"][0]["teamsAppDefinition"]["version"],
        "1.0.0"
    );
    assert!(by_id("4")["headers"]["request-id"].is_string());

    let too_many: Vec<Value> = (0..21)
        .map(|i| batch_item(&i.to_string(), "GET", "/appCatalogs/teamsApps", None))
        .collect();
    let big = sim
        .post("/v1.0/$batch", &token, Some(json!({"requests": too_many})))
        .await;
    assert_eq!((big.status.as_u16(), big.code()), (400, "BadRequest"));
    let dup = json!({"requests": [batch_item("a", "GET", "/appCatalogs/teamsApps", None), batch_item("a", "GET", "/appCatalogs/teamsApps", None)]});
    assert_eq!(
        sim.post("/v1.0/$batch", &token, Some(dup)).await.status,
        400
    );

    let chained = json!({"requests": [
        batch_item("x", "GET", "/users/nobody@contoso.com/teamwork/installedApps", None),
        {"id": "y", "method": "GET", "url": "/appCatalogs/teamsApps", "dependsOn": ["x"]},
    ]});
    let reply = sim.post("/beta/$batch", &token, Some(chained)).await;
    let y = reply.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "y")
        .unwrap()
        .clone();
    assert_eq!(y["status"], 424);

    let no_auth = sim
        .call(
            Method::POST,
            "/v1.0/$batch",
            None,
            Some(json!({"requests": []})),
        )
        .await;
    assert_eq!(no_auth.status, 401);
}

#[tokio::test]
async fn batch_items_are_throttled_one_by_one() {
    let sim = start().await;
    let token = sim.token().await;
    sim.admin(
        Method::PUT,
        "/faults",
        Some(json!({"rateLimitPerSecond": 2})),
    )
    .await;
    let items: Vec<Value> = (0..5)
        .map(|i| batch_item(&i.to_string(), "GET", "/appCatalogs/teamsApps", None))
        .collect();
    let reply = sim
        .post("/v1.0/$batch", &token, Some(json!({"requests": items})))
        .await;
    assert_eq!(reply.status, 200);
    let throttled: Vec<&Value> = reply.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429)
        .collect();
    assert!(throttled.len() >= 3, "{:?}", reply.body);
    assert!(
        throttled
            .iter()
            .all(|r| r["headers"]["Retry-After"].is_string())
    );
    let log = sim.requests().await;
    let items = log.iter().filter(|r| r["batch"] == true).count();
    assert_eq!(items, 5, "each item is logged");
}

#[tokio::test]
async fn request_log_records_every_call_in_order() {
    let sim = start().await;
    let token = sim.token().await;
    sim.installed(&token, "alice@contoso.com", BOT).await;
    sim.install(&token, "alice@contoso.com", BOT).await;
    let batch = json!({"requests": [batch_item("1", "GET", "users/bob@contoso.com/teamwork/installedApps", None)]});
    sim.post("/v1.0/$batch", &token, Some(batch)).await;

    let log = sim.requests().await;
    let summary: Vec<(String, String, u64, bool)> = log
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
                r["batch"].as_bool().unwrap(),
            )
        })
        .collect();
    let expect = |m: &str, p: &str, s: u64, b: bool| (m.to_string(), p.to_string(), s, b);
    assert_eq!(
        summary,
        vec![
            expect("POST", &format!("/{TENANT}/oauth2/v2.0/token"), 200, false),
            expect(
                "GET",
                "/v1.0/users/alice@contoso.com/teamwork/installedApps",
                200,
                false
            ),
            expect(
                "POST",
                "/v1.0/users/alice@contoso.com/teamwork/installedApps",
                409,
                false
            ),
            expect(
                "GET",
                "/v1.0/users/bob@contoso.com/teamwork/installedApps",
                200,
                true
            ),
            expect("POST", "/v1.0/$batch", 200, false),
        ]
    );
    assert!(log.iter().all(|r| r["tenant"] == TENANT));
    assert_eq!(sim.server.requests().len(), 5, "in-process view agrees");
    assert_eq!(
        sim.admin(Method::DELETE, "/requests", None).await.status,
        204
    );
    assert!(sim.requests().await.is_empty());
}

#[tokio::test]
async fn responses_carry_correlation_ids_and_graph_error_shape() {
    let sim = start().await;
    let token = sim.token().await;
    let reply = read(
        sim.http
            .get(sim.url("/v1.0/users/nobody@contoso.com/teamwork/installedApps"))
            .bearer_auth(&token)
            .header("client-request-id", "0f0f0f0f-0000-0000-0000-000000000001")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        reply.header("client-request-id"),
        Some("0f0f0f0f-0000-0000-0000-000000000001")
    );
    let request_id = reply
        .header("request-id")
        .expect("request-id header")
        .to_string();
    let inner = &reply.body["error"]["innerError"];
    assert_eq!(inner["request-id"], request_id.as_str());
    assert_eq!(
        inner["client-request-id"],
        "0f0f0f0f-0000-0000-0000-000000000001"
    );
    assert!(inner["date"].is_string());
    assert!(reply.body["error"]["message"].is_string());

    let ok = sim.get("/v1.0/appCatalogs/teamsApps", &token).await;
    assert!(ok.header("request-id").is_some() && ok.header("client-request-id").is_some());
    let token_reply = sim
        .token_form(TENANT, &[("grant_type", "client_credentials")])
        .await;
    assert!(token_reply.header("request-id").is_some());
}

#[tokio::test]
async fn beta_behaves_like_v1() {
    let sim = start().await;
    let token = sim.token().await;
    let list = sim
        .get(&format!("/beta/users/alice@contoso.com/teamwork/installedApps?$expand=teamsAppDefinition&$filter=teamsApp/id eq '{BOT}'"), &token)
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["value"][0]["teamsAppDefinition"]["version"],
        "1.0.0"
    );
    let bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/beta/appCatalogs/teamsApps/{TASKS}")});
    assert_eq!(
        sim.post(
            "/beta/users/bob@contoso.com/teamwork/installedApps",
            &token,
            Some(bind)
        )
        .await
        .status,
        201
    );
    assert_eq!(
        sim.get("/v2.0/appCatalogs/teamsApps", &token).await.status,
        400
    );
}

#[tokio::test]
async fn reset_returns_to_the_seed() {
    let sim = start().await;
    let token = sim.token().await;
    sim.install(&token, "bob@contoso.com", BOT).await;
    sim.publish(BOT, "9.0.0", "published").await;
    sim.admin(Method::PUT, "/faults", Some(json!({"latencyMs": 1})))
        .await;
    assert_eq!(sim.admin(Method::POST, "/reset", None).await.status, 204);

    assert!(sim.requests().await.is_empty(), "log cleared");
    assert_eq!(
        sim.admin(Method::GET, "/faults", None).await.body,
        json!({})
    );
    assert_eq!(
        sim.get("/v1.0/appCatalogs/teamsApps", &token).await.status,
        401,
        "tokens dropped"
    );
    let token = sim.token().await;
    assert!(
        sim.installed(&token, "bob@contoso.com", BOT)
            .await
            .is_empty()
    );
    let catalog = sim
        .get(
            &format!("/v1.0/appCatalogs/teamsApps/{BOT}?$expand=appDefinitions"),
            &token,
        )
        .await;
    assert_eq!(catalog.body["appDefinitions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_api_grows_the_tenant() {
    let sim = start().await;
    let token = sim.token().await;
    let app = json!({"id": "abababab-0000-0000-0000-000000000001", "externalId": "com.contoso.new", "displayName": "New",
                     "definitions": [{"version": "0.9"}]});
    assert_eq!(
        sim.admin(
            Method::POST,
            &format!("/tenants/{TENANT}/apps"),
            Some(app.clone())
        )
        .await
        .status,
        201
    );
    assert_eq!(
        sim.admin(Method::POST, &format!("/tenants/{TENANT}/apps"), Some(app))
            .await
            .status,
        409
    );
    let users = json!([{"id": "cdcdcdcd-0000-0000-0000-000000000001", "userPrincipalName": "u1@contoso.com"},
                       {"id": "cdcdcdcd-0000-0000-0000-000000000002", "userPrincipalName": "u2@contoso.com"}]);
    assert_eq!(
        sim.admin(
            Method::POST,
            &format!("/tenants/{TENANT}/users"),
            Some(users)
        )
        .await
        .status,
        201
    );
    let seeded = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/installations"),
            Some(json!([{"user": "u1@contoso.com", "app": "com.contoso.new"}])),
        )
        .await;
    assert_eq!(seeded.status, 201, "{:?}", seeded.body);
    let list = sim
        .installed(
            &token,
            "u1@contoso.com",
            "abababab-0000-0000-0000-000000000001",
        )
        .await;
    assert_eq!(list[0]["teamsAppDefinition"]["version"], "0.9");
    assert_eq!(
        sim.install(
            &token,
            "u2@contoso.com",
            "abababab-0000-0000-0000-000000000001"
        )
        .await
        .status,
        201
    );

    let unknown = sim
        .admin(
            Method::POST,
            "/tenants/nope/apps/x/definitions",
            Some(json!({"version": "1"})),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let garbage = sim
        .admin(
            Method::POST,
            &format!("/tenants/{TENANT}/users"),
            Some(json!({"id": 1})),
        )
        .await;
    assert_eq!(garbage.status, 400);
    assert_eq!(sim.admin(Method::GET, "/nothing", None).await.status, 404);
}

#[tokio::test]
async fn invalid_seeds_refuse_to_start() {
    let seed = Seed::from_yaml_str("tenants: [{id: t, installations: [{user: ghost, app: a}]}]");
    assert!(seed.is_err());
    let seed = Seed {
        page_size: Some(0),
        ..Seed::default()
    };
    let started =
        SimServer::start("127.0.0.1:0".parse().unwrap(), seed, SimOptions::default()).await;
    assert!(started.is_err());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start().await;
    let url = sim.url("/_sim/healthz");
    assert_eq!(sim.http.get(&url).send().await.unwrap().status(), 200);
    sim.server.shutdown().await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(http.get(&url).send().await.is_err());
}

#[tokio::test]
async fn the_binary_prints_its_address_and_serves_the_seed() {
    let (mut child, base) = spawn_binary(&["--token-lifetime", "120"]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = binary_token(&http, &base, GRAPH_SCOPE).await;
    assert_eq!(token["expires_in"], 120);
    let list: Value = http
        .get(format!(
            "{base}/v1.0/users/alice@contoso.com/teamwork/installedApps"
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    child.kill().await.unwrap();
}

/// The acceptance walk, with a plain HTTP client against the binary: token, list,
/// install, install again → 409, publish a version, upgrade → 204, list shows it, uninstall →
/// 204, again → 404.
#[tokio::test]
async fn a_plain_http_client_gets_the_documented_answers_from_the_binary() {
    let (mut child, base) = spawn_binary(&[]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = binary_token(&http, &base, GRAPH_SCOPE).await;
    let bearer = token["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let apps = format!("{base}/v1.0/users/bob@contoso.com/teamwork/installedApps");
    let list = || {
        http.get(format!(
            "{apps}?$expand=teamsApp,teamsAppDefinition&$filter=teamsApp/id eq '{BOT}'"
        ))
        .bearer_auth(&bearer)
        .send()
    };
    let listed: Value = list().await.unwrap().json().await.unwrap();
    assert_eq!(listed["value"], json!([]), "bob has nothing yet");

    // The bind URL names Graph itself, not the address the client dials (graph-sim checks).
    let bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{BOT}")});
    let install = || http.post(&apps).bearer_auth(&bearer).json(&bind).send();
    let first = install().await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.text().await.unwrap().is_empty(), "201 has no body");
    let again = install().await.unwrap();
    assert_eq!(again.status(), 409);
    let error: Value = again.json().await.unwrap();
    assert!(
        error["error"]["innerError"]["request-id"].is_string(),
        "{error}"
    );

    let listed: Value = list().await.unwrap().json().await.unwrap();
    let installation = &listed["value"][0];
    assert_eq!(installation["teamsAppDefinition"]["version"], "1.0.0");
    let id = installation["id"]
        .as_str()
        .expect("installation id")
        .to_string();

    let published = http
        .post(format!(
            "{base}/_sim/tenants/{TENANT}/apps/{BOT}/definitions"
        ))
        .json(&json!({"version": "1.1.0", "publishingState": "published"}))
        .send()
        .await
        .unwrap();
    assert!(published.status().is_success(), "{}", published.status());
    let upgrade = http
        .post(format!("{apps}/{id}/upgrade"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 204);
    let listed: Value = list().await.unwrap().json().await.unwrap();
    assert_eq!(listed["value"][0]["teamsAppDefinition"]["version"], "1.1.0");

    let uninstall = || {
        http.delete(format!("{apps}/{id}"))
            .bearer_auth(&bearer)
            .send()
    };
    assert_eq!(uninstall().await.unwrap().status(), 204);
    assert_eq!(uninstall().await.unwrap().status(), 404);
    child.kill().await.unwrap();
}
