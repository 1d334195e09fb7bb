//! The recording says what happened: inputs the program never touched are
//! there, byte for byte, never recorded as empty.
use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::Duration,
};

use tracer_proto as pb;
use tracer_tests::{Daemon, Guard, buffer, cold, helper, syscall};

/// Paths and write buffers that lie only in pages the program never
/// touched (a fresh file mapping): the kernel faults each in when it copies
/// it, after the entry hook ran, so the recorder must read them where they
/// are resident. Each must be recorded exactly, with no fault flag.
#[test]
fn inputs_in_untouched_pages_are_recorded_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cold.bin");
    let mut prog = Guard(Some(
        Command::new(helper("cold-inputs"))
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn cold-inputs"),
    ));
    let pid = prog.0.as_ref().expect("child").id();
    // The helper maps its file before it waits; give it the time to.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .contains("cold.bin")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "cold-inputs did not map its file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid_arg = pid.to_string();
    let mut daemon = Daemon::start(&["--pid", &pid_arg]);
    prog.release();
    assert_eq!(prog.wait(Duration::from_secs(30)).code(), Some(3));
    let mut out = String::new();
    prog.0
        .as_mut()
        .expect("child")
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("report");
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON report");
    daemon.stop();
    let events = daemon.events();
    let calls: Vec<&pb::Syscall> = events
        .iter()
        .filter(|e| e.pid == pid)
        .filter_map(syscall)
        .collect();

    let paths: Vec<&str> = report["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().expect("a path"))
        .collect();
    let rets: Vec<i64> = report["rets"]
        .as_array()
        .expect("rets")
        .iter()
        .map(|r| r.as_i64().expect("a number"))
        .collect();
    let opens: Vec<&&pb::Syscall> = calls
        .iter()
        .filter(|s| s.name == "openat" && s.args[0] as i32 == libc::AT_FDCWD)
        .collect();
    // The last ones: libc's own opens come before the gate.
    assert!(
        opens.len() >= paths.len(),
        "{} openat recorded",
        opens.len()
    );
    let opens = &opens[opens.len() - paths.len()..];
    let mut bad = vec![];
    for ((s, want), ret) in opens.iter().zip(&paths).zip(&rets) {
        let b = s
            .buffers
            .iter()
            .find(|b| b.arg == 1 && b.direction == pb::Direction::In as i32);
        let got = b.map(|b| String::from_utf8_lossy(b.data.strip_suffix(&[0]).unwrap_or(&b.data)));
        if got.as_deref() != Some(want)
            || b.is_some_and(|b| b.fault || b.truncated)
            || s.ret != *ret
        {
            bad.push(format!(
                "openat {want:?} = {ret}: recorded {got:?} = {} (fault {:?})",
                s.ret,
                b.map(|b| b.fault)
            ));
        }
    }
    let stat = calls
        .iter()
        .rfind(|s| s.name == "newfstatat")
        .expect("newfstatat recorded");
    if buffer(stat, 1, pb::Direction::In) != Some(format!("{}\0", paths[1]).as_bytes()) {
        bad.push(format!(
            "newfstatat: {:?}",
            buffer(stat, 1, pb::Direction::In)
        ));
    }
    let fd = report["fd"].as_u64().expect("fd");
    let writes: Vec<&&pb::Syscall> = calls
        .iter()
        .filter(|s| s.name == "write" && s.args[0] == fd)
        .collect();
    let wanted = report["writes"].as_array().expect("writes");
    assert!(
        writes.len() >= wanted.len(),
        "{} writes recorded",
        writes.len()
    );
    for (s, w) in writes[writes.len() - wanted.len()..].iter().zip(wanted) {
        let (off, len) = (
            w[0].as_u64().expect("offset") as usize,
            w[1].as_u64().expect("length") as usize,
        );
        let want: Vec<u8> = (off..off + len).map(cold::pattern).collect();
        let got = s
            .buffers
            .iter()
            .find(|b| b.arg == 1 && b.direction == pb::Direction::In as i32);
        if got.map(|b| &b.data) != Some(&want) || got.is_some_and(|b| b.fault || b.truncated) {
            bad.push(format!(
                "write of {len} bytes at {off}: recorded {:?} bytes (fault {:?})",
                got.map(|b| b.data.len()),
                got.map(|b| b.fault)
            ));
        }
    }
    assert!(bad.is_empty(), "inputs recorded wrong:\n{}", bad.join("\n"));
    // The case is the one meant: the entry hook could not read some of
    // these (else this test proves nothing).
    let again = |calls: &[&&pb::Syscall]| {
        calls
            .iter()
            .filter(|s| s.buffers.iter().any(|b| b.read_at_exit))
            .count()
    };
    assert!(
        again(opens) > 0 && again(&writes) > 0,
        "no path or no write buffer was unreadable at entry ({} and {}): the test did not test",
        again(opens),
        again(&writes)
    );
}

