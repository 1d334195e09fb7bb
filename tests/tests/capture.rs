//! Records the syscall script with the real daemon and checks every event:
//! sequence, arguments, return values and captured memory.
use std::{process::Command, time::Duration};

use tracer_proto as pb;
use tracer_tests::{Daemon, buffer, finish_script, start_script, syscall};

const MARKER: &str = "/tracer-test-script-start-marker";

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// One recorded run of the syscall script.
struct Run {
    daemon: Daemon,
    events: Vec<pb::Event>,
    report: serde_json::Value,
    pid: u32,
    file: std::path::PathBuf,
    content: Vec<u8>,
    _dir: tempfile::TempDir,
}

/// Records the script with the daemon started with `extra` flags (after a
/// pid filter on the script).
fn record_script(extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("input.txt");
    // Bigger than one 16 KiB chunk, so reassembly is exercised.
    let content: Vec<u8> = (0..40_000u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[(i % 27) as usize])
        .collect();
    std::fs::write(&file, &content).expect("write input");

    let mut helper = start_script(&file);
    let pid = helper.0.as_ref().expect("child").id();
    let pid_arg = pid.to_string();
    let mut args = vec!["--pid", pid_arg.as_str()];
    args.extend_from_slice(extra);
    let mut daemon = Daemon::start(&args);

    let report = finish_script(&mut helper);
    daemon.stop();
    let events = daemon.events();
    Run {
        daemon,
        events,
        report,
        pid,
        file,
        content,
        _dir: dir,
    }
}

