//! The daemon's main loop: load, attach, drain until a signal, report.
use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tracer_common::wire::LOSS_KINDS;

use crate::{
    assemble::AssembleStats,
    assembly::{Assembly, Progress},
    config::{Listen, Settings},
    loader::{self, Mode},
    persist::{Persist, PersistStats},
    sink::Sink,
};

pub const STATS_FILE: &str = "stats.json";
const LOSS_NAMES: [&str; LOSS_KINDS as usize] = [
    "syscall", "buffer", "fork", "exec", "exit", "signal", "inflight", "time",
];

/// What the daemon reports about itself (`DATA_DIR/stats.json`).
#[derive(Debug, Serialize)]
pub struct Stats {
    /// The daemon that wrote this (a crashed one leaves its last file).
    pub pid: u32,
    pub running: bool,
    pub uptime_s: f64,
    pub assembled: AssembleStats,
    /// Records the kernel could not put into the ring, per kind.
    pub lost: std::collections::BTreeMap<&'static str, u64>,
    pub lost_total: u64,
    /// Processes (pid) that lost records, with how many.
    pub lost_by_process: Vec<(u32, u64)>,
    pub store: PersistStats,
    pub ring_size: u32,
    /// Bytes waiting in the ring when the kernel last sampled it.
    pub ring_used: u64,
    /// The vDSO patcher (exact time), when it runs.
    pub exact_time: Option<crate::timepatch::PatchStats>,
}

/// Replaces the status file atomically (write aside, rename); when the disk
/// is full that needs room it does not have, so the file is then rewritten
/// in place: the status matters most exactly then.
fn write_stats(dir: &Path, stats: &Stats) {
    let Ok(body) = serde_json::to_vec_pretty(stats) else {
        return;
    };
    let tmp = dir.join(".stats.json.tmp");
    let path = dir.join(STATS_FILE);
    let atomic = std::fs::write(&tmp, &body).and_then(|()| std::fs::rename(&tmp, &path));
    if atomic.is_err() {
        let _ = std::fs::remove_file(&tmp);
        if let Err(e) = std::fs::write(&path, &body) {
            tracing::warn!("writing {}: {e}", path.display());
        }
    }
}

