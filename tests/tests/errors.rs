//! Bad input gets a clear error naming the cause and the fix, and exit code 2; what the
//! machine refuses (privileges, a daemon that is not there) exits 1, also naming the fix.
//! A target apiprof refuses is left with nothing attached.

use std::{collections::BTreeMap, path::Path, process::Command};

use apiprof_tests::{
    apiprof_bin,
    attached::Attached,
    daemon::Daemon,
    goserver::{self, GoServer},
    load::{self, Http},
    recorder::Recording,
};

/// `apiprof record --pid PID`'s exit code and standard error; it must leave the kernel
/// as it found it (no program, link or uprobe half-attached).
fn record(pid: u32) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let before = Attached::now();
    let out = Command::new(apiprof_bin())
        .args([
            "record",
            "--pid",
            &pid.to_string(),
            "--duration",
            "1s",
            "--output",
        ])
        .arg(dir.path().join("capture.jsonl"))
        .output()
        .expect("running apiprof");
    before.wait_back("after apiprof record");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fixture `build` copied into `dir` as `name`, edited by `edit`, and started.
fn start_edited(dir: &Path, build: &str, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> GoServer {
    GoServer::start_path(&goserver::edited(dir, build, name, edit), &[])
}

/// `apiprof report FILE ARGS`'s exit code, standard output and standard error.
fn report_file(file: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(apiprof_bin())
        .arg("report")
        .arg(file)
        .args(args)
        .output()
        .expect("running apiprof");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn recording_a_process_that_is_not_go_names_the_cause() {
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let (code, stderr) = record(sleeper.id());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not a Go binary"), "{stderr}");
}

/// A stripped Go server whose section headers were removed after linking (as `sstrip`
/// and packers do) still runs, but its Go tables cannot be found: refused, naming why.
#[test]
fn recording_a_go_binary_without_section_headers_names_the_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let edit = |elf: &mut Vec<u8>| {
        // ELF64 header: e_shoff (8 bytes at 0x28), e_shnum and e_shstrndx (2 each at 0x3c).
        elf[0x28..0x30].fill(0);
        elf[0x3c..0x40].fill(0);
    };
    let server = start_edited(dir.path(), "goserver-go1.27-stripped", "sstripped", edit);
    let (code, stderr) = record(server.pid());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("has no section headers"), "{stderr}");
    assert!(stderr.contains("as `go build` wrote it"), "{stderr}");
}

/// A stripped Go server whose `.gopclntab` section header was cut to 64 bytes (the
/// running program reads its table through its own pointers, not the section headers):
/// refused, naming the table and why.
#[test]
fn recording_a_stripped_go_binary_with_an_unreadable_gopclntab_names_the_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_edited(
        dir.path(),
        "goserver-go1.27-stripped",
        "pclntab-cut",
        |elf| goserver::cut_gopclntab(elf),
    );
    let (code, stderr) = record(server.pid());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("has an unusable .gopclntab (64 bytes is too short for a header)"),
        "{stderr}"
    );
}

/// An edit that makes a binary say Go `to` wherever it says `from` ("go1.27.").
fn say_go(from: &'static [u8; 7], to: &'static [u8; 7]) -> impl FnOnce(&mut Vec<u8>) {
    move |elf| {
        let at: Vec<usize> = (0..elf.len() - from.len())
            .filter(|&at| &elf[at..at + from.len()] == from)
            .collect();
        assert!(!at.is_empty(), "no Go version string in the fixture");
        for at in at {
            elf[at..at + to.len()].copy_from_slice(to);
        }
    }
}

/// A Go newer than every toolchain the offsets were measured on (a Go 1.27 build whose
/// version strings say 1.28): its structures may have moved, so it is refused.
#[test]
fn recording_a_go_newer_than_the_offsets_table_names_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let edit = say_go(b"go1.27.", b"go1.28.");
    let server = start_edited(dir.path(), "goserver-go1.27", "goserver-go1.28", edit);
    let (code, stderr) = record(server.pid());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("newer than every Go the offsets table was measured on")
            && stderr.contains("cargo xtask offsets"),
        "{stderr}"
    );
}

