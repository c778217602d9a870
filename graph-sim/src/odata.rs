//! The slice of OData query syntax the simulated endpoints use: `$filter` with `eq` clauses
//! joined by `and`, `$expand` of navigation properties, `$select`, `$count`, and server-driven
//! paging (`$top`, `$skiptoken`, `@odata.nextLink`). Anything outside that slice is a 400, as
//! Graph answers unsupported queries.

use super::skiptoken;
pub use super::skiptoken::{Cursor, Resume};

/// One `field eq 'value'` clause. Field names and values compare case-insensitively, as Graph does
/// for ids and manifest ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub field: String,
    pub value: String,
}

/// The query options of one request, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// A conjunction of clauses; empty = no filter.
    pub filter: Vec<Clause>,
    pub expand: Vec<String>,
    /// The nested `$select` of an expanded navigation (`appDefinitions($select=id,version)`),
    /// by navigation name as sent.
    pub expand_select: Vec<(String, Vec<String>)>,
    /// Property names of `$select`, as sent (trimmed); empty = none.
    pub select: Vec<String>,
    /// `$count=true`.
    pub count: bool,
    pub top: Option<usize>,
    /// Where an offset-paged list resumes (its `$skiptoken`).
    pub skip: usize,
    /// Where a list paged by id resumes (its `$skiptoken`).
    pub after: Option<Cursor>,
    /// The raw `$filter`/`$expand`/`$select`/`$count` values, replayed in `@odata.nextLink`.
    raw_filter: Option<String>,
    raw_expand: Option<String>,
    raw_select: Option<String>,
    raw_count: Option<String>,
}

impl Query {
    /// Parses a raw (still percent-encoded) query string.
    pub fn parse(raw: Option<&str>) -> Result<Query, String> {
        let mut q = Query::default();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.to_ascii_lowercase().as_str() {
                "$filter" => {
                    q.filter = parse_filter(&value)?;
                    q.raw_filter = Some(value.into_owned());
                }
                "$expand" => {
                    let nested = parse_expand_nested(&value)?;
                    q.expand_select = nested
                        .iter()
                        .filter_map(|(name, options)| {
                            nested_select(options)
                                .map(|select| select.map(|s| (name.clone(), s)))
                                .transpose()
                        })
                        .collect::<Result<_, _>>()?;
                    q.expand = nested.into_iter().map(|(name, _)| name).collect();
                    q.raw_expand = Some(value.into_owned());
                }
                "$select" => {
                    q.select = parse_select(&value)?;
                    q.raw_select = Some(value.into_owned());
                }
                "$count" => {
                    q.count = match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("Invalid value '{value}' for $count.")),
                    };
                    q.raw_count = Some(value.into_owned());
                }
                "$top" => match value.trim().parse::<usize>() {
                    Ok(n) if (1..=999).contains(&n) => q.top = Some(n),
                    _ => {
                        return Err(format!(
                            "Invalid page size specified: '{value}'. Must be between 1 and 999 \
                             inclusive."
                        ));
                    }
                },
                "$skiptoken" => match skiptoken::decode(&value)? {
                    Resume::Offset(n) => q.skip = n,
                    Resume::After(cursor) => q.after = Some(cursor),
                },
                // Other system query options ($orderby, …) and unknown parameters are
                // tolerated and ignored, as long as they are not ones the client relies on here.
                _ => {}
            }
        }
        Ok(q)
    }

    /// True when `name` (case-insensitive) was asked for in `$expand`.
    pub fn expands(&self, name: &str) -> bool {
        self.expand.iter().any(|e| e.eq_ignore_ascii_case(name))
    }

    /// The nested `$select` of expanded navigation `name`; empty = none (every property).
    pub fn expand_select(&self, name: &str) -> &[String] {
        self.expand_select
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, select)| select.as_slice())
    }

    /// The absolute `@odata.nextLink` for the page that starts at `next_offset`.
    pub fn next_link(&self, url_without_query: &str, next_offset: usize) -> String {
        self.next_link_at(url_without_query, &Resume::Offset(next_offset))
    }

    /// The absolute `@odata.nextLink` for the page that starts where `resume` says: the query
    /// options that shape a page replayed, plus the `$skiptoken`.
    pub fn next_link_at(&self, url_without_query: &str, resume: &Resume) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(f) = &self.raw_filter {
            pairs.push(("$filter", f.clone()));
        }
        if let Some(e) = &self.raw_expand {
            pairs.push(("$expand", e.clone()));
        }
        if let Some(s) = &self.raw_select {
            pairs.push(("$select", s.clone()));
        }
        if let Some(c) = &self.raw_count {
            pairs.push(("$count", c.clone()));
        }
        if let Some(t) = self.top {
            pairs.push(("$top", t.to_string()));
        }
        pairs.push(("$skiptoken", skiptoken::encode(resume)));
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect();
        format!("{url_without_query}?{}", query.join("&"))
    }
}

