//! `cargo xtask fixture`: runs the apiserver fixture (Go 1.27's HTTP/2 server) with its
//! own etcd until Ctrl-C, printing how to reach it.

use apiprof_tests::{apiserver::ApiServer, APISERVER_BUILDS};

#[tokio::main]
async fn main() {
    let build = APISERVER_BUILDS[0];
    let server = ApiServer::start(build);
    println!("fixture: {build} (pid {}) ready", server.pid());
    println!("  url:        {}", server.url);
    println!("  token:      {}", server.token);
    println!("  kubeconfig: {}", server.kubeconfig.display());
    println!(
        "  try:        curl -k -H 'Authorization: Bearer {}' {}/api/v1/namespaces/default/configmaps",
        server.token, server.url
    );
    println!(
        "  record:     apiprof record --pid {} --duration 60s --output capture.jsonl",
        server.pid()
    );
    println!("Ctrl-C stops it (and its etcd).");
    tokio::signal::ctrl_c().await.expect("waiting for Ctrl-C");
}
