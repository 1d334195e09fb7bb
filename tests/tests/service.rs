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
