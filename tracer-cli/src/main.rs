//! `tracectl`: the command-line front of tracer.
//!
//! It owns argument parsing and output only: the daemon is reached through
//! the gRPC client (`client`), a data directory offline through
//! `tracer-store`, and events are rendered by `tracer-format`.
mod client;
mod json;
mod replay;

use std::{io::Write, path::PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracer_proto as pb;
use tracer_store::store::{self, Query};

#[derive(Parser)]
#[command(name = "tracectl", version, about = "Inspect what tracer recorded")]
struct Cli {
    /// The daemon's API: unix:PATH or https://HOST:PORT. The flag wins over
    /// TRACER_CONNECT, which wins over the packaged service's socket.
    #[arg(long, global = true, env = "TRACER_CONNECT", default_value = client::DEFAULT_CONNECT)]
    connect: String,
    /// For https: the CA certificate (PEM) that signed the daemon's.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// For https: this client's certificate (PEM).
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// For https: this client's key (PEM).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// One JSON object per line (status, ps, events, stats, dump).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// What the daemon is doing: recorded, lost, store, filters.
    Status,
    /// Recorded processes.
    Ps {
        /// Only these pids (repeatable).
        #[arg(long)]
        pid: Vec<u32>,
        /// Only this command name.
        #[arg(long, default_value = "")]
        comm: String,
    },
    /// Events strace-style: stored ones of a process, or live ones.
    Events {
        /// The process (all its threads).
        #[arg(long)]
        pid: Option<u32>,
        /// Only these syscalls, by name (repeatable).
        #[arg(long = "syscall")]
        syscalls: Vec<String>,
        /// Also the process's descendants.
        #[arg(long)]
        children: bool,
        /// Live events as they are recorded, instead of stored ones.
        #[arg(long)]
        follow: bool,
        /// Only events since T: monotonic ns, or a duration ago (30s, 5m, 2h).
        #[arg(long)]
        since: Option<String>,
        /// Read a data directory offline instead of asking the daemon.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// One process's recording as a portable bundle file.
    Fetch {
        #[arg(long)]
        pid: u32,
        /// Which process, when several had this pid (start time, ns; see
        /// `ps`); default the newest.
        #[arg(long, default_value_t = 0)]
        start_time: u64,
        /// Also the process's descendants.
        #[arg(long)]
        children: bool,
        /// Leave out the copies of the executables and mapped files.
        #[arg(long)]
        no_binaries: bool,
        /// Output file [default: pid-N.trace].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Inspect a bundle offline: header, processes, files, events.
    Dump {
        file: PathBuf,
        /// Print only the events.
        #[arg(long)]
        events_only: bool,
    },
    /// Re-execute a recorded process from its bundle under ptrace, as it
    /// ran. Exits with the recorded status; 124 when it ended as recorded
    /// but wrote other bytes where it read approximate times; 125 when the
    /// replay diverges or the recording ends early; 126 when it cannot start.
    Replay {
        bundle: PathBuf,
        /// The bundle's process to replay [default: its root].
        #[arg(long)]
        pid: Option<u32>,
        /// Do not show what the program writes to stdout and stderr.
        #[arg(long, short)]
        quiet: bool,
        /// Write the summary as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// After a divergence, kill the program instead of leaving it
        /// stopped for a debugger.
        #[arg(long)]
        kill_on_divergence: bool,
        /// Set KEY=VALUE in the program's environment (over the recorded
        /// one): a "what if" run, which diverges where the change shows.
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Serve the gdb remote protocol here (HOST:PORT or unix:PATH) and
        /// let gdb drive the replay: gdb -ex 'target remote HOST:PORT'.
        #[arg(long, value_name = "ADDR")]
        gdb: Option<String>,
        /// The program file to run, when the bundle has no copy of it.
        #[arg(long, value_name = "PATH")]
        exe: Option<PathBuf>,
        /// With several threads or processes: how long to wait for the one
        /// whose recorded event is next before stopping with a report of
        /// where each one is.
        #[arg(long, value_name = "SECS", default_value_t = 10.0)]
        watchdog: f64,
        /// With --gdb: a checkpoint (a stopped fork of the program) every
        /// N recorded events, where going back starts from (0: none).
        #[arg(long, value_name = "N", default_value_t = 1000)]
        checkpoint_every: usize,
        /// Stop at the first difference, also where the program writes
        /// other bytes after reading times the recording does not hold
        /// (by default such writes are reported, the recorded bytes shown,
        /// and the replay goes on, ending with status 124).
        #[arg(long)]
        strict: bool,
    },
    /// Per-syscall counts, errors and latency.
    Stats {
        /// One process instead of the host.
        #[arg(long)]
        pid: Option<u32>,
        /// Read a data directory offline instead of asking the daemon.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The libraries' logs (the replayer's scheduling decisions at debug)
    // on stderr when RUST_LOG asks for them; warnings otherwise.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Replay forks the program to trace: it runs before any other thread
    // (the runtime's) exists.
    if let Cmd::Replay {
        bundle,
        pid,
        quiet,
        report,
        kill_on_divergence,
        env,
        gdb,
        exe,
        watchdog,
        checkpoint_every,
        strict,
    } = &cli.cmd
    {
        return replay::run(
            bundle,
            replay::Args {
                pid: *pid,
                quiet: *quiet,
                report: report.as_deref(),
                kill_on_divergence: *kill_on_divergence,
                env,
                gdb: gdb.as_deref(),
                exe: exe.as_deref(),
                watchdog: *watchdog,
                checkpoint_every: *checkpoint_every,
                strict: *strict,
            },
        );
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tracectl: error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracectl: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn syscall_number(name: &str) -> anyhow::Result<i64> {
    tracer_common::effects::x86_64::TABLE
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.nr as i64)
        .with_context(|| format!("unknown syscall {name:?}"))
}

/// `--since`: monotonic ns, or a duration ago (`30s`, `5m`, `2h`) measured on
/// this host's monotonic clock (the daemon's, when run on the same host).
fn parse_since(t: &str) -> anyhow::Result<u64> {
    if let Ok(ns) = t.parse::<u64>() {
        return Ok(ns);
    }
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = n
        .parse()
        .with_context(|| format!("--since {t}: expected ns or a duration like 30s"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => anyhow::bail!("--since {t}: units are s, m and h"),
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    Ok(now.saturating_sub(secs * 1_000_000_000))
}

/// A recorded argv as one line (lossy UTF-8, space-separated).
fn argv_text(argv: &[Vec<u8>]) -> String {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// gRPC errors as one clear line.
fn rpc(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code(), e.message())
}

fn out() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let tls = client::Tls {
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
    };
    match cli.cmd {
        Cmd::Status => {
            let s = client::connect(&cli.connect, &tls)
                .await?
                .status(pb::StatusRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            let mut o = out();
            if cli.json {
                writeln!(o, "{}", json::status(&s))?;
                return Ok(());
            }
            writeln!(o, "version            {}", s.version)?;
            writeln!(o, "uptime             {:.0} s", s.uptime_s)?;
            writeln!(o, "events recorded    {}", s.events_recorded)?;
            let lost: Vec<String> = s
                .lost
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(
                o,
                "lost               {}{}",
                s.lost_total,
                if lost.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", lost.join(", "))
                }
            )?;
            writeln!(
                o,
                "ring buffer        {} of {} bytes in use ({:.1}%)",
                s.ring_used,
                s.ring_size,
                100.0 * s.ring_used as f64 / s.ring_size.max(1) as f64
            )?;
            writeln!(
                o,
                "store              {} bytes in {} segments",
                s.store_bytes, s.store_segments
            )?;
            writeln!(o, "unflushed          {} events", s.unflushed_events)?;
            writeln!(o, "dropped by store   {}", s.events_dropped)?;
            if s.writing_suspended {
                writeln!(o, "WRITING SUSPENDED  {}", s.last_error)?;
            }
            writeln!(
                o,
                "filters            {}",
                if s.filters.is_empty() {
                    "none (everything)".into()
                } else {
                    s.filters.join("; ")
                }
            )?;
            Ok(())
        }
        Cmd::Ps { pid, comm } => {
            let r = client::connect(&cli.connect, &tls)
                .await?
                .list_processes(pb::ListProcessesRequest {
                    pids: pid,
                    comm,
                    ..Default::default()
                })
                .await
                .map_err(rpc)?
                .into_inner();
            let mut o = out();
            if cli.json {
                for p in &r.processes {
                    writeln!(o, "{}", json::process(p))?;
                }
                return Ok(());
            }
            writeln!(
                o,
                "{:>8} {:>8} {:<16} {:>10} {:<12} {:<5} command",
                "PID", "PPID", "COMM", "EVENTS", "STATUS", "LOST"
            )?;
            for p in r.processes {
                let status = if !p.exited {
                    "running".to_owned()
                } else if p.signal != 0 {
                    tracer_format::signal_name(p.signal)
                } else {
                    format!("exit {}", p.exit_code)
                };
                let argv = argv_text(&p.argv);
                writeln!(
                    o,
                    "{:>8} {:>8} {:<16} {:>10} {:<12} {:<5} {}",
                    p.key.map(|k| k.pid).unwrap_or(0),
                    p.ppid,
                    p.comm,
                    p.event_count,
                    status,
                    if p.lost { "yes" } else { "" },
                    if argv.is_empty() { p.exe } else { argv }
                )?;
            }
            Ok(())
        }
        Cmd::Events {
            pid,
            syscalls,
            children,
            follow,
            since,
            data_dir,
        } => {
            let since_ns = since.as_deref().map(parse_since).transpose()?.unwrap_or(0);
            let json = cli.json;
            let show = move |o: &mut std::io::BufWriter<std::io::StdoutLock<'static>>,
                             e: &pb::Event| {
                if json {
                    writeln!(o, "{}", json::event(e))
                } else {
                    writeln!(o, "{}", tracer_format::line(e))
                }
            };
            if let Some(dir) = data_dir {
                let q = Query {
                    pids: pid.into_iter().collect(),
                    syscalls: syscalls
                        .iter()
                        .map(|n| syscall_number(n))
                        .collect::<anyhow::Result<_>>()?,
                    since_ns: (since_ns != 0).then_some(since_ns),
                    ..Default::default()
                };
                let r = store::query(&dir, &q)
                    .with_context(|| format!("reading the store in {}", dir.display()))?;
                let mut o = out();
                for e in &r.events {
                    if show(&mut o, e).is_err() {
                        return Ok(()); // stdout closed (e.g. `| head`)
                    }
                }
                for (path, d) in &r.damage {
                    eprintln!(
                        "tracectl: warning: {}: damaged frame at byte {} skipped: {}",
                        path.display(),
                        d.offset,
                        d.error
                    );
                }
                return Ok(());
            }
            let mut c = client::connect(&cli.connect, &tls).await?;
            let mut stream = if follow {
                c.follow(pb::FollowRequest {
                    pids: pid.into_iter().collect(),
                    syscalls,
                    payloads: true,
                    ..Default::default()
                })
                .await
                .map_err(rpc)?
                .into_inner()
            } else {
                let pid = pid.context("--pid is required (or --follow)")?;
                c.get_events(pb::GetEventsRequest {
                    pid,
                    children,
                    syscalls,
                    since_ns,
                    payloads: true,
                    ..Default::default()
                })
                .await
                .map_err(rpc)?
                .into_inner()
            };
            while let Some(batch) = stream.message().await.map_err(rpc)? {
                let mut o = out();
                for e in &batch.events {
                    if show(&mut o, e).is_err() {
                        return Ok(());
                    }
                }
                o.flush().ok();
            }
            Ok(())
        }
        Cmd::Fetch {
            pid,
            start_time,
            children,
            no_binaries,
            output,
        } => {
            let output = output.unwrap_or_else(|| PathBuf::from(format!("pid-{pid}.trace")));
            let mut stream = client::connect(&cli.connect, &tls)
                .await?
                .fetch_bundle(pb::FetchBundleRequest {
                    pid,
                    start_ns: start_time,
                    children,
                    no_binaries,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            // Written aside and renamed: a failed fetch leaves no partial bundle.
            let tmp = output.with_extension("trace.partial");
            // It holds every buffer the program read and wrote: private
            // whatever the umask (and an older partial file's mode).
            let mut file = {
                use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private", tmp.display()))?;
                f
            };
            let mut total = None;
            let mut got = 0u64;
            let result: anyhow::Result<()> = async {
                while let Some(chunk) = stream.message().await.map_err(rpc)? {
                    if !chunk.others.is_empty() {
                        let others: Vec<String> = chunk
                            .others
                            .iter()
                            .map(|k| format!("start {}", k.start_ns))
                            .collect();
                        eprintln!(
                            "tracectl: pid {pid} was recorded {} times; took {}; others: {}",
                            others.len() + 1,
                            if start_time == 0 {
                                "the newest".to_owned()
                            } else {
                                format!("start {start_time}")
                            },
                            others.join(", ")
                        );
                    }
                    file.write_all(&chunk.data)?;
                    got += chunk.data.len() as u64;
                    total = Some(chunk.total_bytes);
                    if std::io::IsTerminal::is_terminal(&std::io::stderr()) && chunk.total_bytes > 0
                    {
                        eprint!("\rfetching: {got} / {} bytes", chunk.total_bytes);
                    }
                }
                if let Some(t) = total
                    && t != got
                {
                    anyhow::bail!("the daemon sent {got} of the bundle's {t} bytes");
                }
                file.sync_all()?;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, &output)?;
            eprintln!("\rtracectl: wrote {} ({got} bytes)", output.display());
            Ok(())
        }
        Cmd::Dump { file, events_only } => {
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let b = tracer_store::bundle::decode(&data)
                .with_context(|| format!("{}", file.display()))?;
            let mut o = out();
            if !events_only {
                let h = &b.header;
                writeln!(
                    o,
                    "bundle v{} from {} ({} {}, boot {})",
                    h.format_version, h.source_host, h.kernel_release, h.arch, h.boot_id
                )?;
                writeln!(
                    o,
                    "root pid {} start {}",
                    h.root.map(|k| k.pid).unwrap_or(0),
                    h.root.map(|k| k.start_ns).unwrap_or(0)
                )?;
                writeln!(
                    o,
                    "events {} ({} .. {} ns){}",
                    h.event_count,
                    h.first_ns,
                    h.last_ns,
                    if h.events_lost { ", SOME LOST" } else { "" }
                )?;
                for p in &h.processes {
                    writeln!(
                        o,
                        "process {} (ppid {}) {} {}",
                        p.key.map(|k| k.pid).unwrap_or(0),
                        p.ppid,
                        p.comm,
                        argv_text(&p.argv)
                    )?;
                }
                for blob in &b.blobs {
                    writeln!(
                        o,
                        "file {} sha256 {} ({} bytes)",
                        blob.path,
                        blob.sha256,
                        blob.data.len()
                    )?;
                }
            }
            for e in &b.events {
                let shown = if cli.json {
                    writeln!(o, "{}", json::event(e))
                } else {
                    writeln!(o, "{}", tracer_format::line(e))
                };
                if shown.is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
        Cmd::Replay { .. } => unreachable!("replay runs before the runtime starts"),
        Cmd::Stats { pid, data_dir } => {
            let rows: Vec<pb::SyscallStat> = match data_dir {
                Some(dir) => store::stats(&dir, pid)
                    .with_context(|| format!("reading the store in {}", dir.display()))?
                    .into_iter()
                    .map(|(nr, s)| s.to_proto(nr, tracer_common::effects::name(nr).unwrap_or("")))
                    .collect(),
                None => {
                    client::connect(&cli.connect, &tls)
                        .await?
                        .stats(pb::StatsRequest { pid })
                        .await
                        .map_err(rpc)?
                        .into_inner()
                        .syscalls
                }
            };
            if cli.json {
                let mut o = out();
                for r in &rows {
                    writeln!(o, "{}", json::stat(r))?;
                }
                return Ok(());
            }
            print_stats(rows)
        }
    }
}

fn print_stats(mut rows: Vec<pb::SyscallStat>) -> anyhow::Result<()> {
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.nr.cmp(&b.nr)));
    let mut o = out();
    writeln!(
        o,
        "{:<24} {:>12} {:>10} {:>10} {:>10} {:>10}  errors",
        "syscall", "calls", "failed", "p50", "p90", "p99"
    )?;
    for s in rows {
        let name = if s.name.is_empty() {
            format!("syscall_{}", s.nr)
        } else {
            s.name
        };
        let failed: u64 = s.errors.values().sum();
        let mut errs: Vec<_> = s.errors.iter().collect();
        errs.sort_by(|a, b| b.1.cmp(a.1));
        let errs: Vec<String> = errs
            .iter()
            .map(|(e, n)| format!("{}={n}", tracer_format::errno_name(**e)))
            .collect();
        let ns = |v: u64| {
            if v == 0 {
                "-".to_owned()
            } else if v >= 1_000_000 {
                format!("{}ms", v / 1_000_000)
            } else if v >= 1000 {
                format!("{}us", v / 1000)
            } else {
                format!("{v}ns")
            }
        };
        if writeln!(
            o,
            "{name:<24} {:>12} {failed:>10} {:>10} {:>10} {:>10}  {}",
            s.count,
            ns(s.p50_ns),
            ns(s.p90_ns),
            ns(s.p99_ns),
            errs.join(" ")
        )
        .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}
