//! Many clients at once while a syscall-heavy process records: 50
//! concurrent `GetEvents` streams and a `Follow`, one client killed
//! mid-stream. No errors, nothing lost, the daemon's memory bounded.
use std::{
    process::{Command, Stdio},
    time::Duration,
};

use tracer_tests::{Daemon, Guard, quick, tracectl_bin};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().to_owned())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Niceness of each of the process's threads, by thread name.
fn thread_nices(pid: u32) -> Vec<(String, i32)> {
    let mut out = vec![];
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let Ok(stat) = std::fs::read_to_string(t.expect("task").path().join("stat")) else {
            continue;
        };
        // "tid (name) state ppid ..." with the name in parentheses; nice is
        // the 19th field, the 17th after the name.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        if let Some(nice) = stat[close + 1..]
            .split_whitespace()
            .nth(16)
            .and_then(|v| v.parse().ok())
        {
            out.push((name, nice));
        }
    }
    out
}

#[test]
fn fifty_streams_and_a_follow_under_load() {
    let streams = if quick() { 10 } else { 50 };
    // The workload: a write storm that is still running while the clients
    // read (it starts when released, after the daemon and the follower).
    let mut storm = Guard(Some(
        Command::new(env!("CARGO_BIN_EXE_syscall-storm"))
            .args(["400000", "16", "1000"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("storm"),
    ));
    let pid = storm.0.as_ref().expect("storm").id().to_string();
    let mut daemon = Daemon::start(&["--pid", &pid]);
    // The thread that assembles and stores gives way to the programs
    // recorded; the drain thread (keeping the ring empty) and the runtime
    // thread (the API this test loads) keep the default priority.
    // A new thread takes its name once it first runs: on a busy host that
    // can come after the daemon says it records.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut nices = thread_nices(daemon.pid());
    while !nices.iter().any(|(n, _)| n == "ring-drain") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        nices = thread_nices(daemon.pid());
    }
    let nice_of = |name: &str| nices.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(
        (
            nice_of("ring-drain"),
            nice_of("assembler"),
            nice_of("tracer-daemon")
        ),
        (Some(0), Some(19), Some(0)),
        "thread priorities: {nices:?}"
    );
    let sock = format!("unix:{}", daemon.dir.path().join("tracer.sock").display());
    let client = |args: &[&str]| {
        Command::new(tracectl_bin())
            .args(["--connect", &sock])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tracectl")
    };
    let mut follow = Guard(Some(client(&[
        "events",
        "--follow",
        "--pid",
        &pid,
        "--syscall",
        "write",
    ])));
    std::thread::sleep(Duration::from_millis(300));
    {
        use std::io::Write as _;
        let s = storm.0.as_mut().expect("storm");
        s.stdin
            .take()
            .expect("stdin")
            .write_all(b"g")
            .expect("release");
    }
    std::thread::sleep(Duration::from_millis(400));
    let mut quitter = Guard(Some(client(&["events", "--pid", &pid])));
    let readers: Vec<Guard> = (0..streams)
        .map(|_| {
            Guard(Some(client(&[
                "events",
                "--pid",
                &pid,
                "--syscall",
                "write",
            ])))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // A client that goes away mid-stream.
    if let Some(q) = quitter.0.as_mut() {
        let _ = q.kill();
        let _ = q.wait();
    }
    // Every client's output is drained at once (a full pipe would stall it).
    let waiters: Vec<_> = readers
        .into_iter()
        .map(|mut r| {
            let child = r.0.take().expect("reader");
            std::thread::spawn(move || child.wait_with_output().expect("wait"))
        })
        .collect();
    let follow_child = follow.0.take().expect("follow");
    let follow_pid = follow_child.id();
    let follow_out = std::thread::spawn(move || follow_child.wait_with_output().expect("wait"));
    let mut peak = rss_kib(daemon.pid());
    for w in waiters {
        while !w.is_finished() {
            peak = peak.max(rss_kib(daemon.pid()));
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = w.join().expect("reader thread");
        assert!(
            out.status.success(),
            "a stream failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert!(lines > 100, "each stream got the stored writes ({lines})");
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(follow_pid as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let out = follow_out.join().expect("follow thread");
    let followed = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.windows(6).any(|w| w == b"write("))
        .count();
    assert!(followed > 100, "the follower saw live writes ({followed})");
    assert!(storm.wait(Duration::from_secs(60)).success());
    std::thread::sleep(Duration::from_millis(300));
    daemon.stop();
    let st = daemon.stats();
    assert_eq!(st["lost_total"], 0, "no records lost: {st}");
    assert_eq!(
        st["store"]["events_dropped"], 0,
        "nothing dropped by the store: {st}"
    );
    assert!(
        peak < 1024 * 1024,
        "the daemon's memory stays bounded: peak RSS {peak} KiB"
    );
}
