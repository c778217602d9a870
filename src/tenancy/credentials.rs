//! A connection's credential, loaded from Kubernetes at every token request: a rotated Secret
//! (or certificate) is used for the next token without a restart, and a broken one affects only
//! the resources of its connection. Nothing loaded here is logged or kept beyond the request.

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret as KubeSecret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::api::ConnectionCredential;
use crate::graph::{Credential, CredentialLoader, GraphError, Secret};

/// The audience Entra expects of a federated ServiceAccount token.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// How long a requested ServiceAccount token lives: Entra only checks it at the exchange, so
/// one made for each token request may be short (the API server's floor is 10 minutes).
const ASSERTION_SECONDS: i64 = 600;

/// Where one connection's credential lives: the Secret or ServiceAccount, and the namespace to
/// read it from (the connection's own, or the operator's for a `ClusterGraphConnection`).
#[derive(Clone)]
pub struct CredentialRef {
    client: Client,
    namespace: String,
    form: Form,
}

#[derive(Debug, Clone, PartialEq)]
enum Form {
    Secret { name: String, key: String },
    Certificate { name: String, key: Option<String> },
    ServiceAccount { name: String },
}

impl std::fmt::Debug for CredentialRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRef")
            .field("namespace", &self.namespace)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl CredentialRef {
    /// `None` when the spec names no credential (the CRD refuses that; objects stored before
    /// the rule are reported by the caller).
    pub fn new(client: Client, namespace: &str, spec: &ConnectionCredential) -> Option<Self> {
        let form = if let Some(s) = &spec.secret_ref {
            Form::Secret {
                name: s.name.clone(),
                key: s.key.clone(),
            }
        } else if let Some(c) = &spec.certificate_secret_ref {
            Form::Certificate {
                name: c.name.clone(),
                key: c.key.clone(),
            }
        } else {
            Form::ServiceAccount {
                name: spec
                    .workload_identity
                    .as_ref()?
                    .service_account_name
                    .clone(),
            }
        };
        Some(Self {
            client,
            namespace: namespace.to_string(),
            form,
        })
    }

    async fn secret_data(&self, name: &str) -> Result<BTreeMap<String, ByteString>, GraphError> {
        let api: Api<KubeSecret> = Api::namespaced(self.client.clone(), &self.namespace);
        match api.get_opt(name).await {
            Ok(Some(secret)) => Ok(secret.data.unwrap_or_default()),
            Ok(None) => Err(credential(format!(
                "Secret {}/{name} does not exist",
                self.namespace
            ))),
            Err(e) => Err(credential(format!(
                "cannot read Secret {}/{name}: {}",
                self.namespace,
                kube_reason(&e)
            ))),
        }
    }

    async fn load_credential(&self) -> Result<Credential, GraphError> {
        match &self.form {
            Form::Secret { name, key } => {
                let data = self.secret_data(name).await?;
                let value = text(&data, &self.namespace, name, key)?;
                Ok(Credential::ClientSecret(Secret::new(value.trim())))
            }
            Form::Certificate { name, key } => {
                let data = self.secret_data(name).await?;
                let pem = match key {
                    Some(key) => text(&data, &self.namespace, name, key)?,
                    // A kubernetes.io/tls Secret: the chain, then the key, as one PEM.
                    None => format!(
                        "{}\n{}",
                        text(&data, &self.namespace, name, "tls.crt")?,
                        text(&data, &self.namespace, name, "tls.key")?
                    ),
                };
                Ok(Credential::CertificatePem(Secret::new(pem)))
            }
            Form::ServiceAccount { name } => {
                let api: Api<ServiceAccount> =
                    Api::namespaced(self.client.clone(), &self.namespace);
                let request = TokenRequest {
                    spec: Some(TokenRequestSpec {
                        audiences: Some(vec![TOKEN_EXCHANGE_AUDIENCE.to_string()]),
                        expiration_seconds: Some(ASSERTION_SECONDS),
                        bound_object_ref: None,
                    }),
                    ..TokenRequest::default()
                };
                let answer = api
                    .create_token_request(name, &PostParams::default(), &request)
                    .await
                    .map_err(|e| {
                        credential(format!(
                            "cannot get a token for ServiceAccount {}/{name}: {}",
                            self.namespace,
                            kube_reason(&e)
                        ))
                    })?;
                let token = answer.status.and_then(|s| s.token).unwrap_or_default();
                if token.is_empty() {
                    return Err(credential(format!(
                        "the API server returned no token for ServiceAccount {}/{name}",
                        self.namespace
                    )));
                }
                Ok(Credential::Assertion(Secret::new(token)))
            }
        }
    }
}

impl CredentialLoader for CredentialRef {
    fn load(&self) -> BoxFuture<'_, Result<Credential, GraphError>> {
        self.load_credential().boxed()
    }
}

/// One key of a Secret's data as UTF-8 text, or an error that names the Secret and key (never
/// the value).
fn text(
    data: &BTreeMap<String, ByteString>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, GraphError> {
    let bytes = data
        .get(key)
        .ok_or_else(|| credential(format!("Secret {namespace}/{name} has no key {key}")))?;
    let value = String::from_utf8(bytes.0.clone()).map_err(|_| {
        credential(format!(
            "Secret {namespace}/{name} key {key} is not UTF-8 text"
        ))
    })?;
    if value.trim().is_empty() {
        return Err(credential(format!(
            "Secret {namespace}/{name} key {key} is empty"
        )));
    }
    Ok(value)
}

fn credential(message: String) -> GraphError {
    GraphError::Credential(message)
}

/// The API server's reason without the request details.
fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
