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

use tempfile::TempDir;

use crate::{fixtures_dir, sid_dir};

/// A running etcd and apiserver fixture on loopback ports; both killed on drop.
pub struct ApiServer {
    server: Child,
    etcd: Child,
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
        let etcd = dies_with_parent(&mut Command::new(&etcd_bin))
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
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let token = format!("apiprof-{}-{nanos}", std::process::id());
        let path = fixtures_dir().join(build);
        let mut server = dies_with_parent(&mut Command::new(&path))
            .args(["-etcd", &etcd_url, "-token", &token, "-cert-dir"])
            .arg(dir.path().join("certs"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log_file(&dir, "apiserver.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        let mut line = String::new();
        BufReader::new(server.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("reading the apiserver's first line");
        let Some(url) = line.trim().strip_prefix("listening ").map(str::to_owned) else {
            let log = std::fs::read_to_string(dir.path().join("apiserver.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "{build} printed {line:?}, expected \"listening https://...\"; its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        };
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
            url,
            token,
            kubeconfig,
            dir,
        }
    }

    /// The apiserver's process id.
    pub fn pid(&self) -> u32 {
        self.server.id()
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

/// Makes the child get SIGKILL when the thread that started it dies, so a test killed
/// before its guard drops leaves no etcd or apiserver behind.
fn dies_with_parent(cmd: &mut Command) -> &mut Command {
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
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

fn log_file(dir: &TempDir, name: &str) -> File {
    File::create(dir.path().join(name)).expect("creating a log file")
}
