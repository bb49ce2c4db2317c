//! `cargo xtask setup`: checks first, installs only what is missing, says what it does.
//!
//! What a fresh machine of this kind lacks: rust-src for the nightly toolchain,
//! bpf-linker (built against the nightly toolchain's own libLLVM), cargo-fuzz (the fuzz
//! targets), Go 1.19 (bookworm's
//! golang-go), Go 1.24 (trixie's golang-1.24-go and -src), Debian sid's Kubernetes set
//! and its Prometheus server and promtool (the Debian packages unpacked into the project
//! cache, never installed system-wide), a mounted tracefs, Chromium (bookworm's own
//! `chromium`, installed system-wide) for the flame graph browser test, and for the
//! container image the Rust target x86_64-unknown-linux-musl, bookworm's musl-tools
//! (ring's C) and its skopeo and umoci (the image test).
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _};

use crate::{apt, cmd, image};

/// The bpf-linker release the eBPF build is pinned to (it must match rustc's LLVM 22).
const BPF_LINKER_VERSION: &str = "0.13.0";

/// The cargo-fuzz release `cargo xtask fuzz` runs the targets with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// What setup provides to the other commands.
pub struct Env {
    /// The workspace root.
    pub root: PathBuf,
    /// Cargo's target directory, as `cargo metadata` names it (`CARGO_TARGET_DIR`,
    /// `build.target-dir` in a cargo config, else `target` in the root).
    pub target: PathBuf,
    /// Where downloaded toolchains and build outputs that outlive a clone are kept.
    pub cache: PathBuf,
    /// The Go toolchains the fixtures are built with, oldest first.
    pub go: Vec<GoToolchain>,
    /// Debian sid's Kubernetes set, unpacked: Go 1.27, the k8s.io libraries under
    /// `usr/share/gocode/src`, etcd and kubectl in `usr/bin`.
    pub sid: PathBuf,
    /// Debian sid's Prometheus server and promtool, unpacked: both in `usr/bin`.
    pub prometheus: PathBuf,
}

/// One Go toolchain: its version and GOROOT.
pub struct GoToolchain {
    /// "1.19", "1.24", ...
    pub version: &'static str,
    /// GOROOT; the `go` command is `bin/go` below it.
    pub goroot: PathBuf,
}

impl GoToolchain {
    /// A `go` command using only this toolchain and no network.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.goroot.join("bin/go"));
        cmd.env("GOROOT", &self.goroot)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("CGO_ENABLED", "0");
        cmd
    }
}

/// Runs every check, installing what is missing.
pub fn run() -> anyhow::Result<Env> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf();
    let cache = match env::var_os("APIPROF_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(env::var_os("HOME").context("HOME is not set")?).join(".cache/apiprof")
        }
    };
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;

    rust_src()?;
    bpf_linker(&cache)?;
    cargo_fuzz()?;
    let sid = pinned(&SID, &cache, &root)?;
    let prometheus = pinned(&PROMETHEUS, &cache, &root)?;
    let go_1_26 = pinned(&GO_1_26, &cache, &root)?;
    let go = vec![
        go_bookworm()?,
        go_trixie(&cache)?,
        GoToolchain {
            version: "1.26",
            goroot: go_1_26.join("usr/lib/go-1.26"),
        },
        GoToolchain {
            version: "1.27",
            goroot: sid.join("usr/lib/go-1.27"),
        },
    ];
    tracefs()?;
    musl_target()?;
    bookworm_packages()?;
    Ok(Env {
        target: target_dir(&root)?,
        root,
        cache,
        go,
        sid,
        prometheus,
    })
}

