//! The deployment under `deploy/`: every kustomization renders with kubectl and decodes
//! strictly into the Kubernetes Go types (an unknown field fails); the DaemonSet asks
//! for exactly the privileges the README lists; the dashboard's and the alerts' PromQL
//! read only metrics a live daemon exports, and Prometheus runs every query; promtool
//! accepts the alerts. The live test is root only (it loads eBPF programs); the others
//! need only kubectl and the checker.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    time::{Duration, SystemTime},
};

use apiprof_tests::{
    apiserver::ApiServer,
    daemon::Daemon,
    deploy::{
        check, dashboard, dashboard_queries, deploy_dir, exported, metric_names, one, render,
        without_grafana_variables, KUSTOMIZATIONS,
    },
    prometheus::Prometheus,
    prometheus_dir,
    refctl::{self, Size},
};
use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{ConfigMap, Pod, Service},
    rbac::v1::ClusterRole,
};
use serde_json::Value;

/// The profiler crate's version: the image's tag.
fn profiler_version() -> String {
    let manifest = std::fs::read_to_string(deploy_dir().join("../profiler/Cargo.toml"))
        .expect("reading profiler/Cargo.toml");
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("profiler/Cargo.toml has a version")
        .to_owned()
}

fn decode<T: k8s_openapi::serde::de::DeserializeOwned>(doc: &Value) -> T {
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc:#}"))
}

/// The PrometheusRule's alert and recording expressions.
fn rule_exprs(rule: &Value) -> Vec<String> {
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .map(|r| r["expr"].as_str().expect("expr").to_owned())
        .collect()
}

#[test]
fn every_kustomization_renders_and_decodes_strictly() {
    for dir in KUSTOMIZATIONS {
        let docs = render(dir).unwrap_or_else(|e| panic!("deploy/{dir}: {e}"));
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        println!("deploy/{dir}: {kinds:?}");
        assert!(!docs.is_empty());
    }
    // The base installs on a cluster without the Prometheus Operator: no CRD kinds.
    let base = render(".").unwrap();
    let kinds: BTreeSet<&str> = base.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ClusterRole",
            "ClusterRoleBinding",
            "DaemonSet",
            "Namespace",
            "Service",
            "ServiceAccount"
        ])
    );
    let operator = render("prometheus-operator").unwrap();
    for kind in ["PodMonitor", "PrometheusRule"] {
        assert_eq!(
            one(&operator, kind)["apiVersion"],
            "monitoring.coreos.com/v1"
        );
    }
}

#[test]
fn the_checker_rejects_an_unknown_or_misspelled_field() {
    let kubectl = apiprof_tests::sid_dir().join("usr/bin/kubectl");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(deploy_dir().join("prometheus-operator"))
        .output()
        .expect("kubectl kustomize");
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(check(&yaml).is_ok());
    for (from, to, field) in [
        (
            "hostPID: true",
            "hostPid: true",
            "spec.template.spec.hostPid",
        ),
        (
            "readOnlyRootFilesystem: true",
            "readOnlyRootFileSystem: true",
            "securityContext.readOnlyRootFileSystem",
        ),
        ("interval: 15s", "scrapeInterval: 15s", "scrapeInterval"),
        ("for: 10m", "fro: 10m", "fro"),
    ] {
        assert!(yaml.contains(from), "{from}");
        let error = check(&yaml.replacen(from, to, 1)).expect_err(to);
        println!("{to}: {}", error.trim());
        assert!(
            error.contains("unknown field") && error.contains(field),
            "{to}: {error}"
        );
    }
}

