//! The daemon's HTTPS listener: TCP connections accepted, their TLS handshakes run each
//! on its own task (a slow or hostile client holds up no other), and the connections
//! that complete one handed to axum.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use rustls::ServerConfig;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, Semaphore},
    task::JoinHandle,
};
use tokio_rustls::{server::TlsStream, TlsAcceptor};
use tracing::{debug, warn};

use super::{tls::TlsError, watched::Watched};

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections that completed a handshake, not yet taken by axum.
const BACKLOG: usize = 64;

/// Handshakes under way at most: past it, a new connection is closed at once (and
/// counted as refused), so a flood of connections that never finish their handshake
/// holds bounded memory. Prometheus and operators need a handful.
const MAX_HANDSHAKES: usize = 256;

/// The certificates served, reloaded when their files change.
pub type Certificates = Watched<Arc<ServerConfig>, TlsError>;

/// A TLS listener for `axum::serve`.
pub struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Serves the certificates of `config` on `tcp`; `refused` is called for each
    /// connection whose handshake fails (no or a wrong client certificate, not TLS, too
    /// slow).
    pub fn new(
        tcp: TcpListener,
        config: Arc<Certificates>,
        refused: impl Fn() + Clone + Send + 'static,
    ) -> io::Result<Self> {
        let addr = tcp.local_addr()?;
        let (done, ready) = mpsc::channel(BACKLOG);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // As axum's own loop does: out of descriptors passes with time.
                        warn!(%error, "accepting a connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    refused();
                    debug!(%peer, "{MAX_HANDSHAKES} TLS handshakes under way: connection closed");
                    continue;
                };
                let acceptor = TlsAcceptor::from(config.current());
                let (done, refused) = (done.clone(), refused.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = done.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => {
                            refused();
                            debug!(%peer, %error, "TLS handshake refused");
                        }
                        Err(_) => {
                            refused();
                            debug!(%peer, "TLS handshake not done within {HANDSHAKE_TIMEOUT:?}");
                        }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