/// A process that lost records (a ring far too small for its storm of
/// 8 KiB writes) is marked lost in its bundle, which holds the loss as an
/// event, and its replay stops where the loss may have happened, saying so,
/// never replaying past the gap or calling it identical.
#[test]
fn a_process_that_lost_records_says_so_in_its_bundle_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = tracer_tests::record_with(
        dir.path(),
        &["--ring-size", "65536"],
        helper("syscall-storm").to_str().expect("path"),
        &["20000", "8192", "300"],
        None,
        &[],
    );
    assert!(rec.status.success(), "the storm ran");
    let data = std::fs::read(&rec.bundle).expect("bundle");
    let b = tracer_store::bundle::decode(&data).expect("a whole bundle");
    assert!(b.header.events_lost, "the bundle says SOME LOST");
    let me = b
        .header
        .processes
        .iter()
        .find(|p| p.key.is_some_and(|k| k.pid == rec.pid))
        .expect("the process is in its bundle");
    assert!(me.lost, "the process is marked lost: {me:?}");
    let losses: Vec<&pb::Loss> = b
        .events
        .iter()
        .filter(|e| e.pid == rec.pid)
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Loss(l)) => Some(l),
            _ => None,
        })
        .collect();
    assert!(
        !losses.is_empty() && losses.iter().all(|l| l.records > 0),
        "the loss is an event of the process: {losses:?}"
    );
    let rep = tracer_tests::replay(&rec.bundle, &[]);
    assert_eq!(rep.status.code(), Some(125), "{}", rep.summary);
    assert_eq!(
        rep.report["outcome"]["kind"], "incomplete",
        "{}",
        rep.report
    );
    assert!(rep.summary.contains("lost"), "{}", rep.summary);
}

/// `tracectl ps --json` rows.
fn ps_rows(sock: &std::path::Path) -> Vec<serde_json::Value> {
    tracer_tests::json_lines(&tracer_tests::tracectl(sock, &["ps", "--json"]))
}