/// The workspace's target directory, as cargo resolves it.
fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let metadata = cmd::output(Command::new("cargo").current_dir(root).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
    ]))?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).context("parsing `cargo metadata`")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` names no target_directory")
}

/// Debian packages pinned by a lock file in the repository ("name version" lines) and
/// unpacked into a cache folder of their own, which keeps a copy of the lock as its stamp:
/// each set is downloaded again only when its own lock changes.
struct PinnedSet {
    /// The Debian suite the packages come from.
    suite: &'static str,
    /// The lock file, relative to the workspace root.
    lock: &'static str,
    /// The folder under the cache the packages are unpacked into.
    folder: &'static str,
    /// What setup says it downloads: "downloading {what}".
    what: &'static str,
    /// Without a lock: these packages and everything they depend on...
    roots: &'static [&'static str],
    /// ...keeping the names this accepts, at the suite's current versions.
    keep: fn(&str) -> bool,
    /// What to check after the lock is deleted and the suite's current set taken.
    then_check: &'static str,
}

/// Debian sid's matched Kubernetes set (k8s.io/apiserver and its libraries, Go 1.27,
/// etcd 3.5, kubectl): what the apiserver fixture is built and run from.
const SID: PinnedSet = PinnedSet {
    suite: "sid",
    lock: "tests/fixtures/apiserver/packages.lock",
    folder: "sid",
    what:
        "Debian sid's Kubernetes libraries, Go 1.27, etcd and kubectl into the cache (about 340 MB)",
    roots: &[
        "golang-k8s-apiserver-dev",
        "golang-go",
        "etcd-server",
        "kubectl",
    ],
    keep: |name| name.starts_with("golang-") || name.starts_with("etcd-") || name == "kubectl",
    then_check: "the apiserver fixture still builds",
};

/// Debian sid's Prometheus server and promtool, which check and scrape the daemon's
/// `/metrics`. Both are Go binaries that need only libc (glibc 2.34 or newer): the
/// `prometheus` package's other dependency, adduser, is for its system service.
const PROMETHEUS: PinnedSet = PinnedSet {
    suite: "sid",
    lock: "tests/fixtures/prometheus/packages.lock",
    folder: "prometheus",
    what: "Debian sid's Prometheus server and promtool into the cache (about 35 MB)",
    roots: &["prometheus", "promtool"],
    keep: |name| name == "prometheus" || name == "promtool",
    then_check: "the prometheus_tooling test still passes",
};

/// Debian sid's Go 1.26: one more toolchain the offsets table is measured on, between
/// trixie's 1.24 and 1.27: `url.URL.RawQuery`, `runtime.g.goid` and `runtime.m.curg` all moved by 1.26.
const GO_1_26: PinnedSet = PinnedSet {
    suite: "sid",
    lock: "xtask/go-1.26.lock",
    folder: "go-1.26",
    what: "Debian sid's Go 1.26 into the cache (about 60 MB)",
    roots: &["golang-1.26-go"],
    keep: |name| name.starts_with("golang-1.26"),
    then_check: "`cargo xtask offsets` still runs",
};

/// `set`'s packages at the versions in its lock, unpacked into the cache; returns their
/// folder. Without a lock, takes the suite's current versions and writes the lock.
fn pinned(set: &PinnedSet, cache: &Path, root: &Path) -> anyhow::Result<PathBuf> {
    let unpacked = cache.join(set.folder);
    let stamp = unpacked.join(".packages.lock");
    let lock_path = root.join(set.lock);
    let lock = fs::read_to_string(&lock_path).ok();
    if lock.is_some() && fs::read_to_string(&stamp).ok() == lock {
        return Ok(unpacked);
    }
    say(&format!("downloading {}", set.what));
    let suite = apt::Suite::update(cache, set.suite)?;
    let packages: Vec<String> = match &lock {
        Some(lock) => lock.lines().map(str::to_owned).collect(),
        None => {
            let packages = suite.resolve(set.roots, set.keep)?;
            if let Some(dir) = lock_path.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(&lock_path, packages.join("\n") + "\n")?;
            say(&format!(
                "recorded {} package versions in {}",
                packages.len(),
                set.lock
            ));
            packages
        }
    };
    say(&format!(
        "unpacking the {} package versions in {} into {}",
        packages.len(),
        set.lock,
        unpacked.display()
    ));
    suite.unpack(&packages, &unpacked).with_context(|| {
        format!(
            "{} no longer has every version in {}: delete it to take {}'s current set, then check {}",
            set.suite, set.lock, set.suite, set.then_check
        )
    })?;
    fs::write(&stamp, packages.join("\n") + "\n")?;
    Ok(unpacked)
}

fn say(what: &str) {
    eprintln!("xtask setup: {what}");
}

fn rust_src() -> anyhow::Result<()> {
    let installed = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context(
        "the eBPF programs build with the nightly toolchain: `rustup toolchain install nightly`",
    )?;
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        say("installing rust-src for the nightly toolchain (the eBPF build needs build-std=core)");
        cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

fn cargo_fuzz() -> anyhow::Result<()> {
    let version = cmd::output(Command::new("cargo").args(["fuzz", "--version"]));
    if version.is_ok_and(|v| v.trim() == format!("cargo-fuzz {CARGO_FUZZ_VERSION}")) {
        return Ok(());
    }
    say(&format!(
        "installing cargo-fuzz {CARGO_FUZZ_VERSION} (the fuzz targets; about 2 minutes)"
    ));
    cmd::run(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
        "--locked",
        "--force",
    ]))
}

fn bpf_linker(cache: &Path) -> anyhow::Result<()> {
    let version = Command::new("bpf-linker").arg("--version").output();
    if let Ok(out) = &version {
        if out.status.success()
            && String::from_utf8_lossy(&out.stdout).trim()
                == format!("bpf-linker {BPF_LINKER_VERSION}")
        {
            return Ok(());
        }
    }
    // bpf-linker must use rustc's own LLVM: point LLVM_PREFIX at a folder whose lib/ holds
    // the nightly toolchain's libLLVM under the names the build looks for. The linker
    // keeps this folder as its run path, so it lives in the cache, not in /tmp.
    let sysroot = cmd::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let lib = Path::new(sysroot.trim()).join("lib");
    let libllvm = fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .with_context(|| {
            format!(
                "no libLLVM.so.* in {}: the nightly toolchain is incomplete",
                lib.display()
            )
        })?;
    let prefix = cache.join("llvm-prefix");
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)?;
    for name in [
        Path::new("libLLVM.so"),
        Path::new(libllvm.file_name().context("libLLVM path")?),
    ] {
        let link = prefix_lib.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&libllvm, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    say(&format!(
        "building bpf-linker {BPF_LINKER_VERSION} against {} (about 2 minutes)",
        libllvm.display()
    ));
    cmd::run(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
            ])
            .args(["--no-default-features", "--features", "llvm-22"])
            .env("LLVM_PREFIX", &prefix),
    )
}

fn go_bookworm() -> anyhow::Result<GoToolchain> {
    let go = GoToolchain {
        version: "1.19",
        goroot: PathBuf::from("/usr/lib/go-1.19"),
    };
    if !go.goroot.join("bin/go").exists() {
        say("installing Go 1.19 (Debian bookworm's golang-go)");
        cmd::run(Command::new("apt-get").arg("update"))?;
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "golang-go"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    Ok(go)
}

/// Go 1.24 from Debian trixie: downloaded with a private sources list and unpacked with
/// `dpkg -x` into the cache, so the system keeps its own packages.
fn go_trixie(cache: &Path) -> anyhow::Result<GoToolchain> {
    let unpacked = cache.join("go-trixie");
    let go = GoToolchain {
        version: "1.24",
        goroot: unpacked.join("usr/lib/go-1.24"),
    };
    if cmd::succeeds(go.command().arg("version")) {
        return Ok(go);
    }
    say("downloading Go 1.24 (Debian trixie's golang-1.24-go, golang-1.24-src) into the cache");
    let trixie = apt::Suite::update(cache, "trixie")?;
    let packages = trixie.resolve(&["golang-1.24-go", "golang-1.24-src"], |name| {
        name.starts_with("golang-1.24-")
    })?;
    trixie.unpack(&packages, &unpacked)?;
    if !cmd::succeeds(go.command().arg("version")) {
        bail!("Go 1.24 unpacked into {} does not run: remove that folder and run `cargo xtask setup` again", unpacked.display());
    }
    Ok(go)
}

fn tracefs() -> anyhow::Result<()> {
    if Path::new("/sys/kernel/tracing/events").exists() {
        return Ok(());
    }
    say("mounting tracefs on /sys/kernel/tracing (the tests read the kernel's uprobe list there)");
    cmd::run(Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]))
}

/// Packages from Debian bookworm, the system's own suite (so installed system-wide),
/// each checked by a file it provides: Chromium, for the flame graph browser test
/// (headless: the frames drawn on a screenshot, a click zooms into one; the tests crate
/// looks for `/usr/bin/chromium`); musl-gcc, which compiles ring's C for the image's
/// static binary; skopeo and umoci, the OCI tools the image test reads and unpacks the
/// image with.
const BOOKWORM: [(&str, &str, &str); 4] = [
    (
        "/usr/bin/chromium",
        "chromium",
        "the flame graph browser test",
    ),
    (
        "/usr/bin/musl-gcc",
        "musl-tools",
        "the image's static build",
    ),
    ("/usr/bin/skopeo", "skopeo", "the image test"),
    ("/usr/bin/umoci", "umoci", "the image test"),
];

/// Installs the [`BOOKWORM`] packages whose file is missing. The package lists are
/// refreshed only when the install fails without them.
fn bookworm_packages() -> anyhow::Result<()> {
    let missing: Vec<_> = BOOKWORM
        .iter()
        .filter(|(file, ..)| !Path::new(file).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|(_, name, _)| *name).collect();
    for (_, name, why) in &missing {
        say(&format!("installing Debian bookworm's {name} for {why}"));
    }
    let install = || {
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&names)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        say("installing failed: updating the package lists and trying again");
        cmd::run(Command::new("apt-get").arg("update"))?;
        install()?;
    }
    if let Some((file, name, _)) = missing.iter().find(|(file, ..)| !Path::new(file).exists()) {
        bail!("installing Debian's {name} did not provide {file}");
    }
    Ok(())
}

/// The Rust target of the image's static binary, for the default toolchain.
fn musl_target() -> anyhow::Result<()> {
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|l| l.trim() == image::MUSL_TARGET) {
        return Ok(());
    }
    say(&format!(
        "installing the Rust target {} (the image's static binary)",
        image::MUSL_TARGET
    ));
    cmd::run(Command::new("rustup").args(["target", "add", image::MUSL_TARGET]))
}
