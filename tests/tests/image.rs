//! The container image `cargo xtask image` writes (`APIPROF_IMAGE`), as an operator's
//! tools see it:
//! - skopeo reads the archive: linux/amd64, entrypoint `apiprof daemon`, user root (uid
//!   0), port 9464/tcp, `PATH`, and the OCI labels (title, description, licenses, the
//!   profiler's version, the commit and its time), in the config and the manifest;
//! - umoci unpacks it to `/usr/local/bin/apiprof`, `/etc/passwd` and `/etc/group` and
//!   nothing else; the binary is static (no ELF interpreter) and is the version built;
//! - that binary's daemon, run under exactly the constraints of the DaemonSet in
//!   `deploy/` (its own mount namespace chrooted into the image's rootfs, the host's
//!   `/proc` for `hostPID`, the hostPath mounts read-only, a read-only root filesystem,
//!   `no_new_privs`, root with only the capabilities the manifest adds, and the
//!   manifest's flags), attributes a Go server's requests exactly; without any one of
//!   the capabilities the manifest adds, it cannot attach.
//!
//! Root only: umoci keeps owners as root does, and the daemon loads eBPF programs.

use std::{
    collections::BTreeSet,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use apiprof_tests::{
    apiprof_bin,
    daemon::Daemon,
    deploy::{one, render},
    goserver::GoServer,
    image, image_path,
    load::Http,
    sandbox::{self, Constraints},
};
use k8s_openapi::api::apps::v1::DaemonSet;
use object::{elf, read::elf::ElfFile64, read::elf::ProgramHeader as _, Endianness};
use serde_json::{json, Value};

const BUILD: &str = "goserver-go1.27";
const USER_AGENT: &str = "image-test/1.0";
const SENT: u64 = 25;
/// The compressed archive stays small: a static binary and two short files.
const MAX_BYTES: u64 = 40 << 20;

/// `apiprof --version` of a binary: `apiprof X.Y.Z`.
fn version_of(binary: &Path) -> String {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    assert!(
        out.status.success(),
        "{} --version: {}",
        binary.display(),
        out.status
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// The commit the image was built from: this checkout's HEAD.
fn head() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running git");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[test]
fn skopeo_shows_the_entrypoint_user_port_platform_and_labels() {
    let archive = image_path();
    let config = image::inspect_config(&archive);
    let run = &config["config"];
    assert_eq!(run["Entrypoint"], json!(["apiprof", "daemon"]));
    assert_eq!(run["User"], "0");
    assert_eq!(run["ExposedPorts"], json!({"9464/tcp": {}}));
    assert_eq!(run["Env"], json!(["PATH=/usr/local/bin"]));
    assert_eq!(run["Cmd"], Value::Null);
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(1)
    );

    let inspect = image::inspect(&archive);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
    let labels = &inspect["Labels"];
    assert_eq!(labels, &run["Labels"]);
    let version = version_of(&apiprof_bin());
    let oci = |key: &str| labels[format!("org.opencontainers.image.{key}")].clone();
    assert_eq!(oci("title"), "apiprof");
    assert_eq!(
        oci("description"),
        "eBPF-assisted load profiler for the Kubernetes API server"
    );
    assert_eq!(oci("licenses"), "MIT OR Apache-2.0");
    let labelled = oci("version");
    assert_eq!(
        format!("apiprof {}", labelled.as_str().expect("a version")),
        version
    );
    assert_eq!(oci("revision"), head());
    assert_eq!(oci("created"), config["created"]);
    assert_eq!(inspect["Created"], config["created"]);
}

#[test]
fn the_archive_is_small() {
    let bytes = std::fs::metadata(image_path()).expect("the image").len();
    println!(
        "image: {} bytes ({:.1} MiB)",
        bytes,
        bytes as f64 / f64::from(1 << 20)
    );
    assert!(bytes < MAX_BYTES, "{bytes} bytes: more than {MAX_BYTES}");
}

/// Every path below `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("reading the rootfs") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            paths.extend(tree(&path).into_iter().map(|p| format!("{name}/{p}")));
        }
        paths.insert(name);
    }
    paths
}