/// Waits until `ps` shows `want` processes with pid `pid`, all exited.
fn wait_exited(sock: &std::path::Path, pid: u64, want: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<serde_json::Value> = ps_rows(sock)
            .into_iter()
            .filter(|r| r["pid"].as_u64() == Some(pid))
            .collect();
        if rows.len() >= want && rows.iter().all(|r| r["exited"].as_bool() == Some(true)) {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid}: {want} exited processes not stored: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pid reused after its process exited, for the root and for its child,
/// by unrelated processes recorded by the same daemon: the tree fetched by
/// (pid, start time) holds the root's own events and its own child's, none
/// of the later processes', and replays as recorded; the newest process of
/// the pid is another bundle.
#[test]
fn a_reused_pid_never_brings_another_process_into_a_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("launch");
    let gate = dir.path().join("gate");
    for p in [&fifo, &gate] {
        tracer_tests::mkfifo(p);
    }
    // Runs each line written to the FIFO: the unrelated processes, forked
    // right after it sets the next pid.
    let launcher = Guard(Some(
        Command::new("/bin/sh")
            .arg("-c")
            .arg("while true; do read line < \"$0\" || exit 0; [ \"$line\" = quit ] && exit 0; eval \"$line\"; done")
            .arg(&fifo)
            .stdout(Stdio::null())
            .spawn()
            .expect("launcher"),
    ));
    let mut root = Guard(Some(
        Command::new("/bin/sh")
            .arg("-c")
            .arg("read x < \"$0\"; exec /bin/sh -c 'echo root-out; /bin/echo child-out; true'")
            .arg(&gate)
            .stdout(Stdio::piped())
            .spawn()
            .expect("root"),
    ));
    let p = root.0.as_ref().expect("root").id() as u64;
    let h = launcher.0.as_ref().expect("launcher").id().to_string();
    let p_s = p.to_string();
    let mut daemon = Daemon::start(&["--pid", &h, "--pid", &p_s]);
    let sock = daemon.dir.path().join("tracer.sock");
    std::fs::write(&gate, b"go\n").expect("open the gate");
    assert!(root.wait(Duration::from_secs(30)).success());
    let first = wait_exited(&sock, p, 1);
    let start = first[0]["start_ns"].as_u64().expect("start_ns");
    let child = ps_rows(&sock)
        .into_iter()
        .find(|r| r["ppid"].as_u64() == Some(p))
        .expect("the root's child is recorded");
    let q = child["pid"].as_u64().expect("pid");
    // Pids are the kernel's to give: retry while another fork takes them.
    let mut reused = false;
    for _ in 0..5 {
        let line = format!(
            "echo {} > /proc/sys/kernel/ns_last_pid; /bin/echo unrelated-child; \
             echo {} > /proc/sys/kernel/ns_last_pid; /bin/echo unrelated-root\n",
            q - 1,
            p - 1
        );
        std::fs::write(&fifo, line).expect("launch");
        std::thread::sleep(Duration::from_millis(500));
        let n = |pid| {
            ps_rows(&sock)
                .iter()
                .filter(|r| r["pid"].as_u64() == Some(pid))
                .count()
        };
        if n(p) >= 2 && n(q) >= 2 {
            reused = true;
            break;
        }
    }
    assert!(reused, "pids {p} and {q} were not reused");
    wait_exited(&sock, p, 2);
    let bundle = dir.path().join("root.trace");
    let f = tracer_tests::tracectl(
        &sock,
        &[
            "fetch",
            "--pid",
            &p_s,
            "--start-time",
            &start.to_string(),
            "--children",
            "-o",
            bundle.to_str().expect("path"),
        ],
    );
    assert!(f.status.success(), "{}", String::from_utf8_lossy(&f.stderr));
    let newest = dir.path().join("newest.trace");
    let f = tracer_tests::tracectl(
        &sock,
        &["fetch", "--pid", &p_s, "-o", newest.to_str().expect("path")],
    );
    assert!(f.status.success(), "{}", String::from_utf8_lossy(&f.stderr));
    std::fs::write(&fifo, b"quit\n").expect("stop the launcher");
    daemon.stop();

    let written = |b: &tracer_store::bundle::Bundle| -> String {
        b.events
            .iter()
            .filter_map(syscall)
            .filter(|s| s.name == "write")
            .filter_map(|s| buffer(s, 1, pb::Direction::In))
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect()
    };
    let tree =
        tracer_store::bundle::decode(&std::fs::read(&bundle).expect("bundle")).expect("bundle");
    let mut keys: Vec<(u32, u64)> = tree
        .header
        .processes
        .iter()
        .filter_map(|p| p.key.map(|k| (k.pid, k.start_ns)))
        .collect();
    keys.sort_unstable();
    let child_start = child["start_ns"].as_u64().expect("start_ns");
    let mut want = vec![(p as u32, start), (q as u32, child_start)];
    want.sort_unstable();
    assert_eq!(keys, want, "the tree is the root and its own child");
    let text = written(&tree);
    assert!(
        text.contains("root-out") && text.contains("child-out") && !text.contains("unrelated"),
        "{text:?}"
    );
    let newest =
        tracer_store::bundle::decode(&std::fs::read(&newest).expect("bundle")).expect("bundle");
    let text = written(&newest);
    assert!(
        text.contains("unrelated-root") && !text.contains("root-out"),
        "{text:?}"
    );
    let rep = tracer_tests::replay(&bundle, &[]);
    assert_eq!(rep.status.code(), Some(0), "{}", rep.summary);
    assert_eq!(
        String::from_utf8_lossy(&rep.stdout),
        "root-out\nchild-out\n"
    );
}

