//! The kube client every scenario talks through: kube-rs's own layers (base URI, bearer
//! auth, extra headers carrying the scenario's User-Agent) over a hyper client on
//! HTTP/1.1 (what kube-rs 5's default client speaks: its connector enables only
//! HTTP/1.1) or HTTP/2 (ALPN `h2`), with the token bucket in front when asked and the
//! ledger's [`TracedLayer`] next to the wire.

use std::path::Path;

use http::{header::USER_AGENT, HeaderValue};
use hyper_util::{client::legacy::Client as HyperClient, rt::TokioExecutor};
use kube::{
    client::ConfigExt,
    config::{KubeConfigOptions, Kubeconfig},
    Client, Config,
};
use tower::{BoxError, ServiceBuilder};

use crate::{ledger::Ledger, throttle::ThrottleLayer, traced::TracedLayer};

/// The HTTP version a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Http {
    /// HTTP/1.1 only (ALPN `http/1.1`), as kube-rs's default client.
    H1,
    /// HTTP/2 (ALPN `h2`).
    H2,
}

impl Http {
    /// The version as Go's `Request.Proto` (and apiprof) names it.
    pub fn version(self) -> &'static str {
        match self {
            Self::H1 => "HTTP/1.1",
            Self::H2 => "HTTP/2.0",
        }
    }
}

/// Client-side rate limit: `qps` requests per second after a burst of `burst`.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub qps: f64,
    pub burst: u32,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("building the client from the kubeconfig: {0}")]
    Config(#[source] kube::Error),
    #[error("the user agent {0:?} is not a valid header value")]
    UserAgent(String),
}

/// A client of the server in `kubeconfig` sending `user_agent` on every request.
pub async fn build(
    kubeconfig: &Path,
    http: Http,
    user_agent: &str,
    limit: Option<RateLimit>,
    ledger: &Ledger,
) -> Result<Client, ClientError> {
    let kubeconfig_error = |source| ClientError::Kubeconfig {
        path: kubeconfig.display().to_string(),
        source,
    };
    let file = Kubeconfig::read_from(kubeconfig).map_err(kubeconfig_error)?;
    let mut config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_error)?;
    let agent =
        HeaderValue::from_str(user_agent).map_err(|_| ClientError::UserAgent(user_agent.into()))?;
    config.headers.push((USER_AGENT, agent));

    let tls = config.rustls_client_config().map_err(ClientError::Config)?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let connector = match http {
        Http::H1 => https.enable_http1().build(),
        Http::H2 => https.enable_http2().build(),
    };
    let mut hyper = HyperClient::builder(TokioExecutor::new());
    hyper.http2_only(http == Http::H2);
    let hyper = hyper.build(connector);

    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(limit.map(|l| ThrottleLayer::new(l.qps, l.burst, ledger.clone())))
        .option_layer(config.auth_layer().map_err(ClientError::Config)?)
        .layer(config.extra_headers_layer().map_err(ClientError::Config)?)
        .layer(TracedLayer::new(ledger.clone(), http.version()))
        .map_err(BoxError::from)
        .service(hyper);
    Ok(Client::new(service, config.default_namespace))
}