/// The script's syscalls from its start marker on.
fn script_calls(run: &Run) -> Vec<&pb::Syscall> {
    let mine: Vec<&pb::Event> = run.events.iter().filter(|e| e.pid == run.pid).collect();
    let start = mine
        .iter()
        .position(|e| {
            syscall(e).is_some_and(|s| {
                s.name == "openat" && s.ret == -2 && s.args[2] == 0 && s.args[3] == 0
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "marker not recorded; {} events of pid {}",
                mine.len(),
                run.pid
            )
        });
    mine[start..].iter().filter_map(|e| syscall(e)).collect()
}

#[test]
fn records_the_syscall_script_exactly() {
    let run = record_script(&[]);
    let Run {
        daemon,
        events,
        report,
        pid,
        file,
        content,
        ..
    } = &run;
    let pid = *pid;
    let child_pid = report["child"].as_u64().expect("child") as u32;
    let mine: Vec<&pb::Event> = events.iter().filter(|e| e.pid == pid).collect();
    let start = mine
        .iter()
        .position(|e| {
            syscall(e).is_some_and(|s| {
                s.name == "openat"
                    && s.ret == -2
                    && buffer(s, 1, pb::Direction::In) == Some(format!("{MARKER}\0").as_bytes())
            })
        })
        .unwrap_or_else(|| panic!("marker not recorded; {} events of pid {pid}", mine.len()));
    let calls: Vec<&pb::Syscall> = mine[start..].iter().filter_map(|e| syscall(e)).collect();
    let names: Vec<&str> = calls.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "openat",
            "openat",
            "read",
            "read",
            "close",
            "getrandom",
            "newfstatat",
            "pipe2",
            "write",
            "read",
            "clock_gettime",
            "nanosleep",
            "clone",
            "wait4",
            "write",
            "exit_group"
        ],
        "syscall sequence after the marker"
    );
    let c = |i: usize| calls[i];
    for s in &calls {
        assert!(
            !s.buffers_lost && !s.effects_unknown && !s.no_enter,
            "{} flags: {s:?}",
            s.name
        );
        assert!(
            s.enter_ns > 0 && s.exit_ns >= s.enter_ns,
            "{} timestamps",
            s.name
        );
    }

    // openat(FILE) = fd
    let path_z = format!("{}\0", file.display());
    assert_eq!(buffer(c(1), 1, pb::Direction::In), Some(path_z.as_bytes()));
    let fd = c(1).ret;
    assert!(fd >= 3);
    // read(fd) returns the whole file, then EOF.
    assert_eq!(c(2).args[0] as i64, fd);
    assert_eq!(c(2).ret, content.len() as i64);
    assert_eq!(
        buffer(c(2), 1, pb::Direction::Out),
        Some(&content[..]),
        "read buffer equals the file"
    );
    assert_eq!(c(3).ret, 0);
    assert_eq!(c(4).args[0] as i64, fd);
    // getrandom: the bytes the helper printed.
    let random: Vec<u8> = (0..16)
        .map(|i| {
            u8::from_str_radix(
                &report["random"].as_str().expect("random")[2 * i..2 * i + 2],
                16,
            )
            .expect("hex")
        })
        .collect();
    assert_eq!(c(5).ret, 16);
    assert_eq!(buffer(c(5), 0, pb::Direction::Out), Some(&random[..]));
    // stat: st_size at offset 48 of struct stat.
    let st = buffer(c(6), 2, pb::Direction::Out).expect("stat buffer");
    assert_eq!(st.len(), 144);
    assert_eq!(le_u64(st, 48), content.len() as u64);
    // pipe2, write "ping", read "ping".
    let fds = buffer(c(7), 0, pb::Direction::Out).expect("pipe fds");
    let (rfd, wfd) = (
        i32::from_le_bytes(fds[0..4].try_into().unwrap()),
        i32::from_le_bytes(fds[4..8].try_into().unwrap()),
    );
    assert_eq!(c(8).args[0] as i32, wfd);
    assert_eq!(buffer(c(8), 1, pb::Direction::In), Some(&b"ping"[..]));
    assert_eq!(c(9).args[0] as i32, rfd);
    assert_eq!(buffer(c(9), 1, pb::Direction::Out), Some(&b"ping"[..]));
    // clock_gettime(CLOCK_MONOTONIC) via the raw syscall: the value printed.
    let ts = buffer(c(10), 1, pb::Direction::Out).expect("timespec");
    assert_eq!(le_u64(ts, 0), report["sec"].as_u64().expect("sec"));
    assert_eq!(le_u64(ts, 8), report["nsec"].as_u64().expect("nsec"));
    // nanosleep(1 ms): the request is an input.
    let req = buffer(c(11), 0, pb::Direction::In).expect("nanosleep request");
    assert_eq!((le_u64(req, 0), le_u64(req, 8)), (0, 1_000_000));
    assert!(c(11).exit_ns - c(11).enter_ns >= 1_000_000);
    // fork = child pid; wait4 reaps it with status 0.
    assert_eq!(c(12).ret, child_pid as i64);
    assert_eq!(c(13).ret, child_pid as i64);
    assert_eq!(
        buffer(c(13), 1, pb::Direction::Out),
        Some(&0i32.to_le_bytes()[..])
    );
    // The report itself, then exit_group(3).
    let report_line = format!("{report}\n");
    let written = buffer(c(14), 1, pb::Direction::In).expect("report buffer");
    assert_eq!(
        &serde_json::from_slice::<serde_json::Value>(written).expect("json"),
        report
    );
    assert_eq!(written.len(), c(14).ret as usize, "{report_line}");
    assert_eq!(c(15).args[0], 3);

    // Process events: the fork, the child's exec of /bin/true, both exits.
    let fork = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::event::Kind::Fork(f)) if f.child_pid == child_pid => Some(f),
            _ => None,
        })
        .expect("fork event");
    assert_eq!(fork.parent_pid, pid);
    assert!(!fork.thread);
    assert!(fork.child_start_ns > 0);
    let exec = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::event::Kind::Exec(x)) if e.pid == child_pid => Some(x),
            _ => None,
        })
        .expect("exec event of the child (a descendant of the filtered pid)");
    assert_eq!(exec.filename, "/bin/true");
    assert_eq!(exec.argv, vec![b"/bin/true".to_vec()]);
    assert!(exec.envp.is_empty());
    assert!(
        exec.auxv.chunks(2).any(|kv| kv[0] == 25),
        "auxv has AT_RANDOM"
    );
    let exit_of = |p: u32| {
        events
            .iter()
            .find_map(|e| match &e.kind {
                Some(pb::event::Kind::Exit(x)) if e.pid == p && x.group_dead => Some(*x),
                _ => None,
            })
            .unwrap_or_else(|| panic!("exit event of {p}"))
    };
    assert_eq!(exit_of(child_pid).exit_code, 0);
    assert_eq!(exit_of(pid).exit_code, 3);
    assert_eq!(exit_of(pid).signal, 0);
    // The child's own syscalls were recorded too (pid filters follow children).
    assert!(
        events
            .iter()
            .any(|e| e.pid == child_pid && syscall(e).is_some_and(|s| s.name == "exit_group"))
    );
    // Identity fields of every event of the script.
    for e in events
        .iter()
        .filter(|e| e.pid == pid && syscall(e).is_some())
    {
        assert_eq!(e.comm, "syscall-script", "comm");
        assert_eq!(e.uid, 0, "uid");
        assert!(e.cgroup_id > 0, "cgroup id");
        assert_eq!(e.tid, pid, "single-threaded");
    }
    // Nothing of other processes.
    assert!(
        events.iter().all(|e| e.pid == pid || e.pid == child_pid),
        "only the filtered tree is recorded"
    );
    let stats = daemon.stats();
    assert_eq!(stats["lost_total"], 0, "{stats}");

    // tracectl reads the same file back, strace-style.
    let out = Command::new(tracer_tests::tracectl_bin())
        .args([
            "events",
            "--pid",
            &pid.to_string(),
            "--syscall",
            "openat",
            "--syscall",
            "write",
            "--data-dir",
        ])
        .arg(daemon.dir.path())
        .output()
        .expect("run tracectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "openat(AT_FDCWD, \"{MARKER}\", O_RDONLY, 0) = -1 ENOENT (No such file or directory)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("write({wfd}, \"ping\", 4) = 4")),
        "{text}"
    );
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = Command::new(tracer_tests::daemon_bin())
        .args(["--data-dir", "/tmp", "--ring-size", "5000"])
        .output()
        .expect("run daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("power of two"), "{err}");

    let out = Command::new(tracer_tests::daemon_bin())
        .args([
            "--data-dir",
            "/proc/version/sub",
            "--listen",
            "unix:/tmp/x.sock",
        ])
        .output()
        .expect("run daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data dir"), "{err}");
    assert_eq!(
        err.trim().lines().filter(|l| l.contains("error")).count(),
        1,
        "one error line: {err}"
    );
}

