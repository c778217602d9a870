//! The Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client credentials) and the
//! bearer-token check in front of every Graph call. Tokens are opaque random strings bound to a
//! tenant and client; they expire after the configured lifetime or on `POST /_sim/tokens/expire`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde_json::json;

use super::Shared;
use super::credentials::check_assertion;
use super::errors::{AadError, GraphError, RequestIds, dropped_connection, set_headers};
use super::faults::Surface;
use super::journal::RequestRecord;
use super::state::Tenant;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Who a Graph call is made as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The tenant id as seeded.
    pub tenant: String,
    pub client_id: String,
    /// The application permissions in the token (the client's, when it was issued).
    pub roles: Vec<String>,
}

struct IssuedToken {
    principal: Principal,
    expires_at: Instant,
}

#[derive(Default)]
pub(crate) struct TokenStore {
    tokens: HashMap<String, IssuedToken>,
}

/// Every token's header, so every token starts with the same text (tests look for it in logs):
/// `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6ImdyYXBoLXNpbSJ9`.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"RS256","kid":"graph-sim"}"#;

/// An access token shaped like Entra's app-only v1 tokens for Graph: a JWT whose claims name the
/// tenant, the client and its `roles`, which clients may read (the operator shows a
/// connection's granted permissions from them). The signature is random bytes: the simulator
/// looks tokens up rather than verifying them, so the random part also makes them unguessable.
fn jwt_shaped(principal: &Principal, lifetime: Duration) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = serde_json::json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{}/", principal.tenant),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime.as_secs(),
        "appid": principal.client_id,
        "tid": principal.tenant,
        "idtyp": "app",
        "roles": principal.roles,
    });
    let mut signature = [0u8; 32];
    rand::rng().fill_bytes(&mut signature);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(JWT_HEADER),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

impl TokenStore {
    pub fn issue(&mut self, principal: Principal, lifetime: Duration, now: Instant) -> String {
        // Forget tokens long dead so a benchmark that logs in often does not grow without bound.
        self.tokens
            .retain(|_, t| now.saturating_duration_since(t.expires_at) < Duration::from_secs(3600));
        let token = jwt_shaped(&principal, lifetime);
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                principal,
                expires_at: now + lifetime,
            },
        );
        token
    }

    /// Makes every token issued so far expired, as if the clock had run past them.
    pub fn expire_all(&mut self, now: Instant) {
        for token in self.tokens.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    /// Checks an `Authorization` header.
    pub fn authenticate(
        &self,
        header: Option<&HeaderValue>,
        now: Instant,
    ) -> Result<Principal, GraphError> {
        let value = header
            .and_then(|h| h.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| GraphError::unauthorized("Access token is empty."))?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                GraphError::unauthorized("Invalid authentication token: expected 'Bearer <token>'.")
            })?;
        let issued = self
            .tokens
            .get(token)
            .ok_or_else(|| GraphError::unauthorized("Invalid authentication token."))?;
        if issued.expires_at <= now {
            return Err(GraphError::unauthorized(
                "Lifetime validation failed, the token is expired.",
            ));
        }
        Ok(issued.principal.clone())
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(tenant_key): Path<String>,
    Extension(ids): Extension<RequestIds>,
    body: Bytes,
) -> Response {
    let latency = shared.lock().faults.latency();
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }
    let path = format!("/{tenant_key}/oauth2/v2.0/token");
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let lifetime = shared.options.token_lifetime;

    let mut inner = shared.lock();
    let tenant_id = inner.world.tenant(&tenant_key).map(|t| t.id.clone());
    let record = |status: u16, client_id: Option<String>| RequestRecord {
        method: "POST".into(),
        path: path.clone(),
        user: None,
        class: None,
        query: None,
        // A token request's form carries secrets: never logged.
        body: None,
        status,
        tenant: tenant_id.clone().or(Some(tenant_key.clone())),
        client_id,
        batch: false,
        batch_item_id: None,
        time: jiff::Timestamp::now(),
        request_id: ids.request_id.clone(),
        client_request_id: ids.client_request_id.clone(),
    };
    let scripted = inner
        .faults
        .scripted("POST", &path, Some(&tenant_key), Surface::Envelope);
    if scripted.as_ref().is_some_and(|f| f.drop_connection) {
        inner
            .journal
            .push(record(0, form.get("client_id").cloned()));
        return dropped_connection();
    }
    let outcome = match scripted {
        Some(f) => Err(f.to_aad_error()),
        None => match inner.world.tenant(&tenant_key) {
            None => Err(AadError::new(
                "invalid_request",
                90002,
                format!(
                    "Tenant '{tenant_key}' not found. Check to make sure you have the correct \
                     tenant ID and are signing into the correct cloud."
                ),
            )),
            Some(tenant) => authenticate_client(tenant, &form, &shared.options.graph_resource).map(
                |client_id| Principal {
                    tenant: tenant.id.clone(),
                    roles: tenant
                        .client(&client_id)
                        .map(|c| c.roles.clone())
                        .unwrap_or_default(),
                    client_id,
                },
            ),
        },
    };
    let now = Instant::now();
    let (mut response, status, client_id) = match outcome {
        Ok(principal) => {
            let client_id = principal.client_id.clone();
            let token = inner.tokens.issue(principal, lifetime, now);
            let secs = lifetime.as_secs();
            let body = json!({
                "token_type": "Bearer",
                "expires_in": secs,
                "ext_expires_in": secs,
                "access_token": token,
            });
            let mut response = (StatusCode::OK, axum::Json(body)).into_response();
            set_headers(
                response.headers_mut(),
                vec![
                    ("Cache-Control".into(), "no-store, no-cache".into()),
                    ("Pragma".into(), "no-cache".into()),
                ],
            );
            (response, StatusCode::OK, Some(client_id))
        }
        Err(err) => {
            let status = err.http_status();
            let mut response = (status, axum::Json(err.body(&ids))).into_response();
            if let Some(secs) = err.retry_after {
                set_headers(
                    response.headers_mut(),
                    vec![(
                        "Retry-After".into(),
                        super::errors::format_retry_after(secs),
                    )],
                );
            }
            (response, status, form.get("client_id").cloned())
        }
    };
    inner.journal.push(record(status.as_u16(), client_id));
    set_headers(
        response.headers_mut(),
        vec![("x-ms-request-id".into(), ids.request_id.clone())],
    );
    response
}

