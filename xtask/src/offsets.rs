//! `cargo xtask offsets`: regenerates `profiler/src/target/offsets/go_offsets.json`, the table of
//! Go struct field offsets the probes read, by running `xtask/go-offsets` with every Go
//! toolchain setup provides. A field's entry lists each offset with the first Go version
//! (major.minor) that has it; `null` from the version that no longer has the field.
use std::{collections::BTreeMap, fs};

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::{cmd, setup::Env};

pub fn generate(env: &Env) -> anyhow::Result<()> {
    let generator = env.root.join("xtask/go-offsets");
    let mut outputs = Vec::new();
    for go in &env.go {
        // Built, not `go run`: the generator reads its own DWARF, which `go run` omits.
        let binary = env.target.join(format!("go-offsets-go{}", go.version));
        cmd::run(
            go.command()
                .current_dir(&generator)
                .arg("build")
                .arg("-o")
                .arg(&binary)
                .arg(".")
                .env("GOCACHE", env.cache.join(format!("gocache-{}", go.version))),
        )?;
        let out = cmd::output(&mut std::process::Command::new(&binary))?;
        let out: Value = serde_json::from_str(&out).context("parsing go-offsets output")?;
        outputs.push((go.version, out));
    }
    let toolchains: Vec<Value> = outputs.iter().map(|(_, out)| out["go"].clone()).collect();
    let mut fields: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (_, out) in &outputs {
        let offsets = out["offsets"]
            .as_object()
            .context("go-offsets printed no offsets")?;
        for field in offsets.keys() {
            fields.entry(field.clone()).or_default();
        }
    }
    for (field, history) in &mut fields {
        for (version, out) in &outputs {
            // Optional fields a version lacks are null from that version on.
            let offset = out["offsets"].get(field).cloned().unwrap_or(Value::Null);
            let last = history.last().map(|last: &Value| &last["offset"]);
            if last != Some(&offset) && !(last.is_none() && offset.is_null()) {
                history.push(json!({ "since": version, "offset": offset }));
            }
        }
    }
    let table = json!({
        "generated_by": "cargo xtask offsets",
        "toolchains": toolchains,
        "fields": fields,
    });
    let path = env.root.join("profiler/src/target/offsets/go_offsets.json");
    fs::write(&path, serde_json::to_string_pretty(&table)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}
