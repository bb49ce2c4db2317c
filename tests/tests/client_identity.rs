//! A request's remote address names the Pod that sent it and that Pod's workload: Pods
//! with IPs on the apiserver fixture (real k8s.io/apiserver and etcd) are followed by
//! `Clients::watch`'s reflector — those listed at start, those created, given an IP or
//! deleted afterwards. Needs no root, only the fixture.

use std::time::{Duration, Instant};

use apiprof::analyze::clients::{Clients, Identity};
use apiprof_tests::apiserver::ApiServer;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;

/// `clients.identify(remote_addr)` once `done` holds for it; panics after 10 s with
/// the last answer.
async fn identify_once(
    clients: &Clients,
    remote_addr: &str,
    done: impl Fn(&Identity) -> bool,
) -> Identity {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let identity = clients.identify(remote_addr);
        if done(&identity) {
            return identity;
        }
        assert!(
            Instant::now() < deadline,
            "{remote_addr} still identified as {identity:?} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn remote_addresses_name_pods_and_their_workloads() {
    let server = ApiServer::start("apiserver-go1.27");
    let client = server.kube_client().await;
    // Before the watch: in its first list.
    server
        .create_pod(
            "team-a",
            "web-7d4b9c-x2bq5",
            ("ReplicaSet", "web-7d4b9c"),
            json!({"app": "web", "pod-template-hash": "7d4b9c"}),
            "10.1.0.5",
        )
        .await;

    let (clients, watch) = Clients::watch(client.clone())
        .await
        .expect("watching the fixture's Pods");
    let watch = tokio::spawn(watch);
    // After it: created, then given an IP, while watched.
    server
        .create_pod(
            "team-b",
            "db-0",
            ("StatefulSet", "db"),
            json!({"app": "db"}),
            "10.1.0.6",
        )
        .await;

    assert_eq!(
        identify_once(&clients, "10.1.0.5:43210", |i| i.pod.is_some()).await,
        Identity {
            ip: "10.1.0.5".into(),
            pod: Some("team-a/web-7d4b9c-x2bq5".into()),
            owner: Some("Deployment/team-a/web".into()),
        }
    );
    assert_eq!(
        identify_once(&clients, "10.1.0.6:8080", |i| i.pod.is_some()).await,
        Identity {
            ip: "10.1.0.6".into(),
            pod: Some("team-b/db-0".into()),
            owner: Some("StatefulSet/team-b/db".into()),
        }
    );
    assert_eq!(
        clients.identify("[::1]:1"),
        Identity {
            ip: "::1".into(),
            pod: None,
            owner: None,
        }
    );

    Api::<Pod>::namespaced(client.clone(), "team-a")
        .delete("web-7d4b9c-x2bq5", &DeleteParams::default())
        .await
        .expect("deleting team-a/web-7d4b9c-x2bq5");
    assert_eq!(
        identify_once(&clients, "10.1.0.5:43210", |i| i.pod.is_none()).await,
        Identity {
            ip: "10.1.0.5".into(),
            pod: None,
            owner: None,
        }
    );
    assert_eq!(
        clients.identify("10.1.0.6:8080").pod.as_deref(),
        Some("team-b/db-0"),
        "the other Pod stays"
    );
    assert_eq!(clients.watch_errors(), 0);
    watch.abort();
}
