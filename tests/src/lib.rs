//! Support for the end-to-end tests: starting and stopping a real
//! `tracer-daemon` on a temporary data directory, and reading back what it
//! recorded. Every process a test starts is stopped by its pid, with a
//! bounded wait, also when the test fails (guards stop them on drop).
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use tracer_proto as pb;

/// Where the daemon binary is: `TRACER_DAEMON_BIN` (set by `cargo xtask
/// test`), else next to the test executable's directory.
pub fn daemon_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TRACER_DAEMON_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/tracer-daemon
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("tracer-daemon"))
        .expect("target dir")
}

/// `tracectl`, built next to the daemon.
pub fn tracectl_bin() -> PathBuf {
    daemon_bin().with_file_name("tracectl")
}

/// `tracectl --connect unix:SOCK args...`, run to completion.
pub fn tracectl(sock: &Path, args: &[&str]) -> std::process::Output {
    Command::new(tracectl_bin())
        .arg("--connect")
        .arg(format!("unix:{}", sock.display()))
        .args(args)
        .output()
        .expect("run tracectl")
}

pub fn quick() -> bool {
    std::env::var_os("TRACER_QUICK").is_some()
}

/// Sends `sig` to `pid` and waits up to `timeout` for `child` to exit; kills
/// it after that. Returns its exit status if it exited.
pub fn stop_child(
    child: &mut Child,
    sig: Signal,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), sig);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// A child process stopped (by pid) when dropped.
pub struct Guard(pub Option<Child>);

impl Guard {
    /// Waits for the child to exit by itself; fails the test after `timeout`
    /// (the guard still stops it when dropped).
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let c = self.0.as_mut().expect("a running child");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = c.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "pid {} did not finish in {timeout:?}",
                c.id()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Guard {
    /// Opens a helper's gate: the one byte on stdin it waits for before it
    /// starts (so that a daemon can follow its pid first).
    pub fn release(&mut self) {
        use std::io::Write as _;
        self.0
            .as_mut()
            .expect("a running child")
            .stdin
            .take()
            .expect("its stdin")
            .write_all(b"g")
            .expect("release the helper");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            stop_child(c, Signal::SIGKILL, Duration::from_secs(5));
        }
    }
}

/// A running daemon on its own data directory.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Guard,
    stderr: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl Daemon {
    /// Starts the daemon with `args` and waits until it is recording.
    pub fn start(args: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), None, args)
    }

    /// Starts the daemon keeping its socket in `dir` and its data in
    /// `data` (default: `dir` itself).
    pub fn start_in(dir: tempfile::TempDir, data: Option<&Path>, args: &[&str]) -> Self {
        let sock = dir.path().join("tracer.sock");
        // The daemon refuses a data directory others can read (tempfile
        // makes them 0755 here).
        if let Ok(m) = std::fs::metadata(data.unwrap_or(dir.path()))
            && m.is_dir()
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(
                data.unwrap_or(dir.path()),
                std::fs::Permissions::from_mode(0o700),
            )
            .expect("a private data directory");
        }
        let mut cmd = Command::new(daemon_bin());
        cmd.arg("--data-dir")
            .arg(data.unwrap_or(dir.path()))
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", daemon_bin().display()));
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Daemon {
            dir,
            child: Guard(Some(child)),
            stderr: rx,
            log: vec![],
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match d.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let ready = line.contains("recording (pid");
                    d.log.push(line);
                    if ready {
                        return d;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the daemon exited before recording:\n{}", d.log.join("\n"))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not start in 60 s:\n{}",
                d.log.join("\n")
            );
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Waits until a log line contains `text`; fails the test after `timeout`.
    pub fn wait_log(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if self.log.iter().any(|l| l.contains(text)) {
            return;
        }
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                let hit = line.contains(text);
                self.log.push(line);
                if hit {
                    return;
                }
            }
        }
        panic!(
            "no log line with {text:?} in {timeout:?}:\n{}",
            self.log.join("\n")
        );
    }

    /// Sends a signal to the daemon (by its pid).
    pub fn signal(&self, sig: Signal) {
        let _ = nix::sys::signal::kill(Pid::from_raw(self.pid() as i32), sig);
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.0.as_mut() {
            stop_child(c, Signal::SIGKILL, Duration::from_secs(10));
        }
        self.child.0 = None;
    }

    /// Takes the data directory back (to start another daemon on it).
    pub fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// The daemon's last status file, if it wrote one yet.
    pub fn try_stats(&self, data: &Path) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(data.join("stats.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stops the daemon with SIGINT (it drains and flushes) and returns its log.
    pub fn stop(&mut self) -> Vec<String> {
        self.stop_with(Signal::SIGINT)
    }

    /// Stops the daemon with `sig` and checks it exits cleanly.
    pub fn stop_with(&mut self, sig: Signal) -> Vec<String> {
        let st = self
            .child
            .0
            .as_mut()
            .map(|c| stop_child(c, sig, Duration::from_secs(30)));
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        let st = st.flatten();
        assert!(
            st.is_some_and(|s| s.success()),
            "daemon exit {st:?}:\n{}",
            self.log.join("\n")
        );
        self.child.0 = None;
        self.log.clone()
    }

    /// Everything the daemon stored, read back through the store.
    pub fn events(&self) -> Vec<pb::Event> {
        let r = tracer_store::store::query(self.dir.path(), &Default::default())
            .expect("reading the store");
        assert!(
            r.damage.is_empty(),
            "the daemon wrote a damaged store: {:?}",
            r.damage
        );
        r.events
    }

    pub fn stats(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join("stats.json")).expect("stats.json");
        serde_json::from_str(&text).expect("stats.json is JSON")
    }
}