/// Parses `a eq 'x' and b eq 'y'` (quotes doubled inside literals, as OData escapes them).
pub fn parse_filter(input: &str) -> Result<Vec<Clause>, String> {
    let invalid = || format!("Invalid filter clause: '{input}'.");
    let mut clauses = Vec::new();
    let mut rest = input.trim();
    loop {
        let (field, after_field) = rest.split_once(char::is_whitespace).ok_or_else(invalid)?;
        let after_field = after_field.trim_start();
        let after_op = after_field
            .get(..2)
            .filter(|op| op.eq_ignore_ascii_case("eq"))
            .map(|_| after_field[2..].trim_start())
            .ok_or_else(invalid)?;
        let (value, after_value) = parse_literal(after_op).ok_or_else(invalid)?;
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '/') {
            return Err(invalid());
        }
        clauses.push(Clause {
            field: field.to_string(),
            value,
        });
        let after_value = after_value.trim();
        if after_value.is_empty() {
            return Ok(clauses);
        }
        let (conj, next) = after_value
            .split_once(char::is_whitespace)
            .ok_or_else(invalid)?;
        if !conj.eq_ignore_ascii_case("and") {
            return Err(invalid());
        }
        rest = next.trim_start();
    }
}

/// A single-quoted OData string literal at the start of `s`; returns it and what follows.
fn parse_literal(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('\'')?;
    let mut value = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                value.push('\'');
            } else {
                return Some((value, &body[i + 1..]));
            }
        } else {
            value.push(c);
        }
    }
    None
}

