//! The harness of the in-cluster tier: one node (`scripts/cluster up`) per test binary, releases of
//! the chart installed on it with helm as a user would, a Graph simulator on the host where pods
//! reach it, and the pod's logs and events printed whenever a test fails.
//!
//! The node is started on first use and taken down by `scripts/cluster`'s own watchdog once this
//! process is gone, however it ended (`--watch-pid`): Rust never runs destructors of statics. A
//! node that cannot start fails every test with the reason; nothing skips.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use graph_sim::{Seed, SimOptions, SimServer};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use teams_app_operator::api::TeamsAppInstallation;

pub const TENANT: &str = "00000000-0000-0000-0000-000000000001";
pub const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "s3cret";
pub const BOT: &str = "33333333-3333-3333-3333-333333333333";
pub const CHART: &str = "charts/teams-app-operator";
/// The Secret the README's install creates.
pub const SECRET_NAME: &str = "teams-app-operator-graph";

pub struct Cluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// The host as pods see it (the bridge's address).
    pub gateway: IpAddr,
    /// The operator image `scripts/cluster` built from the Dockerfile and imported.
    pub image: String,
    /// Where helm and the Kubernetes binaries are.
    pub bin_dir: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Operators watch TeamsAppInstallations cluster-wide, as the README installs them: two releases
/// at once would reconcile each other's resources. One test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The node, started on first use (minutes on a machine that never built it).
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(reason) => panic!("the test cluster is not available:\n{reason}"),
    }
}

fn start() -> Result<Cluster, String> {
    let dir = tempfile::Builder::new()
        .prefix("tao-cluster.")
        .tempdir()
        .map_err(|e| format!("creating the cluster's directory: {e}"))?
        // scripts/cluster's watchdog deletes it (--remove-dir) once this process is gone.
        .keep();
    let pid = std::process::id().to_string();
    let script = repo_root().join("scripts/cluster");
    let mut child = Command::new(&script)
        .arg("up")
        .arg(&dir)
        .args(["--watch-pid", &pid, "--remove-dir"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    // Its progress (builds take minutes the first time) is shown as it happens, past the
    // harness's output capture.
    let mut stderr = String::new();
    if let Some(pipe) = child.stderr.take() {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = writeln!(std::io::stderr(), "{line}");
            stderr.push_str(&line);
            stderr.push('\n');
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for scripts/cluster up: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`scripts/cluster up {}` failed ({}):\n{stderr}",
            dir.display(),
            output.status
        ));
    }
    let env = std::fs::read_to_string(dir.join("env"))
        .map_err(|e| format!("reading {}/env: {e}", dir.display()))?;
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(str::to_string)
            .ok_or_else(|| format!("{name} missing from {}/env", dir.display()))
    };
    let gateway = var("TAO_CLUSTER_GATEWAY")?
        .parse()
        .map_err(|e| format!("TAO_CLUSTER_GATEWAY: {e}"))?;
    let bin_dir = Command::new(repo_root().join("scripts/control-plane"))
        .arg("bin-dir")
        .output()
        .map_err(|e| format!("scripts/control-plane bin-dir: {e}"))?;
    Ok(Cluster {
        kubeconfig: PathBuf::from(var("KUBECONFIG")?),
        gateway,
        image: var("TAO_CLUSTER_IMAGE")?,
        bin_dir: PathBuf::from(String::from_utf8_lossy(&bin_dir.stdout).trim()),
        dir,
    })
}

impl Cluster {
    pub async fn client(&self) -> kube::Client {
        let yaml = std::fs::read_to_string(&self.kubeconfig).expect("the cluster's kubeconfig");
        let kubeconfig = Kubeconfig::from_yaml(&yaml).expect("a valid kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("a usable kubeconfig");
        kube::Client::try_from(config).expect("a kube client")
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        let path = format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .current_dir(repo_root())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", path)
            .stdin(Stdio::null());
        command
    }

    pub fn kubectl(&self) -> Command {
        self.command(Path::new("kubectl"))
    }

    pub fn helm(&self) -> Command {
        self.command(&self.bin_dir.join("helm"))
    }

    /// The image's repository and tag, for the chart's `image.*` values.
    pub fn image_values(&self) -> (String, String) {
        let (repo, tag) = self.image.rsplit_once(':').expect("image name:tag");
        (repo.to_string(), tag.to_string())
    }

    /// `ctr` on the node's containerd (namespace k8s.io, where the kubelet's containers are).
    pub fn ctr(&self) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.dir.join("containerd/containerd.sock"))
            .args(["--namespace", "k8s.io"]);
        command
    }
}

