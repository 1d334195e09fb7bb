//! `cargo xtask bench`: the cost of recording, side by side in one run.
//!
//! Workload: `dd bs=1` from /dev/zero to /dev/null, two syscalls per byte.
//! Each condition runs it several times; the table shows medians and their
//! ratio to the untraced run measured in the same invocation.
use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::util::{Guard, root};

#[derive(clap::Args)]
pub struct Args {
    /// Runs per condition (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Bytes dd copies one at a time (two syscalls each).
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Only the replay section.
    #[arg(long)]
    replay_only: bool,
    /// Only no tracing, the floor and recording (no bpftrace, strace,
    /// store or replay sections).
    #[arg(long)]
    record_only: bool,
    /// Only the time-read section (exact time's cost per clock read).
    #[arg(long)]
    time_only: bool,
}

/// Time reads the clock loops make per run.
const TIME_READS: u64 = 2_000_000;

/// A C program reading the clock through libc (the vDSO) in a loop.
const CLOCK_LOOP_C: &str = "#include <stdlib.h>\n#include <time.h>\nint main(int c, char **v) { long n = atol(v[1]); struct timespec t; long s = 0; for (long i = 0; i < n; i++) { clock_gettime(CLOCK_MONOTONIC, &t); s += t.tv_nsec; } return s == 42; }\n";
/// A Go program reading the clock (the runtime calls the vDSO itself).
const CLOCK_LOOP_GO: &str = "package main\nimport (\"os\"; \"strconv\"; \"time\")\nfunc main() { n, _ := strconv.Atoi(os.Args[1]); var s int64; for i := 0; i < n; i++ { s += time.Now().UnixNano() }; if s == 42 { os.Exit(1) } }\n";

/// The clock loops, built in `dir`: (name, program).
/// (name, program, clock reads per loop iteration)
type ClockLoop = (&'static str, std::path::PathBuf, u64);

fn clock_loops(dir: &Path) -> anyhow::Result<Vec<ClockLoop>> {
    let c = dir.join("clock-loop.c");
    std::fs::write(&c, CLOCK_LOOP_C)?;
    let c_exe = dir.join("clock-loop-c");
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&c_exe)
        .arg(&c)
        .status()
        .context("cc")?;
    if !st.success() {
        bail!("building the C clock loop failed");
    }
    let mut out = vec![("C, libc clock_gettime", c_exe, 1)];
    let go = dir.join("go");
    std::fs::create_dir_all(&go)?;
    std::fs::write(go.join("main.go"), CLOCK_LOOP_GO)?;
    std::fs::write(go.join("go.mod"), "module clockloop\n\ngo 1.19\n")?;
    let built = Command::new("go")
        .args(["build", "-o", "clock-loop-go", "."])
        .current_dir(&go)
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if built.is_ok_and(|s| s.success()) {
        // time.Now reads the wall and the monotonic clock: two vDSO calls.
        out.push(("Go, time.Now", go.join("clock-loop-go"), 2));
    } else {
        println!("(no Go toolchain: the Go clock loop is left out)");
    }
    Ok(out)
}

fn clock_run(exe: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    let st = Command::new(exe)
        .arg(TIME_READS.to_string())
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    if !st.success() {
        bail!("{} failed: {st}", exe.display());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Exact time's cost: each clock loop without tracing and recorded by the
/// default daemon (which makes its vDSO time calls recorded syscalls),
/// side by side in one run.
fn time_bench(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let loops = clock_loops(dir.path())?;
    println!("time reads: {TIME_READS} clock reads per run, {n} runs per condition, medians");
    let mut native = Vec::new();
    for (_, exe, _) in &loops {
        native.push(median(
            (0..n)
                .map(|_| clock_run(exe))
                .collect::<anyhow::Result<_>>()?,
        ));
    }
    let data = tempfile::tempdir()?;
    let mut d = daemon(data.path(), Programs::Record)?;
    let mut recorded = Vec::new();
    for (_, exe, _) in &loops {
        recorded.push(median(
            (0..n)
                .map(|_| clock_run(exe))
                .collect::<anyhow::Result<_>>()?,
        ));
    }
    d.stop(Duration::from_secs(60));
    let stats: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.path().join("stats.json")).context("stats.json")?,
    )?;
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>14}",
        "program", "native", "recorded", "ratio", "added per read"
    );
    for (((name, _, per), a), b) in loops.iter().zip(&native).zip(&recorded) {
        println!(
            "{name:<28} {a:>9.3}s {b:>9.3}s {:>7.1}x {:>11.0} ns",
            b / a,
            (b - a) * 1e9 / (TIME_READS * per) as f64
        );
    }
    println!(
        "goal: at most 1000 ns added per time read; vDSO patches: {} (p50 {} µs, max {} µs after the exec), {} processes read the clock before their patch, {} records lost",
        stats["exact_time"]["patched"],
        stats["exact_time"]["latency_us_p50"],
        stats["exact_time"]["latency_us_max"],
        stats["assembled"]["time_missed"],
        stats["lost_total"]
    );
    Ok(())
}

