//! What the API server accepts in a `TeamsAppInstallation` spec, and the same rules in Rust.
//!
//! The CEL rules and their messages below go into the CRD (`x-kubernetes-validations`), so
//! `kubectl apply` refuses a value that could never work, with a message that says what is
//! accepted. `TeamsAppInstallationSpec::validate` applies the same rules to objects the
//! operator reads: an object stored before the rules existed must get a clear `InvalidSpec`, never
//! a Graph call with a value that changes the request's meaning (`spec.user: ..` is a dot segment
//! that URL normalisation removes, which sends the request to another path).
//!
//! The regular expressions run on the API server (CEL `matches`, RE2): `[0-9]` and `[A-Za-z]`
//! are ASCII there, so full-width digits and accented letters are refused.

use super::interval::parse_interval;

/// An Entra object id (a GUID) or a user principal name (`local@domain`). Entra allows letters,
/// digits and `' . - _ ! # ^ ~` in a UPN's local part, not starting or ending with `.`; `$` is
/// accepted too (`$`-prefixed UPNs exist). Guests look like `ann_fabrikam.com#EXT#@contoso.onmicrosoft.com`.
pub const USER_RULE: &str = r#"self.matches("^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9'_!#^~$-]([A-Za-z0-9'._!#^~$-]*[A-Za-z0-9'_!#^~$-])?@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)*)$")"#;
pub const USER_MESSAGE: &str = "spec.user must be an Entra object id (a GUID like 22222222-2222-2222-2222-222222222222) or a user principal name like alice@contoso.com: letters, digits and ' . - _ ! # ^ ~ $ before the @ (not starting or ending with a dot), letters, digits, - and . after it; no spaces";
/// [`USER_RULE`] for every item of a list of users.
pub fn all_users_rule() -> String {
    format!("self.all(u, {})", USER_RULE.replacen("self", "u", 1))
}

/// Entra's documented limit for a UPN: 64 characters, `@`, 48 characters.
pub const USER_MAX_LENGTH: usize = 113;

/// Dotted decimal numbers, as Teams app manifests version apps. Components of at most 18 digits
/// always fit the operator's numeric comparison (u64).
pub const TARGET_VERSION_RULE: &str = r#"self.matches("^[0-9]{1,18}([.][0-9]{1,18}){0,3}$")"#;
pub const TARGET_VERSION_MESSAGE: &str = "spec.targetVersion must be 1 to 4 dot-separated numbers of ASCII digits (at most 18 digits each) like 1.4.0, without a v prefix; omit it to follow the latest published version";
pub const TARGET_VERSION_MAX_LENGTH: usize = 64;

/// At most 9 digits per number, so no accepted value overflows [`parse_interval`].
pub const INTERVAL_RULE: &str = r#"self.matches("^([0-9]{1,9}(ms|s|m|h))+$")"#;
pub const INTERVAL_MESSAGE: &str = "spec.interval must be a duration like 30m, 1h30m, 90s or 1500ms: numbers of at most 9 digits, each followed by a unit ms, s, m or h";
pub const INTERVAL_MAX_LENGTH: usize = 64;

/// A spec the API server would refuse today; the message is the CRD rule's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidSpec {
    /// The offending field, e.g. `spec.user`.
    pub field: &'static str,
    pub message: String,
}

pub(super) fn invalid(field: &'static str, message: &str) -> InvalidSpec {
    InvalidSpec {
        field,
        message: message.to_string(),
    }
}

/// [`USER_RULE`] and [`USER_MAX_LENGTH`].
pub fn is_valid_user(user: &str) -> bool {
    user.len() <= USER_MAX_LENGTH && (is_guid(user) || is_upn(user))
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_upn(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'._!#^~$-".contains(&b));
    let domain_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    local_ok && domain_ok
}

/// [`TARGET_VERSION_RULE`] and [`TARGET_VERSION_MAX_LENGTH`].
pub fn is_valid_target_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    version.len() <= TARGET_VERSION_MAX_LENGTH
        && parts.len() <= 4
        && parts
            .iter()
            .all(|p| (1..=18).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// [`INTERVAL_RULE`] and [`INTERVAL_MAX_LENGTH`]; every value accepted also parses.
pub fn is_valid_interval(interval: &str) -> bool {
    if interval.len() > INTERVAL_MAX_LENGTH || interval.is_empty() {
        return false;
    }
    let mut rest = interval;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&digits) {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        let Some(unit) = unit else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    parse_interval(interval).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_entra_accepts_pass() {
        for good in [
            "alice@contoso.com",
            "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "o'neil@contoso.com",
            "$adm@contoso.com",
            "22222222-2222-2222-2222-222222222222",
            "3F7A2B8E-0000-4000-8000-ABCDEFabcdef",
            "a.b-c~d^e!f@sub-1.contoso.com",
        ] {
            assert!(is_valid_user(good), "{good:?} should pass");
        }
    }

    #[test]
    fn users_that_could_never_work_are_refused() {
        for bad in [
            "",
            " ",
            ".",
            "..",
            "alice",
            " alice@contoso.com",
            "alice@contoso.com ",
            "al ice@contoso.com",
            "alice\t@contoso.com",
            "alice\n@contoso.com",
            "alice\u{7f}@contoso.com",
            ".alice@contoso.com",
            "alice.@contoso.com",
            "@contoso.com",
            "alice@",
            "alice@..",
            "alice@contoso..com",
            "alice@contoso.com.",
            "alice@bob@contoso.com",
            "alice/../x@contoso.com",
            "alice%2F@contoso.com",
            "alice?x=1@contoso.com",
            "józef@contoso.com",
            "2222222-2222-2222-2222-222222222222",
            "22222222-2222-2222-2222-22222222222g",
        ] {
            assert!(!is_valid_user(bad), "{bad:?} should be refused");
        }
        let long = format!("{}@contoso.com", "a".repeat(USER_MAX_LENGTH));
        assert!(!is_valid_user(&long));
    }

    #[test]
    fn target_versions_are_dotted_ascii_numbers() {
        for good in [
            "1",
            "1.4",
            "1.4.0",
            "1.4.0.7",
            "0.9",
            "01.0",
            "999999999999999999.0",
        ] {
            assert!(is_valid_target_version(good), "{good:?} should pass");
            // Every accepted version compares numerically, part by part.
            let parsed = crate::version::AppVersion::parse(good);
            assert!(parsed >= crate::version::AppVersion::parse("0"));
        }
        for bad in [
            "",
            " ",
            "latest",
            "-1",
            "v2",
            "1.",
            ".1",
            "1..0",
            "1.2.3.4.5",
            "1.0-beta",
            "１.０",
            "1.0 ",
            "1e3",
            "9999999999999999999",
        ] {
            assert!(!is_valid_target_version(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn intervals_accepted_always_parse() {
        for good in [
            "30m",
            "1h30m",
            "90s",
            "1500ms",
            "999999999h",
            "1ms1s1m1h",
            "0s",
        ] {
            assert!(is_valid_interval(good), "{good:?} should pass");
        }
        for bad in [
            "",
            "m",
            "30",
            "1.5h",
            "-1m",
            "1h 30m",
            " 30m",
            "1d",
            "9999999999h",
            "99999999999999999999h",
            "１m",
        ] {
            assert!(!is_valid_interval(bad), "{bad:?} should be refused");
        }
        // The longest value the CRD allows, of the largest numbers: still no overflow.
        let longest = "999999999h".repeat(INTERVAL_MAX_LENGTH / 10);
        assert!(is_valid_interval(&longest));
    }
}
