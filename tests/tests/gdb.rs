//! gdb drives a replay: the real gdb, in batch mode, against `tracectl
//! replay --gdb`, on a C program built with debug info whose input file is
//! gone by the time it is replayed.
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_tests::{Guard, build_c, record, record_pipeline, tracectl_bin};

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
    let exe = build_c(dir.path(), "secret", PROGRAM, &["-O0"]);
    let r = record_reading(dir.path(), &exe, "secret.txt", "the recorded secret\n");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "sum 1881\n");

    // Checkpoints every 1000 events (the default: only the first one, in
    // a program this short) and at every syscall: gdb sees the same.
    for every in ["1000", "1"] {
        let (out, stdout, report) = session(&r.bundle, every, SECRET_SCRIPT);
        // The first run was restarted (goto 0) before it printed anything.
        assert_eq!(stdout, "sum 1881\n", "the program's output, as recorded");
        check(&out);
        never_from_the_start(&report);
        let travel = &report["travel"];
        assert!(
            travel["restores"].as_u64().unwrap_or(0) >= 4,
            "reverse-continue, reverse-stepi and goto 0 went back: {report}"
        );
        if every == "1" {
            assert!(travel["checkpoints"].as_u64().unwrap_or(0) > 20, "{report}");
        }
    }
}

/// Records `exe` reading the file `name` (holding `content`) in `dir`;
/// then the file and the program are deleted (the bundle has the program).
fn record_reading(
    dir: &std::path::Path,
    exe: &std::path::Path,
    name: &str,
    content: &str,
) -> tracer_tests::Recorded {
    let input = dir.join(name);
    std::fs::write(&input, content).expect("input");
    let r = record(
        dir,
        exe.to_str().expect("path"),
        &[input.to_str().expect("path")],
        None,
        &[],
    );
    std::fs::remove_file(&input).expect("the input is gone");
    std::fs::remove_file(exe).expect("so is the program: the bundle has it");
    r
}

