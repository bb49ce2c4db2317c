//! Root-only integration tests for apiprof, their fixtures and the demo driver.
//!
//! Run through `cargo xtask test` (or `cargo xtask demo`, `cargo xtask validate`): xtask
//! builds the Go fixtures, apiprof and the reference controller first and passes their
//! locations in `APIPROF_FIXTURES`, `APIPROF_BIN` and `APIPROF_REFCTL`, and that of
//! Debian sid's etcd and kubectl in `APIPROF_SID`.
//! Every process a test starts is held by a guard that kills it on drop.

pub mod apiserver;
pub mod goserver;
pub mod kube;
pub mod load;
pub mod recorder;
pub mod refctl;
pub mod validation;

use std::path::PathBuf;

/// Go fixture builds, as `cargo xtask fixtures` names them: every Go version the
/// fixtures are built with, unstripped and stripped.
pub const GOSERVER_BUILDS: [&str; 6] = [
    "goserver-go1.19",
    "goserver-go1.19-stripped",
    "goserver-go1.24",
    "goserver-go1.24-stripped",
    "goserver-go1.27",
    "goserver-go1.27-stripped",
];

/// Apiserver fixture builds: Go 1.27's own HTTP/2 server, and x/net's (`http2legacy`).
pub const APISERVER_BUILDS: [&str; 2] = ["apiserver-go1.27", "apiserver-go1.27-http2legacy"];

/// A path xtask passes in the environment variable `var`.
fn from_xtask(var: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run the tests with `cargo xtask test`, which builds the fixtures and apiprof first"))
}

/// The folder holding the fixture binaries.
pub fn fixtures_dir() -> PathBuf {
    from_xtask("APIPROF_FIXTURES")
}

/// Debian sid's Kubernetes set that xtask unpacked (etcd and kubectl in `usr/bin`).
pub fn sid_dir() -> PathBuf {
    from_xtask("APIPROF_SID")
}

/// The apiprof binary under test.
pub fn apiprof_bin() -> PathBuf {
    from_xtask("APIPROF_BIN")
}

/// The reference controller (tests/reference-controller) binary.
pub fn refctl_bin() -> PathBuf {
    from_xtask("APIPROF_REFCTL")
}
