//! The assembler thread: turns the chunks the drain thread copied out of
//! the ring into events, and hands them to the sink (store, `--print`,
//! followers).
//!
//! It runs on its own thread at a low priority (`assembler_nice`, 19 by
//! default), apart from the runtime thread that serves the API, handles
//! signals and writes the status: under a syscall storm the recorded
//! programs keep their CPU and the backlog waits in memory, while the API
//! still answers at the default priority. Boundaries: no ring access (the
//! drain thread's job), no API (the runtime's).
use std::{
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    assemble::{AssembleStats, Assembler},
    catchup::Catchup,
    drain::{Recycler, Shared},
    persist::PersistStats,
    sink::Sink,
};

/// How often the sink's periodic work (frames for what waits, rotation,
/// retention) runs and the counters are published.
const TICK: Duration = Duration::from_millis(200);
/// How soon a query waiting for the store is seen while the queue is idle.
const POLL: Duration = Duration::from_millis(10);

/// What the assembler thread last published.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub assembled: AssembleStats,
    pub store: PersistStats,
}

pub struct Assembly {
    progress: Arc<Mutex<Progress>>,
    thread: JoinHandle<()>,
    /// The thread's kernel id, for its priority at shutdown.
    tid: libc::id_t,
}

impl Assembly {
    /// Starts the thread. It ends, after closing the sink, once every
    /// sender of `chunks` is gone.
    pub fn spawn(
        chunks: mpsc::Receiver<Vec<u8>>,
        drained: Arc<Shared>,
        recycler: Recycler,
        sink: Sink,
        nice: i32,
        catchup: Arc<Catchup>,
    ) -> anyhow::Result<Self> {
        let progress = Arc::new(Mutex::new(Progress::default()));
        let shared = Arc::clone(&progress);
        let (ready, started) = mpsc::sync_channel(0);
        let thread = std::thread::Builder::new()
            .name("assembler".into())
            .spawn(move || {
                let tid = current_tid();
                set_nice(tid, nice);
                catchup.set_assembler(tid, nice);
                let _ = ready.send(tid);
                run(&chunks, &drained, &recycler, sink, &shared, &catchup);
            })?;
        // Returns once the thread runs at its priority (the daemon says it
        // is recording after this).
        let tid = started.recv().unwrap_or(0);
        Ok(Self {
            progress,
            thread,
            tid,
        })
    }

    /// The latest counters.
    pub fn progress(&self) -> Progress {
        latest(&self.progress)
    }

    /// True when the thread ended (it only does once its input closes, or
    /// if it panicked).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the thread to assemble what is queued and close the sink
    /// (drop every sender first); returns the final counters.
    pub fn finish(self) -> anyhow::Result<Progress> {
        let Self {
            progress,
            thread,
            tid,
        } = self;
        // A stop must not wait for idle CPU: what is queued is written at
        // the default priority (a busy host would otherwise hold a service
        // stop until its timeout, and lose the backlog to the kill).
        if tid != 0 {
            set_nice(tid, 0);
        }
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the assembler thread panicked"))?;
        Ok(latest(&progress))
    }
}

fn latest(progress: &Mutex<Progress>) -> Progress {
    progress.lock().map(|p| p.clone()).unwrap_or_default()
}

fn run(
    chunks: &mpsc::Receiver<Vec<u8>>,
    drained: &Shared,
    recycler: &Recycler,
    mut sink: Sink,
    progress: &Mutex<Progress>,
    catchup: &Catchup,
) {
    let mut asm = Assembler::default();
    let mut last_tick = Instant::now();
    let take = |chunk: Vec<u8>, asm: &mut Assembler, sink: &mut Sink| {
        assemble_chunk(&chunk, drained, asm, sink);
        recycler.recycle(chunk);
    };
    loop {
        match chunks.recv_timeout(POLL) {
            Ok(chunk) => take(chunk, &mut asm, &mut sink),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(g) = catchup.wanted() {
            // Everything queued by now, then written where queries read.
            while let Ok(chunk) = chunks.try_recv() {
                take(chunk, &mut asm, &mut sink);
            }
            sink.flush();
            catchup.stored(g);
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            sink.tick();
            publish(progress, &asm, &sink);
        }
    }
    sink.close();
    publish(progress, &asm, &sink);
}

fn publish(progress: &Mutex<Progress>, asm: &Assembler, sink: &Sink) {
    if let Ok(mut p) = progress.lock() {
        p.assembled = asm.stats;
        p.store.clone_from(&sink.persist.stats);
    }
}

/// Assembles one chunk the drain thread copied out of the ring.
pub fn assemble_chunk(chunk: &[u8], shared: &Shared, asm: &mut Assembler, sink: &mut Sink) {
    shared
        .backlog
        .fetch_sub(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
    for rec in crate::drain::records(chunk) {
        asm.push(rec, &mut |ev| sink.write(ev));
    }
}

fn current_tid() -> libc::id_t {
    // SAFETY: a syscall without arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::id_t }
}

/// Sets a thread's niceness (per thread on Linux).
pub(crate) fn set_nice(tid: libc::id_t, nice: i32) {
    // SAFETY: a plain syscall on a thread of this process.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if r != 0 {
        tracing::warn!(
            "setting the assembler's niceness to {nice}: {}",
            std::io::Error::last_os_error()
        );
    }
}