fn prepare_dirs(s: &Settings) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&s.data_dir)
        .with_context(|| format!("creating data dir {}", s.data_dir.display()))?;
    private_dir(
        &s.data_dir,
        &std::fs::metadata(&s.data_dir)?,
        nix::unistd::geteuid().as_raw(),
    )?;
    let probe = s.data_dir.join(".writable");
    std::fs::write(&probe, b"")
        .with_context(|| format!("data dir {} is not writable", s.data_dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Refuses a data directory that others can read, write or enter, or that
/// another user owns: the recordings in it hold every buffer the recorded
/// processes read and wrote.
fn private_dir(dir: &Path, meta: &std::fs::Metadata, euid: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if meta.uid() != euid {
        bail!(
            "data dir {} is owned by uid {}, not by this daemon's uid {euid}: \
             recordings hold secrets; give a directory of its own",
            dir.display(),
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        bail!(
            "data dir {} has mode {mode:04o}: others could read the recordings, which hold \
             every buffer the processes read and wrote; `chmod 700 {}`, or give another \
             --data-dir",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Segment files in the data directory: count and bytes (no reading).
fn store_size(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tseg"))
        .fold((0, 0), |(n, b), e| {
            (n + 1, b + e.metadata().map(|m| m.len()).unwrap_or(0))
        })
}

/// What `Status` answers, refreshed at every tick.
fn publish_status(shared: &crate::api::Shared, st: &Stats, s: &Settings) {
    let (segments, bytes) = store_size(&s.data_dir);
    let reply = tracer_proto::StatusReply {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_s: st.uptime_s,
        events_recorded: st.assembled.events,
        lost: st.lost.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        lost_total: st.lost_total,
        ring_size: st.ring_size,
        ring_used: st.ring_used,
        store_bytes: bytes,
        store_segments: segments,
        unflushed_events: st.store.unflushed_events,
        events_dropped: st.store.events_dropped,
        writing_suspended: st.store.writing_suspended,
        last_error: st.store.last_error.clone().unwrap_or_default(),
        filters: s.rules.iter().map(|r| format!("{r:?}")).collect(),
    };
    if let Ok(mut g) = shared.status.lock() {
        *g = reply;
    }
}

/// SIGHUP: new filters take effect at once; what needs a restart is said.
fn reload_filters(ebpf: &mut aya::Ebpf, current: &Settings, reload: &Reload, exact_time: bool) {
    let new = match reload() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("reload: {e:#}; keeping the current filters");
            return;
        }
    };
    if new.data_dir != current.data_dir
        || new.ring_size != current.ring_size
        || new.listen != current.listen
        || new.snapshot_limit != current.snapshot_limit
    {
        tracing::warn!(
            "reload: data_dir, listen, ring_size and snapshot_limit change only on restart"
        );
    }
    let mut cfg = new.to_wire(std::process::id());
    cfg.snapshot_limit = current.snapshot_limit;
    cfg.vvar_below = crate::timepatch::vvar_below().unwrap_or(0);
    if !exact_time {
        // No patcher runs: the kernel programs must not ask for one.
        cfg.default_exact_time = 0;
        for r in cfg.rules.iter_mut() {
            r.exact_time = 0;
        }
    }
    match loader::update_config(ebpf, &cfg) {
        Ok(()) => tracing::info!("reload: {} filter rules in force", new.rules.len()),
        Err(e) => tracing::error!("reload: {e:#}"),
    }
}

/// Re-reads the configuration (file and flags) for SIGHUP.
pub type Reload = Box<dyn Fn() -> anyhow::Result<Settings>>;

pub async fn run(
    s: Settings,
    print: bool,
    duration: Option<f64>,
    mode: Mode,
    reload: Reload,
) -> anyhow::Result<()> {
    loader::check_privileges()?;
    prepare_dirs(&s)?;
    let started = std::time::Instant::now();
    let cfg = s.to_wire(std::process::id());
    // Registered before loading: a daemon already running excludes this
    // one from its next scan on, and this one excludes it from the start.
    let registry = std::path::Path::new(crate::peers::REGISTRY);
    if let Err(e) = crate::peers::register(registry) {
        tracing::warn!(
            "not in the daemon registry ({e:#}): another tracer daemon on this host records this one"
        );
    }
    let own = std::process::id();
    let initial = crate::peers::to_map(&crate::peers::scan(registry, own));
    let loaded = loader::load(&cfg, &initial, s.ring_size, mode)?;
    let loader::Loaded {
        mut ebpf,
        ring,
        exec_notify,
        loss,
        task_loss,
        ring_fill,
        stage,
        peers,
    } = loaded;
    let _peer_watch = match crate::peers::Watcher::spawn(registry.to_path_buf(), peers, initial) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("other tracer daemons started later are recorded: {e:#}");
            None
        }
    };
    let persist = Persist::open(&s.data_dir, s.store.clone())?;
    let shared = crate::api::Shared::new(s.data_dir.clone());
    let sink = Sink::new(persist, print, shared.live.clone());
    let (stop_api, api_stopped) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for l in &s.listen {
        let mut rx = api_stopped.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        match l {
            Listen::Unix(path) => {
                servers.push(crate::api::serve_unix(path, Arc::clone(&shared), shutdown)?);
                tracing::info!("API on unix:{}", path.display());
            }
            Listen::Tcp(addr) => {
                let tls = s
                    .tls
                    .as_ref()
                    .context("an https listener needs TLS files")?;
                servers
                    .push(crate::api::serve_tls(addr, tls, Arc::clone(&shared), shutdown).await?);
                tracing::info!("API on https://{addr} (client certificates required)");
            }
        }
    }
    if let Some(addr) = &s.metrics {
        let mut rx = api_stopped.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let (bound, task) = crate::metrics::serve(addr, Arc::clone(&shared), shutdown).await?;
        servers.push(task);
        tracing::info!("metrics on http://{bound}/metrics");
    }
    let (mut drainer, chunks) = crate::drain::Drainer::spawn(ring)?;
    let exact_time = exec_notify.is_some();
    let patcher = match (exec_notify, drainer.injector()) {
        (Some((notices, state)), Some(out)) => {
            Some(crate::timepatch::Patcher::spawn(notices, state, out)?)
        }
        _ => None,
    };
    let drained = Arc::clone(&drainer.shared);
    let catchup = crate::catchup::Catchup::new(Arc::clone(&drained));
    let _ = shared.catchup.set(Arc::clone(&catchup));
    let assembly = Assembly::spawn(
        chunks,
        Arc::clone(&drained),
        drainer.recycler(),
        sink,
        s.assembler_nice,
        catchup,
    )?;
    match mode {
        Mode::Floor => {
            tracing::info!("recording nothing: empty programs attached (benchmark floor)")
        }
        Mode::Bound => tracing::info!(
            "recording nothing: clock reads and a 1-byte copy per syscall (benchmark lower bound)"
        ),
        Mode::Record => {}
    }
    // Handled before recording is announced: a stop asked for the moment
    // the daemon says it records must flush and close, not kill it.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    tracing::info!(
        "recording (pid {}, data dir {}, ring {} bytes, {} filter rules)",
        std::process::id(),
        s.data_dir.display(),
        s.ring_size,
        s.rules.len()
    );
    crate::notify::notify("READY=1");
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let deadline = duration.map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d));
    let stop = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    let mut last_lost = 0u64;
    let mut loss_watch = crate::loss::LossWatch::new(crate::persist::monotonic_ns());
    let stats = |p: &Progress, running: bool| {
        let totals = loader::loss_totals(&loss);
        let backlog = drained.dropped.load(std::sync::atomic::Ordering::Relaxed);
        let mut lost: std::collections::BTreeMap<&'static str, u64> =
            LOSS_NAMES.iter().copied().zip(totals).collect();
        lost.insert("backlog", backlog);
        let mut by_process = loader::task_losses(&task_loss);
        if let Ok(m) = drained.dropped_by_pid.lock()
            && !m.is_empty()
        {
            let mut all: std::collections::BTreeMap<u32, u64> = by_process.into_iter().collect();
            for (pid, n) in m.iter() {
                *all.entry(*pid).or_default() += n;
            }
            by_process = all.into_iter().collect();
        }
        Stats {
            pid: std::process::id(),
            running,
            uptime_s: started.elapsed().as_secs_f64(),
            assembled: p.assembled,
            lost,
            lost_total: totals.iter().sum::<u64>() + backlog,
            lost_by_process: by_process,
            store: p.store.clone(),
            ring_size: s.ring_size,
            ring_used: ring_fill.get(&0, 0).unwrap_or(0),
            exact_time: patcher.as_ref().map(|p| p.stats()),
        }
    };

    loop {
        tokio::select! {
            _ = tick.tick() => {
                if assembly.is_finished() {
                    anyhow::bail!("the assembler thread stopped");
                }
                let st = stats(&assembly.progress(), true);
                drainer.inject(loss_watch.check(&st.lost_by_process, crate::persist::monotonic_ns()));
                publish_status(&shared, &st, &s);
                if st.lost_total > last_lost {
                    tracing::warn!("lost {} records so far ({:?})", st.lost_total, st.lost);
                    last_lost = st.lost_total;
                }
                write_stats(&s.data_dir, &st);
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = sighup.recv() => reload_filters(&mut ebpf, &s, &reload, exact_time),
            _ = &mut stop => break,
        }
    }

    // Detach first so the final drain sees everything that was recorded.
    crate::notify::notify("STOPPING=1");
    let _ = stop_api.send(true);
    for server in servers {
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    drop(ebpf);
    if let Some(p) = &patcher {
        p.stop();
    }
    // Records the CPUs had staged and not sent (read once the programs are
    // detached): after everything in the ring, as each thread's latest.
    let mut staged = Vec::new();
    if let Ok(per_cpu) = stage.get(&0, 0) {
        for st in per_cpu.iter() {
            let len = st.hdr.len as usize;
            if len == 0 || len > tracer_common::wire::STAGE_MAX {
                continue;
            }
            let kind = (tracer_common::wire::RecordKind::Batch as u32).to_le_bytes();
            let n = (len as u32).to_le_bytes();
            crate::drain::frame(&mut staged, &[&kind, &n, &st.data[..len]]);
        }
    }
    // Then what was lost up to the end, as each process's last events.
    drainer.finish(|| {
        let st = stats(&assembly.progress(), false);
        staged.extend(loss_watch.check(&st.lost_by_process, crate::persist::monotonic_ns()));
        staged
    });
    // The assembler takes what is queued, closes the store and ends.
    let progress = assembly.finish()?;
    let st = stats(&progress, false);
    write_stats(&s.data_dir, &st);
    tracing::info!(
        "stopped: {} events, {} records lost, {} bytes written, {} events dropped by the store",
        st.assembled.events,
        st.lost_total,
        st.store.bytes_written,
        st.store.events_dropped
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::{Assembler, bytes_of};
    use crate::assembly::assemble_chunk;
    use tracer_common::wire::{BatchHeader, InlineHeader, RecordKind, SysRecord, TaskRecord};

    #[test]
    fn a_data_dir_others_can_reach_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().expect("tempdir");
        let euid = nix::unistd::geteuid().as_raw();
        let meta = || std::fs::metadata(d.path()).expect("metadata");
        let chmod = |m: u32| {
            std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(m)).expect("chmod")
        };
        chmod(0o700);
        private_dir(d.path(), &meta(), euid).expect("0700 is private");
        for mode in [0o755, 0o710, 0o701, 0o1777] {
            chmod(mode);
            let e = private_dir(d.path(), &meta(), euid).expect_err("refused");
            assert!(e.to_string().contains("chmod 700"), "{mode:o}: {e}");
        }
        chmod(0o700);
        let e = private_dir(d.path(), &meta(), euid + 1).expect_err("another user's");
        assert!(e.to_string().contains("owned by uid"), "{e}");
    }

    /// A chunk as the drain thread makes it: framed batches of what the
    /// kernel sends for a 1-byte `dd` (a read and a write, one byte each).
    fn dd_chunk(batches: usize, tid: u32, t0: &mut u64) -> Vec<u8> {
        let mut chunk = vec![];
        for _ in 0..batches {
            let mut data = bytes_of(&TaskRecord {
                kind: RecordKind::Task as u16,
                tid,
                pid: tid,
                cgroup_id: 1,
                comm: *b"dd\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                ..Default::default()
            });
            while data.len() + 112 + 48 <= tracer_common::wire::STAGE_MAX {
                for (nr, arg) in [(0u16, 1u8), (1, 1)] {
                    *t0 += 100;
                    let h = InlineHeader {
                        arg,
                        dir: if nr == 0 { 2 } else { 1 },
                        flags: 0,
                        len: 1,
                        total_len: 1,
                    };
                    data.extend(bytes_of(&SysRecord {
                        kind: RecordKind::Sys as u16,
                        nr,
                        tid,
                        inline_len: 24,
                        enter_ns: *t0,
                        exit_ns: *t0 + 50,
                        ret: 1,
                        args: [nr as u64, 0x7f00_0000_1000, 1, 0, 0, 0],
                        ..Default::default()
                    }));
                    data.extend(bytes_of(&h));
                    data.extend([0u8; 8]);
                }
            }
            let mut rec = bytes_of(&BatchHeader {
                kind: RecordKind::Batch as u32,
                len: data.len() as u32,
            });
            rec.extend(data);
            crate::drain::frame(&mut chunk, &[&rec]);
        }
        chunk
    }

    /// How fast the runtime thread turns records into stored events (run
    /// with `--ignored --nocapture`): the kernel makes about 5 M a second
    /// in a syscall storm, and the backlog holds only what this is short of.
    #[test]
    #[ignore]
    fn assembler_throughput() {
        let dir = tempfile::tempdir().expect("tempdir");
        let persist = Persist::open(dir.path(), Default::default()).expect("store");
        let (live, _) = tokio::sync::broadcast::channel(1);
        let mut sink = Sink::new(persist, false, live);
        let mut asm = Assembler::default();
        let shared = crate::drain::Shared::default();
        let mut t0 = 1;
        let chunks: Vec<Vec<u8>> = (0..500).map(|_| dd_chunk(32, 42, &mut t0)).collect();
        let started = std::time::Instant::now();
        for c in &chunks {
            shared
                .backlog
                .fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
            assemble_chunk(c, &shared, &mut asm, &mut sink);
        }
        sink.close();
        let secs = started.elapsed().as_secs_f64();
        let n = asm.stats.syscalls;
        println!(
            "{n} events in {secs:.3} s: {:.2} M events/s, {} bytes stored",
            n as f64 / secs / 1e6,
            sink.persist.stats.bytes_written
        );
        assert_eq!(asm.stats.malformed, 0);
        assert_eq!(n, sink.persist.stats.events_written);
        assert!(n > 1_000_000);
    }
}
