use k8s_openapi::{
    api::core::v1::PodIP, apimachinery::pkg::apis::meta::v1::ObjectMeta,
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};

use super::*;

fn reference(kind: &str, name: &str, controller: Option<bool>) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        controller,
        block_owner_deletion: None,
    }
}

/// A Pod `namespace/name` with `ip` (running), owned by `owners`, labelled `labels`.
fn pod(
    namespace: &str,
    name: &str,
    ip: &str,
    owners: Vec<OwnerReference>,
    labels: &[(&str, &str)],
) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            owner_references: Some(owners),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(PodStatus {
            pod_ip: Some(ip.into()),
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
    }
}

fn clients(pods: &[Pod]) -> Clients {
    let shared = Shared::default();
    {
        let mut index = shared.index.write().unwrap();
        for p in pods {
            index.insert(p);
        }
    }
    Clients {
        shared: Some(Arc::new(shared)),
    }
}

fn owner_of(kind: &str, name: &str, labels: &[(&str, &str)]) -> Option<String> {
    owner(&pod(
        "ns",
        "p",
        "10.0.0.1",
        vec![reference(kind, name, Some(true))],
        labels,
    ))
}

#[test]
fn remote_addresses_parse_as_go_writes_them() {
    let ip = |a: &str| parse_ip(a).map(|ip| ip.to_string());
    assert_eq!(ip("10.1.0.5:43210").as_deref(), Some("10.1.0.5"));
    assert_eq!(ip("[::1]:1").as_deref(), Some("::1"));
    assert_eq!(ip("[2001:db8::17]:443").as_deref(), Some("2001:db8::17"));
    assert_eq!(ip("[fe80::1%eth0]:80").as_deref(), Some("fe80::1"));
    assert_eq!(ip("[::ffff:10.1.0.5]:80").as_deref(), Some("10.1.0.5"));
    assert_eq!(ip("10.1.0.5").as_deref(), Some("10.1.0.5"));
    assert_eq!(ip("::1").as_deref(), Some("::1"));
    for unparsable in ["", "@", "pipe", "[::1", "host:80", "10.1.0.300:1"] {
        assert_eq!(ip(unparsable), None, "{unparsable:?}");
    }
}

#[test]
fn an_unparsable_address_keeps_its_text_as_ip() {
    assert_eq!(
        Clients::none().identify("@"),
        Identity {
            ip: "@".into(),
            pod: None,
            owner: None
        }
    );
}

#[test]
fn without_cluster_access_only_the_ip_is_known() {
    assert_eq!(
        Clients::none().identify("[::1]:1"),
        Identity {
            ip: "::1".into(),
            pod: None,
            owner: None
        }
    );
}

#[test]
fn a_replicaset_named_after_the_pod_template_hash_stands_for_its_deployment() {
    let hash = [("pod-template-hash", "7d4b9c")];
    assert_eq!(
        owner_of("ReplicaSet", "web-7d4b9c", &hash).as_deref(),
        Some("Deployment/ns/web")
    );
    assert_eq!(
        owner_of("ReplicaSet", "my-web-app-7d4b9c", &hash).as_deref(),
        Some("Deployment/ns/my-web-app")
    );
    // No label, another hash, or nothing before the hash: a ReplicaSet of its own.
    assert_eq!(
        owner_of("ReplicaSet", "web-7d4b9c", &[]).as_deref(),
        Some("ReplicaSet/ns/web-7d4b9c")
    );
    assert_eq!(
        owner_of("ReplicaSet", "web-7d4b9c", &[("pod-template-hash", "abc")]).as_deref(),
        Some("ReplicaSet/ns/web-7d4b9c")
    );
    assert_eq!(
        owner_of("ReplicaSet", "-7d4b9c", &hash).as_deref(),
        Some("ReplicaSet/ns/-7d4b9c")
    );
}

#[test]
fn other_owners_are_named_by_kind_namespace_and_name() {
    assert_eq!(
        owner_of("StatefulSet", "db", &[]).as_deref(),
        Some("StatefulSet/ns/db")
    );
    assert_eq!(
        owner_of("DaemonSet", "agent", &[]).as_deref(),
        Some("DaemonSet/ns/agent")
    );
    assert_eq!(
        owner_of("Job", "backup-28000000", &[]).as_deref(),
        Some("Job/ns/backup-28000000")
    );
    assert_eq!(
        owner_of("Node", "node-1", &[]).as_deref(),
        Some("Node/node-1")
    );
    assert_eq!(
        owner(&pod("ns", "p", "10.0.0.1", vec![], &[])),
        None,
        "a bare Pod"
    );
}

#[test]
fn the_controller_reference_wins_over_other_owners() {
    let p = pod(
        "ns",
        "p",
        "10.0.0.1",
        vec![
            reference("ConfigMap", "cm", None),
            reference("StatefulSet", "db", Some(true)),
        ],
        &[],
    );
    assert_eq!(owner(&p).as_deref(), Some("StatefulSet/ns/db"));
    let p = pod(
        "ns",
        "p",
        "10.0.0.1",
        vec![reference("Job", "j", Some(false))],
        &[],
    );
    assert_eq!(
        owner(&p).as_deref(),
        Some("Job/ns/j"),
        "no controller: the first"
    );
}

