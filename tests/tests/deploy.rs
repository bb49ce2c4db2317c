//! The deployment under `deploy/`: every kustomization renders with kubectl and decodes
//! strictly into the Kubernetes Go types (an unknown field fails); the DaemonSet asks
//! for exactly the privileges the README lists; the dashboard's and the alerts' PromQL
//! read only metrics a live daemon exports, and Prometheus runs every query; promtool
//! accepts the alerts; deploy/tls/'s flags and Secrets serve HTTPS as its PodMonitor
//! scrapes. The live test is root only (it loads eBPF programs); the others
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
    pki::{Pki, TOKEN},
    prometheus::Prometheus,
    prometheus_dir,
    refctl::{self, Size},
};
use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{ConfigMap, Pod, PodSpec, Service},
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
    // No host folder at all: apiprof needs neither BTF nor tracefs (environment.rs).
    assert_eq!(container.volume_mounts, None);
    assert_eq!(pod.volumes, None);
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

/// The key a Secret volume named `volume` in `pod` mounts from `secret`.
fn secret_of(pod: &PodSpec, volume: &str) -> String {
    let volumes = pod.volumes.as_deref().unwrap_or_default();
    let volume = volumes
        .iter()
        .find(|v| v.name == volume)
        .expect("the volume");
    let secret = volume.secret.as_ref().expect("a Secret volume");
    secret.secret_name.clone().expect("a secretName")
}

/// deploy/tls/: every file flag of the daemon names a key of a Secret mounted
/// read-only; probes only connect (the kubelet has no client certificate); the
/// PodMonitor scrapes over HTTPS with the scraper's certificate and the daemon's token.
/// Then the overlay's own flags, its files made by [`Pki`] under the Secrets' keys,
/// start a daemon that refuses a client without a certificate and serves one with the
/// scraper's files and the token.
#[tokio::test]
async fn the_tls_overlay_mounts_its_secrets_and_scrapes_with_them() {
    let docs = render("tls").unwrap();
    let ds: DaemonSet = decode(one(&docs, "DaemonSet"));
    let pod = ds.spec.unwrap().template.spec.unwrap();
    let [container] = &pod.containers[..] else {
        panic!("one container")
    };
    let args = container.args.clone().unwrap();
    let mounts = container.volume_mounts.as_deref().unwrap();
    // Flag → (Secret, key).
    let mut files = BTreeMap::new();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            panic!("{args:?}")
        };
        if ![
            "--tls-cert",
            "--tls-key",
            "--client-ca",
            "--bearer-token-file",
        ]
        .contains(&flag.as_str())
        {
            continue;
        }
        let (dir, key) = value.rsplit_once('/').unwrap();
        let mount = mounts
            .iter()
            .find(|m| m.mount_path == dir)
            .unwrap_or_else(|| panic!("{value} is not mounted"));
        assert_eq!(mount.read_only, Some(true), "{}", mount.name);
        files.insert(
            flag.as_str(),
            (secret_of(&pod, &mount.name), key.to_owned()),
        );
    }
    let file = |secret: &str, key: &str| (secret.to_owned(), key.to_owned());
    assert_eq!(
        files,
        BTreeMap::from([
            ("--tls-cert", file("apiprof-tls", "tls.crt")),
            ("--tls-key", file("apiprof-tls", "tls.key")),
            ("--client-ca", file("apiprof-tls", "ca.crt")),
            ("--bearer-token-file", file("apiprof-token", "token")),
        ])
    );
    for probe in [&container.liveness_probe, &container.readiness_probe] {
        let probe = probe.as_ref().expect("a probe");
        assert!(probe.http_get.is_none());
        let port = &probe.tcp_socket.as_ref().expect("a tcpSocket probe").port;
        assert_eq!(serde_json::to_value(port).unwrap(), "http");
    }
    let monitor = one(&docs, "PodMonitor");
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["scheme"], "https");
    let tls = &endpoint["tlsConfig"];
    assert_eq!(tls["serverName"], "apiprof.apiprof.svc");
    let scraper = |v: &Value| {
        (
            v["name"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        scraper(&tls["ca"]["secret"]),
        file("apiprof-scraper-tls", "ca.crt")
    );
    assert_eq!(
        scraper(&tls["cert"]["secret"]),
        file("apiprof-scraper-tls", "tls.crt")
    );
    assert_eq!(
        scraper(&tls["keySecret"]),
        file("apiprof-scraper-tls", "tls.key")
    );
    assert_eq!(endpoint["authorization"]["type"], "Bearer");
    assert_eq!(
        scraper(&endpoint["authorization"]["credentials"]),
        files["--bearer-token-file"]
    );

    // The Secrets, as files where the overlay mounts them (under a temporary root).
    let pki = Pki::new();
    let root = pki.dir().join("root");
    let secrets = BTreeMap::from([
        (file("apiprof-tls", "tls.crt"), &pki.server_cert),
        (file("apiprof-tls", "tls.key"), &pki.server_key),
        (file("apiprof-tls", "ca.crt"), &pki.ca),
        (file("apiprof-token", "token"), &pki.token),
    ]);
    // Its flags, but --listen (the test's own) and --process (nothing to attach to:
    // the overlay's listener is under test).
    let mut local = vec!["--process".to_owned(), "no-such-process-5a1e".to_owned()];
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            panic!("{args:?}")
        };
        let value = match files.get(flag.as_str()) {
            _ if ["--listen", "--process"].contains(&flag.as_str()) => continue,
            None => value.clone(),
            Some((secret, key)) => {
                let path = root.join(value.trim_start_matches('/'));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::copy(secrets[&(secret.clone(), key.clone())], &path).unwrap();
                path.to_str().unwrap().to_owned()
            }
        };
        local.extend([flag.clone(), value]);
    }
    local.push("--no-client-pods".to_owned());
    let local: Vec<&str> = local.iter().map(String::as_str).collect();
    let daemon = Daemon::start(&local).with_client(pki.authorized_client());
    assert!(daemon.url.starts_with("https://"), "{}", daemon.url);
    let anonymous = pki
        .client(None, Some(TOKEN))
        .get(format!("{}/metrics", daemon.url));
    assert!(
        anonymous.send().await.is_err(),
        "served a client without a certificate"
    );
    assert!(daemon.get("/metrics").await.contains("apiprof_build_info"));
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
