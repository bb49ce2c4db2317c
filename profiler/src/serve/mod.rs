//! What the daemon serves: its state ([`state`]), fed by every attached process
//! ([`follow`]), read by the HTTP API ([`api`]) as Prometheus metrics ([`metrics`]) and
//! reports.

pub mod api;
pub mod follow;
pub mod metrics;
pub mod state;
