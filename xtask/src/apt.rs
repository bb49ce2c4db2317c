//! Debian packages from another suite (trixie, sid), downloaded with a private sources
//! list and unpacked with `dpkg -x` into the project cache: the system keeps its own
//! packages, and nothing is installed system-wide.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use crate::cmd;

/// A private apt setup for one suite, kept in `<cache>/apt-<suite>`.
pub struct Suite {
    dir: PathBuf,
}

impl Suite {
    /// Writes the sources list for `suite` (on this machine's own Debian mirror) and
    /// updates its package lists.
    pub fn update(cache: &Path, suite: &str) -> anyhow::Result<Self> {
        let dir = cache.join(format!("apt-{suite}"));
        for sub in ["lists/partial", "archives/partial"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        fs::write(
            dir.join("sources.list"),
            format!("deb {} {suite} main\n", debian_mirror()?),
        )?;
        let suite = Self { dir };
        cmd::run(suite.apt("apt-get").arg("update"))?;
        Ok(suite)
    }

    /// An apt command (`apt-get`, `apt-cache`) reading only this suite's lists.
    fn apt(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        for (key, value) in [
            ("Dir::Etc::SourceList", self.dir.join("sources.list")),
            ("Dir::Etc::SourceParts", PathBuf::from("/nonexistent")),
            ("Dir::State::Lists", self.dir.join("lists")),
            ("Dir::Cache::Archives", self.dir.join("archives")),
            ("Dir::Cache::pkgcache", PathBuf::new()),
            ("Dir::Cache::srcpkgcache", PathBuf::new()),
            // Files in the cache belong to root; apt's _apt sandbox user cannot write them.
            ("APT::Sandbox::User", PathBuf::from("root")),
            // Versions come from this suite only, whatever the system has installed.
            ("Dir::State::status", PathBuf::from("/dev/null")),
        ] {
            cmd.arg("-o").arg(format!("{key}={}", value.display()));
        }
        cmd
    }

    /// `roots` and everything they depend on (recursively, no recommends), keeping the
    /// names `keep` accepts, with the versions this suite has now: "name version" lines.
    pub fn resolve(
        &self,
        roots: &[&str],
        keep: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        let tree = cmd::output(
            self.apt("apt-cache")
                .args(["depends", "--recurse", "--no-recommends", "--no-suggests"])
                .args([
                    "--no-conflicts",
                    "--no-breaks",
                    "--no-replaces",
                    "--no-enhances",
                ])
                .args(roots),
        )?;
        let mut names: Vec<&str> = tree
            .lines()
            .filter(|l| !l.starts_with([' ', '<']) && keep(l))
            .collect();
        names.sort_unstable();
        names.dedup();
        let policy = cmd::output(self.apt("apt-cache").arg("policy").args(&names))?;
        let mut pinned = Vec::new();
        let mut name = "";
        for line in policy.lines() {
            if let Some(n) = line.strip_suffix(':').filter(|n| !n.starts_with(' ')) {
                name = n;
            } else if let Some(v) = line.trim().strip_prefix("Candidate: ") {
                pinned.push(format!("{name} {v}"));
            }
        }
        Ok(pinned)
    }

    /// Downloads `packages` ("name version" lines) and unpacks them into `into`, which is
    /// emptied first.
    pub fn unpack(&self, packages: &[String], into: &Path) -> anyhow::Result<()> {
        let debs = self.dir.join("debs");
        let _ = fs::remove_dir_all(&debs);
        fs::create_dir_all(&debs)?;
        let wanted: Vec<String> = packages.iter().map(|p| p.replacen(' ', "=", 1)).collect();
        cmd::run(
            self.apt("apt-get")
                .current_dir(&debs)
                .arg("download")
                .args(&wanted),
        )
        .context("a recorded package version is gone from the mirror: the suite moved on")?;
        let _ = fs::remove_dir_all(into);
        fs::create_dir_all(into)?;
        for deb in fs::read_dir(&debs)? {
            let deb = deb?.path();
            if deb.extension().is_some_and(|e| e == "deb") {
                cmd::run(Command::new("dpkg").arg("-x").arg(&deb).arg(into))?;
            }
        }
        fs::remove_dir_all(&debs)?;
        Ok(())
    }
}

/// The Debian mirror this machine's own sources use, so the private lists fetch from
/// the same place (and no address is written into the project).
fn debian_mirror() -> anyhow::Result<String> {
    let mut texts: Vec<String> = fs::read_to_string("/etc/apt/sources.list")
        .ok()
        .into_iter()
        .collect();
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in dir.filter_map(Result::ok) {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|e| e == "sources" || e == "list")
            {
                texts.extend(fs::read_to_string(path).ok());
            }
        }
    }
    // Both formats name the mirror as a whitespace-separated http(s) URI:
    // "URIs: <uri>" (deb822) and "deb [options] <uri> <suite> ..." (one-line).
    texts
        .iter()
        .flat_map(|t| t.split_whitespace())
        .find(|word| word.starts_with("http") && word.trim_end_matches('/').ends_with("/debian"))
        .map(str::to_owned)
        .context(
            "no Debian mirror (a URI ending in /debian) in /etc/apt/sources.list{,.d}: add one",
        )
}
