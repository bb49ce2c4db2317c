//! Loading apiprof's eBPF object, attaching its probes to a process ([`Probes`]),
//! finding the processes to attach to ([`processes`]), and following client-go programs
//! with the client-side probes ([`clients`]).

pub mod clients;
mod loader;
pub mod processes;

pub use loader::{Links, LoadError, Probes, Tracking};

use tracing::warn;

use crate::target::Target;

/// Opens process `pid` and attaches probes to it with `attach`, on a blocking thread
/// (reading a binary's symbols takes a while); logs why it could not, naming `what`
/// (the process is not tried again while it runs).
pub async fn attach_to(
    pid: u32,
    what: &str,
    attach: impl FnOnce() -> anyhow::Result<(Target, Probes)> + Send + 'static,
) -> Option<(Target, Probes)> {
    let attached = tokio::task::spawn_blocking(attach)
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
    match attached {
        Ok(attached) => Some(attached),
        Err(error) => {
            warn!(
                pid,
                error = format!("{error:#}"),
                "cannot attach to the {what}; not retried while it runs"
            );
            None
        }
    }
}
