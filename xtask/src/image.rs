//! `cargo xtask image`: apiprof's container image, written without a container engine.
//!
//! A static `apiprof` (musl, release) on an empty base — what `FROM scratch` gives — in
//! one layer with `/usr/local/bin/apiprof` and an `/etc/passwd` and `/etc/group` naming
//! root and nobody (so tools and logs name users; apiprof needs no shell). The result is
//! an `oci-archive`: an OCI image layout in a tar, at `<target>/image/apiprof.oci.tar`,
//! which `skopeo copy oci-archive:… docker://…` pushes to any registry.
//!
//! No engine runs where apiprof is built and tested, and none is needed: an image is a
//! few JSON documents and a gzipped tar, named by their SHA-256 digests. Writing them
//! here also makes the image reproducible: every timestamp is `SOURCE_DATE_EPOCH` (else
//! the HEAD commit's time), headers carry no owner names or modes from the build
//! machine, entries are sorted and JSON keys too, so one commit gives one digest. The
//! repository's `Dockerfile` builds the same image for those who have an engine; the
//! constants below are what both must agree on (a unit test checks the Dockerfile).
use std::{
    collections::{BTreeMap, HashMap},
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use flate2::{write::GzEncoder, Compression};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, Digest, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder, SCHEMA_VERSION,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::{cmd, setup::Env};

/// The Rust target of the image's binary: static, so the image needs no libc.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// Where the binary is in the image, and the `PATH` that finds it.
const BIN_DIR: &str = "usr/local/bin";

/// What the container runs: the daemon (its flags come from the pod's `args`).
const ENTRYPOINT: [&str; 2] = ["apiprof", "daemon"];

/// The daemon's `--listen` port (its default), for `/metrics`, `/report` and `/healthz`.
const PORT: &str = "9464/tcp";

/// The image's user: root, by uid.
///
/// apiprof needs CAP_SYS_ADMIN (on the 6.18 kernel measured, perf_event_open of a
/// uprobe answers EACCES without it, even with CAP_BPF and CAP_PERFMON) and
/// CAP_SYS_PTRACE (to read the apiserver's `/proc/PID/exe`). Kubernetes can give a
/// non-root user capabilities only through file capabilities on the binary, which work
/// only with `allowPrivilegeEscalation: true` (no_new_privs off): a bigger grant than
/// root limited to those two capabilities with no_new_privs on. So the image runs as
/// root and the DaemonSet drops every other capability.
const USER: &str = "0";

/// `/etc/passwd`: root, and nobody for tools that look a user up.
const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n";

/// `/etc/group`, matching [`PASSWD`].
const GROUP: &str = "root:x:0:\nnobody:x:65534:\n";

/// The fixed OCI annotations (as config labels too); the others come from the build.
const FIXED_LABELS: [(&str, &str); 3] = [
    ("org.opencontainers.image.title", "apiprof"),
    (
        "org.opencontainers.image.description",
        "eBPF-assisted load profiler for the Kubernetes API server",
    ),
    ("org.opencontainers.image.licenses", "MIT OR Apache-2.0"),
];

/// What the image says about the build it comes from.
struct BuildInfo {
    /// The profiler crate's version.
    version: String,
    /// The HEAD commit.
    revision: String,
    /// Seconds since the epoch: `SOURCE_DATE_EPOCH`, else the HEAD commit's time.
    epoch: u64,
    /// The repository's https URL (`git remote get-url origin`), when it has one.
    source: Option<String>,
}

/// One content-addressed blob of the layout.
struct Blob {
    media_type: MediaType,
    bytes: Vec<u8>,
}

impl Blob {
    /// `sha256:HEX` of its bytes.
    fn digest(&self) -> String {
        sha256(&self.bytes)
    }

    /// The descriptor that points at it.
    fn descriptor(&self) -> anyhow::Result<Descriptor> {
        let digest: Digest = self.digest().parse()?;
        Ok(Descriptor::new(
            self.media_type.clone(),
            self.bytes.len() as u64,
            digest,
        ))
    }
}

/// Builds the static binary, writes the image and prints its path and size; returns
/// its path.
pub fn build(env: &Env) -> anyhow::Result<PathBuf> {
    let binary = build_static_apiprof(env)?;
    let info = build_info(env)?;
    let out = env.target.join("image/apiprof.oci.tar");
    let binary = fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    write_archive(&out, &image_blobs(&binary, &info)?, info.epoch)?;
    let size = fs::metadata(&out)?.len();
    println!(
        "{} ({size} bytes, {:.1} MiB)",
        out.display(),
        size as f64 / (1 << 20) as f64
    );
    Ok(out)
}

/// `cargo build --release --target x86_64-unknown-linux-musl` of `apiprof`; its path.
fn build_static_apiprof(env: &Env) -> anyhow::Result<PathBuf> {
    cmd::run(
        Command::new("cargo")
            .current_dir(&env.root)
            .args(["build", "--release", "--package", "profiler", "--bin"])
            .args(["apiprof", "--target", MUSL_TARGET])
            // ring compiles C: with musl's headers and libc (Debian's musl-tools).
            .env("CC_x86_64_unknown_linux_musl", "musl-gcc"),
    )?;
    Ok(env.target.join(MUSL_TARGET).join("release/apiprof"))
}

/// The version, revision, time and source the image is labelled with.
fn build_info(env: &Env) -> anyhow::Result<BuildInfo> {
    let git = |args: &[&str]| cmd::output(Command::new("git").current_dir(&env.root).args(args));
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => epoch,
        Err(_) => git(&["log", "-1", "--format=%ct", "HEAD"])?,
    };
    Ok(BuildInfo {
        version: profiler_version(env)?,
        revision: git(&["rev-parse", "HEAD"])?.trim().to_owned(),
        epoch: epoch
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH or the commit time {epoch:?}"))?,
        source: git(&["remote", "get-url", "origin"])
            .ok()
            .and_then(|url| https_url(url.trim())),
    })
}

