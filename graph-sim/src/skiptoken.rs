//! The `$skiptoken` of a `@odata.nextLink`: where the next page of a list starts, opaque to
//! clients (base64 of the simulator's own notation), as Graph's are.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Where the next page of a list starts, encoded in an opaque `$skiptoken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// At this position (lists that do not change under the client's feet).
    Offset(usize),
    /// After this id (lists sorted by id, which may change between pages: a member added or
    /// removed shifts nothing that was already paged past).
    After(String),
}

pub(crate) fn encode(resume: &Resume) -> String {
    let plain = match resume {
        Resume::Offset(offset) => format!("graph-sim:{offset}"),
        Resume::After(id) => format!("graph-sim:after:{id}"),
    };
    URL_SAFE_NO_PAD.encode(plain)
}

pub(crate) fn decode(token: &str) -> Result<Resume, String> {
    let plain = URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let resume = plain.as_deref().and_then(|s| {
        let rest = s.strip_prefix("graph-sim:")?;
        match rest.strip_prefix("after:") {
            Some(id) if !id.is_empty() => Some(Resume::After(id.to_string())),
            Some(_) => None,
            None => rest.parse().ok().map(Resume::Offset),
        }
    });
    resume.ok_or_else(|| format!("Invalid $skiptoken '{token}'."))
}
