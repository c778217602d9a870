//! Building Graph request paths safely.
//!
//! User principal names, ids and filter values come from users' manifests. They are
//! percent-encoded as path segments or query values, and quoted as OData string literals (a `'`
//! becomes `''`), so no value can change the shape of a request.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Quotes a value as an OData string literal: `o'brien` → `'o''brien'`.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// What stays as it is in a path segment: RFC 3986 `pchar`s (`/`, `?`, `#`, `%`, spaces and
/// non-ASCII are encoded).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// What stays as it is in a query value: a path segment's characters and `/`, but not `&`, `=`
/// and `+`. Spaces become `%20` (not `+`, which OData would read as a literal plus in some
/// servers); `#` and `%` are encoded.
const QUERY_VALUE: &AsciiSet = &PATH_SEGMENT.add(b'&').add(b'=').add(b'+').remove(b'/');

/// Percent-encodes one path segment.
pub fn encode_path_segment(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// Percent-encodes a query value.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// A Graph request target relative to the API version root (`/users/…`), already encoded.
///
/// The same relative form is what `$batch` items carry in their `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    path: String,
    query: Vec<(&'static str, String)>,
}

impl Route {
    pub fn new() -> Self {
        Self {
            path: String::new(),
            query: Vec::new(),
        }
    }

    /// Appends a literal segment from this crate (not user input): kept as written.
    pub fn lit(mut self, segment: &str) -> Self {
        self.path.push('/');
        self.path.push_str(segment);
        self
    }

    /// Appends a segment that comes from outside: percent-encoded.
    pub fn seg(mut self, segment: &str) -> Self {
        self.path.push('/');
        self.path.push_str(&encode_path_segment(segment));
        self
    }

    /// `/users/{user}`. A UPN starting with `$` must use the key form `/users('$…')`, or Graph
    /// reads it as a system segment like `$count`; so must `.` and `..`, which URL normalisation
    /// would remove as dot segments (even percent-encoded), sending the request elsewhere.
    pub fn user(self, user: &str) -> Self {
        if user.starts_with('$') || user == "." || user == ".." {
            self.seg(&format!("users({})", quote(user)))
        } else {
            self.lit("users").seg(user)
        }
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    /// The encoded path without query, for logs and error messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Path and encoded query: `/users/a%2Fb/teamwork/installedApps?$filter=…`.
    pub fn relative(&self) -> String {
        let mut out = self.path.clone();
        for (i, (name, value)) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(name);
            out.push('=');
            out.push_str(&encode_query_value(value));
        }
        out
    }
}

impl Default for Route {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_odata_literals() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote("o'brien"), "'o''brien'");
        assert_eq!(quote("''"), "''''''");
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(
            encode_path_segment("alice@contoso.com"),
            "alice@contoso.com"
        );
        assert_eq!(encode_path_segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(encode_path_segment("NWI2+/=="), "NWI2+%2F==");
        assert_eq!(encode_path_segment("é"), "%C3%A9");
    }

    #[test]
    fn builds_routes_with_filters() {
        let route = Route::new()
            .user("o'brien/x@contoso.com")
            .lit("teamwork")
            .lit("installedApps")
            .query("$expand", "teamsApp,teamsAppDefinition")
            .query(
                "$filter",
                format!("teamsApp/externalId eq {}", quote("a'b&c=d+e")),
            );
        assert_eq!(
            route.relative(),
            "/users/o'brien%2Fx@contoso.com/teamwork/installedApps\
             ?$expand=teamsApp,teamsAppDefinition\
             &$filter=teamsApp/externalId%20eq%20'a''b%26c%3Dd%2Be'"
        );
        assert_eq!(
            route.path(),
            "/users/o'brien%2Fx@contoso.com/teamwork/installedApps"
        );
    }

    #[test]
    fn dollar_upns_use_the_key_form() {
        let route = Route::new().user("$adele@contoso.com");
        assert_eq!(route.relative(), "/users('$adele@contoso.com')");
        let route = Route::new().user("$o'neil@contoso.com");
        assert_eq!(route.relative(), "/users('$o''neil@contoso.com')");
    }

    #[test]
    fn dot_segments_travel_as_one_opaque_key() {
        for user in [".", ".."] {
            let route = Route::new().user(user).lit("teamwork");
            let url = url::Url::parse(&format!(
                "https://graph.microsoft.com/v1.0{}",
                route.relative()
            ))
            .unwrap();
            assert_eq!(url.path(), format!("/v1.0/users('{user}')/teamwork"));
        }
    }
}
