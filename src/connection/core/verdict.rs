//! A connection's reasons.

use crate::kit::verdict::reasons;

reasons! {
    /// Machine-readable reasons of a connection's conditions, shown in `kubectl get gc,cgc`.
    pub enum Reason {
        /// A token was obtained and a catalog read succeeded.
        Connected,
        /// The token lacks application permissions the operator needs (the message names them).
        MissingPermissions,
        /// The credential's Secret or key is missing or unusable, or its ServiceAccount token
        /// cannot be had.
        CredentialUnavailable,
        /// Entra refused the credential (the message carries its AADSTS code).
        AuthenticationFailed,
        /// Graph or the login host failed in a way that passes; retried with backoff.
        GraphUnavailable,
        /// Graph throttled the check.
        Throttled,
        /// The spec holds something the operator cannot use (the message says what).
        InvalidSpec,
        /// Deletion waits until no resource uses the connection.
        InUse,
    }
}

/// A connection's verdict.
pub type Verdict = crate::kit::Verdict<Reason>;
