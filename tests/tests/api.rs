//! The gRPC API through `tracectl`, against a real daemon recording a real
//! process: status, ps, events, stats and follow agree with what the
//! process did; bad requests get clear errors; the socket is root-only.
use std::{
    io::Read,
    process::{Command, Output, Stdio},
    time::Duration,
};

use tracer_tests::{Daemon, Guard, finish_script, start_script, tracectl, tracectl_bin};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tracectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tracectl_sees_what_the_process_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("input.txt");
    std::fs::write(&file, b"hello api\n").expect("input");
    let mut helper = start_script(&file);
    let pid = helper.0.as_ref().expect("child").id();
    let mut daemon = Daemon::start(&["--pid", &pid.to_string()]);
    let sock = daemon.dir.path().join("tracer.sock");
    assert_eq!(
        tracer_tests::mode(&sock),
        0o600,
        "the API socket is root-only"
    );

    // A live follower, started before the process runs.
    let mut follower = Guard(Some(
        Command::new(tracectl_bin())
            .arg("--connect")
            .arg(format!("unix:{}", sock.display()))
            .args(["events", "--follow", "--syscall", "getrandom"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn follower"),
    ));
    std::thread::sleep(Duration::from_millis(300));

    let report = finish_script(&mut helper);
    std::thread::sleep(Duration::from_millis(600)); // a tick writes the frames

    let status = ok(&tracectl(&sock, &["status"]));
    assert!(
        status.contains("events recorded") && status.contains("lost               0"),
        "{status}"
    );

    let ps = ok(&tracectl(&sock, &["ps", "--pid", &pid.to_string()]));
    let row = ps
        .lines()
        .find(|l| l.trim_start().starts_with(&pid.to_string()))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(
        row.contains("syscall-script") && row.contains("exit 3"),
        "{row}"
    );

    let events = ok(&tracectl(
        &sock,
        &[
            "events",
            "--pid",
            &pid.to_string(),
            "--syscall",
            "getrandom",
        ],
    ));
    assert_eq!(events.lines().count(), 1, "{events}");
    assert!(
        events.contains("getrandom(") && events.contains(") = 16"),
        "{events}"
    );

    let tree = ok(&tracectl(
        &sock,
        &[
            "events",
            "--pid",
            &pid.to_string(),
            "--children",
            "--syscall",
            "exit_group",
        ],
    ));
    let child_pid = report["child"].as_u64().expect("child");
    assert!(
        tree.contains(&format!("[{child_pid} ")),
        "--children includes the forked child: {tree}"
    );

    let stats = ok(&tracectl(&sock, &["stats", "--pid", &pid.to_string()]));
    let line = stats
        .lines()
        .find(|l| l.starts_with("getrandom"))
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(line.split_whitespace().nth(1), Some("1"), "{line}");
    let openat = stats
        .lines()
        .find(|l| l.starts_with("openat"))
        .expect("openat row");
    assert!(
        openat.contains("ENOENT=1"),
        "the marker's failure is counted: {openat}"
    );

    // The follower saw the getrandom live; stopping it mid-stream is fine.
    std::thread::sleep(Duration::from_millis(300));
    let f = follower.0.as_mut().expect("follower");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(f.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = f.wait();
    let mut followed = String::new();
    f.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut followed)
        .expect("follow output");
    assert!(
        followed.contains(&format!("[{pid} {pid}] syscall-script getrandom(")),
        "{followed}"
    );

    // --json: one object per line, agreeing with the human output.
    let ps = ok(&tracectl(
        &sock,
        &["--json", "ps", "--pid", &pid.to_string()],
    ));
    let p: serde_json::Value =
        serde_json::from_str(ps.lines().next().expect("a line")).expect("json");
    assert_eq!(
        (
            p["pid"].as_u64(),
            p["exit_code"].as_i64(),
            p["exited"].as_bool()
        ),
        (Some(pid as u64), Some(3), Some(true))
    );
    let ev = ok(&tracectl(
        &sock,
        &[
            "--json",
            "events",
            "--pid",
            &pid.to_string(),
            "--syscall",
            "getrandom",
        ],
    ));
    let e: serde_json::Value = serde_json::from_str(ev.trim()).expect("json");
    assert_eq!(e["event"]["name"], "getrandom");
    assert_eq!(e["event"]["ret"], 16);
    assert_eq!(
        e["event"]["buffers"][0]["data"], report["random"],
        "the bytes the process printed"
    );
    let st = ok(&tracectl(
        &sock,
        &["--json", "stats", "--pid", &pid.to_string()],
    ));
    assert!(
        st.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
            .any(|v| v["name"] == "getrandom" && v["count"] == 1)
    );
    let status = ok(&tracectl(&sock, &["--json", "status"]));
    let s: serde_json::Value = serde_json::from_str(status.trim()).expect("json");
    assert!(
        s["events_recorded"].as_u64().unwrap_or(0) > 10 && s["ring_size"].as_u64().unwrap_or(0) > 0,
        "{s}"
    );
    // --since: an hour ago covers everything, a future time nothing.
    let all = ok(&tracectl(
        &sock,
        &["events", "--pid", &pid.to_string(), "--since", "1h"],
    ));
    assert_eq!(
        all,
        ok(&tracectl(&sock, &["events", "--pid", &pid.to_string()]))
    );
    let none = ok(&tracectl(
        &sock,
        &[
            "events",
            "--pid",
            &pid.to_string(),
            "--since",
            &u64::MAX.to_string(),
        ],
    ));
    assert!(none.is_empty(), "{none}");

    // A bundle of the process tree reads back as the same events.
    let bundle = dir.path().join("script.trace");
    ok(&tracectl(
        &sock,
        &[
            "fetch",
            "--pid",
            &pid.to_string(),
            "--children",
            "-o",
            bundle.to_str().expect("path"),
        ],
    ));
    let dumped = ok(&tracectl(
        &sock,
        &["dump", "--events-only", bundle.to_str().expect("path")],
    ));
    let stored = ok(&tracectl(
        &sock,
        &["events", "--pid", &pid.to_string(), "--children"],
    ));
    assert_eq!(dumped, stored, "dump shows exactly the stored events");
    let header = ok(&tracectl(&sock, &["dump", bundle.to_str().expect("path")]));
    assert!(header.contains(&format!("root pid {pid}")), "{header}");
    assert!(
        header.contains("file /bin/true sha256 "),
        "the exec'd binary travels with the bundle: {header}"
    );
    // Damaged bundles: a clear error, no crash.
    let data = std::fs::read(&bundle).expect("bundle");
    let cut = dir.path().join("cut.trace");
    std::fs::write(&cut, &data[..data.len() / 2]).expect("cut");
    let e = tracectl(&sock, &["dump", cut.to_str().expect("path")]);
    assert!(
        !e.status.success() && String::from_utf8_lossy(&e.stderr).contains("truncated"),
        "{e:?}"
    );
    let mut flipped = data.clone();
    let at = flipped.len() / 3;
    flipped[at] ^= 0x10;
    let bad = dir.path().join("bad.trace");
    std::fs::write(&bad, &flipped).expect("flip");
    let e = tracectl(&sock, &["dump", bad.to_str().expect("path")]);
    assert!(
        !e.status.success() && String::from_utf8_lossy(&e.stderr).contains("damaged"),
        "{e:?}"
    );
    let e = tracectl(
        &sock,
        &[
            "fetch",
            "--pid",
            "999999",
            "-o",
            dir.path().join("none.trace").to_str().expect("path"),
        ],
    );
    assert!(!e.status.success() && !dir.path().join("none.trace").exists());

    // Bad requests: clear errors, and the daemon keeps serving.
    let missing = tracectl(&sock, &["events", "--pid", "999999"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no recorded process with pid 999999")
    );
    let bad = tracectl(
        &sock,
        &["events", "--pid", &pid.to_string(), "--syscall", "bogus"],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown syscall \"bogus\""));
    let nobody = tracectl(&dir.path().join("nope.sock"), &["status"]);
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("connecting to the daemon"));
    ok(&tracectl(&sock, &["status"]));
    daemon.stop();
    assert!(!sock.exists(), "the socket is removed on shutdown");
}