#[test]
fn buffers_beyond_the_snapshot_limit_are_cut_and_flagged() {
    let run = record_script(&["--snapshot-limit", "1000"]);
    let calls = script_calls(&run);
    let read = calls
        .iter()
        .find(|s| s.name == "read" && s.ret == run.content.len() as i64)
        .expect("the big read");
    let b = read
        .buffers
        .iter()
        .find(|b| b.arg == 1)
        .expect("read buffer");
    assert_eq!(b.data, run.content[..1000], "the first 1000 bytes are kept");
    assert!(b.truncated, "cut short is flagged");
    assert_eq!(
        b.total_len,
        run.content.len() as u64,
        "the real length is kept"
    );
    assert!(!read.buffers_lost, "truncation is not loss");
}

#[test]
fn payload_capture_can_be_switched_off() {
    let run = record_script(&["--no-payload"]);
    let calls = script_calls(&run);
    assert!(calls.len() >= 16, "all syscalls are still recorded");
    for s in &calls {
        assert!(s.no_payload, "{} is flagged no_payload", s.name);
        assert!(s.buffers.is_empty(), "{} has no buffers", s.name);
    }
    let read = calls.iter().find(|s| s.name == "read").expect("read");
    assert_eq!(
        read.ret,
        run.content.len() as i64,
        "args and return values stay"
    );
    let _ = &run.file;
}

