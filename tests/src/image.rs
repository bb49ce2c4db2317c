//! The container image (`cargo xtask image`), read with the OCI tools an operator
//! would use: Debian's skopeo and umoci, which `cargo xtask setup` installs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

/// Runs `program ARGS`; its stdout, panicking with its stderr unless it exits 0.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("starting {program} (`cargo xtask setup` installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `oci-archive:PATH`, skopeo's name for the archive at `archive`.
fn reference(archive: &Path) -> String {
    format!("oci-archive:{}", archive.display())
}

/// `skopeo inspect` of the archive: what a registry would show (`Labels`,
/// `Architecture`, `Os`, `Layers`, …), parsed.
pub fn inspect(archive: &Path) -> serde_json::Value {
    let json = run("skopeo", &["inspect", &reference(archive)]);
    serde_json::from_str(&json).expect("skopeo inspect prints JSON")
}

/// `skopeo inspect --config` of the archive: the OCI image configuration (`config`
/// with `Entrypoint`, `User`, `ExposedPorts`, `Env`, `Labels`; `rootfs`; …), parsed.
pub fn inspect_config(archive: &Path) -> serde_json::Value {
    let json = run("skopeo", &["inspect", "--config", &reference(archive)]);
    serde_json::from_str(&json).expect("skopeo inspect --config prints JSON")
}

/// An image unpacked as a runtime would see it; the folder is removed on drop.
pub struct Unpacked {
    _dir: TempDir,
    /// The image's root filesystem.
    pub rootfs: PathBuf,
}

/// Unpacks the archive: `skopeo copy` into an OCI layout (tag `apiprof`), then
/// `umoci unpack` into a runtime bundle (as root, so owners and modes are kept).
pub fn unpack(archive: &Path) -> Unpacked {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let layout = format!("{}:apiprof", dir.path().join("layout").display());
    let bundle = dir.path().join("bundle");
    run(
        "skopeo",
        &["copy", &reference(archive), &format!("oci:{layout}")],
    );
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &layout,
            bundle.to_str().expect("UTF-8 path"),
        ],
    );
    Unpacked {
        rootfs: bundle.join("rootfs"),
        _dir: dir,
    }
}
