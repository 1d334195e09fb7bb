//! Drains the BPF ring buffer on its own thread.
//!
//! Assembling, encoding and compressing events costs several times more per
//! record than the kernel spends producing it, so a burst (a syscall storm)
//! would fill the ring while the assembler is busy with them. This thread
//! only copies records out of the ring into chunks of user memory (a few
//! tens of ns per record) and hands the chunks to the assembler thread
//! (`assembly`), which takes them at its own pace: the ring stays nearly
//! empty, and the backlog lives in user memory, bounded by [`BACKLOG_BYTES`]. Past that
//! bound records are dropped here and counted (per process, like the
//! kernel's losses): loss is never silent.
use std::{
    collections::HashMap,
    os::fd::AsRawFd,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
};

use aya::maps::{MapData, RingBuf};
use std::sync::mpsc;
use tracer_common::wire::{BatchHeader, BufferHeader, RecordKind, SyscallRecord, TaskRecord};

/// Most bytes of copied records waiting for the assembler.
pub const BACKLOG_BYTES: u64 = 1 << 30;
/// A chunk is handed over once the next record would not fit in this much
/// (or the ring is empty).
const CHUNK_BYTES: usize = 256 << 10;
/// Assembled chunks kept for reuse, at most (touching fresh memory costs
/// more than copying records into it: the kernel zeroes every new page, and
/// on a VM the host may have to back it first; measured here at about
/// 2 ms per MiB, when copying a MiB of records takes a tenth of that). A
/// burst that grows the backlog leaves its chunks here for the next one...
const POOL_CHUNKS: usize = 1024;
/// ...until the daemon has been idle (empty ring, empty backlog) for this
/// many polls of the ring (10 ms each), when the pool shrinks back to
/// [`POOL_IDLE_CHUNKS`], so that a quiet host does not keep a burst's
/// memory.
const IDLE_POLLS: u32 = 500;
const POOL_IDLE_CHUNKS: u64 = 64;

/// Counters the drain thread shares with the runtime.
#[derive(Default)]
pub struct Shared {
    /// Bytes sent and not yet taken by the assembler.
    pub backlog: AtomicU64,
    /// Records dropped because the backlog was full.
    pub dropped: AtomicU64,
    /// The same, per process (tgid, or tid for buffer records).
    pub dropped_by_pid: Mutex<HashMap<u32, u64>>,
    /// Chunks waiting in the pool for reuse.
    pub pooled: AtomicU64,
    /// Passes over the ring finished (everything read and sent), for
    /// queries that wait for the recorder to catch up (`catchup`).
    pub passes: AtomicU64,
}

pub struct Drainer {
    pub shared: Arc<Shared>,
    /// For chunks that do not come from the ring (what the CPUs had staged
    /// when the programs were detached); dropped by `finish`.
    tx: Option<mpsc::Sender<Vec<u8>>>,
    /// Assembled chunks going back to the drain thread for reuse.
    pool: mpsc::SyncSender<Vec<u8>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Appends one record to a chunk: its little-endian `u32` length, then the
/// record, given in parts (a header and its data need not be joined first).
pub fn frame(chunk: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    chunk.extend_from_slice(&(len as u32).to_le_bytes());
    for p in parts {
        chunk.extend_from_slice(p);
    }
}

/// Records of a chunk, as [`frame`] wrote them.
pub fn records(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = chunk;
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let rec = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(rec)
    })
}

/// The process a record belongs to, for loss attribution.
fn owner(rec: &[u8]) -> u32 {
    let word = |at: usize| {
        rec.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    };
    match word(0) {
        1 | 3 => word(std::mem::offset_of!(SyscallRecord, pid)),
        2 => word(std::mem::offset_of!(BufferHeader, tid)),
        // A batch starts with a Task record, which names the process.
        4 if word(size_of::<BatchHeader>()) & 0xffff == RecordKind::Task as u32 => {
            word(size_of::<BatchHeader>() + std::mem::offset_of!(TaskRecord, pid))
        }
        _ => 0,
    }
}

