use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use tracer_daemon::{
    config::{self, Action, FilterRule, Listen, Settings},
    loader::Mode,
    persist::Fsync,
    run,
};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Records every process's system calls on this host with eBPF.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where recordings are kept [default: /var/lib/tracer].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// API address: unix:PATH or https://ADDR:PORT (repeatable)
    /// [default: unix:/run/tracer/tracer.sock].
    #[arg(long)]
    listen: Vec<String>,
    /// Print one strace-like line per event on stdout.
    #[arg(long)]
    print: bool,
    /// Record only these processes and their descendants (repeatable).
    #[arg(long)]
    pid: Vec<u32>,
    /// Record only processes with this command name (repeatable).
    #[arg(long)]
    comm: Vec<String>,
    /// Never record processes with this command name (repeatable).
    #[arg(long)]
    exclude_comm: Vec<String>,
    /// Do not capture buffers (args and return values only).
    #[arg(long)]
    no_payload: bool,
    /// Leave recorded programs' vDSO alone: their time reads are then not
    /// recorded, and replay answers them from the recorded timeline. (By
    /// default the daemon makes each new program's vDSO time functions
    /// syscalls, so that every time read is recorded exactly, at well under
    /// a microsecond per read.)
    #[arg(long)]
    approximate_time: bool,
    /// Bytes captured of one buffer at most.
    #[arg(long)]
    snapshot_limit: Option<u32>,
    /// Ring buffer size in bytes (a power of two).
    #[arg(long)]
    ring_size: Option<u32>,
    /// Niceness of the thread that assembles and stores events (default
    /// 19: the recorder gives way to what it records).
    #[arg(long, allow_negative_numbers = true)]
    assembler_nice: Option<i32>,
    /// Server certificate (PEM) for https listeners.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Server key (PEM) for https listeners.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that https clients' certificates must be signed by.
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
    /// Close a segment once it reaches this many bytes.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Keep at most this many bytes of segments (oldest deleted first).
    #[arg(long)]
    retain_bytes: Option<u64>,
    /// When to fsync: never, segment (on close) or batch (every frame).
    #[arg(long)]
    fsync: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g.
    /// 127.0.0.1:9464): counts only, never recorded data.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Log lines as text (no colour unless stderr is a terminal) or as
    /// one JSON object each (for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Stop after this many seconds (tests, benchmarks).
    #[arg(long)]
    duration: Option<f64>,
    /// Attach empty programs only: the cost floor for `cargo xtask bench`.
    #[arg(long, hide = true)]
    bench_floor: bool,
    /// Attach the lower-bound programs only (clock reads and a 1-byte copy
    /// per syscall, nothing sent), for `cargo xtask bench`.
    #[arg(long, hide = true, conflicts_with = "bench_floor")]
    bench_bound: bool,
}

fn settings(args: &Args) -> anyhow::Result<Settings> {
    let file = args.config.as_deref().map(config::load_file).transpose()?;
    let mut s = Settings::from_file(file)?;
    if let Some(d) = &args.data_dir {
        s.data_dir = d.clone();
    }
    if !args.listen.is_empty() {
        s.listen = args
            .listen
            .iter()
            .map(|l| Listen::parse(l))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(l) = args.snapshot_limit {
        s.snapshot_limit = l;
    }
    if let Some(r) = args.ring_size {
        s.ring_size = r;
    }
    if let Some(n) = args.assembler_nice {
        s.assembler_nice = n;
    }
    match (&args.tls_cert, &args.tls_key, &args.tls_client_ca) {
        (Some(cert), Some(key), Some(ca)) => {
            s.tls = Some(config::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: ca.clone(),
            })
        }
        (None, None, None) => {}
        _ => anyhow::bail!("--tls-cert, --tls-key and --tls-client-ca go together"),
    }
    if let Some(m) = &args.metrics {
        s.metrics = Some(m.clone());
    }
    if let Some(v) = args.segment_bytes {
        s.store.segment_bytes = v;
    }
    if let Some(v) = args.retain_bytes {
        s.store.retain_bytes = v;
    }
    if let Some(f) = &args.fsync {
        s.store.fsync = match f.as_str() {
            "never" => Fsync::Never,
            "segment" => Fsync::Segment,
            "batch" => Fsync::Batch,
            other => anyhow::bail!("--fsync {other}: expected never, segment or batch"),
        };
    }
    if args.approximate_time {
        s.exact_time = false;
        for r in &mut s.rules {
            r.exact_time = Some(false);
        }
    }
    let payload = !args.no_payload;
    if args.no_payload {
        s.default_payload = false;
    }
    let rule = |action| FilterRule {
        pid: None,
        comm: None,
        cgroup: None,
        uid: None,
        action,
        payload,
        exact_time: None,
    };
    let mut cli_rules = vec![];
    for c in &args.exclude_comm {
        cli_rules.push(FilterRule {
            comm: Some(c.clone()),
            ..rule(Action::Exclude)
        });
    }
    for p in &args.pid {
        cli_rules.push(FilterRule {
            pid: Some(*p),
            ..rule(Action::Include)
        });
    }
    for c in &args.comm {
        cli_rules.push(FilterRule {
            comm: Some(c.clone()),
            ..rule(Action::Include)
        });
    }
    if !args.pid.is_empty() || !args.comm.is_empty() {
        // Selecting processes on the command line means: only those.
        s.default_action = Action::Exclude;
    }
    cli_rules.append(&mut s.rules);
    s.rules = cli_rules;
    s.validate()?;
    Ok(s)
}

/// Assembling an event allocates several small values (names, argument and
/// buffer vectors): the system allocator was a third of the daemon's time
/// under a syscall storm.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Every file the daemon makes holds recorded buffers or leads to them
    // (segments, stats, the socket, a bundle being built): private however
    // it is started, not only under the unit's UMask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let args = std::rc::Rc::new(Args::parse());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match args.log_format {
        // One JSON object a line, for log shippers.
        LogFormat::Json => logs.json().with_current_span(false).init(),
        // journald and log files show escapes as text.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let result = settings(&args).and_then(|s| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?;
        let mode = if args.bench_floor {
            Mode::Floor
        } else if args.bench_bound {
            Mode::Bound
        } else {
            Mode::Record
        };
        let again = std::rc::Rc::clone(&args);
        let reload: run::Reload = Box::new(move || settings(&again));
        rt.block_on(run::run(s, args.print, args.duration, mode, reload))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracer-daemon: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