#[test]
fn the_daemonset_asks_for_exactly_what_the_readme_lists() {
    let docs = render(".").unwrap();
    let ds: DaemonSet = decode(one(&docs, "DaemonSet"));
    assert_eq!(ds.metadata.namespace.as_deref(), Some("apiprof"));
    let spec = ds.spec.expect("spec");
    let strategy = spec.update_strategy.expect("updateStrategy");
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let max_unavailable = strategy.rolling_update.and_then(|r| r.max_unavailable);
    assert_eq!(
        serde_json::to_value(max_unavailable).unwrap(),
        serde_json::json!(1)
    );
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(
        pod.node_selector,
        Some(BTreeMap::from([(
            "node-role.kubernetes.io/control-plane".to_owned(),
            String::new()
        )]))
    );
    let tolerations = pod.tolerations.expect("tolerations");
    assert_eq!(tolerations.len(), 1);
    assert_eq!(
        tolerations[0].key.as_deref(),
        Some("node-role.kubernetes.io/control-plane")
    );
    assert_eq!(tolerations[0].effect.as_deref(), Some("NoSchedule"));
    assert_eq!(pod.host_pid, Some(true));
    assert_eq!(pod.host_network, None);
    assert_eq!(pod.host_ipc, None);
    assert_eq!(pod.service_account_name.as_deref(), Some("apiprof"));
    assert!(pod.termination_grace_period_seconds.unwrap_or(30) >= 10);
    let annotations = spec.template.metadata.and_then(|m| m.annotations).unwrap();
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9464");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    let [container] = &pod.containers[..] else {
        panic!("one container")
    };
    assert_eq!(
        container.image.as_deref(),
        Some(format!("ghcr.io/apiprof/apiprof:{}", profiler_version()).as_str())
    );
    assert_eq!(
        container.args.as_deref(),
        Some(&["--process", "kube-apiserver", "--listen", "0.0.0.0:9464"].map(String::from)[..])
    );
    let ports = container.ports.as_deref().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].container_port),
        (Some("http"), 9464)
    );
    for probe in [&container.liveness_probe, &container.readiness_probe] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("an httpGet probe");
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(serde_json::to_value(&get.port).unwrap(), "http");
    }
    let security = container
        .security_context
        .as_ref()
        .expect("securityContext");
    assert_eq!(security.privileged, Some(false));
    assert_eq!(security.run_as_user, Some(0));
    assert_eq!(security.run_as_non_root, Some(false));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let capabilities = security.capabilities.as_ref().unwrap();
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(
        capabilities.add.as_deref(),
        Some(&["SYS_ADMIN".to_owned(), "SYS_PTRACE".to_owned()][..])
    );
    assert_eq!(
        security.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let resources = container.resources.as_ref().unwrap();
    let quantities = |m: &Option<BTreeMap<String, _>>| serde_json::to_value(m).unwrap();
    assert_eq!(
        quantities(&resources.requests),
        serde_json::json!({"cpu": "50m", "memory": "96Mi"})
    );
    assert_eq!(
        quantities(&resources.limits),
        serde_json::json!({"cpu": "500m", "memory": "256Mi"})
    );
    // Exactly the two host folders, read-only, each mounted where the host has it.
    let mounts = container.volume_mounts.as_deref().unwrap();
    let volumes = pod.volumes.as_deref().unwrap();
    assert_eq!(mounts.len(), 2);
    assert_eq!(volumes.len(), 2);
    let mut paths = BTreeSet::new();
    for mount in mounts {
        assert_eq!(mount.read_only, Some(true), "{}", mount.name);
        let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
        let host = volume.host_path.as_ref().expect("a hostPath volume");
        assert_eq!(host.path, mount.mount_path);
        paths.insert(host.path.as_str());
    }
    assert_eq!(
        paths,
        BTreeSet::from(["/sys/kernel/btf", "/sys/kernel/tracing"])
    );
    let env = container.env.as_deref().unwrap();
    assert!(env
        .iter()
        .any(|e| e.name == "APIPROF_LOG" && e.value.as_deref() == Some("info")));

    // The Service is headless, on the named port; the role lists and watches Pods only.
    let service: Service = decode(one(&docs, "Service"));
    let service = service.spec.unwrap();
    assert_eq!(service.cluster_ip.as_deref(), Some("None"));
    let ports = service.ports.unwrap();
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].port),
        (Some("http"), 9464)
    );
    let role: ClusterRole = decode(one(&docs, "ClusterRole"));
    assert_eq!(
        serde_json::to_value(role.rules).unwrap(),
        serde_json::json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}])
    );
    let namespace = one(&docs, "Namespace");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
}