/// A read of a whole 5 MiB file in one call (as Go's `os.ReadFile` and
/// python's `f.read()` do) is recorded whole: with the file gone, the
/// replay prints the same 5 MiB.
#[test]
fn a_read_of_megabytes_in_one_call_is_recorded_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("big.bin");
    let data: Vec<u8> = (0..5usize << 20).map(|i| cold::pattern(i * 7)).collect();
    std::fs::write(&f, &data).expect("file");
    let input = format!("if={}", f.display());
    let rec = tracer_tests::record(
        dir.path(),
        "/bin/dd",
        &[&input, "bs=8M", "count=1", "status=none"],
        None,
        &[],
    );
    assert!(rec.status.success());
    assert!(rec.stdout == data, "dd printed its input");
    let b =
        tracer_store::bundle::decode(&std::fs::read(&rec.bundle).expect("bundle")).expect("bundle");
    let read = b
        .events
        .iter()
        .filter_map(syscall)
        .find(|s| s.name == "read" && s.ret == data.len() as i64)
        .expect("one read of the whole file");
    let got = read
        .buffers
        .iter()
        .find(|b| b.arg == 1 && b.direction == pb::Direction::Out as i32)
        .expect("its data");
    assert!(
        !got.truncated && !read.buffers_lost && got.data == data,
        "recorded whole"
    );
    std::fs::remove_file(&f).expect("delete the input");
    let rep = tracer_tests::replay(&rec.bundle, &[]);
    assert_eq!(rep.status.code(), Some(0), "{}", rep.summary);
    assert!(rep.stdout == data, "the replay printed the same bytes");
}

/// A non-leader thread that calls execve takes the leader's tid in the
/// kernel: its execve must still be recorded with its path and argv, and
/// the exec event must name the thread that called it.
#[test]
fn an_exec_from_a_non_leader_thread_is_recorded_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = tracer_tests::build_c(
        dir.path(),
        "thread-exec",
        r#"
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <sys/syscall.h>
static void *run(void *a) {
    (void)a;
    char *argv[] = {"echo", "exec-from-thread", NULL};
    printf("thread %ld execs\n", (long)syscall(SYS_gettid));
    fflush(stdout);
    execv("/bin/echo", argv);
    return NULL;
}
int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, run, NULL);
    for (;;) pause();
}
"#,
        &["-pthread"],
    );
    let rec = tracer_tests::record(dir.path(), exe.to_str().expect("path"), &[], None, &[]);
    assert!(rec.status.success(), "{:?}", rec.status);
    let out = String::from_utf8_lossy(&rec.stdout).into_owned();
    assert!(out.ends_with("exec-from-thread\n"), "{out}");
    let old_tid: u32 = out
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .expect("the thread's tid");
    assert_ne!(old_tid, rec.pid, "the exec really came from another thread");
    let b =
        tracer_store::bundle::decode(&std::fs::read(&rec.bundle).expect("bundle")).expect("bundle");
    let exec = b
        .events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::event::Kind::Exec(x)) if x.filename == "/bin/echo" => Some((e, x)),
            _ => None,
        })
        .expect("the exec of /bin/echo is recorded");
    assert_eq!(exec.0.tid, rec.pid, "after exec the thread is the leader");
    assert_eq!(
        exec.1.old_tid, old_tid,
        "the exec names the thread that called it"
    );
    assert_eq!(
        exec.1.argv,
        vec![b"echo".to_vec(), b"exec-from-thread".to_vec()]
    );
    let path_of = |s: &pb::Syscall| {
        s.buffers
            .iter()
            .find(|b| b.arg == 0 && b.direction == pb::Direction::In as i32)
            .map(|b| b.data.strip_suffix(b"\0").unwrap_or(&b.data).to_vec())
    };
    let execs: Vec<_> = b
        .events
        .iter()
        .filter_map(syscall)
        .filter(|s| s.name == "execve" && s.ret == 0)
        .map(|s| (s.no_enter, path_of(s)))
        .collect();
    assert!(
        execs.contains(&(false, Some(b"/bin/echo".to_vec()))),
        "the thread's execve with its entry and path: {execs:?}"
    );
    // Not replayed yet; it must say so, never diverge or pass.
    let rep = tracer_tests::replay(&rec.bundle, &[]);
    assert!(
        rep.summary
            .contains("an exec from another thread than the first is not replayed yet"),
        "{}",
        rep.summary
    );
}

