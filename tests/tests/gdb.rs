//! gdb drives a replay: the real gdb, in batch mode, against `tracectl
//! replay --gdb`, on a C program built with debug info whose input file is
//! gone by the time it is replayed.
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_tests::{Guard, record, tracectl_bin};

const PROGRAM: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int check(const char *secret, int n) {
    int sum = 0;
    for (int i = 0; i < n; i++)
        sum += secret[i];
    return sum;
}

int main(int argc, char **argv) {
    char buf[64] = {0};
    int fd = open(argv[1], O_RDONLY);
    int n = read(fd, buf, sizeof buf - 1);
    close(fd);
    int s = check(buf, n);
    printf("sum %d\n", s);
    return 0;
}
"#;

#[test]
fn gdb_breaks_prints_recorded_data_goes_to_a_bookmark_and_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("secret.c");
    let exe = dir.path().join("secret");
    std::fs::write(&src, PROGRAM).expect("source");
    let cc = Command::new("cc")
        .args(["-g", "-O0", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(cc.success());
    let input = dir.path().join("secret.txt");
    std::fs::write(&input, "the recorded secret\n").expect("input");
    let r = record(
        dir.path(),
        exe.to_str().expect("path"),
        &[input.to_str().expect("path")],
        None,
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&r.stdout), "sum 1881\n");
    std::fs::remove_file(&input).expect("the input is gone");
    std::fs::remove_file(&exe).expect("so is the program: the bundle has it");

    // Checkpoints every 1000 events (the default: only the first one, in
    // a program this short) and at every syscall: gdb sees the same.
    for every in ["1000", "1"] {
        let (out, report) = session(&r.bundle, every);
        check(&out);
        let travel = &report["travel"];
        assert_eq!(
            travel["restarts"], 0,
            "going back starts from a checkpoint, never from the start: {report}"
        );
        assert!(
            travel["restores"].as_u64().unwrap_or(0) >= 4,
            "reverse-continue, reverse-stepi and goto 0 went back: {report}"
        );
        if every == "1" {
            assert!(travel["checkpoints"].as_u64().unwrap_or(0) > 20, "{report}");
        }
    }
}

/// One gdb session over a replay of `bundle` (a checkpoint every `every`
/// events): gdb's output, and the replay's report.
fn session(bundle: &std::path::Path, every: &str) -> (String, serde_json::Value) {
    let report = bundle.with_extension(format!("gdb-{every}.json"));
    let mut replay = Guard(Some(
        Command::new(tracectl_bin())
            .arg("replay")
            .arg(bundle)
            .args([
                "--gdb",
                "127.0.0.1:0",
                "--checkpoint-every",
                every,
                "--report",
            ])
            .arg(&report)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tracectl replay --gdb"),
    ));
    let err = replay
        .0
        .as_mut()
        .expect("child")
        .stderr
        .take()
        .expect("stderr");
    let mut lines = BufReader::new(err).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("tracectl says where it listens")
            .expect("line");
        if let Some(rest) = line.strip_prefix("replay: waiting for gdb on ") {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    let started = Instant::now();
    let gdb = Command::new("timeout")
        .args(["120", "gdb", "-nx", "-batch"])
        .args(["-ex", &format!("target remote {addr}")])
        .args(["-ex", "break check"])
        .args(["-ex", "continue"])
        .args(["-ex", "print secret"])
        .args(["-ex", "print n"])
        .args(["-ex", "monitor event"])
        .args(["-ex", "watch sum"])
        .args(["-ex", "continue"])
        .args(["-ex", "continue"])
        .args(["-ex", "delete 2"])
        .args(["-ex", "break secret.c:9"])
        .args(["-ex", "continue"])
        .args(["-ex", "continue"])
        .args(["-ex", "print i"])
        .args(["-ex", "reverse-continue"])
        .args(["-ex", "print i"])
        .args(["-ex", "reverse-stepi"])
        .args(["-ex", "monitor event"])
        .args(["-ex", "monitor goto 0"])
        .args(["-ex", "maint flush register-cache"])
        .args(["-ex", "delete 3"])
        .args(["-ex", "continue"])
        .args(["-ex", "next"])
        .args(["-ex", "next"])
        .args(["-ex", "print sum"])
        .args(["-ex", "delete"])
        .args(["-ex", "continue"])
        .output()
        .expect("gdb");
    let out =
        String::from_utf8_lossy(&gdb.stdout).into_owned() + &String::from_utf8_lossy(&gdb.stderr);
    let st = replay.wait(Duration::from_secs(60));
    assert_eq!(st.code(), Some(0), "the recorded status");
    let stdout = {
        use std::io::Read;
        let mut s = String::new();
        let _ = replay
            .0
            .as_mut()
            .expect("child")
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut s);
        s
    };
    // The first run was restarted (goto 0) before it printed anything.
    assert_eq!(stdout, "sum 1881\n", "the program's output, as recorded");
    assert!(started.elapsed() < Duration::from_secs(120));
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, report)
}

/// What gdb must have said.
fn check(out: &str) {
    assert!(
        out.contains("Breakpoint 1, check (secret=") && out.contains("\"the recorded secret\\n\""),
        "gdb stops in check() and sees the bytes the recording read: {out}"
    );
    assert!(out.contains("$2 = 20"), "{out}");
    assert!(
        out.contains("event ") && out.contains("of "),
        "monitor event: {out}"
    );
    assert_eq!(
        out.matches("Breakpoint 1, check").count(),
        2,
        "after `monitor goto 0` the replay runs to the breakpoint again: {out}"
    );
    assert!(
        out.contains("Hardware watchpoint 2: sum")
            && out.contains("New value = 0")
            && out.contains("Old value = 0\nNew value = 116"),
        "the watchpoint sees sum set to 0, then to 't' (116): {out}"
    );
    assert!(out.contains("$3 = 2"), "the loop's third pass: {out}");
    assert!(
        out.contains("$4 = 1"),
        "reverse-continue goes back to the loop's previous pass: {out}"
    );
    assert!(
        out.contains("(stopped at its syscall)") && out.contains("close(3)"),
        "reverse-stepi goes back to the syscall before (close): {out}"
    );
    assert!(
        out.contains("$5 = 0"),
        "next steps a line, sum is still 0: {out}"
    );
    assert!(
        out.contains("exited normally"),
        "the replay runs to its end: {out}"
    );
}