#[test]
fn an_ip_maps_to_its_pod_and_owner() {
    let c = clients(&[pod(
        "team-a",
        "web-7d4b9c-x1",
        "10.1.0.5",
        vec![reference("ReplicaSet", "web-7d4b9c", Some(true))],
        &[("pod-template-hash", "7d4b9c")],
    )]);
    assert_eq!(
        c.identify("10.1.0.5:43210"),
        Identity {
            ip: "10.1.0.5".into(),
            pod: Some("team-a/web-7d4b9c-x1".into()),
            owner: Some("Deployment/team-a/web".into()),
        }
    );
    assert_eq!(c.identify("10.1.0.6:1").pod, None);
}

#[test]
fn every_ip_of_a_dual_stack_pod_maps_to_it() {
    let mut p = pod("ns", "p", "10.1.0.5", vec![], &[]);
    p.status.as_mut().unwrap().pod_ips = Some(vec![
        PodIP {
            ip: "10.1.0.5".into(),
        },
        PodIP {
            ip: "fd00::5".into(),
        },
    ]);
    let c = clients(&[p]);
    assert_eq!(c.identify("[fd00::5]:80").pod.as_deref(), Some("ns/p"));
    assert_eq!(c.identify("10.1.0.5:80").pod.as_deref(), Some("ns/p"));
}

#[test]
fn host_network_pods_share_their_node_ip_and_name_no_pod() {
    let mut by_spec = pod("kube-system", "kube-proxy-a", "192.168.0.10", vec![], &[]);
    by_spec.spec = Some(PodSpec {
        host_network: Some(true),
        ..PodSpec::default()
    });
    assert_eq!(clients(&[by_spec]).identify("192.168.0.10:5").pod, None);
    // The spec dropped, as the reflector keeps it when unset: podIP == hostIP says so.
    let mut by_status = pod("kube-system", "etcd-a", "192.168.0.10", vec![], &[]);
    by_status.status.as_mut().unwrap().host_ip = Some("192.168.0.10".into());
    assert_eq!(clients(&[by_status]).identify("192.168.0.10:5").pod, None);
}

#[test]
fn an_ip_several_running_pods_share_names_none() {
    let c = clients(&[
        pod("a", "one", "10.1.0.7", vec![], &[]),
        pod("b", "two", "10.1.0.7", vec![], &[]),
    ]);
    assert_eq!(c.identify("10.1.0.7:1").pod, None);
}

#[test]
fn a_running_pod_wins_over_a_finished_one_with_the_same_ip() {
    let mut done = pod("a", "job-x", "10.1.0.8", vec![], &[]);
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let c = clients(&[done.clone(), pod("b", "web", "10.1.0.8", vec![], &[])]);
    assert_eq!(c.identify("10.1.0.8:1").pod.as_deref(), Some("b/web"));
    assert_eq!(
        clients(&[done]).identify("10.1.0.8:1").pod.as_deref(),
        Some("a/job-x"),
        "alone, a finished Pod still names its IP"
    );
}

#[test]
fn a_pod_that_changes_ip_or_goes_is_forgotten_there() {
    let c = clients(&[pod("a", "p", "10.1.0.9", vec![], &[])]);
    let shared = c.shared.as_ref().unwrap();
    shared
        .index
        .write()
        .unwrap()
        .insert(&pod("a", "p", "10.1.0.10", vec![], &[]));
    assert_eq!(c.identify("10.1.0.9:1").pod, None);
    assert_eq!(c.identify("10.1.0.10:1").pod.as_deref(), Some("a/p"));
    shared.index.write().unwrap().remove("a/p");
    assert_eq!(c.identify("10.1.0.10:1").pod, None);
    assert!(shared.index.read().unwrap().by_ip.is_empty());
}

#[test]
fn the_reflector_keeps_only_what_identification_needs() {
    let mut p = pod(
        "ns",
        "p",
        "10.1.0.5",
        vec![reference("StatefulSet", "db", Some(true))],
        &[("pod-template-hash", "h"), ("app", "web")],
    );
    p.metadata.annotations = Some([("big".to_string(), "x".repeat(1000))].into());
    p.spec = Some(PodSpec {
        node_name: Some("node-1".into()),
        ..PodSpec::default()
    });
    p.status.as_mut().unwrap().message = Some("m".into());
    keep_identity(&mut p);
    assert_eq!(p.metadata.annotations, None);
    assert_eq!(
        p.metadata.labels,
        Some([("pod-template-hash".to_string(), "h".to_string())].into())
    );
    assert_eq!(p.spec, None);
    assert_eq!(p.status.as_ref().unwrap().message, None);
    assert_eq!(
        p.status.as_ref().unwrap().pod_ip.as_deref(),
        Some("10.1.0.5")
    );
    assert_eq!(owner(&p).as_deref(), Some("StatefulSet/ns/db"));
}

#[test]
fn refusals_name_the_missing_permission() {
    let status = |code| {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: "pods is forbidden".into(),
            ..kube::core::Status::default()
        }))
    };
    let forbidden = refused(status(403)).to_string();
    assert!(
        forbidden.contains("list and watch on pods") && forbidden.contains("ClusterRole"),
        "{forbidden}"
    );
    assert!(matches!(
        refused(status(401)),
        ClientsError::Unauthorized { .. }
    ));
    assert!(matches!(refused(status(500)), ClientsError::List { .. }));
}
