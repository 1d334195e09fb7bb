//! Replay of several tasks: a program whose threads read, take a lock and
//! write to a pipe, and a shell pipeline recorded as one process tree. Each is
//! recorded by the real daemon, its input deleted, and replayed ten times
//! in a row: the same output, status and events every time. A program
//! that waits in user space on something the recording does not explain
//! is stopped by the watchdog with a report of where each thread is.
use std::process::Command;

use tracer_tests::{Recorded, Replayed, record, record_tree, replay};

/// Threads that each read their part of a file, take a lock (a futex
/// when contended) to add to a shared total and write a line to a pipe the
/// main thread reads and prints, then are joined; the total is printed
/// last. (Which thread takes the lock first is decided in user space, which
/// replay orders at syscall granularity only: the lines do not depend on
/// it, the total is a sum.)
const THREADS: &str = r#"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 20

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long total = 0;
static int pipefd[2];
static const char *path;
static volatile unsigned long spins;

static void *worker(void *arg) {
    int id = (int)(long)arg;
    int fd = open(path, O_RDONLY);
    char buf[64];
    for (int r = 0; r < ROUNDS; r++) {
        int n = pread(fd, buf, sizeof buf - 1, (r * THREADS + id) * 7 % 200);
        if (n < 0) n = 0;
        buf[n] = 0;
        for (int k = 0; k < n; k++) if (buf[k] == '\n') buf[k] = '_';
        unsigned char rnd;
        getrandom(&rnd, 1, 0);
        pthread_mutex_lock(&lock);
        total += buf[0] + rnd;
        char line[128];
        int len = snprintf(line, sizeof line, "t%d r%d %.8s %u\n", id, r, buf, rnd);
        write(pipefd[1], line, len);
        pthread_mutex_unlock(&lock);
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    path = argv[1];
    if (pipe(pipefd) != 0) return 1;
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    /* A "what if" replay with TRACER_SPIN set waits here for ever, in
       user space, for something that never comes. */
    if (getenv("TRACER_SPIN"))
        for (;;) spins++;
    FILE *in = fdopen(pipefd[0], "r");
    char line[256];
    for (int i = 0; i < THREADS * ROUNDS && fgets(line, sizeof line, in); i++)
        printf("saw %s", line);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("total %ld\n", total);
    return 0;
}
"#;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_same(rec: &Recorded, rep: &Replayed, run: usize) {
    assert_eq!(
        rep.report["outcome"]["kind"], "exited",
        "replay {run}: {}\nreport: {}",
        rep.summary, rep.report
    );
    assert_eq!(
        text(&rep.stdout),
        text(&rec.stdout),
        "replay {run}: stdout differs\n{}",
        rep.summary
    );
    assert_eq!(rep.status.code(), rec.status.code(), "{}", rep.summary);
    let total = rep.report["events_total"].as_u64().expect("events_total");
    assert_eq!(
        rep.report["events_replayed"].as_u64(),
        Some(total),
        "replay {run}: every recorded event is replayed: {}",
        rep.summary
    );
}

fn build_threads(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("threads.c");
    let exe = dir.join("threads");
    std::fs::write(&src, THREADS).expect("source");
    let cc = Command::new("cc")
        .args(["-g", "-O1", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(cc.success(), "cc failed");
    exe
}

fn input(dir: &std::path::Path) -> std::path::PathBuf {
    let f = dir.join("numbers.txt");
    std::fs::write(&f, (1..=100).map(|i| format!("{i}\n")).collect::<String>()).expect("input");
    f
}

#[test]
fn threads_with_locks_and_a_pipe_replay_the_same_ten_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_threads(dir.path());
    let f = input(dir.path());
    let rec = record(
        dir.path(),
        exe.to_str().expect("path"),
        &[f.to_str().expect("path")],
        None,
        &[],
    );
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    let out = text(&rec.stdout);
    assert_eq!(out.lines().filter(|l| l.starts_with("saw t")).count(), 80);
    std::fs::remove_file(&f).expect("the input is gone");
    std::fs::remove_file(&exe).expect("so is the program: the bundle has it");
    for run in 1..=10 {
        let rep = replay(&rec.bundle, &[]);
        assert_same(&rec, &rep, run);
        assert!(
            rep.report["syscalls_executed"].as_u64().unwrap_or(0) >= 4,
            "the four clones ran for real: {}",
            rep.report
        );
    }
}

#[test]
fn a_shell_pipeline_replays_as_one_tree_the_same_ten_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("words.txt");
    std::fs::write(&f, "pear\napple\nfig\napple\npear\napple\nkiwi\n").expect("input");
    let script = format!("cat {} | sort | uniq -c", f.display());
    let rec = record_tree(dir.path(), "/bin/sh", &["-c", &script]);
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    assert_eq!(
        text(&rec.stdout).lines().map(str::trim).collect::<Vec<_>>(),
        vec!["3 apple", "1 fig", "1 kiwi", "2 pear"]
    );
    std::fs::remove_file(&f).expect("the input is gone");
    for run in 1..=10 {
        let rep = replay(&rec.bundle, &[]);
        assert_same(&rec, &rep, run);
        // sh, cat, sort and uniq: three forks and three execs ran.
        assert!(
            rep.report["syscalls_executed"].as_u64().unwrap_or(0) >= 6,
            "{}",
            rep.report
        );
    }
}

#[test]
fn a_thread_waiting_in_user_space_is_reported_by_the_watchdog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_threads(dir.path());
    let f = input(dir.path());
    let rec = record(
        dir.path(),
        exe.to_str().expect("path"),
        &[f.to_str().expect("path")],
        None,
        &[],
    );
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
    let workers = reason.matches("is held before event").count()
        + reason.matches("waits at its syscall for event").count();
    assert!(
        reason.matches("thread ").count() == workers + 1,
        "the main thread and the workers left: {reason}"
    );
}