/// Starts `tracectl replay BUNDLE --gdb 127.0.0.1:0 ARGS`: the replay,
/// the rest of what it says, and where it listens.
fn serve(
    bundle: &std::path::Path,
    args: &[&str],
) -> (
    Guard,
    std::io::Lines<BufReader<std::process::ChildStderr>>,
    String,
) {
    let mut replay = Guard(Some(
        Command::new(tracectl_bin())
            .arg("replay")
            .arg(bundle)
            .args(["--gdb", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tracectl replay --gdb"),
    ));
    let err = replay
        .0
        .as_mut()
        .and_then(|c| c.stderr.take())
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
    (replay, lines, addr)
}

/// The script the test of the single-threaded program runs.
const SECRET_SCRIPT: &[&str] = &[
    "break check",
    "continue",
    "print secret",
    "print n",
    "monitor event",
    "watch sum",
    "continue",
    "continue",
    "delete 2",
    "break secret.c:9",
    "continue",
    "continue",
    "print i",
    "reverse-continue",
    "print i",
    "reverse-stepi",
    "monitor event",
    "monitor goto 0",
    "maint flush register-cache",
    "delete 3",
    "continue",
    "next",
    "next",
    "print sum",
    "delete",
    "continue",
];

/// One gdb session over a replay of `bundle` (a checkpoint every `every`
/// events), running `script`: what gdb said, what the replayed program
/// printed, and the replay's report.
fn session(
    bundle: &std::path::Path,
    every: &str,
    script: &[&str],
) -> (String, String, serde_json::Value) {
    session_with(bundle, every, script, &[], Some(0))
}

/// [`session`], with more arguments for `tracectl replay`, and the status
/// it must end with (`None`: any).
fn session_with(
    bundle: &std::path::Path,
    every: &str,
    script: &[&str],
    args: &[&str],
    status: Option<i32>,
) -> (String, String, serde_json::Value) {
    let report = bundle.with_extension(format!("gdb-{every}.json"));
    let mut replay_args = vec!["--checkpoint-every", every, "--report"];
    let report_path = report.to_str().expect("path");
    replay_args.push(report_path);
    replay_args.extend_from_slice(args);
    let (mut replay, lines, addr) = serve(bundle, &replay_args);
    let started = Instant::now();
    let mut gdb = Command::new("timeout");
    gdb.args(["120", "gdb", "-nx", "-batch"])
        .args(["-ex", &format!("target remote {addr}")]);
    for cmd in script {
        gdb.args(["-ex", cmd]);
    }
    let gdb = gdb.output().expect("gdb");
    let out =
        String::from_utf8_lossy(&gdb.stdout).into_owned() + &String::from_utf8_lossy(&gdb.stderr);
    let st = replay.wait(Duration::from_secs(60));
    let said: Vec<String> = lines.map_while(Result::ok).collect();
    if status.is_some() {
        assert_eq!(
            st.code(),
            status,
            "the replay's status; gdb said: {out}\nthe replay said: {}",
            said.join("\n")
        );
    }
    let out = out + &said.join("\n");
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
    assert!(started.elapsed() < Duration::from_secs(120));
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out, stdout, report)
}

/// Going back started from a checkpoint each time, never from the start.
fn never_from_the_start(report: &serde_json::Value) {
    assert_eq!(
        report["travel"]["restarts"], 0,
        "going back starts from a checkpoint, never from the start: {report}"
    );
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
        // The fd number is whatever the recording had (the harness may
        // leave a low fd taken); the call is a close either way.
        out.contains("(stopped at its syscall)") && out.contains("] secret close("),
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

/// The threaded program of the tree tests: four workers that read, take a
/// lock and write to a pipe the main thread prints from.
const THREADS: &str = include_str!("../programs/threads.c");

/// The number of the first line of `source` holding `text`.
fn line_of(source: &str, text: &str) -> usize {
    source
        .lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line holds {text:?}"))
        + 1
}

#[test]
fn gdb_sees_the_threads_and_goes_back_through_checkpoints_that_hold_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_c(dir.path(), "threads", THREADS, &["-O0", "-pthread"]);
    let numbers: String = (1..=100).map(|i| format!("{i}\n")).collect();
    let r = record_reading(dir.path(), &exe, "numbers.txt", &numbers);
    assert!(r.status.success());
    // The line where a worker adds to the total, holding the lock.
    let line = line_of(THREADS, "total += buf[0] + rnd;");
    let hit = "printf \"hit t%d r%d\\n\", id, r";
    let brk = format!("break threads.c:{line}");
    let watched = "printf \"watched %ld\\n\", total";
    // gdb reads files through the replay: the program's, not the host's.
    let stolen = dir.path().join("stolen");
    let stolen_get = format!("remote get /etc/passwd {}", stolen.display());
    let script = [
        brk.as_str(),
        "continue",
        hit,
        "info threads",
        "info proc mappings",
        stolen_get.as_str(),
        "continue",
        hit,
        "continue",
        hit,
        "continue",
        hit,
        "reverse-continue",
        hit,
        "reverse-continue",
        hit,
        "continue",
        hit,
        "delete",
        "watch total",
        "continue",
        watched,
        "continue",
        watched,
        "reverse-continue",
        watched,
        "delete",
        "continue",
    ];
    // A checkpoint at every syscall: the one before each hit holds the
    // main thread and the worker, however the threads were scheduled.
    let (out, stdout, report) = session(&r.bundle, "1", &script);
    assert_eq!(
        stdout,
        String::from_utf8_lossy(&r.stdout),
        "the program's output, as recorded, after going back and forth: {out}"
    );
    let hits: Vec<&str> = out.lines().filter(|l| l.starts_with("hit t")).collect();
    assert_eq!(hits.len(), 7, "{out}");
    // Forwards: four hits. Back twice: the third, then the second. On: the
    // third again.
    assert_eq!(hits[4], hits[2], "reverse-continue: the hit before: {out}");
    assert_eq!(hits[5], hits[1], "and the one before that: {out}");
    assert_eq!(hits[6], hits[2], "continue: the same future: {out}");
    // A watchpoint in every thread: two writes of the total forwards, then
    // back to the first (just after it wrote).
    let watched: Vec<&str> = out.lines().filter(|l| l.starts_with("watched ")).collect();
    assert_eq!(watched.len(), 3, "{out}");
    assert_ne!(watched[0], watched[1], "{out}");
    assert_eq!(
        watched[2], watched[0],
        "reverse-continue to the write before: {out}"
    );
    assert!(out.contains("Hardware watchpoint 2: total"), "{out}");
    // The table of `info threads`: the main thread and the first worker
    // at least (the others may not be made yet), with where each is.
    let rows = out
        .lines()
        .filter(|l| l.contains("Thread 1.") && l.contains("next event"))
        .count();
    assert!(rows >= 2, "info threads lists the threads: {out}");
    assert!(out.contains("hit Breakpoint 1, worker"), "{out}");
    assert!(out.contains("exited normally"), "{out}");
    assert!(
        out.contains("Reading /lib/x86_64-linux-gnu/libc.so.6 from remote target"),
        "gdb reads the bundle's libc through the replay: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("r-xp") && l.trim_end().ends_with("/threads")),
        "info proc mappings shows the replayed program's: {out}"
    );
    assert!(
        !stolen.exists(),
        "a file of the host the program never read is not gdb's to fetch: {out}"
    );
    never_from_the_start(&report);
    let travel = &report["travel"];
    assert!(
        travel["threads_remade"].as_u64().unwrap_or(0) >= 1,
        "a checkpoint gone back to held threads, made again: {report}"
    );
}

#[test]
fn a_stalled_replay_is_left_to_gdb_with_each_thread_where_it_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_c(dir.path(), "threads", THREADS, &["-O0", "-pthread"]);
    let r = record_reading(dir.path(), &exe, "numbers.txt", "1\n2\n3\n");
    assert!(r.status.success());
    let spin = line_of(THREADS, "for (;;) spins++;");
    // With TRACER_SPIN set, main spins in user space for ever: the
    // watchdog fires, and gdb finds main in its loop.
    let (out, _, _) = session_with(
        &r.bundle,
        "1000",
        &["continue", "thread 1", "bt 1", "print spins > 0", "kill"],
        &["--env", "TRACER_SPIN=1", "--watchdog", "2"],
        None,
    );
    assert!(out.contains("the replay stalled"), "{out}");
    assert!(
        out.contains("main (argc=2, argv=") && out.contains(&format!("threads.c:{spin}")),
        "thread 1 is in its loop: {out}"
    );
    assert!(out.contains("$1 = 1"), "it spun: {out}");
}