/// Whether the ELF executable at `path` names an interpreter (a dynamic loader).
fn has_interpreter(path: &Path) -> bool {
    let data = std::fs::read(path).expect("reading the binary");
    let elf = ElfFile64::<Endianness>::parse(&*data).expect("an ELF64 executable");
    elf.elf_program_headers()
        .iter()
        .any(|ph| ph.p_type(elf.endian()) == elf::PT_INTERP)
}

#[tokio::test]
async fn the_image_under_the_daemonsets_constraints_attributes_exactly_with_no_capability_to_spare()
{
    let unpacked = image::unpack(&image_path());
    let want: BTreeSet<String> = [
        "etc",
        "etc/group",
        "etc/passwd",
        "usr",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/apiprof",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(tree(&unpacked.rootfs), want);
    let binary = unpacked.rootfs.join("usr/local/bin/apiprof");
    assert!(
        !has_interpreter(&binary),
        "the image's apiprof is not static"
    );
    assert_eq!(version_of(&binary), version_of(&apiprof_bin()));
    let passwd = std::fs::read_to_string(unpacked.rootfs.join("etc/passwd")).expect("passwd");
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");

    let docs = render(".").expect("deploy/ renders");
    let daemonset: DaemonSet =
        serde_json::from_value(one(&docs, "DaemonSet").clone()).expect("a DaemonSet");
    let pod = daemonset
        .spec
        .and_then(|s| s.template.spec)
        .expect("a Pod spec");
    assert_eq!(
        pod.host_pid,
        Some(true),
        "the sandbox shares the host's /proc"
    );
    let container = &pod.containers[0];
    let constraints = Constraints::of(&pod, container);
    assert_eq!(constraints.capabilities, ["SYS_ADMIN", "SYS_PTRACE"]);
    // The manifest's flags, attaching to the fixture instead of kube-apiserver, and
    // listening where the test can reach it (Daemon adds --listen).
    let args = container.args.clone().unwrap_or_default();
    let mut flags: Vec<&str> = Vec::new();
    let mut args = args.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        match arg {
            "--process" => {
                args.next();
                flags.extend(["--process", BUILD]);
            }
            "--listen" => {
                args.next();
            }
            other => flags.push(other),
        }
    }
    let server = GoServer::start(BUILD);
    let command = sandbox::command(&unpacked.rootfs, &constraints, "/usr/local/bin/apiprof");
    let daemon = Daemon::start_command(command, &flags);
    daemon.wait_attached(server.pid()).await;
    let (client, ..) = Http::Two.client(USER_AGENT);
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url);
    for _ in 0..SENT {
        let response = client.get(&url).send().await.expect(&url);
        assert_eq!(response.status(), 200, "{url}");
    }
    assert_eq!(reported(&daemon).await, SENT);
    let status = daemon.terminate();
    assert!(status.success(), "the image's daemon exited with {status}");

    // Least privilege: without any one of the capabilities the manifest adds, the
    // daemon cannot attach.
    for missing in &constraints.capabilities {
        let fewer = Constraints {
            capabilities: constraints
                .capabilities
                .iter()
                .filter(|c| *c != missing)
                .cloned()
                .collect(),
            ..constraints.clone()
        };
        let command = sandbox::command(&unpacked.rootfs, &fewer, "/usr/local/bin/apiprof");
        let daemon = Daemon::start_command(command, &flags);
        // It attaches within a second when it can (the daemon's budget is 2 s).
        let attached = daemon
            .attached_within(server.pid(), Duration::from_secs(5))
            .await;
        assert_eq!(
            attached, None,
            "without CAP_{missing} the daemon still attached: the DaemonSet asks for more than it needs"
        );
    }
}

/// The daemon's count for [`USER_AGENT`] once it has them all (or 10 s have passed).
async fn reported(daemon: &Daemon) -> u64 {
    let start = Instant::now();
    loop {
        let report = daemon
            .get("/report?format=json&by=user_agent&window=1h")
            .await;
        let report: Value = serde_json::from_str(&report).expect("/report is JSON");
        let count: u64 = report["requests"]
            .as_array()
            .expect("a requests array")
            .iter()
            .filter(|row| row["user_agent"] == USER_AGENT)
            .map(|row| row["count"].as_u64().expect("a count"))
            .sum();
        if count >= SENT || start.elapsed() > Duration::from_secs(10) {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
