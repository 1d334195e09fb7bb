//! `tracectl replay`: a bundle in, the recorded program re-run under the
//! replayer, the recorded exit status out.
use std::{path::Path, process::ExitCode};

use tracer_replay::{Options, Outcome};

/// Exit status when the replay cannot start (bad bundle, no program).
const CANNOT_START: u8 = 126;

pub struct Args<'a> {
    pub pid: Option<u32>,
    pub quiet: bool,
    pub report: Option<&'a Path>,
    pub kill_on_divergence: bool,
    pub env: &'a [String],
    pub gdb: Option<&'a str>,
    pub exe: Option<&'a Path>,
    pub watchdog: f64,
    pub checkpoint_every: usize,
    pub strict: bool,
}

pub fn run(bundle: &Path, a: Args<'_>) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("tracectl: error: {msg}");
        ExitCode::from(CANNOT_START)
    };
    let data = match std::fs::read(bundle) {
        Ok(d) => d,
        Err(e) => return fail(format!("reading {}: {e}", bundle.display())),
    };
    let decoded = match tracer_store::bundle::decode(&data) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", bundle.display())),
    };
    let mut env = Vec::new();
    for kv in a.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_owned(), v.to_owned())),
            _ => return fail(format!("--env {kv:?}: expected KEY=VALUE")),
        }
    }
    if !(a.watchdog.is_finite() && a.watchdog > 0.0) {
        return fail(format!(
            "--watchdog {}: expected seconds above 0",
            a.watchdog
        ));
    }
    let opts = Options {
        checkpoint_every: a.checkpoint_every,
        watchdog: Some(std::time::Duration::from_secs_f64(a.watchdog.min(86_400.0))),
        pid: a.pid,
        quiet: a.quiet,
        kill_on_divergence: a.kill_on_divergence,
        env,
        exe: a.exe.map(Path::to_path_buf),
        strict: a.strict,
    };
    let result = match a.gdb {
        Some(listen) => tracer_replay::debug(decoded, &opts, listen),
        None => tracer_replay::replay(decoded, &opts),
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(format!("replaying {}: {e}", bundle.display())),
    };
    eprint!("{}", report.summary());
    if let Some(path) = a.report {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("tracectl: error: writing {}: {e}", path.display());
        }
    }
    if let Some(pid) = report.stopped_pid {
        // This process stays its parent: were it to exit, the kernel would
        // end the stopped program (an orphaned process group gets SIGHUP).
        eprintln!(
            "replay: waiting until process {pid} ends (gdb -p {pid} to look; kill -9 {pid} to end it)"
        );
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    if let Outcome::Killed { signal } = report.outcome {
        die_by(signal);
    }
    ExitCode::from(report.exit_status().clamp(0, 255) as u8)
}

/// Ends this process by the recorded signal, as the program did (without
/// a core dump of tracectl).
fn die_by(signal: i32) {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on valid arguments; the process ends here.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
}