/// Runs a command to completion off the async runtime (the simulator serves on it meanwhile).
pub async fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the command's thread")
        .unwrap_or_else(|e| panic!("running {shown}: {e}"))
}

/// Like `run`, but a failure panics with the command's output.
pub async fn must(command: Command) -> String {
    let shown = format!("{command:?}");
    let output = run(command).await;
    if !output.status.success() {
        panic!(
            "{shown} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The tenant every test uses: alice, bob and carol, Contoso Bot 1.0.0 published, nothing installed.
pub async fn start_sim(gateway: IpAddr) -> SimServer {
    let seed = format!(
        r#"
tenants:
  - id: {TENANT}
    clients: [{{id: {CLIENT_ID}, secret: {SECRET}}}]
    users:
      - {{id: 22222222-2222-2222-2222-222222222222, userPrincipalName: alice@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222223, userPrincipalName: bob@contoso.com}}
      - {{id: 22222222-2222-2222-2222-222222222224, userPrincipalName: carol@contoso.com}}
    apps:
      - {{id: {BOT}, externalId: com.contoso.bot, displayName: Contoso Bot,
         distributionMethod: organization, definitions: [{{version: "1.0.0", publishingState: published}}]}}
    installations: []
"#
    );
    let seed = Seed::from_yaml_str(&seed).expect("the test seed parses");
    // On the bridge's address: the pods reach the host there.
    SimServer::start(SocketAddr::new(gateway, 0), seed, SimOptions::default())
        .await
        .expect("graph-sim starts on the node's bridge address")
}

/// The Graph writes the simulator served: (installs, upgrades, uninstalls).
pub fn graph_writes(sim: &SimServer) -> (usize, usize, usize) {
    let requests = sim.requests();
    let count = |method: &str, matches: &dyn Fn(&str) -> bool| {
        requests
            .iter()
            .filter(|r| r.method == method && matches(&r.path))
            .count()
    };
    (
        count("POST", &|p| p.ends_with("/installedApps")),
        count("POST", &|p| p.ends_with("/upgrade")),
        count("DELETE", &|p| p.contains("/installedApps/")),
    )
}

pub fn is_ready(obj: &TeamsAppInstallation) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == obj.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

pub fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Polls `check` every 250 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A release of the chart in a namespace of its own, installed the README's way. Dropping it
/// prints the pods' logs and the namespace's events when the test is failing, then uninstalls it
/// and deletes the namespace (an operator or a resource left behind would meet the next test's).
pub struct Release {
    pub name: String,
    pub namespace: String,
    cluster: &'static Cluster,
}

impl Release {
    pub fn new(cluster: &'static Cluster, prefix: &str) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            name: format!("tao-{prefix}"),
            namespace: format!("{prefix}-{}", &suffix[..8]),
            cluster,
        }
    }

    /// The README's "Installing with Helm": the namespace, the Secret with the client secret, then
    /// `helm install` with the tenant, client and Secret — plus this environment's values (the
    /// image built here, Graph at the simulator) and `extra` (`--set` arguments), with `--wait`.
    pub async fn install(&self, sim: &SimServer, extra: &[&str]) {
        let c = self.cluster;
        let mut ns = c.kubectl();
        ns.args(["create", "namespace", &self.namespace]);
        must(ns).await;
        let mut secret = c.kubectl();
        secret
            .args([
                "-n",
                &self.namespace,
                "create",
                "secret",
                "generic",
                SECRET_NAME,
            ])
            .arg(format!("--from-literal=client-secret={SECRET}"));
        must(secret).await;
        let mut helm = c.helm();
        helm.args(["install", &self.name, CHART, "-n", &self.namespace])
            .args(self.values(sim))
            .args(extra)
            .args(["--wait", "--timeout", "180s"]);
        self.must(helm, "helm install --wait").await;
        let mut rollout = c.kubectl();
        rollout.args(["-n", &self.namespace, "rollout", "status"]);
        rollout.arg(format!("deploy/{}", self.fullname()));
        rollout.arg("--timeout=60s");
        self.must(rollout, "kubectl rollout status").await;
    }

    /// `--set` arguments: the README's, and what differs on this machine.
    pub fn values(&self, sim: &SimServer) -> Vec<String> {
        let (repo, tag) = self.cluster.image_values();
        let sim_url = format!("http://{}", sim.addr());
        [
            format!("graph.tenantId={TENANT}"),
            format!("graph.clientId={CLIENT_ID}"),
            format!("graph.existingSecret={SECRET_NAME}"),
            format!("image.repository={repo}"),
            format!("image.tag={tag}"),
            format!("graph.url={sim_url}"),
            format!("graph.authorityHost={sim_url}"),
            "controller.verifyInterval=1s".to_string(),
            "logLevel=info\\,teams_app_operator=debug".to_string(),
        ]
        .into_iter()
        .flat_map(|v| ["--set".to_string(), v])
        .collect()
    }

    /// The Deployment's name: `<release>-teams-app-operator`.
    pub fn fullname(&self) -> String {
        format!("{}-teams-app-operator", self.name)
    }

    /// Runs a command that must succeed; a failure shows the pods' logs and events too.
    pub async fn must(&self, command: Command, what: &str) -> String {
        let output = run(command).await;
        if !output.status.success() {
            panic!(
                "{what} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The release's pods that are not being deleted.
    pub async fn pods(&self, client: &kube::Client) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let selector = format!("app.kubernetes.io/instance={}", self.name);
        api.list(&ListParams::default().labels(&selector))
            .await
            .unwrap_or_else(|e| panic!("listing pods: {e}"))
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect()
    }

    /// What a person debugging a failed test looks at first.
    pub fn diagnostics(&self) -> String {
        let c = self.cluster;
        let mut out = String::new();
        let mut show = |title: &str, mut command: Command| {
            let text = match command.output() {
                Ok(o) => format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => format!("({e})"),
            };
            out.push_str(&format!("---- {title} ----\n{text}"));
        };
        let mut pods = c.kubectl();
        pods.args(["-n", &self.namespace, "get", "pods", "-o", "wide"]);
        show("pods", pods);
        let mut logs = c.kubectl();
        logs.args([
            "-n",
            &self.namespace,
            "logs",
            "--all-containers",
            "--prefix",
        ])
        .args(["--tail=200", "-l"])
        .arg(format!("app.kubernetes.io/instance={}", self.name));
        show("pod logs", logs);
        let mut previous = c.kubectl();
        previous
            .args([
                "-n",
                &self.namespace,
                "logs",
                "--previous",
                "--all-containers",
            ])
            .args(["--prefix", "--tail=50", "-l"])
            .arg(format!("app.kubernetes.io/instance={}", self.name));
        show("logs of restarted containers", previous);
        let mut events = c.kubectl();
        events.args([
            "-n",
            &self.namespace,
            "get",
            "events",
            "--sort-by=.lastTimestamp",
        ]);
        show("events", events);
        let mut describe = c.kubectl();
        describe
            .args(["-n", &self.namespace, "describe", "pods", "-l"])
            .arg(format!("app.kubernetes.io/instance={}", self.name));
        show("kubectl describe pods", describe);
        out
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(
                std::io::stderr(),
                "==== release {} in {} (the test failed) ====\n{}",
                self.name,
                self.namespace,
                self.diagnostics()
            );
        }
        let mut uninstall = self.cluster.helm();
        uninstall.args([
            "uninstall",
            &self.name,
            "-n",
            &self.namespace,
            "--wait",
            "--ignore-not-found",
        ]);
        let _ = uninstall.output();
        // Its TeamsAppInstallations too: the next test's operator watches every namespace.
        let mut namespace = self.cluster.kubectl();
        namespace.args(["delete", "namespace", &self.namespace]);
        namespace.args(["--ignore-not-found", "--timeout=120s"]);
        let _ = namespace.output();
    }
}