/// The profiler crate's version, as cargo reads it.
fn profiler_version(env: &Env) -> anyhow::Result<String> {
    let metadata = cmd::output(Command::new("cargo").current_dir(&env.root).args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
    ]))?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata)?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "profiler")
        .and_then(|p| p["version"].as_str())
        .map(str::to_owned)
        .context("cargo metadata lists no profiler package")
}

/// A git remote as an https URL (`git@host:path` rewritten), or `None` for a local one.
fn https_url(remote: &str) -> Option<String> {
    let url = match remote.strip_prefix("git@") {
        Some(rest) => format!("https://{}", rest.replacen(':', "/", 1)),
        None => remote.to_owned(),
    };
    url.starts_with("https://")
        .then(|| url.trim_end_matches(".git").to_owned())
}

/// The OCI annotations, also the config's labels: sorted, so the JSON is stable.
fn labels(info: &BuildInfo) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = FIXED_LABELS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let oci = |key: &str| format!("org.opencontainers.image.{key}");
    labels.insert(oci("version"), info.version.clone());
    labels.insert(oci("revision"), info.revision.clone());
    labels.insert(oci("created"), rfc3339(info.epoch));
    if let Some(source) = &info.source {
        labels.insert(oci("source"), source.clone());
    }
    labels
}

/// The layer, the config and the manifest, and last the index that points at the
/// manifest (stored as `index.json`, not as a blob).
fn image_blobs(binary: &[u8], info: &BuildInfo) -> anyhow::Result<Vec<Blob>> {
    let layer_tar = layer(binary, info.epoch)?;
    let diff_id = sha256(&layer_tar);
    let layer = Blob {
        media_type: MediaType::ImageLayerGzip,
        bytes: gzip(&layer_tar)?,
    };
    let labels = labels(info);
    let config = Blob {
        media_type: MediaType::ImageConfig,
        bytes: canonical_json(&config(diff_id, &labels, info.epoch)?)?,
    };
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(vec![layer.descriptor()?])
        .annotations(labels.clone().into_iter().collect::<HashMap<_, _>>())
        .build()?;
    let manifest = Blob {
        media_type: MediaType::ImageManifest,
        bytes: canonical_json(&manifest)?,
    };
    let mut pointer = manifest.descriptor()?;
    pointer.set_annotations(Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            info.version.clone(),
        )]
        .into(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![pointer])
        .build()?;
    let index = Blob {
        media_type: MediaType::ImageIndex,
        bytes: canonical_json(&index)?,
    };
    Ok(vec![layer, config, manifest, index])
}

/// The image configuration: what runs, as whom, on what.
fn config(
    diff_id: String,
    labels: &BTreeMap<String, String>,
    epoch: u64,
) -> anyhow::Result<oci_spec::image::ImageConfiguration> {
    let run = ConfigBuilder::default()
        .user(USER)
        .env(vec![format!("PATH=/{BIN_DIR}")])
        .entrypoint(ENTRYPOINT.map(str::to_owned).to_vec())
        .exposed_ports(vec![PORT.to_owned()])
        .labels(labels.clone().into_iter().collect::<HashMap<_, _>>())
        .build()?;
    Ok(ImageConfigurationBuilder::default()
        .created(rfc3339(epoch))
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(run)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()?,
        )
        .build()?)
}

