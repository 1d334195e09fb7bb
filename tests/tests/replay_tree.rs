//! Replay of several tasks: a program whose threads read, take a lock and
//! write to a pipe, and a shell pipeline recorded as one process tree. Each is
//! recorded by the real daemon, its input deleted, and replayed ten times
//! in a row: the same output, status and events every time. A program
//! that waits in user space on something the recording does not explain
//! is stopped by the watchdog with a report of where each thread is.

use tracer_tests::{
    Recorded, assert_replayed_as_recorded, build_c, record, record_pipeline, replay,
};

/// Threads that each read their part of a file, take a lock (a futex
/// when contended) to add to a shared total and write a line to a pipe the
/// main thread reads and prints, then are joined; the total is printed
/// last. (Which thread takes the lock first is decided in user space, which
/// replay orders at syscall granularity only: the lines do not depend on
/// it, the total is a sum.)
const THREADS: &str = include_str!("../programs/threads.c");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Ten replays in a row, each the same as the recording, each running at
/// least `executed` syscalls for real (the clones, forks and execs).
fn replay_ten_times(rec: &Recorded, executed: u64) {
    for run in 1..=10 {
        let rep = replay(&rec.bundle, &[]);
        assert_replayed_as_recorded(rec, &rep, &format!("replay {run}"));
        assert!(
            rep.report["syscalls_executed"].as_u64().unwrap_or(0) >= executed,
            "replay {run}: {}",
            rep.report
        );
    }
}

/// The threaded program, built in `dir` and recorded reading its input:
/// the recording, the program and the input.
fn record_threads(dir: &std::path::Path) -> (Recorded, std::path::PathBuf, std::path::PathBuf) {
    let exe = build_threads(dir);
    let f = input(dir);
    let rec = record(
        dir,
        exe.to_str().expect("path"),
        &[f.to_str().expect("path")],
        None,
        &[],
    );
    (rec, exe, f)
}

fn build_threads(dir: &std::path::Path) -> std::path::PathBuf {
    build_c(dir, "threads", THREADS, &["-O1", "-pthread"])
}

fn input(dir: &std::path::Path) -> std::path::PathBuf {
    let f = dir.join("numbers.txt");
    std::fs::write(&f, (1..=100).map(|i| format!("{i}\n")).collect::<String>()).expect("input");
    f
}

#[test]
fn threads_with_locks_and_a_pipe_replay_the_same_ten_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rec, exe, f) = record_threads(dir.path());
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    let out = text(&rec.stdout);
    assert_eq!(out.lines().filter(|l| l.starts_with("saw t")).count(), 80);
    std::fs::remove_file(&f).expect("the input is gone");
    std::fs::remove_file(&exe).expect("so is the program: the bundle has it");
    // The four clones ran for real.
    replay_ten_times(&rec, 4);
}

#[test]
fn a_shell_pipeline_replays_as_one_tree_the_same_ten_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = record_pipeline(dir.path(), "pear\napple\nfig\napple\npear\napple\nkiwi\n");
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    assert_eq!(
        text(&rec.stdout).lines().map(str::trim).collect::<Vec<_>>(),
        vec!["3 apple", "1 fig", "1 kiwi", "2 pear"]
    );
    // sh, cat, sort and uniq: three forks and three execs ran.
    replay_ten_times(&rec, 6);
}

/// Forks that keep coming while the children before them exit: in the
/// replay the children exit for real, and the SIGCHLD the kernel queues for
/// the traced parent (a traced task keeps even an ignored signal) can be
/// pending when its next fork runs for real. The kernel then has that fork
/// return ERESTARTNOINTR and makes it again once the signal is dealt with;
/// the replay must let it, not take the restart for a failure.
const FORKS: &str = r#"
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int made = 0;
    for (int i = 0; i < 200; i++) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) made++;
    }
    while (wait(NULL) > 0) {}
    printf("%d children\n", made);
    return 0;
}
"#;

#[test]
fn forks_made_while_children_exit_replay_the_same_ten_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_c(dir.path(), "forks", FORKS, &[]);
    let rec = tracer_tests::record_tree(dir.path(), exe.to_str().expect("path"), &[]);
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    assert_eq!(text(&rec.stdout), "200 children\n");
    // 200 forks ran for real, and their children's exits.
    replay_ten_times(&rec, 200);
}

#[test]
fn a_thread_waiting_in_user_space_is_reported_by_the_watchdog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rec, _, _) = record_threads(dir.path());
    assert!(rec.status.success());
    let started = std::time::Instant::now();
    let rep = replay(&rec.bundle, &["--env", "TRACER_SPIN=1", "--watchdog", "2"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded by the watchdog"
    );
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert_eq!(rep.report["outcome"]["kind"], "diverged", "{}", rep.report);
    let reason = rep.report["divergence"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("the replay stalled"), "{reason}");
    // The main thread runs and never reaches its next event; the workers
    // still there are named with the event each waits at.
    assert!(
        reason.contains(&format!("thread {} runs, has not reached event", rec.pid)),
        "{reason}"
    );
    // A worker is held, at its syscall, or parked on a lock word the
    // recording does not wait on (when it got there first this time).
    let workers = reason.matches("is held before event").count()
        + reason.matches("waits at its syscall for event").count()
        + reason
            .matches("waits on a futex the recording does not have, before event")
            .count();
    assert!(
        reason.matches("thread ").count() == workers + 1,
        "the main thread and the workers left: {reason}"
    );
}

#[test]
fn a_thread_that_diverges_leaves_its_process_stopped_for_a_debugger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (rec, _, _) = record_threads(dir.path());
    assert!(rec.status.success());
    // The replay helper checks that the stopped process is in state T,
    // then ends it.
    let rep = replay(&rec.bundle, &["--env", "TRACER_DIVERGE=1"]);
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert_eq!(rep.report["outcome"]["kind"], "diverged", "{}", rep.report);
    let reason = rep.report["divergence"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("different syscall (getppid instead of"),
        "{reason}"
    );
    assert!(
        rep.report["stopped_pid"].as_i64().is_some(),
        "left stopped: {}",
        rep.report
    );
}