#[test]
fn the_grafana_overlay_ships_the_dashboard_for_the_sidecar() {
    let docs = render("grafana").unwrap();
    let map: ConfigMap = decode(one(&docs, "ConfigMap"));
    assert_eq!(map.metadata.labels.unwrap()["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(&map.data.unwrap()["apiprof.json"]).unwrap();
    let dashboard = dashboard();
    assert_eq!(shipped, dashboard);
    assert_eq!(dashboard["uid"], "apiprof");
    assert_eq!(dashboard["title"], "apiprof");
    assert_eq!(dashboard["templating"]["list"][0]["type"], "datasource");
    assert_eq!(dashboard["templating"]["list"][0]["query"], "prometheus");
}

#[test]
fn promtool_accepts_the_alerts() {
    let docs = render("prometheus-operator").unwrap();
    let rule = one(&docs, "PrometheusRule");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.json");
    std::fs::write(
        &file,
        serde_json::json!({ "groups": rule["spec"]["groups"] }).to_string(),
    )
    .unwrap();
    let out = Command::new(prometheus_dir().join("usr/bin/promtool"))
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("running promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    print!("{text}");
    assert!(out.status.success(), "promtool check rules: {text}");
    assert!(text.contains(&format!("SUCCESS: {} rules found", rule_exprs(rule).len())));
}

/// Root only: the daemon attached to the apiserver fixture (its Pod watch pointed at
/// the fixture, as in a cluster), a WATCH held open, refctl's resync storm and
/// throttled client run, so every family the queries read has samples.
#[tokio::test]
async fn the_dashboard_and_alerts_read_only_exported_metrics_and_prometheus_runs_them() {
    let server = ApiServer::start("apiserver-go1.27");
    let daemon = Daemon::start_with_env(
        &["--pid", &server.pid().to_string()],
        &[("KUBECONFIG", server.kubeconfig.as_path())],
    );
    daemon.wait_attached(server.pid()).await;
    // Opened after attaching, so the daemon sees it begin: apiprof_watches_open.
    let pods: kube::Api<Pod> = kube::Api::all(server.kube_client().await);
    let _watch = pods
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .expect("watching Pods");
    let url = daemon.url.strip_prefix("http://").unwrap().to_owned();
    let prometheus = Prometheus::start(&[url]);
    let dir = tempfile::tempdir().unwrap();
    for scenario in ["resync-storm", "throttled"] {
        let scenario = refctl::scenario(scenario).unwrap();
        refctl::run(&server, scenario, Size::Short, dir.path());
    }
    // The throttled client stays `apiprof_client_throttled` 30 s after it ends.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = daemon.get("/metrics").await;
    let exported = exported(&metrics);
    println!("exported: {exported:?}");

    let docs = render("prometheus-operator").unwrap();
    let mut queries: Vec<(String, String)> = rule_exprs(one(&docs, "PrometheusRule"))
        .into_iter()
        .map(|e| ("alert".to_owned(), e))
        .collect();
    queries.extend(
        dashboard_queries(&dashboard())
            .into_iter()
            .map(|e| ("dashboard".to_owned(), without_grafana_variables(&e))),
    );
    let mut read = BTreeSet::new();
    for (source, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{source} {expr:?} reads no metric");
        for name in names {
            assert!(
                exported.contains(&name),
                "{source} {expr:?} reads {name}, which the daemon does not export"
            );
            read.insert(name);
        }
    }
    println!("the queries read {read:?}");

    prometheus.wait_for_scrape_after(SystemTime::now()).await;
    for (source, expr) in &queries {
        // Panics with Prometheus's answer unless the query parses and runs.
        let answer = prometheus.query(expr).await;
        println!("{source} {expr}: {} series", answer.len());
    }
}
