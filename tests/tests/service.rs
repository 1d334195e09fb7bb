//! The daemon as a systemd service: the unit file verifies, readiness and
//! stopping are announced on $NOTIFY_SOCKET, SIGTERM flushes and closes the
//! open segment, SIGHUP applies new filters without a restart.
use std::{os::unix::net::UnixDatagram, path::PathBuf, process::Command, time::Duration};

use nix::sys::signal::Signal;
use tracer_store::store;
use tracer_tests::{Daemon, daemon_bin, syscall};

fn packaging(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging")
        .join(file)
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = std::fs::read_to_string(packaging("tracer.service")).expect("unit");
    // The installed paths do not exist here: point them at this build.
    let unit = unit.replace(
        "/usr/local/bin/tracer-daemon --config /etc/tracer/tracer.toml",
        &format!(
            "{} --config {}",
            daemon_bin().display(),
            packaging("tracer.toml").display()
        ),
    );
    let path = dir.path().join("tracer.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn readiness_and_sigterm_follow_the_notify_protocol() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    // SAFETY: set before the daemon is spawned; tests run one at a time.
    unsafe { std::env::set_var("NOTIFY_SOCKET", &sock_path) };
    let mut d = Daemon::start(&["--pid", &std::process::id().to_string()]);
    unsafe { std::env::remove_var("NOTIFY_SOCKET") };
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 60 s");
    assert_eq!(&buf[..n], b"READY=1");
    // Something to flush: this test's own syscalls are recorded.
    let _ = std::fs::read("/proc/self/status");
    std::thread::sleep(Duration::from_millis(100));
    d.stop_with(Signal::SIGTERM);
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let segments = store::list(d.dir.path()).expect("list");
    assert!(!segments.is_empty());
    assert!(
        segments.iter().all(|s| s.index.is_some()),
        "SIGTERM closed the open segment"
    );
}

#[test]
fn sighup_applies_new_filters_without_a_restart() {
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let conf = conf_dir.path().join("tracer.toml");
    let rules =
        |comm: &str| format!("default_action = \"exclude\"\n[[filter]]\ncomm = \"{comm}\"\n");
    std::fs::write(&conf, rules("true")).expect("config");
    let mut d = Daemon::start(&["--config", conf.to_str().expect("path")]);
    let run = |bin: &str| assert!(Command::new(bin).status().is_ok());
    run("/bin/true");
    run("/bin/false");
    std::fs::write(&conf, rules("false")).expect("config");
    d.signal(Signal::SIGHUP);
    d.wait_log("reload: 1 filter rules in force", Duration::from_secs(10));
    run("/bin/true");
    run("/bin/false");
    std::thread::sleep(Duration::from_millis(100));
    d.stop();
    let exits = |comm: &str| {
        d.events()
            .iter()
            .filter(|e| e.comm == comm && syscall(e).is_some_and(|s| s.name == "exit_group"))
            .count()
    };
    assert_eq!(
        exits("true"),
        1,
        "`true` was recorded only before the reload"
    );
    assert_eq!(
        exits("false"),
        1,
        "`false` was recorded only after the reload"
    );
}

/// `--metrics ADDR`: `/metrics` in Prometheus' text format, every name
/// `tracer_`, with what the daemon recorded and the API requests it
/// answered by method and status; `promtool check metrics` (Debian's
/// prometheus package, which `cargo xtask setup` installs) accepts it.
#[test]
fn metrics_are_served_for_prometheus_and_promtool_accepts_them() {
    use std::io::{Read as _, Write as _};
    let mut daemon = Daemon::start(&["--metrics", "127.0.0.1:0", "--comm", "tracer-no-such"]);
    daemon.wait_log("metrics on http://", Duration::from_secs(10));
    let line = daemon
        .log
        .iter()
        .find(|l| l.contains("metrics on http://"))
        .cloned()
        .unwrap_or_default();
    let addr = line
        .split("metrics on http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("the address the daemon bound")
        .to_owned();
    let sock = daemon.dir.path().join("tracer.sock");
    assert!(tracer_tests::tracectl(&sock, &["ps"]).status.success());
    // A request the daemon refuses, counted by its status.
    assert!(
        !tracer_tests::tracectl(&sock, &["events", "--pid", "0"])
            .status
            .success()
    );
    let get = || {
        let mut c = std::net::TcpStream::connect(&addr).expect("connect to /metrics");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            c,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut reply = String::new();
        c.read_to_string(&mut reply).expect("reply");
        reply
    };
    let reply = get();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    for want in [
        "# TYPE tracer_events_recorded_total counter",
        "# TYPE tracer_ring_used_bytes gauge",
        "tracer_store_segments ",
        "tracer_unflushed_events ",
        "tracer_api_requests_total{method=\"ListProcesses\",code=\"0\"} 1",
        // INVALID_ARGUMENT: events without a pid.
        "tracer_api_requests_total{method=\"GetEvents\",code=\"3\"} 1",
    ] {
        assert!(body.contains(want), "{want} missing from:\n{body}");
    }
    for l in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(l.starts_with("tracer_"), "a metric not named tracer_*: {l}");
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (cargo xtask setup installs Debian's prometheus package)");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("feed promtool");
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Anything else is not found.
    let mut c = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        c,
        "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut reply = String::new();
    c.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    daemon.stop();
}

/// `--log-format json`: every log line is one JSON object (what log
/// shippers take), with the level and the message.
#[test]
fn json_logs_are_one_object_a_line() {
    let mut daemon = Daemon::start(&["--log-format", "json", "--comm", "tracer-no-such"]);
    let log = daemon.stop();
    assert!(!log.is_empty());
    for line in &log {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
        assert!(!line.contains('\u{1b}'), "an escape in {line}");
    }
    assert!(log.iter().any(|l| l.contains("recording (pid")), "{log:?}");
}
