//! The in-cluster tier: the operator as users run it — the image built from the repository's
//! `Dockerfile`, the chart installed with `helm install --wait` on a real node (`scripts/cluster`:
//! kubelet + containerd + scheduler + controller-manager), the pod's real probes, security context,
//! in-cluster config and ServiceAccount token, and leader election between two pods. Graph is a
//! simulator on the host, reached by the pods at the node bridge's address.
//!
//! Needs root (a kubelet). The first run on a machine builds the Kubernetes binaries (minutes).
//! Nothing here skips: a node that cannot start fails every test with the reason.

#[path = "in_cluster/cluster.rs"]
mod cluster;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use cluster::{BOT, Release, TENANT, cluster, eventually, graph_writes, is_ready, pod_ready};
use graph_sim::{DefinitionSeed, FaultConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use teams_app_operator::api::TeamsAppInstallation;

const USERS: [&str; 3] = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"];

/// Creates one TeamsAppInstallation of Contoso Bot per user, named after the user.
async fn create_installations(client: &kube::Client, namespace: &str, users: &[&str]) {
    let api: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), namespace);
    for user in users {
        let obj: TeamsAppInstallation = serde_json::from_value(json!({
            "apiVersion": "teamsapps.dev/v1alpha1",
            "kind": "TeamsAppInstallation",
            "metadata": {"name": name_of(user)},
            "spec": {"user": user, "app": {"id": BOT}},
        }))
        .expect("a valid TeamsAppInstallation");
        api.create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating the installation for {user}: {e}"));
    }
}

fn name_of(user: &str) -> String {
    format!("contoso-bot-{}", user.split('@').next().unwrap_or(user))
}

/// Waits until every installation in `namespace` is Ready with `version` installed.
async fn wait_installed(client: &kube::Client, namespace: &str, count: usize, version: &str) {
    let api: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), namespace);
    let what = format!("{count} installations Ready at {version} in {namespace}");
    eventually(Duration::from_secs(90), &what, || {
        let api = api.clone();
        async move {
            let items = api.list(&ListParams::default()).await.ok()?.items;
            let done = items.iter().filter(|o| {
                is_ready(o)
                    && o.status
                        .as_ref()
                        .and_then(|s| s.installed_version.as_deref())
                        == Some(version)
            });
            (items.len() == count && done.count() == count).then_some(())
        }
    })
    .await;
}

/// The one running, Ready pod of a single-replica release.
async fn the_pod(release: &Release, client: &kube::Client) -> Pod {
    let pods = release.pods(client).await;
    assert_eq!(pods.len(), 1, "one operator pod");
    let pod = pods.into_iter().next().expect("one pod");
    assert!(
        pod_ready(&pod),
        "the pod is Ready after helm install --wait"
    );
    pod
}

fn container_status(pod: &Pod) -> &k8s_openapi::api::core::v1::ContainerStatus {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .expect("a container status")
}

