//! The `$skiptoken` of a `@odata.nextLink`: where the next page of a list starts, opaque to
//! clients (base64 of the simulator's own notation), as Graph's are.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Where the next page of a list starts, encoded in an opaque `$skiptoken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// At this position (lists that do not change under the client's feet).
    Offset(usize),
    /// After an id (lists sorted by id, which may change between pages: a member added or
    /// removed shifts nothing that was already paged past).
    After(Cursor),
}

/// Where a directory read resumes, and what the whole read (all its pages) shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last id of the page before.
    #[serde(rename = "a")]
    pub after: String,
    /// When this token was issued, Unix milliseconds: `pageTokenTtlMs` expires it.
    #[serde(rename = "t")]
    pub issued_ms: i64,
    /// The member this read leaves out (`directoryFlap`), on every page.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub omit: Option<String>,
}

const PREFIX: &str = "graph-sim:";
const CURSOR: &str = "c:";

pub(crate) fn encode(resume: &Resume) -> String {
    let plain = match resume {
        Resume::Offset(offset) => format!("{PREFIX}{offset}"),
        Resume::After(cursor) => {
            // A struct of strings and an integer always serialises.
            let json = serde_json::to_string(cursor).unwrap_or_default();
            format!("{PREFIX}{CURSOR}{json}")
        }
    };
    URL_SAFE_NO_PAD.encode(plain)
}

pub(crate) fn decode(token: &str) -> Result<Resume, String> {
    let plain = URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let resume = plain.as_deref().and_then(|s| {
        let rest = s.strip_prefix(PREFIX)?;
        match rest.strip_prefix(CURSOR) {
            Some(json) => serde_json::from_str::<Cursor>(json)
                .ok()
                .filter(|c| !c.after.is_empty())
                .map(Resume::After),
            None => rest.parse().ok().map(Resume::Offset),
        }
    });
    resume.ok_or_else(|| format!("Invalid $skiptoken '{token}'."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_junk_is_refused() {
        let cursor = Cursor {
            after: "u'1:x".into(),
            issued_ms: 1_700_000_000_000,
            omit: Some("u2".into()),
        };
        for resume in [Resume::Offset(40), Resume::After(cursor)] {
            assert_eq!(decode(&encode(&resume)), Ok(resume));
        }
        for junk in [
            "",
            "nope",
            &URL_SAFE_NO_PAD.encode("graph-sim:c:{\"a\":\"\",\"t\":1}"),
        ] {
            assert!(decode(junk).is_err(), "{junk}");
        }
    }
}