/// The syscall part of an event, if it is one.
/// The permission bits of `path` (recordings and sockets must be 0600,
/// their directories 0700).
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

pub fn syscall(e: &pb::Event) -> Option<&pb::Syscall> {
    match &e.kind {
        Some(pb::event::Kind::Syscall(s)) => Some(s),
        _ => None,
    }
}

/// The captured buffer of argument `arg` in direction `dir`.
pub fn buffer(s: &pb::Syscall, arg: u32, dir: pb::Direction) -> Option<&[u8]> {
    s.buffers
        .iter()
        .find(|b| b.arg == arg && b.direction == dir as i32 && b.item == 0)
        .map(|b| b.data.as_slice())
}

/// Path of a helper binary of this package.
pub fn helper(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .expect("target dir")
}

/// The syscall-script helper on `file`, waiting at its gate (a byte on
/// stdin) so that a daemon can start following its pid first.
pub fn start_script(file: &Path) -> Guard {
    let g = Guard(Some(
        Command::new(helper("syscall-script"))
            .arg(file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn syscall-script"),
    ));
    // Returns once it waits at the gate (blocked in read(0, ...)), its
    // start-up syscalls done: a daemon started now records the script
    // alone, however slowly a busy host ran the start-up.
    let pid = g.0.as_ref().expect("child").id();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let at = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if at.starts_with("0 0x0 ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "syscall-script never reached its gate: {at}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    g
}

/// Releases the script, waits for it (it exits with 3) and returns the
/// JSON report it prints.
pub fn finish_script(script: &mut Guard) -> serde_json::Value {
    use std::io::{Read, Write};
    let child = script.0.as_mut().expect("child");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"g")
        .expect("release the script");
    assert_eq!(
        script.wait(Duration::from_secs(30)).code(),
        Some(3),
        "the script exits with 3"
    );
    let mut report = String::new();
    script
        .0
        .as_mut()
        .expect("child")
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut report)
        .expect("report");
    serde_json::from_str(report.trim()).expect("the report is JSON")
}

/// Reads a child's stdout and stderr to their ends on threads (so that it
/// never blocks on a full pipe).
fn drain_outputs(
    child: &mut Guard,
) -> (
    std::thread::JoinHandle<Vec<u8>>,
    std::thread::JoinHandle<Vec<u8>>,
) {
    let c = child.0.as_mut().expect("child");
    let out = c.stdout.take().expect("stdout");
    let err = c.stderr.take().expect("stderr");
    fn drain(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    }
    (drain(out), drain(err))
}

/// One run of a program, recorded by a real daemon and fetched as a bundle.
pub struct Recorded {
    pub pid: u32,
    pub bundle: PathBuf,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: std::process::ExitStatus,
}

/// Runs `program args` with `stdin` (a file, else /dev/null) and extra
/// `env`, recorded from its exec to its exit by a daemon following its pid,
/// and fetches the bundle into `dir`. The program waits at a gate (a FIFO
/// read by the shell that then execs it) until the daemon is recording.
pub fn record(
    dir: &Path,
    program: &str,
    args: &[&str],
    stdin: Option<&Path>,
    env: &[(&str, &str)],
) -> Recorded {
    record_with(dir, &[], program, args, stdin, env)
}

