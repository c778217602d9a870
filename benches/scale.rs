//! Scale benchmark: many `TeamsAppInstallation`s on a real kube-apiserver, reconciled by the
//! operator binary against graph-sim. Prints numbers; asserts only that the work got done.
//!
//!   cargo bench --bench scale                          # 2,000 resources
//!   TAO_BENCH_RESOURCES=10000 cargo bench --bench scale
//!   TAO_BENCH_GRAPH_RPS=30 cargo bench --bench scale  # at Graph's documented per-tenant limits
//!
//! Half of the users have the app at 1.0.0 and 1.1.0 is published (each needs one upgrade); the
//! other half have nothing (each needs an install). By default the Graph budget is lifted
//! (`--graph-*-rps 0`) so the numbers are the operator's own speed; at Graph's documented limits
//! (30 reads/s per tenant) the same work is bounded by the budget. `cargo test --all-targets`
//! runs this with 20 resources as a smoke test.

#[path = "../tests/support/mod.rs"]
mod support;

use support::operator::OperatorCommand;

use std::time::{Duration, Instant};

use graph_sim::{Seed, SimOptions, SimServer};
use kube::Api;
use kube::api::{ListParams, PostParams};
use teams_app_operator::api::TeamsAppInstallation;

const TENANT: &str = "00000000-0000-0000-0000-000000000001";
const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
const BOT: &str = "33333333-3333-3333-3333-333333333333";

fn seed(users: usize) -> String {
    let mut yaml = format!(
        "tenants:\n  - id: {TENANT}\n    clients: [{{id: {CLIENT_ID}, secret: s3cret}}]\n    apps:\n      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot, distributionMethod: organization, definitions: [{{version: \"1.0.0\", publishingState: published}}, {{version: \"1.1.0\", publishingState: published}}]}}\n    users:\n"
    );
    for i in 0..users {
        yaml.push_str(&format!(
            "      - {{id: {}, userPrincipalName: user{i}@contoso.com}}\n",
            uuid_for(i)
        ));
    }
    yaml.push_str("    installations:\n");
    for i in (0..users).step_by(2) {
        yaml.push_str(&format!(
            "      - {{user: user{i}@contoso.com, app: {BOT}, version: \"1.0.0\"}}\n"
        ));
    }
    yaml
}

fn uuid_for(i: usize) -> String {
    format!("22222222-2222-2222-2222-{i:012}")
}

/// A memory figure of `/proc/PID/status` (`VmHWM`: peak resident, `VmRSS`: resident now), MiB.
fn memory_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn is_up_to_date(obj: &TeamsAppInstallation) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == obj.metadata.generation
            && s.installed_version.as_deref() == Some("1.1.0")
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

#[tokio::main]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let resources: usize = match std::env::var("TAO_BENCH_RESOURCES") {
        Ok(n) => n.parse().expect("TAO_BENCH_RESOURCES is a number"),
        Err(_) if measuring => 2_000,
        Err(_) => 20,
    };
    let concurrency = std::env::var("TAO_BENCH_CONCURRENCY").unwrap_or_else(|_| "32".into());
    // Requests per second per call class; 0 lifts the budget (the operator's own speed).
    let rps = std::env::var("TAO_BENCH_GRAPH_RPS").unwrap_or_else(|_| "0".into());

    let client = support::client().await;
    let namespace = support::fresh_namespace(&client, "bench").await;
    let sim = SimServer::start(
        "127.0.0.1:0".parse().expect("address"),
        Seed::from_yaml_str(&seed(resources)).expect("bench seed"),
        SimOptions::default(),
    )
    .await
    .expect("graph-sim starts");
    let log = std::env::temp_dir().join(format!("bench-operator-{namespace}.log"));
    let mut operator = OperatorCommand::new(&log)
        .kubeconfig(&support::kubeconfig_path())
        .graph_sim(&sim.base_url(), TENANT, CLIENT_ID, "s3cret")
        .args(["--namespace", &namespace, "--concurrency", &concurrency])
        .args(["--graph-read-rps", &rps, "--graph-write-rps", &rps])
        .args(["--verify-interval", "2s"])
        .env("RUST_LOG", "warn")
        .spawn();

    let api: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), &namespace);
    let started = Instant::now();
    let creates = futures::stream::iter((0..resources).map(|i| {
        let api = api.clone();
        async move {
            let obj: TeamsAppInstallation = serde_json::from_value(serde_json::json!({
                "apiVersion": "teamsapps.dev/v1alpha1",
                "kind": "TeamsAppInstallation",
                "metadata": {"name": format!("user{i}")},
                "spec": {"user": format!("user{i}@contoso.com"), "app": {"id": BOT}},
            }))
            .expect("valid resource");
            api.create(&PostParams::default(), &obj)
                .await
                .unwrap_or_else(|e| panic!("create user{i}: {e}"));
        }
    }));
    use futures::StreamExt;
    creates.buffer_unordered(16).collect::<Vec<()>>().await;
    let created = started.elapsed();

    let deadline = Duration::from_secs(60 + resources as u64);
    let mut ready = 0;
    while started.elapsed() < deadline {
        let list = api.list(&ListParams::default()).await.expect("list");
        ready = list.items.iter().filter(|o| is_up_to_date(o)).count();
        if ready == resources {
            break;
        }
        assert!(
            operator.exited().is_none(),
            "the operator exited; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let converged = started.elapsed();
    let peak = memory_mib(operator.pid(), "VmHWM");
    let resident = memory_mib(operator.pid(), "VmRSS");
    let requests = sim.requests();
    let count = |method: &str, suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    };
    let installs = count("POST", "/installedApps");
    let upgrades = count("POST", "/upgrade");
    let graph_total = requests
        .iter()
        .filter(|r| !r.path.contains("/oauth2/"))
        .count();
    let graph_span = match (requests.first(), requests.last()) {
        (Some(first), Some(last)) => last.time.duration_since(first.time).as_secs_f64(),
        _ => 0.0,
    };
    operator.kill();

    let budget = if rps == "0" {
        "no Graph budget".to_string()
    } else {
        format!("Graph budget {rps} req/s per class")
    };
    println!(
        "scale benchmark: {resources} TeamsAppInstallations, concurrency {concurrency}, {budget}"
    );
    println!("  created in             {:>8.1} s", created.as_secs_f64());
    println!(
        "  all up to date after   {:>8.1} s (from the first create)",
        converged.as_secs_f64()
    );
    println!(
        "  throughput             {:>8.1} resources/s",
        resources as f64 / converged.as_secs_f64()
    );
    println!(
        "  graph requests         {graph_total:>8} ({installs} installs, {upgrades} upgrades)"
    );
    println!("  graph traffic spanned  {graph_span:>8.1} s");
    println!(
        "  at 30 reads/s          {:>8.1} s of Graph read budget",
        (graph_total - installs - upgrades) as f64 / 30.0
    );
    for (what, mib) in [("peak RSS", peak), ("RSS at the end", resident)] {
        match mib {
            Some(mib) => println!("  operator {what:<14}{mib:>8.1} MiB"),
            None => println!("  operator {what:<14}   unknown"),
        }
    }
    assert_eq!(
        ready,
        resources,
        "not all resources converged; see {}",
        log.display()
    );
    assert_eq!(installs, resources / 2, "one install per missing app");
    assert_eq!(
        upgrades,
        resources.div_ceil(2),
        "one upgrade per lagging app"
    );
}