/// A Go between two measured toolchains across which fields apiprof reads moved (a Go
/// 1.26 build whose version strings say 1.25; 1.24 and 1.26 were measured): apiprof
/// assumes the older layout, and every report says so, the capture's and the daemon's,
/// naming the fields and the fix. (Its figures are not checked: for this binary the
/// assumption is wrong, which is what the caution warns of.)
#[tokio::test]
async fn a_go_between_measured_toolchains_is_observed_with_a_caution_in_every_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let edit = say_go(b"go1.26.", b"go1.25.");
    let server = start_edited(dir.path(), "goserver-go1.26", "goserver-go1.25", edit);
    let caution = "Go 1.25.10 is not among the toolchains apiprof's offsets table was measured on, and fields it reads moved between go1.24.4 and go1.26.10 (";
    let fix = "add Go 1.25 to `cargo xtask setup` and run `cargo xtask offsets`";

    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    let capture = recording.stop();
    let (code, table, stderr) = report_file(&capture, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        table.contains(&format!("caution: {caution}")) && table.contains(fix),
        "{table}"
    );

    let daemon = Daemon::start(&["--pid", &server.pid().to_string(), "--no-client-pods"]);
    daemon.wait_attached(server.pid()).await;
    let report = daemon.report(&["user_agent"]).await;
    let said = report["cautions"][0].as_str().expect("a caution");
    assert!(
        said.starts_with(&format!("goserver-go1.25: {caution}")) && said.contains(fix),
        "{said}"
    );
}

#[test]
fn recording_a_pid_that_does_not_exist_names_the_cause() {
    let (code, stderr) = record(u32::MAX / 2);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is the pid right"), "{stderr}");
}

#[test]
fn reporting_a_file_that_is_not_a_capture_names_the_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello\n").unwrap();
    let (code, _, stderr) = report_file(&file, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("not an apiprof capture record") && stderr.contains(":1:"),
        "{stderr}"
    );

    // From a newer apiprof, whose header this one may not even parse: the fix is that
    // apiprof, not recording again.
    std::fs::write(
        &file,
        "{\"type\":\"header\",\"format_version\":2,\"new\":{}}\n",
    )
    .unwrap();
    let (code, _, stderr) = report_file(&file, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("written by a newer apiprof (capture format 2; this apiprof reads format 1): report it with the apiprof that recorded it, or a newer one"),
        "{stderr}"
    );
}

#[test]
fn a_cpu_rate_out_of_range_or_a_report_that_cannot_be_drawn_names_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("capture.jsonl");
    let run = |args: &[&str]| {
        let out = Command::new(apiprof_bin())
            .args(args)
            .output()
            .expect("running apiprof");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&[
        "record", "--pid", "1", "--output", "x.jsonl", "--cpu-hz", "5000",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--cpu-hz") && stderr.contains("1..=1000"),
        "{stderr}"
    );

    std::fs::write(
        &capture,
        r#"{"type":"header","format_version":1,"pid":1,"binary":"/x","go_version":"1.24.4","symbols":"symtab","probes":[],"started_unix_ms":0,"mem_profile_rate":0,"mem_profile_rate_source":"default"}"#.to_owned() + "\n",
    )
    .unwrap();
    let capture = capture.to_str().expect("UTF-8 path");
    let fails = |args: &[&str], says: &[&str]| {
        let (code, stderr) = run(&[&["report", capture], args].concat());
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        for s in says {
            assert!(stderr.contains(s), "{args:?}: {stderr}");
        }
    };
    fails(
        &["--filter", "verbs=list"],
        &["no dimension \"verbs\"", "user_agent"],
    );
    fails(&["--filter", "verb"], &["DIMENSION=PATTERN"]);
    let svg = dir.path().join("cpu.svg");
    let svg = svg.to_str().expect("UTF-8 path");
    fails(
        &["--format", "svg", "--output", svg],
        &["nothing to draw", "cpu", "--weight"],
    );
    fails(&["--diff", "/nonexistent.jsonl"], &["no such capture file"]);
    fails(
        &["--diff", capture, "--format", "pprof"],
        &["go tool pprof -diff_base"],
    );
    // A capture of an apiprof from before CPU sampling still reads: no CPU samples.
    let (code, stderr) = run(&["report", capture, "--format", "folded"]);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
}