/// [`record`] with extra daemon flags.
pub fn record_with(
    dir: &Path,
    daemon_args: &[&str],
    program: &str,
    args: &[&str],
    stdin: Option<&Path>,
    env: &[(&str, &str)],
) -> Recorded {
    record_fetching(
        dir,
        daemon_args,
        program,
        args,
        stdin,
        env,
        &[],
        &mut |_, _| {},
    )
}

/// [`record_with`], calling `check(socket, pid)` once the bundle is
/// fetched, while the daemon still runs (to ask it more).
pub fn record_checking(
    dir: &Path,
    daemon_args: &[&str],
    program: &str,
    args: &[&str],
    check: &mut dyn FnMut(&Path, u32),
) -> Recorded {
    record_fetching(dir, daemon_args, program, args, None, &[], &[], check)
}

/// [`record`] of a process tree: the bundle holds the program's child
/// processes too (`tracectl fetch --children`).
pub fn record_tree(dir: &Path, program: &str, args: &[&str]) -> Recorded {
    record_fetching(
        dir,
        &[],
        program,
        args,
        None,
        &[],
        &["--children"],
        &mut |_, _| {},
    )
}

/// Records `program args` (see [`record`]) with extra daemon flags and
/// extra `tracectl fetch` flags; `check` sees the daemon's socket and the
/// pid before the daemon stops.
#[allow(clippy::too_many_arguments)]
pub fn record_fetching(
    dir: &Path,
    daemon_args: &[&str],
    program: &str,
    args: &[&str],
    stdin: Option<&Path>,
    env: &[(&str, &str)],
    fetch_args: &[&str],
    check: &mut dyn FnMut(&Path, u32),
) -> Recorded {
    let gate = dir.join(format!("gate-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    mkfifo(&gate);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("read x < \"$0\"; exec \"$@\"")
        .arg(&gate)
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).expect("stdin file")),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard(Some(cmd.spawn().expect("spawn the program")));
    let pid = child.0.as_ref().expect("child").id();
    let pid_s = pid.to_string();
    let mut dargs = vec!["--pid", pid_s.as_str()];
    dargs.extend_from_slice(daemon_args);
    let mut daemon = Daemon::start(&dargs);
    let (out, err) = drain_outputs(&mut child);
    std::fs::write(&gate, b"go\n").expect("open the gate");
    let status = child.wait(Duration::from_secs(60));
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    let sock = daemon.dir.path().join("tracer.sock");
    let tracectl = |args: &[&str]| tracectl(&sock, args);
    // The exit is stored within a tick or two.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ps = tracectl(&["ps", "--pid", &pid.to_string()]);
        if String::from_utf8_lossy(&ps.stdout).contains("exit ")
            || String::from_utf8_lossy(&ps.stdout).contains(" SIG")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid}'s exit was not stored: {ps:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bundle = dir.join(format!("{pid}.trace"));
    let pid_s = pid.to_string();
    let mut fetch = vec![
        "fetch",
        "--pid",
        &pid_s,
        "-o",
        bundle.to_str().expect("path"),
    ];
    fetch.extend_from_slice(fetch_args);
    let f = tracectl(&fetch);
    assert!(
        f.status.success(),
        "fetch: {}",
        String::from_utf8_lossy(&f.stderr)
    );
    check(&sock, pid);
    daemon.stop();
    let _ = std::fs::remove_file(&gate);
    Recorded {
        pid,
        bundle,
        stdout,
        stderr,
        status,
    }
}

/// The JSON objects of a `tracectl --json` output, a line each (lines
/// that are not JSON are left out).
pub fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Makes a FIFO at `path` (private to root), for gates and launchers.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// `tracectl replay BUNDLE args...` with its JSON report.
pub struct Replayed {
    pub stdout: Vec<u8>,
    /// The program's stderr: tracectl's without its `replay:` summary lines.
    pub stderr: Vec<u8>,
    pub summary: String,
    pub status: std::process::ExitStatus,
    pub report: serde_json::Value,
}

/// The replay did what the recording did: it exited, with the same
/// output and status, every recorded event replayed. `what` names the
/// replay in messages.
pub fn assert_replayed_as_recorded(rec: &Recorded, rep: &Replayed, what: &str) {
    if let Some(why) = replay_difference(rec, rep) {
        panic!("{what}: {why}\n{}\nreport: {}", rep.summary, rep.report);
    }
}

