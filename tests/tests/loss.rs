//! Overflows a tiny ring buffer on purpose: losses are counted per kind and
//! per process, nothing crashes, and what comes after is still recorded.
use std::{
    process::{Command, Stdio},
    time::Duration,
};

use tracer_tests::{Daemon, Guard, buffer, quick, syscall};

const MARKER: &str = "/tracer-test-storm-done-marker";

#[test]
fn a_full_ring_loses_visibly_and_recovers() {
    let n: u64 = if quick() { 5_000 } else { 50_000 };
    let mut storm = Guard(Some(
        Command::new(env!("CARGO_BIN_EXE_syscall-storm"))
            .args([n.to_string(), "8192".into()])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn storm"),
    ));
    let pid = storm.0.as_ref().expect("child").id();
    let mut daemon = Daemon::start(&["--pid", &pid.to_string(), "--ring-size", "16384"]);
    storm.release();
    let status = storm.wait(Duration::from_secs(60));
    assert!(status.success());
    daemon.stop();

    let stats = daemon.stats();
    let lost = stats["lost_total"].as_u64().expect("lost_total");
    assert!(
        lost > 0,
        "a 16 KiB ring must overflow under 8 KiB writes: {stats}"
    );
    let by_process = stats["lost_by_process"]
        .as_array()
        .expect("lost_by_process");
    assert!(
        by_process
            .iter()
            .any(|p| p[0].as_u64() == Some(pid as u64) && p[1].as_u64().unwrap_or(0) > 0),
        "loss is attributed to the storm's pid {pid}: {stats}"
    );

    let events = daemon.events();
    let writes: Vec<_> = events
        .iter()
        .filter(|e| e.pid == pid)
        .filter_map(syscall)
        .filter(|s| s.name == "write" && s.args[2] == 8192)
        .collect();
    let lost_syscalls = stats["lost"]["syscall"].as_u64().expect("lost.syscall");
    // Every write is either recorded or counted as lost (a few other
    // syscalls of the storm may be among the lost ones).
    assert!(writes.len() as u64 <= n);
    assert!(
        writes.len() as u64 + lost_syscalls >= n,
        "seen {} + lost {lost_syscalls} < {n}",
        writes.len()
    );
    // Writes recorded without their data say so.
    let partial = writes.iter().filter(|s| s.buffers_lost).count();
    let whole = writes
        .iter()
        .filter(|s| buffer(s, 1, tracer_proto::Direction::In).is_some_and(|b| b.len() == 8192))
        .count();
    assert_eq!(
        partial + whole,
        writes.len(),
        "each recorded write has its data or is flagged buffers_lost"
    );
    assert!(partial > 0 || stats["lost"]["buffer"].as_u64() == Some(0));
    // After the storm, recording goes on.
    let marker = format!("{MARKER}\0");
    assert!(
        events
            .iter()
            .filter(|e| e.pid == pid)
            .filter_map(syscall)
            .any(|s| s.name == "openat"
                && buffer(s, 1, tracer_proto::Direction::In) == Some(marker.as_bytes())),
        "the marker after the storm is recorded"
    );
}
