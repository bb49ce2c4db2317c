//! The daemon's listener is no open door. With `--tls-cert`, `--client-ca` and
//! `--bearer-token-file` (files made at test time by [`Pki`]), on the Go fixture:
//! plain HTTP is refused, as are clients without a certificate of the CA and requests
//! without the token (401, `WWW-Authenticate: Bearer`), except `/healthz`; with all of
//! them, `/metrics`, `apiprof report https://...` and a real Prometheus scraping over
//! TLS give exactly the counts sent, and every refusal is counted. Certificates are
//! reloaded when their files change; bad files exit 2 naming the file.
//!
//! Root only: loads real eBPF programs.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant, SystemTime},
};

use apiprof_tests::{
    apiprof_bin,
    daemon::{metric_tallies, samples, Daemon},
    goserver::GoServer,
    load::{self, truth, Http, BY_CLIENT},
    pki::{Pki, TOKEN},
    prometheus::{check_metrics, Prometheus, ScrapeTls},
};

const BUILD: &str = "goserver-go1.27";

/// `apiprof report DAEMON --format json --window 1h --by BY_CLIENT ARGS`.
fn report(url: &str, args: &[String]) -> Output {
    Command::new(apiprof_bin())
        .args(["report", url, "--format", "json", "--window", "1h", "--by"])
        .arg(BY_CLIENT.join(","))
        .args(args)
        .output()
        .expect("running apiprof report")
}

/// `GET url` with `client`: its status and `WWW-Authenticate` header, or the error.
async fn status(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let response = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    Ok((response.status().as_u16(), challenge))
}

#[tokio::test]
async fn only_clients_with_a_certificate_of_the_ca_and_the_token_read_exact_counts() {
    let server = GoServer::start(BUILD);
    let pki = Pki::new();
    let mut args = vec!["--pid".to_owned(), server.pid().to_string()];
    args.extend(["--no-client-pods".to_owned()]);
    args.extend(pki.daemon_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::start(&args).with_client(pki.authorized_client());
    let addr = daemon
        .url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("{} is not https", daemon.url))
        .to_owned();
    daemon.wait_attached(server.pid()).await;

    // Refused at the handshake: plain HTTP, no client certificate, another CA's.
    let plain = status(&reqwest::Client::new(), &format!("http://{addr}/healthz")).await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    for (who, identity) in [("no", None), ("another CA's", Some(&pki.stranger))] {
        let client = pki.client(identity, Some(TOKEN));
        let answer = status(&client, &format!("{}/healthz", daemon.url)).await;
        assert!(
            answer.is_err(),
            "{who} client certificate: answered {answer:?}"
        );
    }
    // Refused by the token: none, or another.
    let untokened = pki.client(Some(&pki.client), None);
    let mistokened = pki.client(Some(&pki.client), Some("listener-token-c4fe5ec8"));
    for (client, path) in [
        (&untokened, "/metrics"),
        (&untokened, "/report"),
        (&untokened, "/findings"),
        (&mistokened, "/metrics"),
    ] {
        let answer = status(client, &format!("{}{path}", daemon.url)).await;
        assert_eq!(answer, Ok((401, "Bearer".to_owned())), "{path}");
    }
    // Probes carry no token.
    let health = status(&untokened, &format!("{}/healthz", daemon.url)).await;
    assert_eq!(health, Ok((200, String::new())));

    let prometheus = Prometheus::start_tls(
        std::slice::from_ref(&addr),
        &ScrapeTls {
            ca: &pki.ca,
            cert: &pki.client.cert,
            key: &pki.client.key,
            token: &pki.token,
        },
    );
    let mut sent = load::drive(&server.url, Http::One, "listener-h1/1.0").await;
    sent.extend(load::drive(&server.url, Http::Two, "listener-h2/1.0").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scraped_after = SystemTime::now();
    let want = truth(&sent, load::by_client);

    let out = report(&daemon.url, &pki.report_args());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "apiprof report: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(json["dropped_events"], 0, "events were dropped");
    assert_eq!(
        load::reported(&json, &BY_CLIENT),
        want,
        "apiprof report https://"
    );

    // The report's refusals name the fix and exit 2: no token, a file that is no CA.
    let without_token = &pki.report_args()[..6];
    let out = report(&daemon.url, without_token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("requires a bearer token: pass the file holding it with --bearer-token-file"),
        "{stderr}"
    );
    let mut bad_ca = pki.report_args();
    bad_ca[1] = pki.token.to_str().expect("UTF-8").to_owned();
    let out = report(&daemon.url, &bad_ca);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            pki.token.display()
        )),
        "{stderr}"
    );

    let text = daemon.get("/metrics").await;
    check_metrics(&text);
    let requests = samples(&text, "apiprof_requests_total");
    let bytes = samples(&text, "apiprof_response_bytes_total");
    assert_eq!(
        metric_tallies(&requests, &bytes, &BY_CLIENT),
        want,
        "/metrics"
    );
    let refused: BTreeMap<String, f64> = samples(&text, "apiprof_listener_errors_total")
        .into_iter()
        .map(|(labels, n)| (labels["reason"].clone(), n))
        .collect();
    // 3 handshakes (plain, none, a stranger); 5 tokens (4 above, the report's).
    assert_eq!(
        refused,
        BTreeMap::from([("tls_handshake".into(), 3.0), ("unauthorized".into(), 5.0)])
    );

    prometheus.wait_for_scrape_after(scraped_after).await;
    assert_eq!(
        prometheus.request_tallies(&BY_CLIENT).await,
        want,
        "Prometheus over TLS"
    );
}

