//! Graph's id formats for Teams app installations and definitions.
//!
//! Graph derives both ids from the objects they join, base64 (standard alphabet, padded) over
//! `##`-separated parts. Clients must treat them as opaque; the simulator reproduces the format so
//! that a client which (wrongly) relies on a fixed shape, or on ids being URL-safe, is caught the
//! same way real Graph would catch it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `base64("{userObjectId}##{catalogAppId}")`: stable across upgrades, since it names the pair
/// (user, app), not the installed version.
pub fn installation_id(user_object_id: &str, catalog_app_id: &str) -> String {
    STANDARD.encode(format!("{user_object_id}##{catalog_app_id}"))
}

/// `base64("{catalogAppId}##{version}##{publishingState}")`.
pub fn definition_id(catalog_app_id: &str, version: &str, publishing_state: &str) -> String {
    STANDARD.encode(format!("{catalog_app_id}##{version}##{publishing_state}"))
}

/// Splits an installation id back into `(userObjectId, catalogAppId)`; `None` for anything that is
/// not one of ours.
pub fn parse_installation_id(id: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(id.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, app) = text.split_once("##")?;
    if user.is_empty() || app.is_empty() || app.contains("##") {
        return None;
    }
    Some((user.to_string(), app.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "22222222-2222-2222-2222-222222222222";
    const APP: &str = "33333333-3333-3333-3333-333333333333";

    #[test]
    fn installation_id_is_padded_standard_base64_of_user_and_app() {
        let id = installation_id(USER, APP);
        assert_eq!(
            STANDARD.decode(&id).unwrap(),
            format!("{USER}##{APP}").as_bytes()
        );
        assert!(id.ends_with('='), "76 bytes of input need padding: {id}");
        assert_eq!(parse_installation_id(&id), Some((USER.into(), APP.into())));
    }

    #[test]
    fn definition_id_carries_version_and_state() {
        let id = definition_id(APP, "1.0.0", "published");
        assert_eq!(
            String::from_utf8(STANDARD.decode(id).unwrap()).unwrap(),
            format!("{APP}##1.0.0##published")
        );
    }

    #[test]
    fn foreign_ids_do_not_parse() {
        for bad in [
            "",
            "not base64!",
            "YWJj",
            &STANDARD.encode("a##"),
            &STANDARD.encode("##b"),
        ] {
            assert_eq!(parse_installation_id(bad), None, "{bad}");
        }
    }
}
