//! apiprof never keeps a secret. Clients send bearer tokens, Basic and proxy
//! credentials, cookies, an API-key header, secrets in request bodies and a client
//! certificate (the fixture asks for one, as kube-apiserver does), over HTTP/1.1 and
//! HTTP/2, while `apiprof record` and `apiprof daemon` (with its capture files)
//! observe the server, both logging at debug level. None of the secrets appears in any
//! output: the capture files, every report format of both (table, JSON, folded, SVG,
//! pprof decompressed), `/metrics`, `/report`, `/findings`, `/healthz`, or the logs;
//! nor does any of the certificate's distinctive bytes (its subject CN, its serial, its
//! PEM lines, any 32 bytes of its DER). The requests themselves are counted exactly,
//! so the secrets were really observed, and the fixture says the certificate arrived.
//!
//! Root only: loads real eBPF programs.

use std::{
    fs::File,
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use apiprof_tests::{
    apiprof_bin,
    daemon::Daemon,
    goserver::GoServer,
    load::Http,
    pki::{Identity, Pki, CLIENT_CN, CLIENT_SERIAL},
    recorder::report_json,
};
use flate2::read::GzDecoder;

const BUILD: &str = "goserver-go1.27";
const PATH: &str = "/api/v1/namespaces/default/configmaps";
/// Requests of each kind (GET, POST) per HTTP version.
const EACH: u64 = 10;
/// The secrets: each unique, so a match can only come from the request.
const SECRETS: [&str; 6] = [
    "tok-7f3a9c1e-bearer-SECRET",
    "cookie-51d0e8b2-SECRET",
    "basic-c0ffee42-SECRET",
    "proxy-9ab8e7d6-SECRET",
    "apikey-0d15ea5e-SECRET",
    "body-deadbeef-SECRET",
];

/// Sends [`EACH`] GETs and POSTs as `user_agent` over `http`, every one carrying every
/// secret, on connections presenting `identity`.
async fn send_secrets(server: &GoServer, http: Http, user_agent: &str, identity: &Identity) {
    let (client, ..) = http.client_presenting(user_agent, Some(identity.reqwest()));
    let url = format!("{}{PATH}", server.url);
    for _ in 0..EACH {
        for post in [false, true] {
            let request = if post {
                client
                    .post(&url)
                    .body(format!("{{\"data\":{{\"password\":\"{}\"}}}}", SECRETS[5]))
            } else {
                client.get(&url)
            };
            let response = request
                .bearer_auth(SECRETS[0])
                .header("Cookie", format!("session={}", SECRETS[1]))
                .header("Proxy-Authorization", format!("Basic {}", SECRETS[3]))
                .header("X-Api-Key", SECRETS[4])
                .basic_auth("user", Some(SECRETS[2]))
                .send()
                .await
                .expect(&url);
            assert!(response.status().is_success(), "{url}");
            assert_eq!(
                response.headers().get("x-client-certificates"),
                Some(&"1".parse().unwrap()),
                "{url}: the fixture got no client certificate"
            );
        }
    }
}

/// `path`'s bytes, gunzipped when they are gzip (pprof files).
fn contents(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    } else {
        bytes
    }
}

/// What must appear nowhere, named: [`SECRETS`] and the client certificate's
/// distinctive bytes.
fn needles(identity: &Identity) -> Vec<(String, Vec<u8>)> {
    let mut needles: Vec<(String, Vec<u8>)> = SECRETS
        .iter()
        .map(|s| (format!("the secret {s:?}"), s.as_bytes().to_vec()))
        .collect();
    // The Basic credentials as the wire carries them (base64 of `user:SECRET`), taken
    // from the header reqwest builds for the requests above.
    let basic = reqwest::Client::new()
        .get("http://127.0.0.1/")
        .basic_auth("user", Some(SECRETS[2]))
        .build()
        .expect("a request")
        .headers()["authorization"]
        .to_str()
        .expect("ASCII")
        .strip_prefix("Basic ")
        .expect("Basic credentials")
        .to_owned();
    needles.push((
        format!("the Basic credentials {basic:?}"),
        basic.into_bytes(),
    ));
    let hex: String = CLIENT_SERIAL.iter().map(|b| format!("{b:02x}")).collect();
    needles.extend([
        (
            "the certificate's CN".to_owned(),
            CLIENT_CN.as_bytes().to_vec(),
        ),
        ("its serial".to_owned(), CLIENT_SERIAL.to_vec()),
        ("its serial in hex".to_owned(), hex.into_bytes()),
    ]);
    // Short pieces (a PEM's last line, the DER's tail) could match by chance: at least
    // 16 characters, and 32 bytes (the last 32 for the tail).
    let lines = identity.pem.lines();
    for line in lines.filter(|l| !l.starts_with("-----") && l.len() >= 16) {
        needles.push((format!("its PEM line {line:?}"), line.as_bytes().to_vec()));
    }
    let der = &identity.der;
    let tail = der.len() - 32;
    let starts = (0..der.len() - 31).step_by(32).chain([tail]);
    for at in starts {
        needles.push((format!("its DER bytes {at}.."), der[at..at + 32].to_vec()));
    }
    needles
}

