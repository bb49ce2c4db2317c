//! What the daemon serves: its state ([`state`]), fed by every attached process
//! ([`follow`]), read by the HTTP API ([`api`]) as Prometheus metrics ([`metrics`]) and
//! reports, over plain HTTP or TLS ([`tls`], [`TlsListener`]) and behind an optional
//! bearer token ([`Bearer`]).

pub mod api;
mod auth;
pub mod follow;
mod listener;
pub mod metrics;
pub mod state;
pub mod tls;
mod watched;

pub use auth::{read_token, Bearer, TokenError};
pub use listener::{Certificates, TlsListener};
pub use watched::Watched;