fn missing(parameter: &str) -> AadError {
    AadError::new(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

/// Microsoft Graph's application id: `{GRAPH_APP_ID}/.default` names the same resource as
/// `https://graph.microsoft.com/.default`.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The client-credentials scope must be one resource's `/.default`, and that resource must be
/// Graph (as configured): Entra knows no resource named after the simulator's own address.
fn check_scope(scope: &str, graph_resource: &str, tenant: &Tenant) -> Result<(), AadError> {
    let resource = scope
        .strip_suffix("/.default")
        .filter(|_| scope.split_whitespace().count() == 1)
        .ok_or_else(|| {
            AadError::new(
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows \
                     must have a scope value with /.default suffixed to the resource identifier \
                     (application ID URI)."
                ),
            )
        })?;
    let graph = resource.trim_end_matches('/');
    if graph.eq_ignore_ascii_case(graph_resource) || graph.eq_ignore_ascii_case(GRAPH_APP_ID) {
        return Ok(());
    }
    Err(AadError::new(
        "invalid_resource",
        500011,
        format!(
            "The resource principal named {resource} was not found in the tenant named {}. This \
             can happen if the application has not been installed by the administrator of the \
             tenant or consented to by any user in the tenant. You might have sent your \
             authentication request to the wrong tenant.",
            tenant.id
        ),
    ))
}

/// Checks a client-credentials form against the tenant; the authenticated client id.
fn authenticate_client(
    tenant: &Tenant,
    form: &HashMap<String, String>,
    graph_resource: &str,
) -> Result<String, AadError> {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant = field("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant != "client_credentials" {
        return Err(AadError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    let scope = field("scope").ok_or_else(|| missing("scope"))?;
    check_scope(scope, graph_resource, tenant)?;
    let client_id = field("client_id").ok_or_else(|| missing("client_id"))?;
    let client = tenant.client(client_id).ok_or_else(|| {
        AadError::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. \
                 This can happen if the application has not been installed by the administrator \
                 of the tenant or consented to by any user in the tenant. You may have sent your \
                 authentication request to the wrong tenant.",
                tenant.id
            ),
        )
    })?;

    if let Some(secret) = field("client_secret") {
        return if client.secret.as_deref() == Some(secret) {
            Ok(client.id.clone())
        } else {
            Err(AadError::new(
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request \
                     is the client secret value, not the client secret ID, for a secret added to \
                     app '{}'.",
                    client.id
                ),
            ))
        };
    }
    let Some(assertion) = field("client_assertion") else {
        return Err(AadError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        ));
    };
    if field("client_assertion_type") != Some(JWT_BEARER) {
        return Err(AadError::new(
            "invalid_request",
            700023,
            format!("client_assertion_type must be '{JWT_BEARER}'."),
        ));
    }
    let names: Vec<&str> = std::iter::once(tenant.id.as_str())
        .chain(tenant.domains.iter().map(String::as_str))
        .collect();
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    check_assertion(
        assertion,
        &client.id,
        client.certificate.as_ref(),
        &client.federated,
        &names,
        now,
    )?;
    Ok(client.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn tokens_are_jwts_that_name_the_tenant_client_and_roles() {
        let principal = Principal {
            tenant: "tenant-a".into(),
            client_id: "client-1".into(),
            roles: vec!["TeamsAppInstallation.ReadWriteForUser.All".into()],
        };
        let mut store = TokenStore::default();
        let token = store.issue(principal.clone(), Duration::from_secs(3600), Instant::now());
        let again = store.issue(principal, Duration::from_secs(3600), Instant::now());
        assert_ne!(token, again, "each token is its own");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(token.starts_with("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6ImdyYXBoLXNpbSJ9."));
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["tid"], "tenant-a");
        assert_eq!(claims["appid"], "client-1");
        assert_eq!(
            claims["roles"][0],
            "TeamsAppInstallation.ReadWriteForUser.All"
        );
        assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
    }
}
