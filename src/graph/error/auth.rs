//! The token endpoint's (Entra ID's) refusals, and which of them pass on their own.

use std::time::Duration;

/// AADSTS70021: "No matching federated identity record found" while a new federated credential
/// is still propagating through Entra; it passes within minutes.
const FEDERATION_NOT_PROPAGATED: i64 = 70021;

/// The token endpoint (Entra ID) refused or failed to issue a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// `None` when the token endpoint answered with something that was not HTTP-level failure
    /// (e.g. a 200 without a token).
    pub status: Option<u16>,
    /// OAuth `error`, e.g. `invalid_client`, `temporarily_unavailable`.
    pub error: String,
    /// `error_description`: starts with the `AADSTSnnnn` code and explains it. Never contains the
    /// credential itself.
    pub description: Option<String>,
    pub error_codes: Vec<i64>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    pub retry_after: Option<Duration>,
}

impl AuthError {
    /// `temporarily_unavailable`, AADSTS70021 (a federated credential not yet propagated), and
    /// throttling or server failures of the endpoint itself are worth retrying.
    ///
    /// Codes are matched exactly: AADSTS700211 (unknown issuer), 700213 (no matching federated
    /// identity) and 7002138 share 70021's prefix but need someone to fix the configuration.
    pub fn is_retryable(&self) -> bool {
        self.error == "temporarily_unavailable"
            || self
                .aadsts_codes()
                .any(|code| code == FEDERATION_NOT_PROPAGATED)
            || matches!(self.status, Some(429 | 500..=599))
    }

    /// Entra's `AADSTSnnnn` codes: `error_codes`, and the one `error_description` starts with
    /// (some proxies drop `error_codes`).
    pub fn aadsts_codes(&self) -> impl Iterator<Item = i64> + '_ {
        let described = self.description.as_deref().and_then(|d| {
            let digits = d.trim_start().strip_prefix("AADSTS")?;
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse::<i64>().ok()
        });
        self.error_codes.iter().copied().chain(described)
    }
}
