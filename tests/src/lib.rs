//! Root-only integration tests for apiprof, their fixtures and the demo driver.
//!
//! Run through `cargo xtask test` (or `cargo xtask demo`, `cargo xtask validate`): xtask
//! builds the Go fixtures, apiprof and the reference controller first and passes their
//! locations in `APIPROF_FIXTURES`, `APIPROF_BIN` and `APIPROF_REFCTL`, and that of
//! Debian sid's etcd and kubectl in `APIPROF_SID`, of its Prometheus server and
//! promtool in `APIPROF_PROMETHEUS`, of the deployment manifests' checker in
//! `APIPROF_MANIFESTS_CHECK`, and (for `cargo xtask test`) of the container image in
//! `APIPROF_IMAGE`.
//! Every process a test starts is held by a guard that kills it on drop.

pub mod apiserver;
pub mod attached;
pub mod bench;
pub mod browser;
pub mod daemon;
pub mod deploy;
pub mod findings;
pub mod goserver;
pub mod hostile;
pub mod image;
pub mod kube;
pub mod load;
pub mod pki;
pub mod process;
pub mod prometheus;
pub mod recorder;
pub mod refctl;
pub mod sandbox;
pub mod simulation;
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

/// Debian sid's Prometheus server and promtool that xtask unpacked (both in `usr/bin`).
pub fn prometheus_dir() -> PathBuf {
    from_xtask("APIPROF_PROMETHEUS")
}

/// `manifests-check` (tests/fixtures/manifests): rendered manifests decoded strictly
/// into the Kubernetes Go types.
pub fn manifests_check_bin() -> PathBuf {
    from_xtask("APIPROF_MANIFESTS_CHECK")
}

/// The apiprof binary under test.
pub fn apiprof_bin() -> PathBuf {
    from_xtask("APIPROF_BIN")
}

/// The container image `cargo xtask image` wrote: an OCI archive.
pub fn image_path() -> PathBuf {
    from_xtask("APIPROF_IMAGE")
}

/// The reference controller (tests/reference-controller) binary.
pub fn refctl_bin() -> PathBuf {
    from_xtask("APIPROF_REFCTL")
}

/// Declares, for every Go fixture build (see [`GOSERVER_BUILDS`]), a module named after
/// it holding one `#[tokio::test]` per named `async fn NAME(build: &str)` of the calling
/// file, which it runs on that build: `goserver_tests!(cpu_attributed_within_5_percent)`
/// makes `go_1_19::cpu_attributed_within_5_percent` and so on.
#[macro_export]
macro_rules! goserver_tests {
    ($($test:ident),+ $(,)?) => {
        $crate::goserver_tests!(@builds [$($test),+]
            go_1_19 => "goserver-go1.19",
            go_1_19_stripped => "goserver-go1.19-stripped",
            go_1_24 => "goserver-go1.24",
            go_1_24_stripped => "goserver-go1.24-stripped",
            go_1_27 => "goserver-go1.27",
            go_1_27_stripped => "goserver-go1.27-stripped",
        );
    };
    (@builds $tests:tt $($module:ident => $build:literal),+ $(,)?) => {$(
        mod $module {
            $crate::goserver_tests!(@tests $build $tests);
        }
    )+};
    (@tests $build:literal [$($test:ident),+]) => {$(
        #[tokio::test]
        async fn $test() {
            super::$test($build).await;
        }
    )+};
}
