//! What the daemon serves: its state ([`state`]), fed by every attached process, read
//! by the HTTP API ([`api`]) as Prometheus metrics ([`metrics`]) and reports.

pub mod api;
pub mod metrics;
pub mod state;