/// A query asked the moment a process tree ends sees all of it: the
/// daemon catches up (ring, assembler queue, store batches) before it
/// reads the store. No polling here: the first answer must be whole.
#[test]
fn a_fetch_right_after_the_exit_holds_the_whole_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("gate");
    tracer_tests::mkfifo(&gate);
    const CHILDREN: usize = 12;
    let mut root = Guard(Some(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "read x < \"$0\"; i=0; while [ $i -lt {CHILDREN} ]; do /bin/echo child $i; \
                 i=$((i+1)); done"
            ))
            .arg(&gate)
            .stdout(Stdio::null())
            .spawn()
            .expect("root"),
    ));
    let p = root.0.as_ref().expect("root").id();
    let p_s = p.to_string();
    let mut daemon = Daemon::start(&["--pid", &p_s]);
    let sock = daemon.dir.path().join("tracer.sock");
    std::fs::write(&gate, b"go\n").expect("open the gate");
    assert!(root.wait(Duration::from_secs(30)).success());
    // At once, then again: the same whole answer each time.
    for round in 0..3 {
        let bundle = dir.path().join(format!("tree-{round}.trace"));
        let f = tracer_tests::tracectl(
            &sock,
            &[
                "fetch",
                "--pid",
                &p_s,
                "--children",
                "-o",
                bundle.to_str().expect("path"),
            ],
        );
        assert!(
            f.status.success(),
            "fetch right after the exit: {}",
            String::from_utf8_lossy(&f.stderr)
        );
        let b =
            tracer_store::bundle::decode(&std::fs::read(&bundle).expect("bundle")).expect("bundle");
        let exits = |pid: u32| {
            b.events
                .iter()
                .any(|e| e.pid == pid && matches!(e.kind, Some(pb::event::Kind::Exit(_))))
        };
        assert!(exits(p), "the root's exit is in the bundle");
        let children: std::collections::BTreeSet<u32> = b
            .events
            .iter()
            .filter(|e| e.pid != p)
            .map(|e| e.pid)
            .collect();
        assert_eq!(children.len(), CHILDREN, "every child is in the bundle");
        assert!(
            children.iter().all(|&c| exits(c)),
            "every child's exit is in the bundle"
        );
    }
    daemon.stop();
}

/// A program executed by a relative path (`./prog`, as build scripts and
/// users run them) from a directory no recorded event names: its bundle
/// still holds its copy (the kernel walked its working directory at the
/// exec), and it replays after the file is gone. Programs that end at once
/// are the next test.
#[test]
fn a_program_run_by_a_relative_path_is_in_its_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = tracer_tests::build_c(
        dir.path(),
        "relative-exec",
        "#include <stdio.h>\n#include <unistd.h>\nint main(void) { usleep(200000); puts(\"ran by a relative path\"); return 0; }\n",
        &["-O1"],
    );
    // The same file by a path relative to this test's directory, which
    // the recorded shell inherits and never names.
    let cwd = std::env::current_dir().expect("cwd");
    let up = "../".repeat(cwd.components().count() - 1);
    let rel = format!("{up}{}", exe.display().to_string().trim_start_matches('/'));
    assert!(
        !rel.starts_with('/') && std::path::Path::new(&rel).is_file(),
        "{rel}"
    );
    let rec = tracer_tests::record(dir.path(), &rel, &[], None, &[]);
    assert!(rec.status.success());
    std::fs::remove_file(&exe).expect("the program is gone");
    let rep = tracer_tests::replay(&rec.bundle, &[]);
    assert!(
        !rep.report.is_null(),
        "no replay: {}",
        String::from_utf8_lossy(&rep.stderr)
    );
    tracer_tests::assert_replayed_as_recorded(&rec, &rep, "relative exec");
    assert_eq!(rep.stdout, b"ran by a relative path\n");
}

