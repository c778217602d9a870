//! Graph calls as the simulator logged them, by throttling class and by status, and the floor:
//! the least time Graph's budgets allow for the fewest calls that do the work.

use std::collections::BTreeMap;

use graph_sim::RequestRecord;
use teams_app_operator::graph::CallClass;

use crate::knobs::Budgets;
use crate::tenant::Plan;

/// The JSON name of a class (the simulator's `budgets` keys).
fn class_name(class: CallClass) -> &'static str {
    match class {
        CallClass::InstalledAppsRead => "installedAppsRead",
        CallClass::CatalogRead => "catalogRead",
        CallClass::Install => "install",
        CallClass::Delete => "delete",
        CallClass::Other => "other",
        CallClass::DirectoryRead => "directoryRead",
    }
}

/// A Graph call (not a token request, not a `$batch` envelope — its items are logged one by one).
fn graph_call(r: &RequestRecord) -> Option<CallClass> {
    if r.path.contains("/oauth2/") || r.path.ends_with("/$batch") {
        return None;
    }
    // The operator's own classifier, on the path relative to the version root.
    let path = r
        .path
        .strip_prefix("/v1.0")
        .or_else(|| r.path.strip_prefix("/beta"))
        .unwrap_or(&r.path);
    Some(CallClass::of(&r.method, path))
}

#[derive(Debug, Default, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub total: usize,
    pub by_class: BTreeMap<&'static str, usize>,
    pub by_status: BTreeMap<u16, usize>,
    pub throttled: usize,
}

impl Tally {
    pub fn of<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> Tally {
        let mut t = Tally::default();
        for class in CallClass::ALL {
            t.by_class.insert(class_name(class), 0);
        }
        for r in records {
            let Some(class) = graph_call(r) else { continue };
            t.total += 1;
            *t.by_class.entry(class_name(class)).or_default() += 1;
            *t.by_status.entry(r.status).or_default() += 1;
            t.throttled += usize::from(r.status == 429);
        }
        t
    }

    pub fn class(&self, name: &str) -> usize {
        self.by_class.get(name).copied().unwrap_or(0)
    }
}

/// Whether a record is a Graph call addressed to `upn`.
pub fn for_user(r: &RequestRecord, upn: &str) -> bool {
    graph_call(r).is_some()
        && r.user
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(upn))
}

/// Whether a record is a Graph call of `class` (the simulator's `budgets` name).
pub fn is(r: &RequestRecord, class: &str) -> bool {
    graph_call(r).is_some_and(|c| class_name(c) == class)
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Floor {
    /// max over classes of minimal calls ÷ the class's budget.
    pub seconds: f64,
    /// The class that sets it.
    pub class: &'static str,
    pub minimal_calls: BTreeMap<&'static str, usize>,
}

pub fn floor(plan: &Plan, budgets: &Budgets) -> Floor {
    let budget = |class: &str| match class {
        "installedAppsRead" => budgets.installed_apps_read,
        "catalogRead" => budgets.catalog_read,
        "install" => budgets.install,
        "delete" => budgets.delete,
        _ => budgets.other,
    };
    let minimal = plan.minimal_calls();
    let (class, seconds) = minimal
        .iter()
        .map(|(c, n)| (*c, *n as f64 / f64::from(budget(c).max(1))))
        .fold(("installedAppsRead", 0.0), |best, x| {
            if x.1 > best.1 { x } else { best }
        });
    Floor {
        seconds,
        class,
        minimal_calls: minimal.into_iter().collect(),
    }
}