/// Failures of the machine, not of the input, exit 1: no privileges, a daemon that is
/// not there.
#[tokio::test]
async fn what_the_machine_refuses_exits_1_naming_the_fix() {
    let server = GoServer::start("goserver-go1.27");
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("capture.jsonl");
    // Root, but with no capability: as a container that dropped them all.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-all", "--inh-caps", "-all"])
        .arg(apiprof_bin())
        .args(["record", "--pid", &server.pid().to_string(), "--output"])
        .arg(&capture)
        .output()
        .expect("running setpriv apiprof record");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CAP_SYS_PTRACE"), "{stderr}");

    let out = Command::new(apiprof_bin())
        .args(["report", "http://127.0.0.1:1"])
        .output()
        .expect("running apiprof report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is `apiprof daemon` listening there?"),
        "{stderr}"
    );
}

/// A real capture cut short (copied before it ended) or damaged mid-file (a line
/// overwritten with bytes that are not even UTF-8), both at the first request of the
/// second client: the report covers exactly the first client's requests. The cut one
/// reads as incomplete (exit 0); the damaged one names the line and column (exit 2).
#[tokio::test]
async fn a_cut_or_damaged_capture_reports_exactly_what_came_before() {
    let server = GoServer::start("goserver-go1.27");
    let dir = tempfile::tempdir().expect("temp dir");
    let recording = Recording::start(server.pid(), &dir.path().join("capture.jsonl"));
    for user_agent in ["before-damage", "after-damage"] {
        let (client, ..) = Http::Two.client(user_agent);
        for _ in 0..10 {
            let url = format!("{}/api/v1/namespaces/default/pods", server.url);
            let response = client.get(&url).send().await.expect("request");
            response.bytes().await.expect("body");
        }
    }
    let bytes = std::fs::read(recording.stop()).expect("the capture");
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    let at = lines
        .iter()
        .position(|line| String::from_utf8_lossy(line).contains(r#""user_agent":"after-damage""#))
        .expect("the second client's first request");
    // The requests per client, and whether the capture reads as complete.
    let counts = |stdout: &str| {
        let report: serde_json::Value = serde_json::from_str(stdout).expect("a JSON report");
        let complete = report["complete"].as_bool().expect("complete");
        (load::counts(&report, &["user_agent"]), complete)
    };
    let before = BTreeMap::from([(vec!["before-damage".to_owned()], 10)]);

    let cut = dir.path().join("cut.jsonl");
    let half = &lines[at][..lines[at].len() / 2];
    std::fs::write(&cut, [&lines[..at].concat()[..], half].concat()).unwrap();
    let (code, stdout, stderr) = report_file(&cut, &["--format", "json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(counts(&stdout), (before.clone(), false));
    let (_, table, _) = report_file(&cut, &[]);
    assert!(
        table.contains("capture is incomplete (no end record: the recorder was killed, or the file was cut short); counts cover what was written before"),
        "{table}"
    );

    let damaged = dir.path().join("damaged.jsonl");
    let garbage: &[u8] = b"\xff\xfe\x00{\"type\":\"http_request\"\n";
    let rest = lines[at + 1..].concat();
    std::fs::write(
        &damaged,
        [&lines[..at].concat()[..], garbage, &rest].concat(),
    )
    .unwrap();
    let (code, stdout, stderr) = report_file(&damaged, &["--format", "json"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(counts(&stdout), (before, false));
    assert!(
        stderr.contains(&format!(
            "is damaged: the report covers the records before the damage: {}:{}:1: not an apiprof capture record",
            damaged.display(),
            at + 1
        )),
        "{stderr}"
    );
}