/// Replaces `to` with `from`'s bytes the way a Secret's files are updated: a new file
/// renamed over the old one.
fn swap(from: &Path, to: &Path) {
    let staged = to.with_extension("new");
    std::fs::copy(from, &staged).expect("staging a file");
    std::fs::rename(&staged, to).expect("swapping a file");
}

/// Whether a client trusting `pki`'s CA reads `/healthz` within `limit`.
async fn trusted_within(pki: &Pki, url: &str, limit: Duration) -> bool {
    let client = pki.client(None, None);
    let start = Instant::now();
    while start.elapsed() < limit {
        if status(&client, &format!("{url}/healthz")).await == Ok((200, String::new())) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn renewed_certificates_are_served_and_broken_ones_keep_the_last_good() {
    let pki = Pki::new();
    let renewed = Pki::new();
    let cert = pki.dir().join("served.crt");
    let key = pki.dir().join("served.key");
    swap(&pki.server_cert, &cert);
    swap(&pki.server_key, &key);
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // Nothing to attach to: only the listener is under test.
    let daemon = Daemon::start(&[
        "--process",
        "no-such-process-5a1e",
        "--no-client-pods",
        "--tls-cert",
        cert_arg,
        "--tls-key",
        key_arg,
    ]);
    assert!(trusted_within(&pki, &daemon.url, Duration::from_secs(5)).await);

    // A key that is no key: the certificate served stays, the failure is counted.
    std::fs::write(pki.dir().join("garbage"), "not a key\n").unwrap();
    swap(&pki.dir().join("garbage"), &key);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(trusted_within(&pki, &daemon.url, Duration::from_secs(3)).await);

    // cert-manager's renewal: a certificate of another CA is served within ~1 s.
    swap(&renewed.server_cert, &cert);
    swap(&renewed.server_key, &key);
    assert!(
        trusted_within(&renewed, &daemon.url, Duration::from_secs(5)).await,
        "the renewed certificate is not served"
    );
    assert!(!trusted_within(&pki, &daemon.url, Duration::from_millis(10)).await);

    let text = pki_metrics(&renewed, &daemon.url).await;
    let reloads: Vec<f64> = samples(&text, "apiprof_listener_errors_total")
        .into_iter()
        .filter(|(labels, _)| labels["reason"] == "tls_reload")
        .map(|(_, n)| n)
        .collect();
    assert_eq!(reloads, [1.0], "{text}");
}

/// `/metrics` of a daemon serving `pki`'s certificate without a token.
async fn pki_metrics(pki: &Pki, url: &str) -> String {
    let response = pki
        .client(None, None)
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    response.text().await.expect("the body")
}

/// Without `--listen` the daemon answers on loopback only; on every interface, in clear
/// text and with no token, it says at start that anyone who reaches it can read it.
#[test]
fn the_listener_is_loopback_unless_told_and_an_open_one_is_called_out() {
    let start = |listen: &[&str]| {
        let mut child = Command::new(apiprof_bin())
            .args(["daemon", "--pid", "1", "--no-client-pods"])
            .args(listen)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting apiprof daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("its first line");
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().expect("its exit");
        (line, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let open = "the HTTP API answers anyone who reaches this address";
    let (line, stderr) = start(&[]);
    assert!(
        line.starts_with("apiprof daemon listening on 127.0.0.1:9464 (http"),
        "{line}"
    );
    assert!(!stderr.contains(open), "{stderr}");
    let (line, stderr) = start(&["--listen", "0.0.0.0:0"]);
    assert!(
        line.starts_with("apiprof daemon listening on 0.0.0.0:"),
        "{line}"
    );
    assert!(stderr.contains(open), "{stderr}");
}

#[test]
fn bad_tls_files_exit_2_naming_the_file_before_listening() {
    let pki = Pki::new();
    let missing = pki.dir().join("missing.crt");
    let cases = [
        (
            vec![&missing, &pki.server_key],
            format!("reading {}", missing.display()),
        ),
        (
            vec![&pki.server_key, &pki.server_key],
            format!("{}: no PEM certificate", pki.server_key.display()),
        ),
        (
            vec![&pki.server_cert, &pki.client.key],
            format!(
                "{} and {} do not make a certificate and its key",
                pki.server_cert.display(),
                pki.client.key.display()
            ),
        ),
    ];
    for (files, message) in cases {
        let out = Command::new(apiprof_bin())
            .args([
                "daemon",
                "--pid",
                "1",
                "--no-client-pods",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--tls-cert")
            .arg(files[0])
            .arg("--tls-key")
            .arg(files[1])
            .output()
            .expect("running apiprof daemon");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{files:?}: {stderr}");
        assert!(stderr.contains(&message), "{files:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "it listened: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
