//! Builds `manifests-check` (tests/fixtures/manifests), which decodes rendered
//! deployment manifests strictly into the Kubernetes Go types, from Debian sid's
//! k8s.io/api, k8s.io/apimachinery and sigs.k8s.io libraries, offline, in GOPATH mode
//! as the apiserver fixture is built.
use std::path::Path;

use anyhow::Context as _;

use crate::{
    apiserver::{go_1_27, gopath},
    cmd,
    setup::Env,
};

/// The checker's file name in the fixtures folder.
pub const CHECKER: &str = "manifests-check";

/// Builds the checker into `out`.
pub fn build(env: &Env, out: &Path) -> anyhow::Result<()> {
    let go = go_1_27(env)?;
    let mut build = gopath(env, go, go.command());
    build
        .current_dir(env.root.join("tests/fixtures/manifests"))
        .args(["build", "-o"])
        .arg(out.join(CHECKER))
        .arg(".");
    cmd::run(&mut build).context("building the manifests checker from Debian sid's k8s.io/api and k8s.io/apimachinery (see tests/fixtures/apiserver/packages.lock)")
}
