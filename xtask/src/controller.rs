//! Builds the Go reference controller (tests/fixtures/controller): refctl's scenarios
//! written with client-go 0.36, from Debian sid's k8s.io libraries, offline, in GOPATH
//! mode as the apiserver fixture is built; unstripped and stripped (`-ldflags=-s -w`, as
//! release builds of controllers are).
use std::path::Path;

use anyhow::Context as _;

use crate::{
    apiserver::{go_1_27, gopath},
    cmd,
    setup::Env,
};

/// The controller's builds in the fixtures folder and the extra `go build` flags of each.
const BUILDS: [(&str, &[&str]); 2] = [
    ("controller-go1.27", &[]),
    ("controller-go1.27-stripped", &["-ldflags=-s -w"]),
];

/// Builds both controller binaries into `out`.
pub fn build(env: &Env, out: &Path) -> anyhow::Result<()> {
    let go = go_1_27(env)?;
    for (name, flags) in BUILDS {
        let mut build = gopath(env, go, go.command());
        build
            .current_dir(env.root.join("tests/fixtures/controller"))
            .args(["build", "-o"])
            .arg(out.join(name))
            .args(flags)
            .arg(".");
        cmd::run(&mut build).with_context(|| {
            format!("building the {name} fixture from Debian sid's client-go (see tests/fixtures/apiserver/packages.lock)")
        })?;
    }
    Ok(())
}