/// How a replay differs from its recording (`None`: it exited as recorded,
/// with the same stdout, stderr and status, every event replayed).
pub fn replay_difference(rec: &Recorded, rep: &Replayed) -> Option<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let kind = rep.report["outcome"]["kind"]
        .as_str()
        .unwrap_or("no report");
    let recorded_kind = if rec.status.code().is_some() {
        "exited"
    } else {
        "killed"
    };
    if kind != recorded_kind {
        return Some(format!("the replay {kind}, the recording {recorded_kind}"));
    }
    if rep.stdout != rec.stdout {
        return Some(format!(
            "stdout differs ({} bytes replayed, {} recorded; replayed {:?})",
            rep.stdout.len(),
            rec.stdout.len(),
            text(&rep.stdout[..rep.stdout.len().min(200)])
        ));
    }
    if rep.stderr != rec.stderr {
        return Some(format!(
            "stderr differs (replayed {:?}, recorded {:?})",
            text(&rep.stderr[..rep.stderr.len().min(200)]),
            text(&rec.stderr[..rec.stderr.len().min(200)])
        ));
    }
    if rep.status.code() != rec.status.code() {
        return Some(format!(
            "status {:?}, recorded {:?}",
            rep.status.code(),
            rec.status.code()
        ));
    }
    let total = rep.report["events_total"].as_u64();
    if total.is_none() || rep.report["events_replayed"].as_u64() != total {
        return Some(format!(
            "{:?} of {total:?} events replayed",
            rep.report["events_replayed"].as_u64()
        ));
    }
    None
}

/// Records `sh -c 'cat FILE | sort | uniq -c'` as one process tree, FILE
/// in `dir` holding `words`; the file is deleted afterwards.
pub fn record_pipeline(dir: &Path, words: &str) -> Recorded {
    let f = dir.join("words.txt");
    std::fs::write(&f, words).expect("input");
    let script = format!("cat {} | sort | uniq -c", f.display());
    let rec = record_tree(dir, "/bin/sh", &["-c", &script]);
    std::fs::remove_file(&f).expect("the input is gone");
    rec
}

pub fn replay(bundle: &Path, args: &[&str]) -> Replayed {
    let report = bundle.with_extension("report.json");
    let _ = std::fs::remove_file(&report);
    let mut child = Guard(Some(
        Command::new(tracectl_bin())
            .arg("replay")
            .arg(bundle)
            .arg("--report")
            .arg(&report)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tracectl replay"),
    ));
    let (out, err) = drain_outputs(&mut child);
    // After a divergence tracectl waits for the program it left stopped:
    // this test ends it (by its pid, from the report) once it is there.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stopped = None;
    let status = loop {
        let c = child.0.as_mut().expect("child");
        if let Some(st) = c.try_wait().expect("try_wait") {
            break st;
        }
        if stopped.is_none()
            && let Some(p) = std::fs::read_to_string(&report)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["stopped_pid"].as_i64())
        {
            let state = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            assert!(
                state.contains("State:\tT (stopped)"),
                "the program is left stopped: {state}"
            );
            let _ = nix::sys::signal::kill(Pid::from_raw(p as i32), Signal::SIGKILL);
            stopped = Some(p);
        }
        assert!(
            Instant::now() < deadline,
            "tracectl replay did not finish in 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let err = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    let (summary, program): (Vec<&str>, Vec<&str>) = err
        .split_inclusive('\n')
        .partition(|l| l.starts_with("replay: "));
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Replayed {
        stdout,
        stderr: program.concat().into_bytes(),
        summary: summary.concat(),
        status,
        report,
    }
}

/// Builds the C program `source` as `dir/name` with `cc` and `flags`
/// (debug info is always on): the executable's path.
pub fn build_c(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&src, source).expect("source");
    let cc = Command::new("cc")
        .arg("-g")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(cc.success(), "cc {name}.c failed");
    exe
}

/// Builds the C program `source` as `dir/name` (with `flags`), records a
/// run of it (no arguments, no stdin) and checks that it succeeded.
pub fn record_c(dir: &Path, name: &str, source: &str, flags: &[&str]) -> Recorded {
    let exe = build_c(dir, name, source, flags);
    let rec = record(dir, exe.to_str().expect("path"), &[], None, &[]);
    assert!(
        rec.status.success(),
        "{name} failed when recorded: {:?}",
        rec.status
    );
    rec
}

/// What the `cold-inputs` helper and its test share.
pub mod cold {
    /// Apart by more than the kernel's fault-around window (64 KiB), so
    /// that each input is on a page no earlier fault mapped.
    pub const STRIDE: usize = 128 << 10;

    /// The byte at `i` of the helper's pattern region.
    pub fn pattern(i: usize) -> u8 {
        (i.wrapping_mul(131) ^ (i >> 7)) as u8
    }
}