// --------------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_with_wait_and_the_pod_reconciles() {
    let _serial = cluster::serial().await;
    let c = cluster();
    let client = c.client().await;
    let sim = cluster::start_sim(c.gateway).await;
    let release = Release::new(c, "install");
    release.install(&sim, &[]).await;

    let pod = the_pod(&release, &client).await;
    assert_eq!(container_status(&pod).restart_count, 0, "no restarts");
    assert_eq!(
        container_status(&pod).image,
        c.image,
        "the image built from the Dockerfile"
    );

    create_installations(&client, &release.namespace, &USERS[..1]).await;
    wait_installed(&client, &release.namespace, 1, "1.0.0").await;
    assert_eq!(graph_writes(&sim), (1, 0, 0), "one install in Graph");
    // The operator wrote its Events with its ServiceAccount token, through the in-cluster config.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), &release.namespace);
    eventually(Duration::from_secs(30), "an Installed Event", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some("Installed"))
                .then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_is_not_ready_until_its_cache_synced() {
    let _serial = cluster::serial().await;
    let c = cluster();
    let client = c.client().await;
    let sim = cluster::start_sim(c.gateway).await;
    // Graph answers slowly: the operator signs in before it starts its controller, so for these
    // seconds the pod runs and is live but has no cache yet — twice the readiness probe's period
    // (10s), so a probe meets the process up but unready.
    sim.set_faults(FaultConfig {
        latency_ms: Some(20_000),
        ..FaultConfig::default()
    })
    .expect("latency fault");
    let release = Release::new(c, "probes");
    release.install(&sim, &[]).await;
    sim.set_faults(FaultConfig::default()).expect("faults off");

    let pod = the_pod(&release, &client).await;
    let name = pod.metadata.name.clone().expect("pod name");
    assert_eq!(
        container_status(&pod).restart_count,
        0,
        "the liveness probe left it alone"
    );
    // The readiness probe asked /readyz and was told no while the process ran.
    let events: Api<Event> = Api::namespaced(client.clone(), &release.namespace);
    let failed_probes: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(&name))
        .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
        .filter_map(|e| e.message)
        .collect();
    assert!(
        failed_probes
            .iter()
            .any(|m| m.contains("Readiness probe failed") && m.contains("503")),
        "a failed readiness probe (503) before Ready; Unhealthy events: {failed_probes:?}"
    );
    // And it became Ready only after its log says the cache synced.
    let mut logs = c.kubectl();
    logs.args(["-n", &release.namespace, "logs", &name, "--timestamps"]);
    let logs = release.must(logs, "kubectl logs").await;
    let synced_at = logs
        .lines()
        .find(|l| l.contains("resource cache synced"))
        .and_then(|l| l.split_whitespace().next())
        .map(|t| t.parse::<jiff::Timestamp>().expect("a kubectl timestamp"))
        .unwrap_or_else(|| panic!("no 'resource cache synced' in the pod's log:\n{logs}"));
    let ready_at = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
        .expect("the Ready condition's transition time");
    // The condition's time has whole seconds.
    assert!(
        ready_at.as_second() >= synced_at.as_second(),
        "Ready at {ready_at} but the cache synced at {synced_at}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_runs_as_65532_with_a_read_only_root_and_no_capabilities() {
    let _serial = cluster::serial().await;
    let c = cluster();
    let client = c.client().await;
    let sim = cluster::start_sim(c.gateway).await;
    let release = Release::new(c, "security");
    release.install(&sim, &[]).await;
    let pod = the_pod(&release, &client).await;

    // The container's main process as the kernel sees it: from containerd's task list.
    let id = container_status(&pod)
        .container_id
        .as_deref()
        .and_then(|id| id.strip_prefix("containerd://"))
        .expect("a containerd container id")
        .to_string();
    let mut tasks = c.ctr();
    tasks.args(["tasks", "ls"]);
    let tasks = release.must(tasks, "ctr tasks ls").await;
    let pid: u32 = tasks
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("container {id} not among the node's tasks:\n{tasks}"));

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(field("Uid"), "65532 65532 65532 65532", "runs as UID 65532");
    assert_eq!(field("Gid"), "65532 65532 65532 65532", "runs as GID 65532");
    assert_eq!(
        field("CapEff"),
        "0000000000000000",
        "no effective capabilities"
    );
    assert_eq!(
        field("CapPrm"),
        "0000000000000000",
        "no permitted capabilities"
    );
    assert_eq!(field("NoNewPrivs"), "1", "no privilege escalation");
    assert_eq!(field("Seccomp"), "2", "a seccomp filter (RuntimeDefault)");

    // Its root filesystem is mounted read-only; /tmp (an emptyDir) is the writable place.
    let mountinfo =
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("/proc/PID/mountinfo");
    let options = |mount_point: &str| {
        mountinfo
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .rfind(|f| f.get(4) == Some(&mount_point))
            .map(|f| f.get(5).copied().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no {mount_point} mount in:\n{mountinfo}"))
    };
    assert!(
        options("/").split(',').any(|o| o == "ro"),
        "the root filesystem is read-only: {}",
        options("/")
    );
    assert!(
        options("/tmp").split(',').any(|o| o == "rw"),
        "/tmp is writable: {}",
        options("/tmp")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_upgrade_to_a_new_value_rolls_the_pod() {
    let _serial = cluster::serial().await;
    let c = cluster();
    let client = c.client().await;
    let sim = cluster::start_sim(c.gateway).await;
    let release = Release::new(c, "upgrade");
    release.install(&sim, &[]).await;
    let before = the_pod(&release, &client).await;
    let before_name = before.metadata.name.clone().expect("pod name");

    let mut upgrade = c.helm();
    upgrade
        .args([
            "upgrade",
            &release.name,
            cluster::CHART,
            "-n",
            &release.namespace,
        ])
        .args(["--reuse-values", "--set", "controller.concurrency=4"])
        .args(["--wait", "--timeout", "180s"]);
    release.must(upgrade, "helm upgrade --wait").await;
    let mut rollout = c.kubectl();
    rollout
        .args([
            "-n",
            &release.namespace,
            "rollout",
            "status",
            "--timeout=60s",
        ])
        .arg(format!("deploy/{}", release.fullname()));
    release.must(rollout, "kubectl rollout status").await;

    let after = eventually(Duration::from_secs(60), "the old pod gone", || {
        let (release, client, before_name) = (&release, &client, &before_name);
        async move {
            let pods = release.pods(client).await;
            (pods.len() == 1 && pods[0].metadata.name.as_ref() != Some(before_name))
                .then(|| pods[0].clone())
        }
    })
    .await;
    assert!(pod_ready(&after), "the new pod is Ready");
    let env = after.spec.as_ref().expect("pod spec").containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e.name == "CONCURRENCY" && e.value.as_deref() == Some("4")),
        "the new pod has the new value"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release.namespace);
    let deployment = deployments
        .get(&release.fullname())
        .await
        .expect("deployment");
    assert_eq!(
        deployment.status.and_then(|s| s.observed_generation),
        deployment.metadata.generation,
        "the rollout is complete"
    );

    // The new pod does the job.
    create_installations(&client, &release.namespace, &USERS[..1]).await;
    wait_installed(&client, &release.namespace, 1, "1.0.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fail_over_without_duplicate_graph_writes() {
    let _serial = cluster::serial().await;
    let c = cluster();
    let client = c.client().await;
    let sim = cluster::start_sim(c.gateway).await;
    let release = Release::new(c, "failover");
    release.install(&sim, &["--set", "replicaCount=2"]).await;

    let pods = release.pods(&client).await;
    assert_eq!(pods.len(), 2, "two operator pods");
    assert!(
        pods.iter().all(pod_ready),
        "leader and standby are both Ready"
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), &release.namespace);
    let holder = |leases: Api<Lease>, name: String| async move {
        leases
            .get_opt(&name)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
    };
    let names: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let leader = eventually(Duration::from_secs(30), "a pod holds the Lease", || {
        let (leases, name, names) = (leases.clone(), release.fullname(), &names);
        async move { holder(leases, name).await.filter(|h| names.contains(h)) }
    })
    .await;
    assert_eq!(
        leader_metric(&pods, &leader).await,
        (1, 0),
        "one leader, one standby"
    );

    create_installations(&client, &release.namespace, &USERS).await;
    wait_installed(&client, &release.namespace, USERS.len(), "1.0.0").await;

    // The leader pod goes away (as in a node drain): it releases the Lease on SIGTERM and another
    // pod — the standby, or the replacement the ReplicaSet starts at once, whichever asks first —
    // takes over well within the Lease's duration (15s).
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &release.namespace);
    let deleted_at = SystemTime::now();
    pod_api
        .delete(&leader, &DeleteParams::default())
        .await
        .expect("deleting the leader pod");
    let new_leader = eventually(
        Duration::from_secs(15),
        "another pod took the Lease",
        || {
            let (leases, name, leader) = (leases.clone(), release.fullname(), &leader);
            async move { holder(leases, name).await.filter(|h| h != leader) }
        },
    )
    .await;
    let handover = deleted_at.elapsed().unwrap_or_default();

    // The new leader does the work: a new version, each user upgraded exactly once.
    sim.add_definition(
        TENANT,
        BOT,
        serde_json::from_value::<DefinitionSeed>(
            json!({"version": "1.1.0", "publishingState": "published"}),
        )
        .expect("a definition"),
    )
    .expect("publishing 1.1.0");
    let mut annotate = c.kubectl();
    annotate
        .args([
            "-n",
            &release.namespace,
            "annotate",
            "tai",
            "--all",
            "--overwrite",
        ])
        .arg("teamsapps.dev/reconcile-requested-at=failover");
    release.must(annotate, "kubectl annotate").await;
    wait_installed(&client, &release.namespace, USERS.len(), "1.1.0").await;

    assert_eq!(
        graph_writes(&sim),
        (USERS.len(), USERS.len(), 0),
        "one install and one upgrade per user, none repeated across the handover ({handover:?})"
    );
    // Two pods again: the new leader and a standby.
    let pods = eventually(Duration::from_secs(60), "two Ready pods again", || {
        let (release, client) = (&release, &client);
        async move {
            let pods = release.pods(client).await;
            (pods.len() == 2 && pods.iter().all(pod_ready)).then_some(pods)
        }
    })
    .await;
    assert_eq!(
        leader_metric(&pods, &new_leader).await,
        (1, 0),
        "one leader, one standby"
    );
}

