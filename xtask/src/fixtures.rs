//! Builds the fixture servers under `tests/fixtures`: the Go HTTPS server with every Go
//! toolchain, unstripped and stripped (`-ldflags=-s -w`, as release builds are), with
//! Go 1.27 also position-independent (`-buildmode=pie`, as some distributions build
//! Kubernetes), the apiserver (see [`apiserver`]) and the Go reference controller (see
//! [`controller`]).
use std::{fs, path::PathBuf};

use anyhow::Context as _;

use crate::{apiserver, cmd, controller, manifests, setup::Env};

/// Builds every fixture and returns the folder holding the binaries, named
/// `goserver-go<version>[-pie][-stripped]`, `apiserver-go1.27[-http2legacy]`,
/// `controller-go1.27[-stripped]` and `manifests-check`.
pub fn build(env: &Env) -> anyhow::Result<PathBuf> {
    let out = env.target.join("fixtures");
    fs::create_dir_all(&out)?;
    let source = env.root.join("tests/fixtures/goserver");
    for go in &env.go {
        let pie = if go.version == "1.27" {
            &[false, true][..]
        } else {
            &[false]
        };
        for (pie, stripped) in pie.iter().flat_map(|p| [(*p, false), (*p, true)]) {
            let name = format!(
                "goserver-go{}{}{}",
                go.version,
                if pie { "-pie" } else { "" },
                if stripped { "-stripped" } else { "" }
            );
            let mut build = go.command();
            build
                .current_dir(&source)
                .arg("build")
                .arg("-o")
                .arg(out.join(&name));
            if pie {
                build.arg("-buildmode=pie");
            }
            if stripped {
                build.arg("-ldflags=-s -w");
            }
            build
                .arg(".")
                .env("GOCACHE", env.cache.join(format!("gocache-{}", go.version)));
            cmd::run(&mut build).with_context(|| format!("building the {name} fixture"))?;
        }
    }
    apiserver::build(env, &out)?;
    controller::build(env, &out)?;
    manifests::build(env, &out)?;
    eprintln!("xtask: fixtures in {}", out.display());
    Ok(out)
}
