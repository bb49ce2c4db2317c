//! The apiserver fixture (tests/fixtures/apiserver) with its own etcd, as a guard.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    net::TcpListener,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tempfile::TempDir;

use crate::{fixtures_dir, sid_dir};

/// A running etcd and apiserver fixture on loopback ports; both killed on drop.
pub struct ApiServer {
    server: Child,
    etcd: Child,
    /// How the server was started, to start it again.
    command: Vec<std::ffi::OsString>,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// The bearer token it accepts.
    pub token: String,
    /// A kubeconfig for it (the token, and the self-signed certificate not verified).
    pub kubeconfig: PathBuf,
    dir: TempDir,
}

impl ApiServer {
    /// Starts a fresh etcd (its own data folder) and apiserver fixture build `build`
    /// (see [`crate::APISERVER_BUILDS`]), and waits until the apiserver is ready.
    pub fn start(build: &str) -> Self {
        Self::start_with_args(build, &[])
    }

    /// [`ApiServer::start`] with more apiserver flags (e.g. `-memprofilerate=4096`).
    pub fn start_with_args(build: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (client, peer) = (free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let etcd_bin = sid_dir().join("usr/bin/etcd");
        let mut etcd = dies_with_parent(&mut Command::new(&etcd_bin))
            .arg("--data-dir")
            .arg(dir.path().join("etcd"))
            .args(["--listen-client-urls", &etcd_url])
            .args(["--advertise-client-urls", &etcd_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(log_file(&dir, "etcd.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", etcd_bin.display()));
        wait_for_etcd(&mut etcd, client, &dir);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let token = format!("apiprof-{}-{nanos}", std::process::id());
        let mut command: Vec<std::ffi::OsString> = vec![fixtures_dir().join(build).into()];
        command.extend(["-etcd", &etcd_url, "-token", &token, "-cert-dir"].map(Into::into));
        command.push(dir.path().join("certs").into());
        command.extend(["-secure-port".into(), free_port().to_string().into()]);
        command.extend(args.iter().map(Into::into));
        let (server, url) = spawn_server(&command, &dir);
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\n\
                 clusters: [{{name: fixture, cluster: {{server: \"{url}\", insecure-skip-tls-verify: true}}}}]\n\
                 users: [{{name: apiprof, user: {{token: \"{token}\"}}}}]\n\
                 contexts: [{{name: fixture, context: {{cluster: fixture, user: apiprof, namespace: default}}}}]\n\
                 current-context: fixture\n"
            ),
        )
        .expect("writing the kubeconfig");
        Self {
            server,
            etcd,
            command,
            url,
            token,
            kubeconfig,
            dir,
        }
    }

    /// Stops the server (SIGTERM, as a rolling restart does) and starts it again on the
    /// same port, etcd and token; returns once it is ready.
    pub fn restart(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.server.id() as i32, libc::SIGTERM) };
        self.server
            .wait()
            .expect("waiting for the apiserver to stop");
        let (server, url) = spawn_server(&self.command, &self.dir);
        assert_eq!(url, self.url, "the restarted apiserver listens elsewhere");
        self.server = server;
    }

    /// The apiserver's process id.
    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// Its etcd's process id.
    pub fn etcd_pid(&self) -> u32 {
        self.etcd.id()
    }

    /// A kube-rs client of this server, from its kubeconfig.
    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .expect("reading the fixture's kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("a kube config from the fixture's kubeconfig");
        kube::Client::try_from(config).expect("a kube client of the fixture")
    }

    /// Creates Pod `namespace/name` owned by `owner` (kind, name) with `labels`, then
    /// gives it `ip` through pods/status, as the kubelet does.
    pub async fn create_pod(
        &self,
        namespace: &str,
        name: &str,
        owner: (&str, &str),
        labels: serde_json::Value,
        ip: &str,
    ) {
        let api: Api<Pod> = Api::namespaced(self.kube_client().await, namespace);
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                    "uid": format!("uid-{}", owner.1), "controller": true,
                }],
            },
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
        }))
        .expect("a Pod");
        api.create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("creating {namespace}/{name}: {e}"));
        let status = json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}], "phase": "Running"}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap_or_else(|e| panic!("setting the IP of {namespace}/{name}: {e}"));
    }

    /// A `kubectl` (Debian sid's, matching the libraries) using this server, with a
    /// discovery cache of its own.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(sid_dir().join("usr/bin/kubectl"));
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"));
        cmd
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        for child in [&mut self.server, &mut self.etcd] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the server `command` names and waits for its "listening URL" line.
fn spawn_server(command: &[std::ffi::OsString], dir: &TempDir) -> (Child, String) {
    let mut server = dies_with_parent(&mut Command::new(&command[0]))
        .args(&command[1..])
        .stdout(Stdio::piped())
        .stderr(log_file(dir, "apiserver.log"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {:?}: {e}", command[0]));
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("reading the apiserver's first line");
    let Some(url) = line.trim().strip_prefix("listening ").map(str::to_owned) else {
        panic!(
            "{:?} printed {line:?}, expected \"listening https://...\"; its log ends:\n{}\netcd's log ends:\n{}",
            command[0],
            log_tail(dir, "apiserver.log"),
            log_tail(dir, "etcd.log")
        );
    };
    (server, url)
}

/// Waits until `etcd` accepts connections on its client `port`, so the apiserver never
/// starts before its storage (it gives up on an etcd it cannot reach); panics with
/// etcd's log if it exits or is not up within 20 s.
fn wait_for_etcd(etcd: &mut Child, port: u16, dir: &TempDir) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = etcd.try_wait().expect("etcd's status");
        if exited.is_some() || start.elapsed() > std::time::Duration::from_secs(20) {
            panic!(
                "etcd is not serving on port {port} ({exited:?}); its log ends:\n{}",
                log_tail(dir, "etcd.log")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The last 20 lines of log `name` in `dir`.
fn log_tail(dir: &TempDir, name: &str) -> String {
    let log = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Makes the child get SIGKILL when the thread that started it dies, so a test killed
/// before its guard drops leaves no etcd or apiserver (or Prometheus) behind.
pub(crate) fn dies_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    }
}

/// A loopback port free right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

fn log_file(dir: &TempDir, name: &str) -> File {
    File::create(dir.path().join(name)).expect("creating a log file")
}
