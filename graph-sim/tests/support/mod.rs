//! Shared by the simulator's HTTP tests (`graph-sim/tests/*.rs`): the test seed, an in-process
//! `SimServer` with a plain HTTP client, and small request helpers.
#![allow(dead_code)] // each test crate uses its own subset

pub mod directory;
pub mod receiver;

#[allow(unused_imports)] // only the directory tests use these
pub use directory::*;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use graph_sim::{Seed, SimOptions, SimServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const TENANT: &str = "00000000-0000-0000-0000-000000000001";
/// The scope a client-credentials client asks for to call the public cloud's Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
pub const ALICE: &str = "22222222-2222-2222-2222-222222222222";
pub const BOT: &str = "33333333-3333-3333-3333-333333333333";
pub const TASKS: &str = "44444444-4444-4444-4444-444444444444";
pub const CERT_CLIENT: &str = "55555555-5555-5555-5555-555555555555";
pub const FED_CLIENT: &str = "66666666-6666-6666-6666-666666666666";

pub const CERT: &str = include_str!("../../src/testdata/client-cert.pem");
pub const KEY: &str = include_str!("../../src/testdata/client-key.pem");
pub const UNRELATED_KEY: &str = include_str!("../../src/testdata/unrelated-key.pem");

/// The repository the simulator crate lives in: `examples/` is shared with the operator.
pub fn repo_root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest)
}

/// The demo tenant plus the extensions: a blocked user, an unlicensed user, a certificate client,
/// a federated client.
pub fn seed() -> Seed {
    let path = repo_root().join("examples/tenant.yaml");
    let mut seed = Seed::from_file(&path).expect("examples/tenant.yaml loads");
    let extra = format!(
        r#"
tenants:
  - id: x
    clients:
      - id: {CERT_CLIENT}
        certificate: |
{cert}
      - id: {FED_CLIENT}
        federatedCredentials:
          - {{issuer: "https://kubernetes.default.svc", subject: "system:serviceaccount:teams:operator"}}
    users:
      - {{id: 77777777-7777-7777-7777-777777777777, userPrincipalName: dave@contoso.com, blockedApps: [{BOT}]}}
      - {{id: 88888888-8888-8888-8888-888888888888, userPrincipalName: erin@contoso.com, teamsEnabled: false}}
"#,
        cert = CERT
            .lines()
            .map(|l| format!("          {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let extra = Seed::from_yaml_str(&extra).expect("extension seed loads");
    let tenant = &mut seed.tenants[0];
    tenant.clients.extend(extra.tenants[0].clients.clone());
    tenant.users.extend(extra.tenants[0].users.clone());
    seed
}

pub struct Sim {
    pub server: SimServer,
    pub http: reqwest::Client,
}

pub async fn start() -> Sim {
    start_with(seed()).await
}

pub async fn start_with(seed: Seed) -> Sim {
    start_with_options(seed, SimOptions::default()).await
}

pub async fn start_with_options(seed: Seed, options: SimOptions) -> Sim {
    let server = SimServer::start("127.0.0.1:0".parse().unwrap(), seed, options)
        .await
        .expect("graph-sim must start");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Sim { server, http }
}

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

impl Sim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    pub async fn token_form(&self, tenant: &str, form: &[(&str, &str)]) -> Reply {
        let url = self.url(&format!("/{tenant}/oauth2/v2.0/token"));
        read(self.http.post(url).form(form).send().await.unwrap()).await
    }

    pub async fn token(&self) -> String {
        let reply = self
            .token_form(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT),
                    ("client_secret", "s3cret"),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.call(Method::POST, path, Some(token), body).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, &format!("/_sim{path}"), None, body).await
    }

    pub async fn install(&self, token: &str, user: &str, app: &str) -> Reply {
        let bind = json!({"teamsApp@odata.bind": format!("https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{app}")});
        self.post(
            &format!("/v1.0/users/{user}/teamwork/installedApps"),
            token,
            Some(bind),
        )
        .await
    }

    /// The installations of `user` for `app`, expanded.
    pub async fn installed(&self, token: &str, user: &str, app: &str) -> Vec<Value> {
        let reply = self
            .get(
                &format!(
                    "/v1.0/users/{user}/teamwork/installedApps?$expand=teamsApp,teamsAppDefinition&$filter=teamsApp/id eq '{app}'"
                ),
                token,
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["value"].as_array().unwrap().clone()
    }

    pub async fn publish(&self, app: &str, version: &str, state: &str) -> Reply {
        self.admin(
            Method::POST,
            &format!("/tenants/{TENANT}/apps/{app}/definitions"),
            Some(json!({"version": version, "publishingState": state})),
        )
        .await
    }

    pub async fn requests(&self) -> Vec<Value> {
        let reply = self.admin(Method::GET, "/requests", None).await;
        assert_eq!(reply.status, 200);
        reply.body.as_array().unwrap().clone()
    }
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn batch_item(id: &str, method: &str, url: &str, body: Option<Value>) -> Value {
    let mut item = json!({"id": id, "method": method, "url": url});
    if let Some(body) = body {
        item["body"] = body;
        item["headers"] = json!({"Content-Type": "application/json"});
    }
    item
}

/// `graph-sim --listen 127.0.0.1:0 --seed examples/tenant.yaml ARGS`, as a user starts it; returns
/// the process and the base URL from its first stdout line.
pub async fn spawn_binary(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_graph-sim"))
        .args(["--listen", "127.0.0.1:0", "--seed", "examples/tenant.yaml"])
        .args(args)
        .current_dir(repo_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("graph-sim binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("first line within 30 s")
        .expect("stdout readable")
        .expect("a first line");
    let base = first
        .strip_prefix("listening on ")
        .expect("`listening on URL`")
        .to_string();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{first}"
    );
    (child, base)
}

/// A client-secret token from a spawned binary, for `scope`.
pub async fn binary_token(http: &reqwest::Client, base: &str, scope: &str) -> Value {
    http.post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "s3cret"),
            ("scope", scope),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON")
}