/// A new user's first `tracectl ps` after `cargo xtask run`: the address
/// comes from TRACER_CONNECT when no `--connect` is given, and the flag wins
/// over it.
#[test]
fn tracectl_takes_its_address_from_tracer_connect() {
    let daemon = Daemon::start(&["--pid", "1"]);
    let sock = daemon.dir.path().join("tracer.sock");
    let run = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = Command::new(tracectl_bin());
        cmd.env_remove("TRACER_CONNECT");
        if let Some(e) = env {
            cmd.env("TRACER_CONNECT", e);
        }
        if let Some(f) = flag {
            cmd.args(["--connect", f]);
        }
        cmd.arg("status").output().expect("run tracectl")
    };
    let good = format!("unix:{}", sock.display());
    let bad = format!("unix:{}", daemon.dir.path().join("nothing.sock").display());
    let out = ok(&run(Some(&good), None));
    assert!(
        out.contains("recorded"),
        "status from TRACER_CONNECT: {out}"
    );
    ok(&run(Some(&bad), Some(&good)));
    let refused = run(Some(&good), Some(&bad));
    assert!(
        !refused.status.success(),
        "--connect to a missing socket must win over a good TRACER_CONNECT"
    );
    let refused = run(Some(&bad), None);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("nothing.sock"),
        "TRACER_CONNECT to a missing socket is used and named: {err}"
    );
}