/// Two host-wide daemons on one host: neither records the other (each
/// store write of one would be a recorded syscall of the other, without
/// end). The second one excludes the first from its start; the first
/// excludes the second from the moment its registry entry appears, before
/// any work here starts.
#[test]
fn two_host_wide_daemons_do_not_record_each_other() {
    let mut first = Daemon::start(&[]);
    let mut second = Daemon::start(&[]);
    let (a, b) = (first.pid(), second.pid());
    first.wait_log(
        &format!("other tracer daemons, not recorded: [{b}]"),
        Duration::from_secs(10),
    );
    // Work both record and persist: their stores write while it runs.
    let st = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=512", "count=20000"])
        .stderr(Stdio::null())
        .status()
        .expect("dd");
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(1500));
    second.stop();
    first.stop();
    let (in_first, in_second) = (first.events(), second.events());
    let dd_start = |events: &[pb::Event]| {
        events
            .iter()
            .filter(|e| e.comm == "dd")
            .map(|e| e.ts_ns)
            .min()
            .expect("dd is recorded")
    };
    let of_a: Vec<_> = in_second.iter().filter(|e| e.pid == a).collect();
    assert!(
        of_a.is_empty(),
        "the second daemon recorded {} events of the first, e.g. {:?}",
        of_a.len(),
        of_a.first()
    );
    let start = dd_start(&in_first);
    let late: Vec<_> = in_first
        .iter()
        .filter(|e| e.pid == b && e.ts_ns >= start)
        .collect();
    assert!(
        late.is_empty(),
        "the first daemon recorded {} events of the second after it knew of it, e.g. {:?}",
        late.len(),
        late.first()
    );
    assert!(dd_start(&in_second) > 0);
}

/// Programs run by a relative path that end at once (as `./configure`'s
/// test programs do): the kernel resolves each exec's program, so every one is in the bundle and
/// the tree replays after they are deleted. Before the kernel resolved
/// them, the daemon read `/proc/PID/exe` after the process was gone.
#[test]
fn short_programs_run_by_relative_paths_are_in_their_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    tracer_tests::build_c(
        &work,
        "quick",
        "#include <unistd.h>\nint main(void) { return write(1, \"q\\n\", 2) == 2 ? 0 : 1; }\n",
        &["-O1"],
    );
    let script = format!(
        "cd {} && for i in 1 2 3 4 5 6 7 8; do ./quick || exit 9; done; sh -c ./quick",
        work.display()
    );
    let rec = tracer_tests::record_tree(dir.path(), "sh", &["-c", &script]);
    assert!(
        rec.status.success(),
        "{:?}: {}",
        rec.status,
        String::from_utf8_lossy(&rec.stderr)
    );
    assert_eq!(rec.stdout, b"q\n".repeat(9));
    let dump = Command::new(tracer_tests::tracectl_bin())
        .args(["dump", "--events-only", "--json"])
        .arg(&rec.bundle)
        .output()
        .expect("tracectl dump");
    let execs: Vec<String> = tracer_tests::json_lines(&dump)
        .iter()
        .filter(|e| e["event"]["type"] == "exec")
        .filter_map(|e| e["event"]["filename"].as_str().map(str::to_owned))
        .filter(|f| f.ends_with("quick"))
        .collect();
    let want = work.join("quick").canonicalize().expect("quick");
    assert_eq!(
        execs.len(),
        9,
        "{execs:?}: {}",
        String::from_utf8_lossy(&dump.stdout)
            .lines()
            .filter(|l| l.contains("exec"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        execs.iter().all(|f| std::path::Path::new(f) == want),
        "each exec names {}: {execs:?}",
        want.display()
    );
    std::fs::remove_dir_all(&work).expect("the programs are gone");
    let rep = tracer_tests::replay(&rec.bundle, &[]);
    assert!(
        !rep.report.is_null(),
        "no replay: {}",
        String::from_utf8_lossy(&rep.stderr)
    );
    tracer_tests::assert_replayed_as_recorded(&rec, &rep, "relative execs");
}