fn dd(count: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let st = Command::new("dd")
        .args([
            "if=/dev/zero",
            "of=/dev/null",
            "bs=1",
            &format!("count={count}"),
        ])
        .stderr(Stdio::null())
        .status()
        .context("running dd")?;
    if !st.success() {
        bail!("dd failed: {st}");
    }
    Ok(started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn runs(n: usize, count: u64) -> anyhow::Result<Vec<f64>> {
    (0..n).map(|_| dd(count)).collect()
}

/// Starts a process and waits until a line of its output (stdout or stderr)
/// contains `ready`; the error says what it printed last if it never does.
fn start_until(cmd: &mut Command, ready: &str) -> anyhow::Result<Guard> {
    Ok(start_until_line(cmd, ready)?.0)
}

/// [`start_until`], also returning the line that said it was ready.
fn start_until_line(cmd: &mut Command, ready: &str) -> anyhow::Result<(Guard, String)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Guard(cmd.spawn().with_context(|| format!("starting {cmd:?}"))?);
    let (tx, rx) = mpsc::channel();
    let outs: [Box<dyn Read + Send>; 2] = [
        Box::new(child.0.stdout.take().context("stdout")?),
        Box::new(child.0.stderr.take().context("stderr")?),
    ];
    for out in outs {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready_line = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains(ready) => break line,
            Ok(line) => {
                last.push(line);
                if last.len() > 5 {
                    last.remove(0);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Its output closed: it exited, or is about to (the guard
                // stops it if not).
                std::thread::sleep(Duration::from_millis(100));
                let st = match child.0.try_wait() {
                    Ok(Some(st)) => st.to_string(),
                    _ => "output closed".to_string(),
                };
                bail!(
                    "{program} exited ({st}) before it was ready: {}",
                    last.join(" | ")
                )
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                bail!("{program} not ready in 60 s: {}", last.join(" | "))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    };
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Ok((child, ready_line))
}

/// Which programs the daemon attaches.
#[derive(Clone, Copy)]
enum Programs {
    /// Empty programs (the floor).
    Empty,
    /// Clock reads and a 1-byte copy per syscall, nothing sent.
    Bound,
    /// The recorder.
    Record,
}

fn daemon(dir: &Path, programs: Programs) -> anyhow::Result<Guard> {
    // TRACER_BENCH_DAEMON: another build to compare, in the same run of
    // everything else.
    let bin = std::env::var_os("TRACER_BENCH_DAEMON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/tracer-daemon"));
    // The daemon refuses a data directory others can read.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(format!("unix:{}", dir.join("s").display()));
    match programs {
        Programs::Empty => {
            cmd.arg("--bench-floor");
        }
        Programs::Bound => {
            cmd.arg("--bench-bound");
        }
        Programs::Record => {}
    }
    start_until(&mut cmd, "recording (pid")
}

struct Row {
    name: &'static str,
    secs: Option<f64>,
    note: String,
}

pub fn bench(a: &Args) -> anyhow::Result<()> {
    if a.replay_only {
        return replay_bench();
    }
    if a.time_only {
        return time_bench(a.runs.max(1));
    }
    let n = a.runs.max(1);
    println!(
        "workload: dd bs=1 count={} ({} syscalls), {n} runs per condition, medians",
        a.count,
        2 * a.count
    );
    let mut rows = Vec::new();

    let base = median(runs(n, a.count)?);
    rows.push(Row {
        name: "no tracing",
        secs: Some(base),
        note: String::new(),
    });

    let attached = |programs| -> anyhow::Result<f64> {
        let dir = tempfile::tempdir()?;
        let mut d = daemon(dir.path(), programs)?;
        let t = median(runs(n, a.count)?);
        d.stop(Duration::from_secs(30));
        Ok(t)
    };
    rows.push(Row {
        name: "empty BPF programs (floor)",
        secs: Some(attached(Programs::Empty)?),
        note: String::new(),
    });
    let bound = attached(Programs::Bound)?;
    rows.push(Row {
        name: "lower bound: 2 clock reads + 1-byte copy",
        secs: Some(bound),
        note:
            "per syscall, nothing kept or sent: what entry and exit times and dd's byte cost alone"
                .into(),
    });

    let dir = tempfile::tempdir()?;
    let (rec, rec_runs) = {
        let mut d = daemon(dir.path(), Programs::Record)?;
        let r = runs(n, a.count)?;
        d.stop(Duration::from_secs(60));
        (median(r.clone()), r)
    };
    let stats: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("stats.json"))
            .context("reading the daemon's stats.json")?,
    )?;
    let syscalls = stats["assembled"]["syscalls"].as_u64().unwrap_or(0);
    let lost = stats["lost_total"].as_u64().unwrap_or(0);
    // Which kinds were lost, when any were.
    let lost_kinds = stats["lost"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_u64().is_some_and(|n| n > 0))
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    let busy: f64 = rec_runs.iter().sum();
    let dd_bytes_per_event = store_bytes_per_event(dir.path(), &stats)?;
    rows.push(Row {
        name: "tracer-daemon, all syscalls + payloads",
        secs: Some(rec),
        note: format!(
            "{:.2} M events/s drained, {lost} lost{lost_kinds} ({syscalls} syscall events, \
             host-wide: the daemon records every process, not only dd)",
            syscalls as f64 / busy / 1e6
        ),
    });

    let goal = format!(
        "goal: recording <= 2.0x no tracing, 0 lost; measured {:.2}x, {lost} lost \
         (the lower bound alone: {:.2}x)",
        rec / base,
        bound / base
    );
    if a.record_only {
        print_rows(&rows, base);
        println!("{goal}");
        return Ok(());
    }

    let bpftrace = start_until(
        Command::new("bpftrace").args([
            "-e",
            "tracepoint:raw_syscalls:sys_enter { @[comm] = count(); }",
        ]),
        "Attaching",
    );
    match bpftrace {
        Ok(mut b) => {
            let t = median(runs(n, a.count)?);
            b.stop(Duration::from_secs(30));
            rows.push(Row {
                name: "bpftrace count per comm",
                secs: Some(t),
                note: String::new(),
            });
        }
        Err(e) => rows.push(Row {
            name: "bpftrace count per comm",
            secs: None,
            note: format!("skipped: {e:#}"),
        }),
    }

    let scale = 50;
    let strace: anyhow::Result<f64> = (|| {
        let mut v = Vec::new();
        for _ in 0..n.min(3) {
            let started = Instant::now();
            let st = Command::new("strace")
                .args([
                    "-f",
                    "-o",
                    "/dev/null",
                    "dd",
                    "if=/dev/zero",
                    "of=/dev/null",
                    "bs=1",
                ])
                .arg(format!("count={}", a.count / scale))
                .stderr(Stdio::null())
                .status()?;
            if !st.success() {
                bail!("strace failed: {st}");
            }
            v.push(started.elapsed().as_secs_f64() * scale as f64);
        }
        Ok(median(v))
    })();
    match strace {
        Ok(t) => rows.push(Row {
            name: "strace -f",
            secs: Some(t),
            note: format!("count/{scale}, scaled x{scale}"),
        }),
        Err(e) => rows.push(Row {
            name: "strace -f",
            secs: None,
            note: format!("skipped: {e:#}"),
        }),
    }

    print_rows(&rows, base);
    println!("{goal}");
    println!();
    time_bench(n)?;
    store_bench(dd_bytes_per_event)?;
    replay_bench()
}

fn print_rows(rows: &[Row], base: f64) {
    println!(
        "{:<40} {:>10} {:>8}  notes",
        "condition", "median s", "ratio"
    );
    for r in rows {
        match r.secs {
            Some(s) => println!("{:<40} {:>10.3} {:>7.2}x  {}", r.name, s, s / base, r.note),
            None => println!("{:<40} {:>10} {:>8}  {}", r.name, "-", "-", r.note),
        }
    }
}

/// The replay workloads: a 1-byte dd and a short Python program.
const PY_PROGRAM: &str = "import random, os\nfor i in range(200):\n    os.stat('/')\nprint(random.random(), os.urandom(8).hex(), os.getpid())";

fn replay_workloads(dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let mut v = vec![
        (
            "dd bs=1 count=20000",
            [
                "/bin/dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=1",
                "count=20000",
                "status=none",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "python3 -c (startup, 200 stats)",
            vec!["/usr/bin/python3".into(), "-c".into(), PY_PROGRAM.into()],
        ),
    ];
    match threads_program(dir) {
        Ok(argv) => v.push(("4 threads, lock, pipe (tests/programs)", argv)),
        Err(e) => println!("  the threaded program: skipped: {e:#}"),
    }
    v
}

/// The tests' multi-threaded program, built in `dir`, with its input.
fn threads_program(dir: &Path) -> anyhow::Result<Vec<String>> {
    let exe = dir.join("threads");
    let st = Command::new("cc")
        .args(["-O1", "-pthread", "-o"])
        .arg(&exe)
        .arg(root().join("tests/programs/threads.c"))
        .status()
        .context("running cc")?;
    if !st.success() {
        bail!("cc failed: {st}");
    }
    let input = dir.join("numbers.txt");
    std::fs::write(
        &input,
        (1..=100).map(|i| format!("{i}\n")).collect::<String>(),
    )?;
    Ok(vec![
        exe.to_string_lossy().into_owned(),
        input.to_string_lossy().into_owned(),
    ])
}

/// Runs `argv` once, recorded by a daemon following its pid from its exec,
/// and fetches its bundle. Returns the bundle and its syscall count.
fn record_one(dir: &Path, argv: &[String]) -> anyhow::Result<(std::path::PathBuf, u64)> {
    let gate = dir.join("gate");
    let _ = std::fs::remove_file(&gate);
    let c = std::ffi::CString::new(gate.as_os_str().as_encoded_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        bail!(
            "mkfifo {}: {}",
            gate.display(),
            std::io::Error::last_os_error()
        );
    }
    let mut child = Guard(
        Command::new("/bin/sh")
            .arg("-c")
            .arg("read x < \"$0\"; exec \"$@\"")
            .arg(&gate)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the program to record")?,
    );
    let pid = child.0.id().to_string();
    let data = dir.join("data");
    let sock = dir.join("s");
    let mut cmd = Command::new(root().join("target/release/tracer-daemon"));
    cmd.arg("--data-dir")
        .arg(&data)
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .args(["--pid", &pid]);
    let _daemon = start_until(&mut cmd, "recording (pid")?;
    std::fs::write(&gate, b"go\n")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.0.try_wait()?.is_none() {
        if Instant::now() > deadline {
            bail!("{argv:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let tracectl = root().join("target/release/tracectl");
    let connect = format!("unix:{}", sock.display());
    // A million events take the daemon a while to store on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let ps = Command::new(&tracectl)
            .args(["--connect", &connect, "ps", "--pid", &pid])
            .output()?;
        if String::from_utf8_lossy(&ps.stdout).contains("exit ") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the recording of pid {pid} never showed its exit");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let bundle = dir.join(format!("{pid}.trace"));
    let st = Command::new(&tracectl)
        .args(["--connect", &connect, "fetch", "--pid", &pid, "-o"])
        .arg(&bundle)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("fetching pid {pid} failed: {st}");
    }
    let events = Command::new(&tracectl)
        .args(["dump", "--events-only"])
        .arg(&bundle)
        .output()?;
    let syscalls = String::from_utf8_lossy(&events.stdout)
        .lines()
        .filter(|l| !l.contains("+++"))
        .count() as u64;
    Ok((bundle, syscalls))
}

fn time_of(cmd: &mut Command) -> anyhow::Result<f64> {
    let started = Instant::now();
    let st = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    let t = started.elapsed().as_secs_f64();
    // tracectl replay exits with the recorded status, which is 0 here.
    if !st.success() {
        bail!("{cmd:?}: {st}");
    }
    Ok(t)
}

/// Replay cost per syscall beside native and strace, one run.
fn replay_bench() -> anyhow::Result<()> {
    println!();
    println!("replay (time per recorded syscall, medians of 5)");
    println!(
        "  {:<32} {:>9} {:>11} {:>11} {:>11} {:>9}",
        "program", "syscalls", "native us", "strace us", "replay us", "replay/native"
    );
    let programs = tempfile::tempdir()?;
    for (name, argv) in replay_workloads(programs.path()) {
        let dir = tempfile::tempdir()?;
        let (bundle, syscalls) = match record_one(dir.path(), &argv) {
            Ok(r) => r,
            Err(e) => {
                println!("  {name:<32} skipped: {e:#}");
                continue;
            }
        };
        let per = |secs: f64| secs * 1e6 / syscalls.max(1) as f64;
        let five = |f: &dyn Fn() -> anyhow::Result<f64>| -> anyhow::Result<f64> {
            Ok(median(
                (0..5).map(|_| f()).collect::<anyhow::Result<Vec<f64>>>()?,
            ))
        };
        let native = five(&|| time_of(Command::new(&argv[0]).args(&argv[1..])))?;
        let strace = five(&|| {
            time_of(
                Command::new("strace")
                    .args(["-f", "-o", "/dev/null"])
                    .args(&argv),
            )
        })
        .ok();
        let replay = five(&|| {
            time_of(
                Command::new(root().join("target/release/tracectl"))
                    .args(["replay", "--quiet"])
                    .arg(&bundle),
            )
        })?;
        println!(
            "  {:<32} {:>9} {:>11.2} {:>11} {:>11.2} {:>8.1}x",
            name,
            syscalls,
            per(native),
            strace.map_or("-".to_owned(), |s| format!("{:.2}", per(s))),
            per(replay),
            replay / native
        );
    }
    println!(
        "  (replay answers a syscall in one ptrace stop, on one CPU; strace -f takes two stops per syscall, and its stops wake the other CPU)"
    );
    match goto_bench() {
        Ok(g) => {
            println!(
                "  gdb `monitor goto {}` in a {}-event recording (dd), from the start: {:.1} s \
                 (checkpoints every 1000 events on the way: {})",
                g.events / 2,
                g.events,
                g.forward_s,
                g.checkpoints
            );
            println!(
                "  then back: `monitor goto {}` {:.2} s, `reverse-stepi` {:.2} s \
                 (from the nearest checkpoint; {} restores, {} restarts from the start)",
                g.events / 4,
                g.back_s,
                g.reverse_stepi_s,
                g.restores,
                g.restarts
            );
        }
        Err(e) => println!("  gdb monitor goto: skipped: {e:#}"),
    }
    Ok(())
}

struct Goto {
    events: u64,
    forward_s: f64,
    back_s: f64,
    reverse_stepi_s: f64,
    checkpoints: u64,
    restores: u64,
    restarts: u64,
}

/// The time gdb's `monitor goto` takes to reach the middle of a recording
/// of about a million events, then to go back to its first quarter and one
/// syscall back from there.
fn goto_bench() -> anyhow::Result<Goto> {
    let dir = tempfile::tempdir()?;
    let argv: Vec<String> = [
        "/bin/dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=1",
        "count=500000",
        "status=none",
    ]
    .map(String::from)
    .to_vec();
    let (bundle, events) = record_one(dir.path(), &argv)?;
    let report = dir.path().join("report.json");
    let mut replay = Command::new(root().join("target/release/tracectl"));
    replay
        .args(["replay", "--quiet", "--gdb", "127.0.0.1:0", "--report"])
        .arg(&report)
        .arg(&bundle);
    let (mut tracectl, line) = start_until_line(&mut replay, "waiting for gdb on ")?;
    let addr = line
        .split("waiting for gdb on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .context("tracectl did not say where it listens")?
        .to_owned();
    let (mid, quarter) = (events / 2, events / 4);
    // Each step prints a marker line with the time it ended at.
    let mark = |name: &str| format!("shell date +MARK-{name}-%s.%N");
    let out = Command::new("timeout")
        .args(["900", "gdb", "-nx", "-batch"])
        .args(["-ex", "set remotetimeout 600"])
        .args(["-ex", &format!("target remote {addr}")])
        .args(["-ex", &mark("start")])
        .args(["-ex", &format!("monitor goto {mid}")])
        .args(["-ex", &mark("mid")])
        .args(["-ex", &format!("monitor goto {quarter}")])
        .args(["-ex", &mark("quarter")])
        .args(["-ex", "maint flush register-cache"])
        .args(["-ex", &mark("flushed")])
        .args(["-ex", "reverse-stepi"])
        .args(["-ex", &mark("back")])
        .args(["-ex", "kill"])
        .output()
        .context("running gdb")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for n in [mid, quarter] {
        if !text.contains(&format!("event {n} of")) {
            bail!("gdb did not reach event {n}: {text}");
        }
    }
    let at = |name: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("MARK-{name}-")))
            .and_then(|t| t.trim().parse().ok())
            .with_context(|| format!("no {name} mark in gdb's output: {text}"))
    };
    // gdb killed the program: tracectl writes its report and exits.
    let deadline = Instant::now() + Duration::from_secs(60);
    while tracectl.0.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracectl.stop(Duration::from_secs(10));
    let r: serde_json::Value = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let travel = |k: &str| r["travel"][k].as_u64().unwrap_or(0);
    Ok(Goto {
        events,
        forward_s: at("mid")? - at("start")?,
        back_s: at("quarter")? - at("mid")?,
        reverse_stepi_s: at("back")? - at("flushed")?,
        checkpoints: travel("checkpoints"),
        restores: travel("restores"),
        restarts: travel("restarts"),
    })
}

/// Bytes of segments per stored event in a daemon's data directory.
fn store_bytes_per_event(dir: &Path, stats: &serde_json::Value) -> anyhow::Result<f64> {
    let mut bytes = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(".tseg") {
            bytes += entry.metadata()?.len();
        }
    }
    let events = stats["store"]["events_written"]
        .as_u64()
        .unwrap_or(0)
        .max(1);
    Ok(bytes as f64 / events as f64)
}

/// Records a small C build (a realistic mix: fork, exec, file I/O, mmap).
fn record_build() -> anyhow::Result<(f64, u64)> {
    let src = tempfile::tempdir()?;
    for i in 0..24 {
        std::fs::write(
            src.path().join(format!("f{i}.c")),
            format!(
                "#include <stdio.h>\n#include <string.h>\nint f{i}(const char *s) {{ return (int)strlen(s) * {i}; }}\n"
            ),
        )?;
    }
    let mut sh = Guard(
        Command::new("sh")
            .args([
                "-c",
                "read go; for f in *.c; do cc -O2 -c \"$f\" || exit 1; done",
            ])
            .current_dir(src.path())
            .stdin(Stdio::piped())
            .spawn()
            .context("starting the build")?,
    );
    let data = tempfile::tempdir()?;
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let mut cmd = Command::new(root().join("target/release/tracer-daemon"));
    cmd.arg("--data-dir")
        .arg(data.path())
        .arg("--listen")
        .arg(format!("unix:{}", data.path().join("s").display()))
        .arg("--pid")
        .arg(sh.0.id().to_string());
    let mut d = start_until(&mut cmd, "recording (pid")?;
    {
        use std::io::Write as _;
        let mut stdin = sh.0.stdin.take().context("stdin")?;
        stdin.write_all(b"go\n")?;
    }
    let st = sh.0.wait()?;
    if !st.success() {
        bail!("the C build failed: {st}");
    }
    d.stop(Duration::from_secs(60));
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("stats.json"))?)?;
    let events = stats["store"]["events_written"].as_u64().unwrap_or(0);
    Ok((store_bytes_per_event(data.path(), &stats)?, events))
}