/// `leader_election_master_status` of the leader and of the other pod, read from their metrics
/// port (the host reaches pod IPs on the node's bridge).
async fn leader_metric(pods: &[Pod], leader: &str) -> (u32, u32) {
    let mut leader_value = 0;
    let mut others = 0;
    for pod in pods {
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .expect("a pod IP");
        let body = reqwest::get(format!("http://{ip}:8080/metrics"))
            .await
            .and_then(|r| r.error_for_status())
            .expect("the pod's /metrics answers")
            .text()
            .await
            .expect("metrics text");
        let value: u32 = body
            .lines()
            .find(|l| l.starts_with("leader_election_master_status{"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u32)
            .unwrap_or_else(|| panic!("no leader_election_master_status in:\n{body}"));
        if pod.metadata.name.as_deref() == Some(leader) {
            leader_value += value;
        } else {
            others += value;
        }
    }
    (leader_value, others)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_uninstall_leaves_the_crd_and_the_resources_and_nothing_else() {
    let _serial = cluster::serial().await;
    let c = cluster();
    let client = c.client().await;
    let sim = cluster::start_sim(c.gateway).await;
    let release = Release::new(c, "uninstall");
    release.install(&sim, &[]).await;
    create_installations(&client, &release.namespace, &USERS[..1]).await;
    wait_installed(&client, &release.namespace, 1, "1.0.0").await;

    let mut uninstall = c.helm();
    uninstall.args([
        "uninstall",
        &release.name,
        "-n",
        &release.namespace,
        "--wait",
    ]);
    release.must(uninstall, "helm uninstall --wait").await;

    // Documented: the CRD and the resources stay (the apps stay installed in Graph).
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.get("teamsappinstallations.teamsapps.dev")
        .await
        .expect("the CRD is still there");
    let tais: Api<TeamsAppInstallation> = Api::namespaced(client.clone(), &release.namespace);
    assert!(
        tais.get_opt(&name_of(USERS[0]))
            .await
            .expect("get")
            .is_some(),
        "the resource is still there"
    );
    assert_eq!(
        graph_writes(&sim),
        (1, 0, 0),
        "nothing uninstalled in Graph"
    );

    // Nothing of the release is left, namespaced or cluster-wide, once its pod finished.
    let selector = format!("app.kubernetes.io/instance={}", release.name);
    let kinds = "deployments,replicasets,pods,services,serviceaccounts,secrets,configmaps,roles,\
                 rolebindings,clusterroles,clusterrolebindings,poddisruptionbudgets,networkpolicies,leases";
    let mut left = String::new();
    let gone = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let mut leftovers = c.kubectl();
            leftovers.args(["get", kinds, "-A", "-o", "name", "-l", &selector]);
            left = release.must(leftovers, "kubectl get (leftovers)").await;
            if left.trim().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "objects of the release left after uninstall:\n{left}"
    );
    let mut helm_list = c.helm();
    helm_list.args(["list", "-n", &release.namespace, "-q"]);
    assert_eq!(
        release.must(helm_list, "helm list").await.trim(),
        "",
        "no release"
    );
}