#[test]
fn gdb_on_a_pipeline_stops_in_the_shell_and_its_children_run_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = record_pipeline(dir.path(), "pear\napple\nfig\napple\n");
    assert!(r.status.success());
    let (out, stdout, report) = session(
        &r.bundle,
        "5",
        &[
            "set breakpoint pending on",
            "break __libc_fork",
            "break __wait4",
            "continue",
            "continue",
            "continue",
            "continue",
            "monitor event",
            "delete",
            "continue",
        ],
    );
    assert_eq!(
        stdout,
        String::from_utf8_lossy(&r.stdout),
        "the pipeline's output, as recorded: {out}"
    );
    // The shell forks its three children, then waits: each child runs the
    // same code (a copy of the shell), without stopping at gdb's int3s.
    assert_eq!(out.matches("Breakpoint 1, __libc_fork").count(), 3, "{out}");
    assert!(out.contains("Breakpoint 2, __GI___wait4"), "{out}");
    assert!(out.contains("exited normally"), "{out}");
    assert!(
        report["tasks"].as_u64().unwrap_or(0) >= 4,
        "the children were replayed: {report}"
    );
}

/// A program that computes for seconds between two syscalls.
const SPIN: &str = r#"
#include <stdio.h>
volatile unsigned long spins;
int main(void) {
    printf("start\n");
    fflush(stdout);
    for (unsigned long i = 0; i < 1500000000UL; i++) spins++;
    printf("done %lu\n", spins);
    return 0;
}
"#;

/// gdb's remote protocol, spoken directly: gdb in batch mode cannot send
/// a Ctrl-C while the program runs.
struct Remote {
    s: std::net::TcpStream,
    buf: Vec<u8>,
}

impl Remote {
    fn connect(addr: &str) -> Self {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Self { s, buf: Vec::new() }
    }

    fn send(&mut self, packet: &str) {
        use std::io::Write;
        let sum = packet.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        write!(self.s, "${packet}#{sum:02x}").expect("send");
    }

    fn interrupt(&mut self) {
        use std::io::Write;
        self.s.write_all(&[3]).expect("send ^C");
    }

    /// The next packet the stub sends (acknowledged).
    fn recv(&mut self) -> String {
        use std::io::{Read, Write};
        loop {
            if let Some(start) = self.buf.iter().position(|&b| b == b'$')
                && let Some(end) = self.buf[start..].iter().position(|&b| b == b'#')
                && self.buf.len() >= start + end + 3
            {
                let body = String::from_utf8_lossy(&self.buf[start + 1..start + end]).into_owned();
                self.buf.drain(..start + end + 3);
                self.s.write_all(b"+").expect("ack");
                return body;
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk).expect("the stub answers");
            assert!(n > 0, "the stub hung up");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[test]
fn ctrl_c_stops_a_program_that_computes_and_it_goes_on_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_c(dir.path(), "spin", SPIN, &["-O0"]);
    let r = record(dir.path(), exe.to_str().expect("path"), &[], None, &[]);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "start\ndone 1500000000\n"
    );
    let (mut replay, _lines, addr) = serve(&r.bundle, &[]);
    let mut gdb = Remote::connect(&addr);
    gdb.send("?");
    assert!(gdb.recv().starts_with('T'), "stopped at the start");
    for _ in 0..2 {
        gdb.send("vCont;c");
        std::thread::sleep(Duration::from_millis(300));
        let asked = Instant::now();
        gdb.interrupt();
        let stop = gdb.recv();
        assert!(
            stop.starts_with("T02"),
            "Ctrl-C stops the program in its loop (SIGINT), not at its end: {stop}"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        gdb.send("g");
        assert!(gdb.recv().len() > 100, "its registers can be read");
    }
    gdb.send("D");
    assert_eq!(gdb.recv(), "OK");
    let st = replay.wait(Duration::from_secs(60));
    assert_eq!(
        st.code(),
        Some(0),
        "the replay goes on to its end, as recorded"
    );
    let mut out = String::new();
    use std::io::Read;
    let _ = replay
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout")
        .read_to_string(&mut out);
    assert_eq!(out, "start\ndone 1500000000\n");
}