/// Runs the store benchmark example and returns its `key=value` lines.
fn store_example(args: &[&str]) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let out = Command::new("cargo")
        .current_dir(root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "tracer-store",
            "--example",
            "store_bench",
            "--",
        ])
        .args(args)
        .output()
        .context("running the store benchmark")?;
    if !out.status.success() {
        bail!(
            "store_bench {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect())
}

fn store_bench(dd_bytes_per_event: f64) -> anyhow::Result<()> {
    println!();
    println!("store");
    println!("  bytes/event, dd recording (host-wide)   {dd_bytes_per_event:>8.2}   goal <= 12");
    match record_build() {
        Ok((bpe, events)) => {
            println!("  bytes/event, C build of 24 files        {bpe:>8.2}   ({events} events)")
        }
        Err(e) => println!("  bytes/event, C build: skipped: {e:#}"),
    }
    let w = store_example(&["write", "2000000"])?;
    let eps: f64 = w
        .get("events_per_s")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    println!(
        "  events/s written, one core             {:>8.2} M  goal >= 1 M",
        eps / 1e6
    );
    let q = store_example(&["query", "10000000", "100"])?;
    println!(
        "  one process of a {} M-event store ({} segments, {} of its events): {} ms   goal <= 200 ms",
        q.get("events")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e6,
        q.get("segments").map(String::as_str).unwrap_or("?"),
        q.get("process_events").map(String::as_str).unwrap_or("?"),
        q.get("query_ms").map(String::as_str).unwrap_or("?"),
    );
    Ok(())
}
