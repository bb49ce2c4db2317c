//! Flame reports show exactly what was measured. From one capture of two clients (and
//! a baseline capture of one of them), and from a daemon watching the same server:
//! - folded stacks weighed by requests are exactly what the clients sent, per client
//!   and verb, and filters keep exactly the matching clients;
//! - for every weight, the SVG's root frames, the pprof's labelled samples (decoded in
//!   Rust) and the folded stacks give the same width per client, which is the JSON
//!   report's figure for it (CPU samples exactly; allocated bytes to the byte each
//!   stack rounds to);
//! - `go tool pprof -top` reads the pprof with the same totals, and `-tagfocus` on the
//!   client label keeps exactly that client's requests;
//! - the differential view shows what each client sent in the baseline and now, of
//!   two captures or two windows of a daemon, and a daemon refuses a baseline window
//!   from before it ran;
//! - headless Chromium draws the SVG's root frames, and zooms when one is clicked.
//!
//! Root only: loads real eBPF programs.

use std::{collections::BTreeMap, io::Read as _, path::Path, process::Command};

use apiprof_tests::{
    browser,
    daemon::Daemon,
    goserver::GoServer,
    load::Http,
    recorder::Recording,
    recorder::{report, report_json},
    sid_dir,
};
use flate2::read::GzDecoder;
use libdd_profiling_protobuf::prost_impls::{Message as _, Profile as Pprof};
use serde_json::Value;

const BUILD: &str = "goserver-go1.27";
const PATH: &str = "/api/v1/namespaces/default/configmaps";
const A: &str = "flame-a/1.0";
const B: &str = "flame-b/1.0";
/// Requests of A and B in the capture; the baseline has B's only.
const SENT: [(&str, u64); 2] = [(A, 20), (B, 10)];
/// Weights compared across formats, with the pprof sample type of each.
const WEIGHTS: [(&str, &str); 3] = [
    ("cpu", "samples"),
    ("alloc", "alloc_space"),
    ("requests", "requests"),
];

/// Sends `n` requests as `user_agent`, each burning 20 ms of CPU and allocating 256 KiB.
async fn send(server: &GoServer, user_agent: &str, n: u64) {
    let (client, ..) = Http::Two.client(user_agent);
    let url = format!("{}{PATH}?spin=20&alloc=262144&size=4096", server.url);
    for _ in 0..n {
        let response = client.get(&url).send().await.expect(&url);
        assert_eq!(response.status(), 200, "{url}");
    }
}

/// Folded stacks' widths summed per root frame.
fn folded_roots(folded: &str) -> BTreeMap<String, u64> {
    let mut roots = BTreeMap::new();
    for line in folded.lines() {
        let (stack, width) = line.rsplit_once(' ').expect("a folded line");
        let root = stack.split(';').next().expect("a root frame");
        *roots.entry(root.to_owned()).or_default() += width.parse::<u64>().expect("a width");
    }
    roots
}

/// An inferno SVG's frames: (name, width in the graph's unit, y of its rectangle), from
/// each frame's title `name (1,234 unit, 5.6%)`.
fn svg_frames(svg: &str) -> Vec<(String, u64, f64)> {
    // inferno's SVG declares its DTD, as SVG 1.1 files do.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(svg, options).expect("the SVG is well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("g"))
        .filter_map(|g| {
            let title = g.children().find(|c| c.has_tag_name("title"))?.text()?;
            let rect = g.children().find(|c| c.has_tag_name("rect"))?;
            let (name, rest) = title.rsplit_once(" (")?;
            let count = rest.split_whitespace().next()?.replace(',', "");
            let y = rect.attribute("y")?.parse().ok()?;
            Some((name.to_owned(), count.parse().ok()?, y))
        })
        .collect()
}

/// The SVG's root frames (those right above `all`) with their widths.
fn svg_roots(svg: &str) -> BTreeMap<String, u64> {
    let frames = svg_frames(svg);
    let (_, _, all_y) = frames
        .iter()
        .find(|(name, ..)| name == "all")
        .expect("an `all` frame");
    let root_y = frames
        .iter()
        .filter(|(.., y)| y < all_y)
        .map(|(.., y)| *y)
        .fold(f64::MIN, f64::max);
    frames
        .into_iter()
        .filter(|(.., y)| *y == root_y)
        .map(|(name, count, _)| (name, count))
        .collect()
}

/// A pprof file decoded: its sample types' names, and per value of `label` each sample
/// type's total.
struct Decoded {
    types: Vec<String>,
    default_type: String,
    by_label: BTreeMap<String, Vec<i64>>,
    period: i64,
}