impl Drainer {
    /// Starts the thread; the receiver gets its chunks, in ring order.
    pub fn spawn(ring: RingBuf<MapData>) -> anyhow::Result<(Self, mpsc::Receiver<Vec<u8>>)> {
        let (tx, rx) = mpsc::channel();
        let own_tx = tx.clone();
        let (pool, pool_rx) = mpsc::sync_channel(POOL_CHUNKS);
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("ring-drain".into())
                .spawn(move || run(ring, tx, &pool_rx, &shared, &stop))?
        };
        let drainer = Self {
            shared,
            tx: Some(own_tx),
            pool,
            stop,
            thread: Some(thread),
        };
        Ok((drainer, rx))
    }

    /// What the assembler gives chunks back through.
    pub fn recycler(&self) -> Recycler {
        Recycler {
            pool: self.pool.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops the thread after a last pass over the ring (call once the
    /// programs are detached); what it sent stays queued. `last` (records
    /// framed as in a chunk, made once the thread has stopped) is queued
    /// after it, and the channel then closes.
    pub fn finish(&mut self, last: impl FnOnce() -> Vec<u8>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.inject(last());
        self.tx = None;
    }

    /// Queues records the daemon made (framed as in a chunk) behind what
    /// the thread has sent so far.
    pub fn inject(&self, chunk: Vec<u8>) {
        if let Some(i) = self.injector() {
            i.inject(chunk);
        }
    }

    /// A handle another thread queues its records through. The channel
    /// closes only once every handle is dropped: drop them before `finish`.
    pub fn injector(&self) -> Option<Injector> {
        Some(Injector {
            tx: self.tx.clone()?,
            shared: Arc::clone(&self.shared),
        })
    }
}

/// Queues records the daemon made behind what the drain thread has sent.
pub struct Injector {
    tx: mpsc::Sender<Vec<u8>>,
    shared: Arc<Shared>,
}

impl Injector {
    pub fn inject(&self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        // The assembler subtracts every chunk from the backlog.
        self.shared
            .backlog
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let _ = self.tx.send(chunk);
    }
}

/// Gives assembled chunks back to the drain thread for reuse.
pub struct Recycler {
    pool: mpsc::SyncSender<Vec<u8>>,
    shared: Arc<Shared>,
}

impl Recycler {
    /// Dropped when the pool is full, or when it is one of the daemon's own
    /// small chunks (a drain chunk never grows, so it must start big).
    pub fn recycle(&self, chunk: Vec<u8>) {
        if chunk.capacity() >= CHUNK_BYTES && self.pool.try_send(chunk).is_ok() {
            self.shared.pooled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn run(
    mut ring: RingBuf<MapData>,
    tx: mpsc::Sender<Vec<u8>>,
    pool: &mpsc::Receiver<Vec<u8>>,
    shared: &Shared,
    stop: &AtomicBool,
) {
    let fd = ring.as_raw_fd();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    let mut idle: u32 = 0;
    loop {
        let last = stop.load(Ordering::SeqCst);
        idle = idle.saturating_add(1);
        // Everything queued now, in chunks.
        while let Some(item) = ring.next() {
            idle = 0;
            let rec: &[u8] = &item;
            if shared.backlog.load(Ordering::Relaxed) + buf.len() as u64 > BACKLOG_BYTES {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut m) = shared.dropped_by_pid.lock() {
                    *m.entry(owner(rec)).or_default() += 1;
                }
                continue;
            }
            // A chunk never grows: a bigger one would be fresh memory, which
            // costs more to touch than the copy itself.
            if buf.len() + 4 + rec.len() > buf.capacity()
                && !buf.is_empty()
                && !send(&tx, pool, shared, &mut buf)
            {
                return;
            }
            frame(&mut buf, &[rec]);
            drop(item);
        }
        if !buf.is_empty() && !send(&tx, pool, shared, &mut buf) {
            return;
        }
        shared.passes.fetch_add(1, Ordering::SeqCst);
        if last {
            return;
        }
        if idle > IDLE_POLLS && shared.backlog.load(Ordering::Relaxed) == 0 {
            while shared.pooled.load(Ordering::Relaxed) > POOL_IDLE_CHUNKS {
                if pool.try_recv().is_err() {
                    break;
                }
                shared.pooled.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd. The timeout bounds how late the stop
        // flag and records queued without a wakeup are seen.
        unsafe { libc::poll(&mut p, 1, 10) };
    }
}

fn send(
    tx: &mpsc::Sender<Vec<u8>>,
    pool: &mpsc::Receiver<Vec<u8>>,
    shared: &Shared,
    buf: &mut Vec<u8>,
) -> bool {
    let next = match pool.try_recv() {
        Ok(mut v) => {
            shared.pooled.fetch_sub(1, Ordering::Relaxed);
            v.clear();
            v
        }
        Err(_) => Vec::with_capacity(CHUNK_BYTES),
    };
    let chunk = std::mem::replace(buf, next);
    shared
        .backlog
        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    tx.send(chunk).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_stop_at_a_torn_end() {
        let mut c = vec![];
        for r in [&b"abc"[..], b"", b"12345678"] {
            frame(&mut c, &[r]);
        }
        let v: Vec<&[u8]> = records(&c).collect();
        assert_eq!(v, vec![&b"abc"[..], b"", b"12345678"]);
        c.extend_from_slice(&9u32.to_le_bytes());
        c.extend_from_slice(b"short");
        assert_eq!(records(&c).count(), 3);
    }

    #[test]
    fn owner_reads_pid_or_tid() {
        let mut r = vec![0u8; 136];
        r[0] = 1;
        r[96..100].copy_from_slice(&42u32.to_le_bytes());
        assert_eq!(owner(&r), 42);
        r[0] = 2;
        r[4..8].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(owner(&r), 7);
        assert_eq!(owner(&[1, 0]), 0);
        // A batch: its first Task record's pid; a torn one names nobody.
        let mut b = vec![0u8; 8 + 48];
        b[0] = 4;
        b[8] = 6;
        b[16..20].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(owner(&b), 99);
        assert_eq!(owner(&b[..12]), 0);
        b[8] = 5;
        assert_eq!(owner(&b), 0);
    }
}
