//! A value loaded from files and loaded again when they change: the listener's
//! certificates and the bearer token, which cert-manager and Secret updates replace
//! while the daemon runs (a mounted Secret's files are swapped, so their inode changes).

use std::{
    os::unix::fs::MetadataExt as _,
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant, SystemTime},
};

use tracing::{info, warn};

/// How often the files are looked at, at most (when the value is asked for).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What tells a file's new version from its old one.
type Stamp = Option<(SystemTime, u64, u64)>;

/// The value `load` makes of `paths`, reloaded when one of them changes.
pub struct Watched<T, E> {
    /// What the value is, for logs ("the TLS certificate").
    what: &'static str,
    paths: Vec<PathBuf>,
    load: Box<dyn Fn() -> Result<T, E> + Send + Sync>,
    /// Called on each failed reload (counted in `/metrics`).
    failed: Box<dyn Fn() + Send + Sync>,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: T,
    stamps: Vec<Stamp>,
    checked: Instant,
}

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.ino(), m.len()))
        })
        .collect()
}

impl<T: Clone, E: std::error::Error + 'static> Watched<T, E> {
    /// Loads the value once; an error here is the caller's (a bad file at start).
    pub fn new(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: impl Fn() -> Result<T, E> + Send + Sync + 'static,
        failed: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, E> {
        let stamps = stamps(&paths);
        let value = load()?;
        Ok(Self {
            what,
            paths,
            load: Box::new(load),
            failed: Box::new(failed),
            state: Mutex::new(State {
                value,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The value, loaded again first if a file changed since the last look; a reload
    /// that fails keeps the previous value (logged and counted).
    pub fn current(&self) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            let now = stamps(&self.paths);
            if now != state.stamps {
                // Retried at the files' next change: a half-written pair changes again.
                state.stamps = now;
                match (self.load)() {
                    Ok(value) => {
                        state.value = value;
                        info!(what = self.what, "reloaded: its files changed");
                    }
                    Err(error) => {
                        (self.failed)();
                        let mut error: &(dyn std::error::Error + 'static) = &error;
                        let mut causes = error.to_string();
                        while let Some(source) = error.source() {
                            causes.push_str(&format!(": {source}"));
                            error = source;
                        }
                        warn!(
                            what = self.what,
                            error = causes,
                            "its files changed but cannot be used; keeping the previous one"
                        );
                    }
                }
            }
        }
        state.value.clone()
    }
}