fn decode_pprof(file: &Path, label: &str) -> Decoded {
    let mut bytes = Vec::new();
    GzDecoder::new(std::fs::File::open(file).expect("the pprof file"))
        .read_to_end(&mut bytes)
        .expect("the pprof file is gzipped");
    let p = Pprof::decode(&bytes[..]).expect("the pprof file is a Profile");
    let s = |i: i64| p.string_table[i as usize].clone();
    let mut by_label: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for sample in &p.samples {
        let value = sample
            .labels
            .iter()
            .find(|l| s(l.key) == label)
            .map_or("(background)".to_owned(), |l| s(l.str));
        let totals = by_label
            .entry(value)
            .or_insert_with(|| vec![0; p.sample_types.len()]);
        for (t, v) in totals.iter_mut().zip(&sample.values) {
            *t += v;
        }
    }
    Decoded {
        types: p.sample_types.iter().map(|t| s(t.r#type)).collect(),
        default_type: s(p.default_sample_type),
        by_label,
        period: p.period,
    }
}

/// `go tool pprof ARGS FILE`'s output, with Go 1.27 from the project's cache.
fn go_pprof(args: &[&str], file: &Path) -> String {
    let goroot = sid_dir().join("usr/lib/go-1.27");
    let out = Command::new(goroot.join("bin/go"))
        .env("GOROOT", &goroot)
        .env("HOME", std::env::temp_dir())
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .output()
        .expect("running go tool pprof");
    assert!(
        out.status.success(),
        "go tool pprof {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON report's figure per user agent for `weight`.
fn json_roots(capture: &Path, weight: &str) -> BTreeMap<String, f64> {
    let json: Value =
        serde_json::from_str(&report(capture, "json", &["--by", "user_agent"])).expect("JSON");
    let field = match weight {
        "cpu" => "cpu_samples",
        "alloc" => "alloc_bytes",
        _ => "count",
    };
    json["requests"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let name = if r["background"] == true {
                "(background)".to_owned()
            } else {
                r["user_agent"].as_str().expect("a user agent").to_owned()
            };
            (name, r[field].as_f64().expect("a figure"))
        })
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

#[tokio::test]
async fn folded_svg_and_pprof_show_the_same_frames_and_widths() {
    let server = GoServer::start_with_args(BUILD, &["-memprofilerate=4096"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("before.jsonl"));
    send(&server, B, 10).await;
    let before = recording.stop();
    let recording = Recording::start(server.pid(), &dir.path().join("after.jsonl"));
    for (ua, n) in SENT {
        send(&server, ua, n).await;
    }
    let after = recording.stop();

    // Nothing dropped: the figures below are exact.
    report_json(&after, &["user_agent"]);
    // Requests: exactly what was sent, per client and verb; filters keep exact clients.
    let requests = ["--weight", "requests", "--by", "user_agent,verb"];
    assert_eq!(
        report(&after, "folded", &requests),
        format!("{A};list 20\n{B};list 10\n")
    );
    let only_a = [&requests[..], &["--filter", "user_agent=flame-a*"]].concat();
    assert_eq!(report(&after, "folded", &only_a), format!("{A};list 20\n"));
    let not_lists = [&requests[..], &["--filter", "verb!=list"]].concat();
    assert_eq!(report(&after, "folded", &not_lists), "");

    // Every weight: folded, SVG and pprof agree per client, and with the JSON report.
    for (weight, pprof_type) in WEIGHTS {
        let args = ["--weight", weight, "--by", "user_agent"];
        let folded = folded_roots(&report(&after, "folded", &args));
        assert_eq!(
            folded.keys().filter(|k| k.starts_with("flame-")).count(),
            2,
            "{weight}: {folded:?}"
        );
        let written = |format: &str, file: &str| {
            let path = dir.path().join(file);
            let to = ["--output", path.to_str().expect("UTF-8 path")];
            report(&after, format, &[&args[..], &to].concat());
            path
        };
        let svg = written("svg", &format!("{weight}.svg"));
        let svg_text = std::fs::read_to_string(&svg).expect("the SVG");
        assert_eq!(svg_roots(&svg_text), folded, "{weight}: SVG root frames");

        let pprof = written("pprof", &format!("{weight}.pb.gz"));
        let decoded = decode_pprof(&pprof, "user_agent");
        let column = decoded
            .types
            .iter()
            .position(|t| t == pprof_type)
            .expect("the weight's sample type");
        let per_label: BTreeMap<String, u64> = decoded
            .by_label
            .iter()
            .map(|(k, v)| (k.clone(), v[column] as u64))
            .filter(|(_, v)| *v > 0)
            .collect();
        assert_eq!(per_label, folded, "{weight}: pprof samples by label");
        for totals in decoded.by_label.values() {
            assert_eq!(
                totals[1],
                totals[0] * decoded.period,
                "cpu = samples × period"
            );
        }
        let default = if weight == "alloc" {
            "alloc_space"
        } else {
            pprof_type
        };
        let default = if weight == "cpu" { "cpu" } else { default };
        assert_eq!(decoded.default_type, default);

        // The JSON report's figures: exact for counts; allocated bytes are rounded once
        // per row there and once per stack here, so they differ by under a byte a stack.
        let stacks = report(&after, "folded", &args).lines().count() as f64;
        for (root, figure) in json_roots(&after, weight) {
            let width = folded.get(&root).copied().unwrap_or_default() as f64;
            assert!(
                (width - figure).abs() <= stacks / 2.0,
                "{weight}: {root}: folded {width} vs report {figure}"
            );
        }

        // go tool pprof reads it with the same total.
        let total: u64 = folded.values().sum();
        let unit = if weight == "alloc" { "B" } else { "" };
        let top = go_pprof(
            &["-top", "-sample_index", pprof_type, "-unit", unit],
            &pprof,
        );
        assert!(
            top.contains(&format!("of {total}{unit} total")),
            "{weight}: go tool pprof -top: {top}"
        );
        if weight == "requests" {
            let focused = go_pprof(
                &[
                    "-top",
                    "-sample_index=requests",
                    "-tagfocus=user_agent=flame-a",
                ],
                &pprof,
            );
            assert!(
                focused.contains("accounting for 20, 66.67% of 30 total"),
                "-tagfocus: {focused}"
            );
        }
    }

    // What changed since the baseline: B sent as much, A is new.
    let diff = [
        "--diff",
        before.to_str().unwrap(),
        "--weight",
        "requests",
        "--by",
        "user_agent",
    ];
    assert_eq!(
        report(&after, "folded", &diff),
        format!("{A} 0 20\n{B} 10 10\n")
    );
    let diff_svg = dir.path().join("diff.svg");
    let to = ["--output", diff_svg.to_str().expect("UTF-8 path")];
    report(&after, "svg", &[&diff[..], &to].concat());
    let diff_text = std::fs::read_to_string(&diff_svg).expect("the diff SVG");
    assert_eq!(
        svg_roots(&diff_text),
        BTreeMap::from([(A.to_owned(), 20), (B.to_owned(), 10)])
    );

    // A real browser draws the root frames and zooms into the one clicked.
    let svg = dir.path().join("requests-default.svg");
    let to = ["--output", svg.to_str().expect("UTF-8 path")];
    report(&after, "svg", &["--weight", "requests", to[0], to[1]]);
    browser::check_flamegraph(&svg, &[A, B], &dir.path().join("requests.png"));
}

#[tokio::test]
async fn a_daemon_serves_the_same_flame_reports_and_diffs_its_windows() {
    let server = GoServer::start(BUILD);
    let daemon = Daemon::start(&["--pid", &server.pid().to_string(), "--bucket", "1s"]);
    daemon.wait_attached(server.pid()).await;
    // B first, A four seconds later, in 1 s buckets: each sends for well under a second
    // (20 ms of CPU a request), so a 3 s window now holds A's requests alone and the
    // same window 4 s earlier B's alone. The daemon has run for longer than that.
    let second = std::time::Duration::from_secs(1);
    tokio::time::sleep(3 * second).await;
    send(&server, B, 10).await;
    tokio::time::sleep(4 * second).await;
    send(&server, A, 20).await;
    // Two drain intervals: every request has reached the daemon's window.
    tokio::time::sleep(second / 2).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let pprof = dir.path().join("daemon.pb.gz");
    let to = ["--output", pprof.to_str().expect("UTF-8 path")];
    let requests = ["--weight", "requests", "--by", "user_agent"];
    report(
        &daemon.url,
        "pprof",
        &[&["--window", "1h"], &requests[..], &to].concat(),
    );
    let decoded = decode_pprof(&pprof, "user_agent");
    let per_client: BTreeMap<&str, i64> = decoded
        .by_label
        .iter()
        .map(|(k, v)| (k.as_str(), v[3]))
        .filter(|(_, v)| *v > 0)
        .collect();
    assert_eq!(
        per_client,
        BTreeMap::from(SENT.map(|(ua, n)| (ua, n as i64)))
    );
    assert_eq!(decoded.default_type, "requests");

    let svg = daemon
        .get("/report?format=svg&weight=requests&by=user_agent&window=1h")
        .await;
    assert_eq!(
        svg_roots(&svg),
        SENT.iter().map(|(ua, n)| (ua.to_string(), *n)).collect()
    );

    // Now against 4 s earlier: A is new, B is gone.
    let diff = ["--window", "3s", "--diff", "4s"];
    assert_eq!(
        report(&daemon.url, "folded", &[&diff[..], &requests[..]].concat()),
        format!("{A} 0 20\n{B} 10 0\n")
    );
    // An hour ago the daemon did not run: that baseline would read as "nothing", so it
    // is refused, naming the fix.
    let out = std::process::Command::new(apiprof_tests::apiprof_bin())
        .args(["report", &daemon.url, "--window", "1h", "--diff", "1h"])
        .output()
        .expect("running apiprof report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("before what the daemon remembers") && stderr.contains("shorter"),
        "{stderr}"
    );
}
