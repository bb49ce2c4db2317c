//! Why a scenario failed.

use std::time::Duration;

use crate::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("setting up the scenario's objects: {0}")]
    Setup(#[source] kube::Error),
    #[error("{what}: {source}")]
    Api {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{what} did not happen within {limit:?}: is the apiserver fixture up?")]
    Timeout { what: String, limit: Duration },
    #[error("the controller stopped after {done} of {expected} reconciles")]
    Stopped { done: usize, expected: usize },
    #[error("creating the ledger {path}: {source}")]
    Ledger {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Polls a controller's `run` stream until `expected` reconciles have succeeded, within
/// `limit`; reconcile and watch errors are logged and not counted.
pub async fn until_reconciled<S, T, E>(
    run: S,
    expected: usize,
    limit: Duration,
) -> Result<(), Error>
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    let mut run = std::pin::pin!(run);
    let mut done = 0;
    let counting = async {
        while done < expected {
            match run.next().await {
                Some(Ok(_)) => done += 1,
                Some(Err(e)) => tracing::warn!(error = %e, "controller error"),
                None => return Err(Error::Stopped { done, expected }),
            }
        }
        Ok(())
    };
    tokio::time::timeout(limit, counting)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("{expected} reconciles"),
            limit,
        })?
}
