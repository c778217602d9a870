//! How Graph reads a resource path: percent-escapes are decoded *before* the path is split into
//! segments (so `%2F` is a separator, not part of a user id), a user or group may be addressed
//! with OData key syntax `/users('{key}')`, `/groups('{id}')` (quotes doubled inside, the form
//! Graph documents for UPNs that start with `$`), and a plain `/users/$…` (or `/groups/$…`)
//! segment is a system segment, not a user: unknown ones are 400.

use super::errors::GraphError;
use super::odata::percent_decode;

/// The request's segments after the version prefix, with `users('{key}')` (or `groups('{id}')`)
/// split into `users` and the unquoted key. `path` is raw (still percent-encoded).
pub(crate) fn segments(path: &str) -> Result<Vec<String>, GraphError> {
    let decoded = percent_decode(path);
    let mut out = Vec::new();
    for (i, segment) in decoded.split('/').filter(|s| !s.is_empty()).enumerate() {
        match key_syntax(segment) {
            Some((set, key)) if i == 0 => {
                let key = unquote(key).ok_or_else(|| {
                    GraphError::bad_request(format!(
                        "Bad Request - Error in query syntax: invalid key '{key}' in \
                         segment '{segment}'; a key is a quoted string like \
                         {set}('name@contoso.com')."
                    ))
                })?;
                out.push(set.to_string());
                out.push(key);
            }
            _ if i == 1 && segment.starts_with('$') && keyed_set(&out).is_some() => {
                return Err(GraphError::bad_request(format!(
                    "The request URI is not valid. Since the segment '{}' refers to a \
                     collection, this must be the last segment in the request URI or it must be \
                     followed by an function or action that can be bound to it otherwise all \
                     intermediate segments must refer to a single resource.",
                    keyed_set(&out).unwrap_or_default()
                )));
            }
            _ => out.push(segment.to_string()),
        }
    }
    Ok(out)
}

/// The user a path addresses (decoded, unquoted), for the request log.
pub(crate) fn addressed_user(path: &str) -> Option<String> {
    let segments = segments(path).ok()?;
    match segments.as_slice() {
        [users, user, ..] if users.eq_ignore_ascii_case("users") => Some(user.clone()),
        _ => None,
    }
}

/// The entity sets addressed by key: `/users/{key}`, `/groups/{id}`.
const KEYED_SETS: [&str; 2] = ["users", "groups"];

/// `Some("users")` when `out` is just a keyed entity set's segment.
fn keyed_set(out: &[String]) -> Option<&'static str> {
    match out {
        [only] => KEYED_SETS
            .into_iter()
            .find(|set| only.eq_ignore_ascii_case(set)),
        _ => None,
    }
}

/// `users('x')` → `("users", "'x'")`, the entity set lowercased.
fn key_syntax(segment: &str) -> Option<(&'static str, &str)> {
    let (set, rest) = segment.split_once('(')?;
    let key = rest.strip_suffix(')')?;
    KEYED_SETS
        .into_iter()
        .find(|s| set.eq_ignore_ascii_case(s))
        .map(|s| (s, key))
}

/// `'o''neil@contoso.com'` → `o'neil@contoso.com`; `None` unless a single quoted literal.
fn unquote(key: &str) -> Option<String> {
    let inner = key.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> Vec<String> {
        segments(path).unwrap()
    }

    #[test]
    fn escapes_are_decoded_before_splitting() {
        assert_eq!(
            ok("/users/alice%40contoso.com/teamwork"),
            ["users", "alice@contoso.com", "teamwork"]
        );
        assert_eq!(ok("/users/a%2Fb/teamwork"), ["users", "a", "b", "teamwork"]);
        assert_eq!(
            ok("/users/ann_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"),
            ["users", "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"]
        );
    }

    #[test]
    fn key_syntax_addresses_a_user() {
        assert_eq!(
            ok("/users('$adm@contoso.com')/teamwork"),
            ["users", "$adm@contoso.com", "teamwork"]
        );
        assert_eq!(
            ok("/Users('o''neil@contoso.com')"),
            ["users", "o'neil@contoso.com"]
        );
        assert_eq!(
            ok("/users(%27o%27%27neil%40contoso.com%27)"),
            ["users", "o'neil@contoso.com"]
        );
        assert_eq!(
            ok("/Groups('g1')/transitiveMembers/microsoft.graph.user"),
            ["groups", "g1", "transitiveMembers", "microsoft.graph.user"]
        );
        for bad in ["/users(x)", "/users('a'b')", "/users('')", "/groups(g)"] {
            assert!(segments(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dollar_segments_after_users_are_not_users() {
        assert!(segments("/users/$adm@contoso.com/teamwork").is_err());
        assert!(segments("/users/%24adm@contoso.com").is_err());
        assert!(segments("/groups/$bogus").is_err());
        assert_eq!(
            addressed_user("/users('$adm@contoso.com')/teamwork/installedApps").as_deref(),
            Some("$adm@contoso.com")
        );
        assert_eq!(addressed_user("/appCatalogs/teamsApps"), None);
    }
}