/// Top-level names of `$expand`; nested options in parentheses (`teamsApp($select=id)`) are
/// accepted and left out.
#[cfg(test)]
pub fn parse_expand(input: &str) -> Result<Vec<String>, String> {
    Ok(parse_expand_nested(input)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Top-level names of `$expand`, each with the text of its nested options (between its
/// parentheses; empty when it has none).
fn parse_expand_nested(input: &str) -> Result<Vec<(String, String)>, String> {
    let invalid = || format!("Invalid $expand: '{input}'.");
    let mut items = Vec::new();
    let mut depth = 0usize;
    let (mut name, mut options) = (String::new(), String::new());
    for c in input.chars() {
        match c {
            '(' => {
                if depth > 0 {
                    options.push(c);
                }
                depth += 1;
            }
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(invalid)?;
                if depth > 0 {
                    options.push(c);
                }
            }
            ',' if depth == 0 => {
                items.push((std::mem::take(&mut name), std::mem::take(&mut options)));
            }
            _ if depth == 0 => name.push(c),
            _ => options.push(c),
        }
    }
    if depth != 0 {
        return Err(invalid());
    }
    items.push((name, options));
    let items: Vec<(String, String)> = items
        .into_iter()
        .map(|(n, o)| (n.trim().to_string(), o))
        .collect();
    if items.iter().any(|(n, _)| n.is_empty()) {
        return Err(invalid());
    }
    Ok(items)
}

/// The `$select` among nested expand options (`$select=id,version;$filter=…`), if any.
fn nested_select(options: &str) -> Result<Option<Vec<String>>, String> {
    for option in options.split(';') {
        if let Some((key, value)) = option.split_once('=')
            && key.trim().eq_ignore_ascii_case("$select")
        {
            return parse_select(value).map(Some);
        }
    }
    Ok(None)
}

/// `$select=id, userPrincipalName` → `["id", "userPrincipalName"]`.
fn parse_select(input: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = input.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(format!("Invalid $select: '{input}'."));
    }
    Ok(names)
}

/// Percent-encodes a query value, keeping the characters OData URLs usually show literally.
fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~'(),/$:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes in a path (no `+` rule: that is for query strings only).
/// Invalid escapes are kept literally rather than rejected.
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(field: &str, value: &str) -> Clause {
        Clause {
            field: field.into(),
            value: value.into(),
        }
    }

    #[test]
    fn filter_by_catalog_id_and_external_id() {
        assert_eq!(
            parse_filter("teamsApp/id eq '33333333-3333-3333-3333-333333333333'").unwrap(),
            vec![clause(
                "teamsApp/id",
                "33333333-3333-3333-3333-333333333333"
            )]
        );
        assert_eq!(
            parse_filter("  teamsApp/externalId   EQ 'com.contoso.bot' ").unwrap(),
            vec![clause("teamsApp/externalId", "com.contoso.bot")]
        );
    }

    #[test]
    fn filter_conjunction_and_escaped_quotes() {
        assert_eq!(
            parse_filter("displayName eq 'O''Brien app' and distributionMethod eq 'organization'")
                .unwrap(),
            vec![
                clause("displayName", "O'Brien app"),
                clause("distributionMethod", "organization")
            ]
        );
    }

    #[test]
    fn unsupported_filters_are_errors() {
        for bad in [
            "",
            "id",
            "id eq",
            "id eq 'x",
            "id ne 'x'",
            "id eq x",
            "id eq 'x' or id eq 'y'",
            "startswith(id,'x')",
            "id eq 'x' and",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn expand_names_ignore_nested_options() {
        assert_eq!(
            parse_expand("teamsApp($select=id,displayName), teamsAppDefinition").unwrap(),
            vec!["teamsApp", "teamsAppDefinition"]
        );
        assert!(parse_expand("teamsApp(").is_err());
        let q = Query::parse(Some(
            "$expand=appDefinitions($select=id,teamsAppId,version,authorization)",
        ))
        .unwrap();
        assert_eq!(q.expand, ["appDefinitions"]);
        assert_eq!(
            q.expand_select("APPDEFINITIONS"),
            ["id", "teamsAppId", "version", "authorization"]
        );
        assert!(q.expand_select("teamsApp").is_empty());
        let q = Query::parse(Some("$expand=teamsApp($filter=x eq 'y';$select=id)")).unwrap();
        assert_eq!(q.expand_select("teamsApp"), ["id"]);
        assert!(Query::parse(Some("$expand=appDefinitions($select=id,,version)")).is_err());
        assert!(parse_expand("a,,b").is_err());
    }

    #[test]
    fn query_parses_encoded_options_and_round_trips_next_link() {
        let q = Query::parse(Some(
            "$expand=teamsApp,teamsAppDefinition&$filter=teamsApp%2Fid%20eq%20'abc'&$top=2",
        ))
        .unwrap();
        assert!(q.expands("teamsapp") && q.expands("teamsAppDefinition"));
        assert_eq!(q.filter, vec![clause("teamsApp/id", "abc")]);
        assert_eq!(q.top, Some(2));
        let link = q.next_link("http://h/v1.0/users/u/teamwork/installedApps", 4);
        let (_, query) = link.split_once('?').unwrap();
        let again = Query::parse(Some(query)).unwrap();
        assert_eq!(again.skip, 4);
        assert_eq!(again.filter, q.filter);
        assert_eq!(again.expand, q.expand);
        assert_eq!(again.top, Some(2));
        assert!(!query.contains(' '), "{query}");
    }

    #[test]
    fn select_count_and_id_cursors_round_trip_through_next_link() {
        let q = Query::parse(Some("$select=id,%20userPrincipalName&$count=true&$top=999")).unwrap();
        assert_eq!(q.select, ["id", "userPrincipalName"]);
        assert!(q.count);
        let cursor = Cursor {
            after: "u'1".into(),
            issued_ms: 7,
            omit: None,
        };
        let link = q.next_link_at("http://h/v1.0/groups/g", &Resume::After(cursor.clone()));
        let (_, query) = link.split_once('?').unwrap();
        let again = Query::parse(Some(query)).unwrap();
        assert_eq!(again.after, Some(cursor));
        assert_eq!(again.skip, 0);
        assert_eq!(
            (again.select, again.count, again.top),
            (q.select, true, Some(999))
        );
        assert!(!query.contains(' '), "{query}");
        for bad in ["$select=id,,mail", "$count=maybe", "$top=1000"] {
            assert!(Query::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_top_and_skiptoken_are_errors() {
        assert!(Query::parse(Some("$top=0")).is_err());
        assert!(Query::parse(Some("$top=abc")).is_err());
        assert!(Query::parse(Some("$skiptoken=nope")).is_err());
    }

    #[test]
    fn percent_decoding_of_path_segments() {
        assert_eq!(percent_decode("alice%40contoso.com"), "alice@contoso.com");
        assert_eq!(percent_decode("a+b%2Fc"), "a+b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
