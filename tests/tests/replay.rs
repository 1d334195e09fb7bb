//! Replay of real programs recorded by the real daemon and fetched as
//! bundles: after the world changes (files deleted or modified, the server
//! gone, the clock moved on), the replay prints what the recording printed,
//! exits as it exited, and walks every recorded syscall.
use std::{path::Path, process::Command, time::Duration};

use tracer_tests::{Recorded, Replayed, assert_replayed_as_recorded, record, record_with, replay};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The replay did what the recording did: same output, same status, and
/// every recorded event replayed in order, of a real program's many.
fn assert_same(rec: &Recorded, rep: &Replayed) {
    assert_replayed_as_recorded(rec, rep, "replay");
    let total = rep.report["events_total"].as_u64().expect("events_total");
    assert!(
        total > 20,
        "a real program makes more syscalls: {}",
        rep.report
    );
}

#[test]
fn cat_and_sha256sum_of_a_deleted_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("data.txt");
    std::fs::write(
        &f,
        (0..2000).map(|i| format!("line {i}\n")).collect::<String>(),
    )
    .expect("file");
    let cat = record(
        dir.path(),
        "/bin/cat",
        &[f.to_str().expect("path")],
        None,
        &[],
    );
    let sum = record(
        dir.path(),
        "/usr/bin/sha256sum",
        &[f.to_str().expect("path")],
        None,
        &[],
    );
    assert!(cat.stdout.len() > 10_000 && cat.status.success());
    std::fs::remove_file(&f).expect("delete the input");
    assert_same(&cat, &replay(&cat.bundle, &[]));
    assert_same(&sum, &replay(&sum.bundle, &[]));
}

#[test]
fn ls_of_a_directory_changed_since() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("listed");
    std::fs::create_dir(&d).expect("dir");
    for n in ["alpha", "beta", "gamma"] {
        std::fs::write(d.join(n), n).expect("file");
    }
    let ls = record(
        dir.path(),
        "/bin/ls",
        &["-la", d.to_str().expect("path")],
        None,
        &[],
    );
    assert!(text(&ls.stdout).contains("gamma"));
    std::fs::remove_file(d.join("beta")).expect("change");
    std::fs::write(d.join("delta"), "new").expect("change");
    assert_same(&ls, &replay(&ls.bundle, &[]));
}

#[test]
fn sort_reading_stdin_from_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("unsorted");
    std::fs::write(&f, "pear\napple\nfig\nbanana\n").expect("file");
    let sort = record(dir.path(), "/usr/bin/sort", &[], Some(&f), &[]);
    assert_eq!(text(&sort.stdout), "apple\nbanana\nfig\npear\n");
    std::fs::remove_file(&f).expect("delete");
    assert_same(&sort, &replay(&sort.bundle, &[]));
}

#[test]
fn date_prints_the_recorded_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Exact by default: the daemon made date's vDSO time calls syscalls.
    let date = record(dir.path(), "/bin/date", &[], None, &[]);
    std::thread::sleep(Duration::from_millis(1100)); // the clock moves on
    assert_same(&date, &replay(&date.bundle, &[]));
}

#[test]
fn python_sees_the_recorded_time_randomness_and_pid() {
    let dir = tempfile::tempdir().expect("tempdir");
    // time.time() is in the recording: the vDSO's time calls are syscalls.
    let py = record(
        dir.path(),
        "/usr/bin/python3",
        &[
            "-c",
            "import time, random, os\nprint(time.time())\nprint(random.random())\nprint(os.urandom(8).hex())\nprint(os.getpid())",
        ],
        None,
        &[],
    );
    assert!(py.status.success(), "{}", text(&py.stderr));
    assert!(text(&py.stdout).contains(&py.pid.to_string()));
    std::thread::sleep(Duration::from_millis(200));
    assert_same(&py, &replay(&py.bundle, &[]));
}

#[test]
fn rust_instant_and_system_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = env!("CARGO_BIN_EXE_replay-corpus");
    let r = record(dir.path(), prog, &["time"], None, &[]);
    let exact = r.stdout.clone();
    // Recorded with approximate time (the vDSO left alone): the times are
    // the recorded timeline's, within microseconds; the rest replays exactly.
    let approx = record_with(
        dir.path(),
        &["--approximate-time"],
        prog,
        &["time"],
        None,
        &[],
    );
    let rep = replay(&approx.bundle, &[]);
    assert!(
        rep.report["time_calls_from_timeline"].as_u64() >= Some(3),
        "{}",
        rep.summary
    );
    assert!(!exact.is_empty());
    assert!(text(&r.stdout).contains("instant"), "{}", text(&r.stdout));
    assert_same(&r, &replay(&r.bundle, &[]));
}

#[test]
fn http_client_replays_without_its_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req);
        let body = "hello from a server that will be gone\n";
        let _ = write!(
            s,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let url = format!("http://127.0.0.1:{port}/page");
    let client = record(
        dir.path(),
        "/usr/bin/python3",
        &[
            "-c",
            "import sys, urllib.request\nprint(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end='')",
            &url,
        ],
        None,
        &[],
    );
    server.join().expect("server");
    assert_eq!(
        text(&client.stdout),
        "hello from a server that will be gone\n",
        "{}",
        text(&client.stderr)
    );
    // The port is closed now: nothing answers there.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_same(&client, &replay(&client.bundle, &[]));
}

