//! The soak (issue 13): mixed real work recorded for a long time by one
//! daemon on a small store (segments rotating every few seconds, retention
//! deleting the oldest), pids wrapping. After each process tree ends, its
//! `ps` row, its `events` and its fetched bundle must agree, at once and
//! without retries: no fetch may fail, no count may differ.
//!
//! Ignored by default (it runs for `SOAK_SECS`, 1800 unless set):
//! `SOAK_SECS=1800 cargo test --release -p tracer-tests --test soak -- --ignored --nocapture`
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_proto as pb;
use tracer_tests::{Daemon, Guard, json_lines, tracectl};

/// The mixed work: shells, pipes, compression, an interpreter, big reads.
const WORK: &[&str] = &[
    "seq 1 20000 | sort -r | uniq | wc -l",
    "tar -cf - /usr/share/zoneinfo/Europe 2>/dev/null | gzip -c | wc -c",
    "dd if=/dev/zero bs=64k count=300 status=none | xz -1 -c | wc -c",
    "python3 -c 'import json,os; print(len(json.dumps(dict(os.environ))))'",
    "find /usr/share/zoneinfo -name '*.tab' | xargs cat | wc -l",
    "for i in 1 2 3 4 5 6 7 8; do /bin/true; done; echo done",
    "git --version; ls -la /usr/bin | head -50 | wc -l",
    "cat /usr/share/zoneinfo/zone1970.tab /etc/services | grep -c e",
];

#[test]
#[ignore = "a long soak; run it on purpose"]
fn ps_events_and_fetch_agree_for_every_process_under_rotation_and_retention() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    let dir = tempfile::tempdir().expect("tempdir");
    // Records the whole host, the work and whatever else runs.
    let mut daemon = Daemon::start(&["--segment-bytes", "4194304", "--retain-bytes", "67108864"]);
    let sock = daemon.dir.path().join("tracer.sock");
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut runs, mut lost, mut checked) = (0u64, 0u64, 0u64);
    let mut failures: Vec<String> = Vec::new();
    let mut pids = std::collections::BTreeSet::new();
    while Instant::now() < end && failures.len() < 20 {
        let work = WORK[runs as usize % WORK.len()];
        runs += 1;
        let mut child = Guard(Some(
            Command::new("/bin/sh")
                .arg("-c")
                .arg(work)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn"),
        ));
        let pid = child.0.as_ref().expect("child").id();
        pids.insert(pid);
        child.wait(Duration::from_secs(120));
        let p = pid.to_string();
        // At once: ps, events, fetch of this process.
        let rows = json_lines(&tracectl(&sock, &["ps", "--pid", &p, "--json"]));
        let Some(row) = rows
            .iter()
            .filter(|r| r["pid"].as_u64() == Some(pid as u64))
            .max_by_key(|r| r["start_ns"].as_u64().unwrap_or(0))
        else {
            failures.push(format!("run {runs} ({work}): pid {pid} not in ps"));
            continue;
        };
        if row["lost"].as_bool() == Some(true) {
            lost += 1;
            continue;
        }
        if row["exited"].as_bool() != Some(true) {
            failures.push(format!("run {runs}: pid {pid} not exited in ps: {row}"));
            continue;
        }
        let count = row["event_count"].as_u64().unwrap_or(0);
        // Since this process's first event: an earlier one with the pid
        // (they wrap) is left out; no later one exists yet.
        let first = row["first_ns"].as_u64().unwrap_or(0);
        let ev = tracectl(
            &sock,
            &[
                "events",
                "--pid",
                &p,
                "--since",
                &first.to_string(),
                "--json",
            ],
        );
        let events = json_lines(&ev)
            .iter()
            .filter(|e| e["pid"].as_u64() == Some(pid as u64))
            .count() as u64;
        let bundle = dir.path().join("soak.trace");
        let f = tracectl(
            &sock,
            &[
                "fetch",
                "--pid",
                &p,
                "--children",
                "-o",
                bundle.to_str().expect("path"),
            ],
        );
        if !f.status.success() {
            failures.push(format!(
                "run {runs} ({work}): fetch of {pid}: {}",
                String::from_utf8_lossy(&f.stderr).trim()
            ));
            continue;
        }
        let b = match std::fs::read(&bundle)
            .map_err(|e| e.to_string())
            .and_then(|d| tracer_store::bundle::decode(&d).map_err(|e| e.to_string()))
        {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("run {runs}: bundle of {pid}: {e}"));
                continue;
            }
        };
        let in_bundle = b.events.iter().filter(|e| e.pid == pid).count() as u64;
        let exit_in_bundle = b
            .events
            .iter()
            .any(|e| e.pid == pid && matches!(e.kind, Some(pb::event::Kind::Exit(_))));
        if count != events || count != in_bundle || !exit_in_bundle {
            failures.push(format!(
                "run {runs} ({work}): pid {pid}: ps says {count} events, events {events}, \
                 bundle {in_bundle} (its exit {})",
                if exit_in_bundle { "in" } else { "missing" }
            ));
        }
        checked += 1;
    }
    let st = json_lines(&tracectl(&sock, &["status", "--json"]));
    daemon.stop();
    eprintln!(
        "soak: {secs} s, {runs} trees run, {checked} checked, {lost} flagged lost, {} pids, \
         {} failures; status {st:?}",
        pids.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(checked > 0 && checked + lost == runs);
}
