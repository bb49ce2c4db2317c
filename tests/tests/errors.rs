//! Bad input gets a clear error naming the cause and the fix, and exit code 2; what the
//! machine refuses (privileges, a daemon that is not there) exits 1, also naming the fix.

use std::{os::unix::fs::PermissionsExt as _, path::Path, process::Command};

use apiprof_tests::{apiprof_bin, fixtures_dir, goserver::GoServer};

fn record(pid: u32) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
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
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fixture `build` copied into `dir` as `name`, edited by `edit`, and started.
fn start_edited(dir: &Path, build: &str, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> GoServer {
    let binary = dir.join(name);
    let mut elf = std::fs::read(fixtures_dir().join(build)).expect("fixture");
    edit(&mut elf);
    std::fs::write(&binary, elf).expect("writing the copy");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    GoServer::start_path(&binary, &[])
}

/// `apiprof report FILE`'s exit code and standard error.
fn report_file(file: &Path) -> (Option<i32>, String) {
    let out = Command::new(apiprof_bin())
        .arg("report")
        .arg(file)
        .output()
        .expect("running apiprof");
    (
        out.status.code(),
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

/// A Go newer than every toolchain the offsets were measured on (a Go 1.27 build whose
/// version strings say 1.28): its structures may have moved, so it is refused.
#[test]
fn recording_a_go_newer_than_the_offsets_table_names_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let edit = |elf: &mut Vec<u8>| {
        let (from, to) = (b"go1.27.", b"go1.28.");
        let at: Vec<usize> = (0..elf.len() - from.len())
            .filter(|&at| &elf[at..at + from.len()] == from)
            .collect();
        assert!(!at.is_empty(), "no Go version string in the fixture");
        for at in at {
            elf[at..at + to.len()].copy_from_slice(to);
        }
    };
    let server = start_edited(dir.path(), "goserver-go1.27", "goserver-go1.28", edit);
    let (code, stderr) = record(server.pid());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("newer than every Go the offsets table was measured on")
            && stderr.contains("cargo xtask offsets"),
        "{stderr}"
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
    let (code, stderr) = report_file(&file);
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
    let (code, stderr) = report_file(&file);
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

/// A capture damaged mid-file: the report of the records before the damage still
/// prints, and the error names the line (exit 2).
#[test]
fn a_damaged_capture_reports_what_came_before_and_names_the_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let capture = dir.path().join("capture.jsonl");
    let header = r#"{"type":"header","format_version":1,"pid":1,"binary":"/x","go_version":"1.24.4","symbols":"symtab","probes":[],"started_unix_ms":0,"mem_profile_rate":0,"mem_profile_rate_source":"default"}"#;
    std::fs::write(
        &capture,
        format!("{header}\n{{\"type\":\"http_requ\n{header}\n"),
    )
    .unwrap();
    let out = Command::new(apiprof_bin())
        .arg("report")
        .arg(&capture)
        .output()
        .expect("running apiprof report");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.contains("0 requests, 0 dropped events"), "{stdout}");
    assert!(
        stderr.contains("is damaged: the report covers the records before the damage")
            && stderr.contains("capture.jsonl:2:"),
        "{stderr}"
    );
}
