//! The `resource` of a Teams app installation change notification:
//! `appCatalogs/teamsApps('{teams-app-id}')/installations('{installation-id}')`, as Graph's
//! example payload shows it
//! (<https://learn.microsoft.com/graph/teams-changenotifications-appinstallation>).
//!
//! Installation ids are standard base64 (they may hold `/`, `+` and `=`) and opaque, so the keys
//! are read between the OData key quotes, never by splitting on `/`, and never decoded.

/// The app and the installation a notification is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationRef {
    /// The catalog app id (`teamsApps('…')`).
    pub teams_app_id: String,
    /// The installation id (`installations('…')`), as opaque as Graph says it is.
    pub installation_id: String,
}

/// Reads a notification's `resource`. Graph's own form is the OData key form above; the segment
/// form (`appCatalogs/teamsApps/{app}/installations/{id}`) is read too, for ids without `/`.
/// Segment names match case-insensitively and a leading `/` is ignored. `None` for anything
/// else: such a notification cannot name an installation.
pub fn parse_resource(resource: &str) -> Option<InstallationRef> {
    let rest = resource.trim().trim_start_matches('/');
    let rest = strip_prefix_ignore_case(rest, "appCatalogs/teamsApps")?;
    let (teams_app_id, rest) = key(rest)?;
    let rest = strip_prefix_ignore_case(rest, "/installations")?;
    let (installation_id, rest) = key(rest)?;
    if !rest.is_empty() {
        return None;
    }
    Some(InstallationRef {
        teams_app_id,
        installation_id,
    })
}

/// One key: `('…')` (a doubled quote stands for one, as OData writes it) or `/…` up to the next
/// `/`. Never empty.
fn key(text: &str) -> Option<(String, &str)> {
    let (value, rest) = if let Some(quoted) = text.strip_prefix("('") {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        loop {
            let (i, c) = chars.next()?;
            if c != '\'' {
                value.push(c);
                continue;
            }
            if quoted[i + 1..].starts_with('\'') {
                value.push('\'');
                chars.next();
                continue;
            }
            let after = quoted[i + 1..].strip_prefix(')')?;
            break (value, after);
        }
    } else {
        let segment = text.strip_prefix('/')?;
        let end = segment.find('/').unwrap_or(segment.len());
        (segment[..end].to_string(), &segment[end..])
    };
    (!value.trim().is_empty()).then_some((value, rest))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "19d56a5e-86a2-489b-aa5c-88a60f92b83e";

    fn parsed(app: &str, installation: &str) -> Option<InstallationRef> {
        Some(InstallationRef {
            teams_app_id: app.into(),
            installation_id: installation.into(),
        })
    }

    #[test]
    fn graphs_documented_form() {
        // Microsoft's example id, and one with the `/` and `+` standard base64 allows.
        let id = "N2VlYjVhOTUtZjYwMi00ODYxLWFiNjctNDk3MTRmYTVhMDIwIyMxYzI1NmE2NS04M2E2LTRiNWMtOWNjZi03OGY4YWZiNmYxZTg=";
        let resource = format!("appCatalogs/teamsApps('{APP}')/installations('{id}')");
        assert_eq!(parse_resource(&resource), parsed(APP, id));
        let slashed = "ab/c+d==";
        let resource = format!("/AppCatalogs/TeamsApps('{APP}')/Installations('{slashed}')");
        assert_eq!(parse_resource(&resource), parsed(APP, slashed));
        assert_eq!(
            parse_resource("appCatalogs/teamsApps('a''b')/installations('x')"),
            parsed("a'b", "x")
        );
    }

    #[test]
    fn the_segment_form() {
        let resource = format!("/appCatalogs/teamsApps/{APP}/installations/abc=");
        assert_eq!(parse_resource(&resource), parsed(APP, "abc="));
    }

    #[test]
    fn anything_else_is_not_an_installation() {
        for resource in [
            "",
            "/",
            "users/u/teamwork/installedApps('x')",
            "appCatalogs/teamsApps('a')",
            "appCatalogs/teamsApps('a')/installations",
            "appCatalogs/teamsApps('a')/installations('')",
            "appCatalogs/teamsApps('a')/installations('x'",
            "appCatalogs/teamsApps('a')/installations('x')/more",
            "appCatalogs/teamsApps('')/installations('x')",
            "appCatalogs/teamsApps/a/installations/x/y",
            "appCatalogs/teamsApps('é')/installations('ü",
        ] {
            assert_eq!(parse_resource(resource), None, "{resource}");
        }
    }
}
