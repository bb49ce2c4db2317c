//! The Go HTTPS fixture server (tests/fixtures/goserver), as a guard.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::fixtures_dir;

/// A running fixture server; killed on drop.
pub struct GoServer {
    child: Child,
    /// `https://127.0.0.1:PORT`
    pub url: String,
}

impl GoServer {
    /// Starts fixture build `build` (see [`crate::GOSERVER_BUILDS`]) on an ephemeral
    /// loopback port and waits until it accepts connections.
    pub fn start(build: &str) -> Self {
        Self::start_with_args(build, &[])
    }

    /// [`GoServer::start`] with command-line flags (e.g. `-memprofilerate=1`).
    pub fn start_with_args(build: &str, args: &[&str]) -> Self {
        Self::start_path(&fixtures_dir().join(build), args)
    }

    /// [`GoServer::start_with_args`] of a fixture binary at `path` (a copy under another
    /// name, as a replaced binary is).
    pub fn start_path(path: &Path, args: &[&str]) -> Self {
        let build = path.display();
        let mut child = Command::new(path)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {build}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the fixture's first line");
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| {
                panic!("{build} printed {line:?}, expected \"listening https://...\"")
            })
            .to_owned();
        Self { child, url }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