/// The layer's uncompressed tar: the directories, `/etc/passwd`, `/etc/group` and the
/// binary, in path order.
fn layer(binary: &[u8], epoch: u64) -> anyhow::Result<Vec<u8>> {
    let bin = format!("{BIN_DIR}/apiprof");
    let mut files: BTreeMap<&str, (u32, &[u8])> = BTreeMap::from([
        ("etc/passwd", (0o644, PASSWD.as_bytes())),
        ("etc/group", (0o644, GROUP.as_bytes())),
        (bin.as_str(), (0o755, binary)),
    ]);
    for dir in ["etc/", "usr/", "usr/local/", "usr/local/bin/"] {
        files.insert(dir, (0o755, &[]));
    }
    tar(&files, epoch)
}

/// A tar of `entries` (path → mode and contents; a path ending in `/` is a directory)
/// in path order, with headers that depend only on them and `epoch`.
fn tar(entries: &BTreeMap<&str, (u32, &[u8])>, epoch: u64) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, (mode, contents)) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(epoch);
        header.set_size(contents.len() as u64);
        tar.append_data(&mut header, path, *contents)?;
    }
    Ok(tar.into_inner()?)
}

/// `data` gzipped at the best level; flate2 writes no time or name in the header.
fn gzip(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(data)?;
    Ok(gz.finish()?)
}

/// Writes the OCI layout of `blobs` (the last, the index, as `index.json`) as a tar
/// at `out`, every entry stamped `epoch`.
fn write_archive(out: &Path, blobs: &[Blob], epoch: u64) -> anyhow::Result<()> {
    let (index, blobs) = blobs.split_last().context("no index")?;
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let names: Vec<String> = blobs
        .iter()
        .map(|b| format!("blobs/sha256/{}", &b.digest()["sha256:".len()..]))
        .collect();
    let mut entries: BTreeMap<&str, (u32, &[u8])> = BTreeMap::from([
        ("oci-layout", (0o644, &layout[..])),
        ("index.json", (0o644, &index.bytes[..])),
        ("blobs/", (0o755, &[][..])),
        ("blobs/sha256/", (0o755, &[][..])),
    ]);
    for (name, blob) in names.iter().zip(blobs) {
        entries.insert(name, (0o644, &blob.bytes));
    }
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(out, tar(&entries, epoch)?).with_context(|| format!("writing {}", out.display()))
}

/// `value` as compact JSON with every object's keys sorted (oci-spec keeps maps in
/// `HashMap`s, whose order changes from run to run).
fn canonical_json(value: &impl Serialize) -> anyhow::Result<Vec<u8>> {
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let map: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(map.into_iter().collect())
            }
            serde_json::Value::Array(items) => items.into_iter().map(sorted).collect(),
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sorted(serde_json::to_value(value)?))?)
}

/// `sha256:HEX` of `data`.
fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-05-01T12:00:00Z`).
fn rfc3339(epoch: u64) -> String {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_777_636_800), "2026-05-01T12:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn remotes_as_source_urls() {
        let url = Some("https://github.com/o/apiprof".to_owned());
        assert_eq!(https_url("git@github.com:o/apiprof.git"), url);
        assert_eq!(https_url("https://github.com/o/apiprof.git"), url);
        assert_eq!(https_url("/work/main"), None);
    }

    #[test]
    fn layers_are_reproducible() {
        let a = gzip(&layer(b"binary", 1).unwrap()).unwrap();
        assert_eq!(a, gzip(&layer(b"binary", 1).unwrap()).unwrap());
        assert_ne!(a, gzip(&layer(b"binary", 2).unwrap()).unwrap());
    }

    /// The Dockerfile builds the same image: its final stage's user, entrypoint,
    /// port, fixed labels and default version are this module's, and it writes the same
    /// `/etc/passwd` and `/etc/group` lines.
    #[test]
    fn dockerfile_matches() {
        let dockerfile = include_str!("../../Dockerfile");
        let stage = dockerfile
            .rsplit_once("FROM scratch")
            .expect("a FROM scratch stage")
            .1;
        let quoted = |s: &[&str]| s.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>();
        for line in [
            format!("USER {USER}"),
            format!("ENTRYPOINT [{}]", quoted(&ENTRYPOINT).join(", ")),
            format!("EXPOSE {PORT}"),
            format!("ENV PATH=/{BIN_DIR}"),
        ] {
            assert!(stage.lines().any(|l| l.trim() == line), "no {line:?}");
        }
        for (key, value) in FIXED_LABELS {
            assert!(
                stage.contains(&format!("{key}={value:?}")),
                "no label {key}"
            );
        }
        for line in PASSWD.lines().chain(GROUP.lines()) {
            assert!(dockerfile.contains(&format!("'{line}'")), "no {line:?}");
        }
        let profiler = include_str!("../../profiler/Cargo.toml");
        let version = profiler
            .lines()
            .find_map(|l| l.strip_prefix("version = "))
            .expect("the profiler's version");
        let arg = format!("ARG VERSION={}", version.trim_matches('"'));
        assert!(
            dockerfile.contains(&arg),
            "no {arg:?}: the profiler's version changed"
        );
    }
}