/// Panics, naming the output, if `bytes` hold any needle.
fn assert_clean(what: &str, bytes: &[u8], needles: &[(String, Vec<u8>)]) {
    for (name, needle) in needles {
        let found = bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!found, "{what} holds {name}");
    }
}

/// `apiprof report SOURCE --format FORMAT ARGS` written to a file in `dir`.
fn report_to(dir: &Path, source: &str, format: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!(
        "report-{}-{format}-{}",
        if source.starts_with("http") {
            "daemon"
        } else {
            "file"
        },
        args.len()
    ));
    let status = Command::new(apiprof_bin())
        .args(["report", source, "--format", format, "--output"])
        .arg(&out)
        .args(args)
        .status()
        .expect("running apiprof report");
    assert!(
        status.success(),
        "apiprof report {source} --format {format}"
    );
    out
}

#[tokio::test]
async fn no_secret_reaches_any_output() {
    let server = GoServer::start(BUILD);
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let captures = dir.path().join("daemon-captures");
    std::fs::create_dir(&captures).expect("a capture folder");
    let daemon_log = dir.path().join("daemon.log");
    let mut daemon = Command::new(apiprof_bin());
    daemon
        .args(["--log", "debug"])
        .stderr(File::create(&daemon_log).expect("the daemon's log"));
    let daemon = Daemon::start_command(
        daemon,
        &[
            "--pid",
            &server.pid().to_string(),
            "--no-client-pods",
            "--capture",
            captures.to_str().expect("UTF-8 path"),
        ],
    );
    daemon.wait_attached(server.pid()).await;

    let capture = dir.path().join("capture.jsonl");
    let record_log = dir.path().join("record.log");
    let mut record = Command::new(apiprof_bin())
        .args([
            "--log",
            "debug",
            "record",
            "--pid",
            &server.pid().to_string(),
        ])
        .args(["--duration", "10m", "--output"])
        .arg(&capture)
        .stdout(Stdio::piped())
        .stderr(File::create(&record_log).expect("record's log"))
        .spawn()
        .expect("starting apiprof record");
    // Attached once it says so on standard output.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(record.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("apiprof record's first line");
    assert!(line.starts_with("recording "), "{line}");

    send_secrets(&server, Http::One, "secrets-h1", &pki.client).await;
    send_secrets(&server, Http::Two, "secrets-h2", &pki.client).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(record.id() as i32, libc::SIGINT) };
    assert!(record.wait().expect("apiprof record").success());

    report_json(&capture, &["user_agent"]);
    // The requests were observed, exactly, each with its client: these header maps
    // run into pages the server never wrote (which once lost 1 User-Agent in 20).
    let by = ["--by", "user_agent,method", "--weight", "requests"];
    let folded = String::from_utf8(contents(&report_to(
        dir.path(),
        capture.to_str().unwrap(),
        "folded",
        &by,
    )))
    .expect("UTF-8");
    let want = |ua: &str| format!("{ua};GET {EACH}\n{ua};POST {EACH}\n");
    assert_eq!(folded, want("secrets-h1") + &want("secrets-h2"));
    // And by the daemon (no drops: its report checks).
    daemon.report(&["user_agent"]).await;
    let live = [&by[..], &["--window", "1h"]].concat();
    let folded = contents(&report_to(dir.path(), &daemon.url, "folded", &live));
    let folded = String::from_utf8(folded).expect("UTF-8");
    assert_eq!(folded, want("secrets-h1") + &want("secrets-h2"));

    // Every output of both.
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    for source in [capture.to_str().unwrap(), daemon.url.as_str()] {
        let window: &[&str] = if source.starts_with("http") {
            &["--window", "1h"]
        } else {
            &[]
        };
        // A flame graph of nothing is refused, and a few cheap requests may leave the
        // daemon's window without CPU or heap samples: graphs and profiles by
        // requests (a pprof file holds every measure whatever its weight).
        let formats = [
            ("table", &["cpu", "alloc", "requests"][..]),
            ("json", &["cpu", "alloc", "requests"]),
            ("folded", &["cpu", "alloc", "requests"]),
            ("svg", &["requests"]),
            ("pprof", &["requests"]),
        ];
        for (format, weights) in formats {
            for weight in weights {
                let args = [window, &["--weight", weight]].concat();
                let file = report_to(dir.path(), source, format, &args);
                outputs.push((format!("{source} {format} {weight}"), contents(&file)));
            }
        }
    }
    for path in [
        "/metrics",
        "/findings",
        "/healthz",
        "/report?window=1h&format=json",
    ] {
        outputs.push((path.to_owned(), daemon.get(path).await.into_bytes()));
    }
    assert!(daemon.terminate().success());
    outputs.push(("capture".into(), contents(&capture)));
    for entry in std::fs::read_dir(&captures).expect("the daemon's captures") {
        let path = entry.expect("a capture file").path();
        outputs.push((path.display().to_string(), contents(&path)));
    }
    for log in [&record_log, &daemon_log] {
        let text = contents(log);
        assert!(
            String::from_utf8_lossy(&text).contains("DEBUG"),
            "{} logged at debug level",
            log.display()
        );
        outputs.push((log.display().to_string(), text));
    }
    let needles = needles(&pki.client);
    for (what, bytes) in &outputs {
        assert_clean(what, bytes, &needles);
    }
}