#[test]
fn a_diverging_run_stops_at_the_first_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = env!("CARGO_BIN_EXE_replay-corpus");
    let r = record(dir.path(), prog, &["diverge"], None, &[]);
    assert_same(&r, &replay(&r.bundle, &[]));
    let rep = replay(&r.bundle, &["--env", "TRACER_DIVERGE=1"]);
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert_eq!(rep.report["outcome"]["kind"], "diverged", "{}", rep.summary);
    let d = &rep.report["divergence"];
    let expected = d["expected"].as_str().unwrap_or_default();
    let actual = d["actual"].as_str().unwrap_or_default();
    assert!(
        expected.contains("write(1, \"the same either way\\n\""),
        "the recording's next event is the write: {}",
        rep.summary
    );
    assert!(
        actual.contains("/tracer-diverge-probe"),
        "the replay shows the syscall the program made instead: {}",
        rep.summary
    );
    let at = d["event_index"].as_u64().expect("index") as usize;
    assert_eq!(
        rep.report["events_replayed"].as_u64(),
        Some(at as u64),
        "everything before the divergence replayed"
    );
    assert!(rep.summary.contains("left stopped"), "{}", rep.summary);
    assert!(rep.stdout.is_empty(), "nothing printed past the divergence");
}

fn snapshot(d: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn replay_leaves_the_file_system_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("victim");
    std::fs::create_dir(&d).expect("dir");
    let reset = || {
        let _ = std::fs::remove_file(d.join("renamed.txt"));
        std::fs::write(d.join("keep.txt"), "original\n").expect("keep");
        std::fs::write(d.join("doomed.txt"), "still here\n").expect("doomed");
    };
    reset();
    let prog = env!("CARGO_BIN_EXE_replay-corpus");
    let r = record(
        dir.path(),
        prog,
        &["files", d.to_str().expect("path")],
        None,
        &[],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(d.join("renamed.txt").exists() && !d.join("doomed.txt").exists());
    reset();
    let before = snapshot(&d);
    assert_same(&r, &replay(&r.bundle, &[]));
    assert_eq!(snapshot(&d), before, "the replay changed nothing on disk");
}

#[test]
fn damaged_bundles_get_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = record(dir.path(), "/bin/true", &[], None, &[]);
    let data = std::fs::read(&r.bundle).expect("bundle");
    let cut = dir.path().join("cut.trace");
    std::fs::write(&cut, &data[..data.len() / 2]).expect("cut");
    let rep = replay(&cut, &[]);
    assert_eq!(rep.status.code(), Some(126));
    assert!(
        text(&rep.stderr).contains("truncated"),
        "{}",
        text(&rep.stderr)
    );
    let none = replay(&dir.path().join("missing.trace"), &[]);
    assert_eq!(none.status.code(), Some(126));
    let wrong_pid = replay(&r.bundle, &["--pid", "1"]);
    assert_eq!(wrong_pid.status.code(), Some(126));
    assert!(
        text(&wrong_pid.stderr).contains("no events of pid 1"),
        "{}",
        text(&wrong_pid.stderr)
    );
    // The intact bundle still replays.
    let ok = replay(&r.bundle, &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", ok.summary);
    let _ = Command::new("true").status();
}

#[test]
fn a_cut_recording_replays_up_to_the_cut_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("big");
    std::fs::write(&f, vec![b'x'; 200_000]).expect("file");
    let r = tracer_tests::record_with(
        dir.path(),
        &["--snapshot-limit", "4096"],
        "/bin/cat",
        &[f.to_str().expect("path")],
        None,
        &[],
    );
    assert_eq!(r.stdout.len(), 200_000);
    let rep = replay(&r.bundle, &[]);
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert_eq!(
        rep.report["outcome"]["kind"], "incomplete",
        "{}",
        rep.summary
    );
    let reason = rep.report["divergence"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("read") && reason.contains("snapshot limit"),
        "the report says which syscall and why: {}",
        rep.summary
    );
}

#[test]
fn a_signal_the_program_sent_itself_is_delivered_in_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = record(
        dir.path(),
        "/usr/bin/python3",
        &[
            "-c",
            "import os, signal\nsignal.signal(signal.SIGUSR1, lambda s, f: print('handler', s))\nos.kill(os.getpid(), signal.SIGUSR1)\nprint('after')\nos.kill(os.getpid(), signal.SIGTERM)",
        ],
        None,
        &[],
    );
    assert_eq!(text(&r.stdout), "handler 10\nafter\n");
    let rep = replay(&r.bundle, &[]);
    assert_eq!(text(&rep.stdout), text(&r.stdout), "{}", rep.summary);
    assert_eq!(rep.report["outcome"]["kind"], "killed", "{}", rep.summary);
    assert_eq!(rep.report["outcome"]["signal"], 15);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        rep.status.signal(),
        Some(15),
        "tracectl dies the way the program died"
    );
    assert_eq!(
        rep.report["signals_delivered"].as_u64(),
        Some(2),
        "{}",
        rep.summary
    );
}

#[test]
fn a_program_that_execs_another_replays_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("lines");
    std::fs::write(&f, "one\ntwo\nthree\n").expect("file");
    let script = format!("exec /usr/bin/head -2 {}", f.display());
    let r = record(dir.path(), "/bin/sh", &["-c", &script], None, &[]);
    assert_eq!(text(&r.stdout), "one\ntwo\n");
    std::fs::remove_file(&f).expect("delete");
    let rep = replay(&r.bundle, &[]);
    assert_same(&r, &rep);
    assert!(
        rep.report["program"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/head"),
        "the replay went on into the exec'd program: {}",
        rep.report
    );
}