#[test]
fn a_comm_filter_records_only_that_command() {
    // `true` runs under a comm filter; the daemon and the test are not recorded.
    let mut daemon = Daemon::start(&["--comm", "true"]);
    let st = Command::new("/bin/true").status().expect("run true");
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(100));
    daemon.stop();
    let events = daemon.events();
    assert!(
        events
            .iter()
            .any(|e| e.comm == "true" && syscall(e).is_some_and(|s| s.name == "exit_group"))
    );
    assert!(
        events.iter().all(|e| e.comm == "true"
            || e.comm.is_empty()
            || !matches!(e.kind, Some(pb::event::Kind::Syscall(_)))),
        "only `true` syscalls"
    );
    assert!(events.iter().all(|e| e.pid != std::process::id()));
}

#[test]
fn without_privileges_the_error_names_the_capability() {
    let dir = tempfile::tempdir().expect("tempdir");
    // setpriv drops root (and every capability) for the daemon only.
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(tracer_tests::daemon_bin())
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .args(["--listen", "unix:/tmp/never-used.sock"])
        .output()
        .expect("run setpriv");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// Who made a syscall is said once per batch of the fast path, and cached
/// per thread until a context switch: a new name (`prctl`) and new ids
/// (`setresuid`, `setresgid`) must show on the call that set them and on
/// every call after it, never on one before.
#[test]
fn a_new_name_and_new_ids_show_from_the_call_that_sets_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("gate");
    tracer_tests::mkfifo(&gate);
    // getppid marks the three points; nothing else in python calls it.
    let program = "import ctypes, os\n\
                   libc = ctypes.CDLL(None, use_errno=True)\n\
                   os.getppid()\n\
                   assert libc.prctl(15, b'renamed-task', 0, 0, 0) == 0\n\
                   os.getppid()\n\
                   os.setresgid(65534, 65534, 65534)\n\
                   os.setresuid(65534, 65534, 65534)\n\
                   os.getppid()\n";
    let mut child = tracer_tests::Guard(Some(
        Command::new("/bin/sh")
            .arg("-c")
            .arg("read x < \"$0\"; exec /usr/bin/python3 -c \"$1\"")
            .arg(&gate)
            .arg(program)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn"),
    ));
    let pid = child.0.as_ref().expect("child").id();
    let mut daemon = Daemon::start(&["--pid", &pid.to_string()]);
    std::fs::write(&gate, b"go\n").expect("open the gate");
    assert!(child.wait(Duration::from_secs(60)).success());
    std::thread::sleep(Duration::from_millis(300));
    daemon.stop();
    let mut events = daemon.events();
    events.sort_by_key(|e| e.seq);
    // From python's start (the shell before it may call getppid too).
    let exec = events
        .iter()
        .rposition(|e| e.pid == pid && matches!(e.kind, Some(pb::event::Kind::Exec(_))))
        .expect("exec event");
    let named = |name: &str| {
        events[exec..]
            .iter()
            .filter(|e| e.pid == pid && syscall(e).is_some_and(|s| s.name == name))
            .map(|e| (e.comm.as_str(), e.uid, e.gid))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        named("getppid"),
        [
            ("python3", 0, 0),
            ("renamed-task", 0, 0),
            ("renamed-task", 65534, 65534)
        ]
    );
    assert_eq!(named("prctl").last(), Some(&("renamed-task", 0, 0)));
    assert_eq!(named("setresgid"), [("renamed-task", 0, 65534)]);
    assert_eq!(named("setresuid"), [("renamed-task", 65534, 65534)]);
    assert_eq!(daemon.stats()["lost_total"], 0);
}
