//! The daemon's write policy over the segment store: batching, fsync,
//! rotation, retention, crash recovery at start, and riding out a full or
//! failing disk (events are dropped and counted, writing resumes by itself).
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};
use tracer_proto as pb;
use tracer_store::{
    segment::{self, FORMAT_VERSION, SegmentWriter},
    store,
};

/// When file data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Never explicitly (the kernel writes back on its own).
    Never,
    /// When a segment is closed.
    #[default]
    Segment,
    /// After every batch frame.
    Batch,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub segment_bytes: u64,
    pub segment_age: Duration,
    pub retain_bytes: u64,
    pub retain_age: Duration,
    pub fsync: Fsync,
    /// A process's frame is written once this many of its events are
    /// waiting (and at every tick, 200 ms, whatever the count)...
    pub batch_events: usize,
    /// ...or once its waiting events hold about this many bytes (buffer
    /// data, and a little per event): a few reads of megabytes fill a frame
    /// long before thousands of events do. The segment writer splits what
    /// is still too big for one frame.
    pub batch_bytes: usize,
    pub zstd_level: i32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            segment_age: Duration::from_secs(60),
            retain_bytes: 1 << 30,
            retain_age: Duration::from_secs(7 * 24 * 3600),
            fsync: Fsync::Segment,
            batch_events: 8192,
            batch_bytes: 4 << 20,
            // Level 1 compresses the daemon's frames at about twice the
            // speed of 3, for a slightly bigger store: the assembler must
            // keep up with a syscall storm on one core.
            zstd_level: 1,
        }
    }
}

/// Counters reported in the daemon's status.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PersistStats {
    pub events_written: u64,
    pub frames_written: u64,
    pub bytes_written: u64,
    /// Events waiting for the next frame (not yet in the file).
    pub unflushed_events: u64,
    /// Events dropped because the store could not be written.
    pub events_dropped: u64,
    pub write_errors: u64,
    /// The store is not writable right now (disk full, I/O error).
    pub writing_suspended: bool,
    pub last_error: Option<String>,
    pub segments_closed: u64,
    pub segments_deleted: u64,
    /// Events left out because each alone is larger than a frame holds
    /// (also counted in `events_dropped`).
    pub events_too_large: u64,
    pub recovered_segments: u64,
}

pub struct Persist {
    dir: PathBuf,
    cfg: StoreConfig,
    header: pb::SegmentHeader,
    writer: Option<SegmentWriter>,
    opened: Instant,
    next_seq: u64,
    /// Events waiting for a frame, per process (looked up once per event:
    /// foldhash, where SipHash showed in profiles).
    pending: foldhash::HashMap<u32, Pending>,
    unflushed: u64,
    /// A failed segment to recover before writing again.
    damaged: Option<PathBuf>,
    pub stats: PersistStats,
}

/// One process's events waiting for a frame, and about how many bytes they
/// hold.
#[derive(Default)]
struct Pending {
    events: Vec<pb::Event>,
    bytes: usize,
}

/// Roughly what an event adds to a frame: its captured memory, plus a
/// constant for the rest. Cheap on purpose (no protobuf sizing pass): it
/// only decides when a batch is worth a frame, the writer bounds frames
/// exactly.
fn approx_bytes(ev: &pb::Event) -> usize {
    const FIXED: usize = 96;
    match &ev.kind {
        Some(pb::event::Kind::Syscall(s)) => {
            FIXED + s.buffers.iter().map(|b| b.data.len() + 16).sum::<usize>()
        }
        Some(pb::event::Kind::Exec(x)) => {
            FIXED
                + x.filename.len()
                + x.argv
                    .iter()
                    .chain(&x.envp)
                    .map(|a| a.len() + 2)
                    .sum::<usize>()
                + 10 * x.auxv.len()
        }
        _ => FIXED,
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Monotonic now: the clock of the kernel programs' timestamps.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What every segment's header says about this host.
pub fn host_header() -> pb::SegmentHeader {
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given.
    unsafe { libc::uname(&mut uts) };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let now_real = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64;
    let now_mono = monotonic_ns() as i64;
    let tsc = crate::tsc::relation();
    pb::SegmentHeader {
        format_version: FORMAT_VERSION,
        host_name: field(&uts.nodename),
        boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
        kernel_release: field(&uts.release),
        arch: field(&uts.machine),
        realtime_offset_ns: now_real - now_mono,
        daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
        segment_seq: 0,
        created_realtime_ns: now_real as u64,
        tsc_khz: tsc.khz,
        tsc_at_zero: tsc.at_zero,
    }
}

impl Persist {
    /// Opens the store in `dir`: recovers segments a crash left open.
    pub fn open(dir: &Path, cfg: StoreConfig) -> anyhow::Result<Self> {
        let mut stats = PersistStats::default();
        match store::remove_unfinished(dir) {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} segments a crash left without a header"),
            Err(e) => tracing::warn!("removing unfinished segments: {e}"),
        }
        let segments = store::list(dir)?;
        for s in segments.iter().filter(|s| s.index.is_none()) {
            match segment::recover(&s.path) {
                Ok(r) => {
                    stats.recovered_segments += 1;
                    tracing::info!(
                        "recovered {}: cut {} torn bytes, index {}, {} damaged frames",
                        s.path.display(),
                        r.truncated,
                        if r.index_rebuilt { "rebuilt" } else { "kept" },
                        r.damage.len()
                    );
                    for d in &r.damage {
                        tracing::warn!(
                            "{}: damaged frame at {}: {}",
                            s.path.display(),
                            d.offset,
                            d.error
                        );
                    }
                }
                Err(e) => tracing::error!(
                    "cannot recover {}: {e}; leaving it as it is",
                    s.path.display()
                ),
            }
        }
        let next_seq = segments.last().map(|s| s.seq + 1).unwrap_or(1);
        Ok(Self {
            dir: dir.to_owned(),
            cfg,
            header: host_header(),
            writer: None,
            opened: Instant::now(),
            next_seq,
            pending: Default::default(),
            unflushed: 0,
            damaged: None,
            stats,
        })
    }

    /// Queues an event. Events are batched per process, so that a query for
    /// one process reads only its own frames; a process's batch is written
    /// once it is full, and every batch at each tick.
    pub fn push(&mut self, ev: pb::Event) {
        let pid = ev.pid;
        let batch = self.pending.entry(pid).or_default();
        batch.bytes += approx_bytes(&ev);
        batch.events.push(ev);
        let full =
            batch.events.len() >= self.cfg.batch_events || batch.bytes >= self.cfg.batch_bytes;
        self.unflushed += 1;
        self.stats.unflushed_events = self.unflushed;
        if full {
            self.flush_pid(pid);
        }
    }

    fn fail(&mut self, what: &str, e: impl std::fmt::Display) {
        let msg = format!("{what}: {e}");
        if !self.stats.writing_suspended {
            tracing::error!("{msg}; dropping events until the store is writable again");
        }
        self.stats.writing_suspended = true;
        self.stats.write_errors += 1;
        self.stats.last_error = Some(msg);
        if let Some(w) = self.writer.take() {
            self.damaged = Some(w.path().to_owned());
        }
    }

    /// Writes every waiting batch, oldest first.
    pub fn flush(&mut self) {
        let mut pids: Vec<(u64, u32)> = self
            .pending
            .iter()
            .filter_map(|(pid, b)| b.events.first().map(|e| (e.seq, *pid)))
            .collect();
        pids.sort_unstable();
        for &(_, pid) in &pids {
            self.flush_pid(pid);
        }
        // Processes that went quiet (nothing since the last flush) do not
        // keep an empty slot forever; the others keep theirs, allocation
        // and all: growing a batch of thousands of events again after each
        // tick costs more than the events themselves.
        let flushed: std::collections::HashSet<u32> = pids.iter().map(|&(_, p)| p).collect();
        self.pending.retain(|pid, _| flushed.contains(pid));
    }

    /// Writes one process's waiting events as one frame (or several, when
    /// they are too big for one).
    fn flush_pid(&mut self, pid: u32) {
        let Some(mut batch) = self.pending.remove(&pid).filter(|b| !b.events.is_empty()) else {
            return;
        };
        let n = batch.events.len() as u64;
        self.unflushed -= n;
        self.stats.unflushed_events = self.unflushed;
        if self.writer.is_none() && !self.open_segment() {
            self.stats.events_dropped += n;
            return;
        }
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        let before = w.event_count();
        match w.append(&batch.events, self.cfg.zstd_level) {
            Ok(done) => {
                self.stats.events_written += done.events;
                self.stats.frames_written += done.frames;
                self.stats.bytes_written += done.bytes;
                if !done.too_large.is_empty() {
                    let k = done.too_large.len() as u64;
                    self.stats.events_too_large += k;
                    self.stats.events_dropped += k;
                    for t in &done.too_large {
                        tracing::error!(
                            "event {} of pid {} is {} bytes, more than a frame holds; not stored",
                            t.seq,
                            t.pid,
                            t.bytes
                        );
                    }
                }
                if self.stats.writing_suspended {
                    tracing::info!("the store is writable again");
                    self.stats.writing_suspended = false;
                }
                if self.cfg.fsync == Fsync::Batch
                    && let Err(e) = w.sync()
                {
                    self.fail("fsync", e);
                }
            }
            Err(e) => {
                // Frames written before the error hold their events.
                let written = w.event_count() - before;
                self.stats.events_written += written;
                self.fail("writing a frame", e);
                self.stats.events_dropped += n - written;
            }
        }
        // Reuse the allocation for the process's next batch.
        batch.events.clear();
        batch.bytes = 0;
        self.pending.insert(pid, batch);
    }

    fn open_segment(&mut self) -> bool {
        if let Some(p) = self.damaged.take()
            && let Err(e) = segment::recover(&p)
        {
            self.damaged = Some(p);
            self.fail("recovering the segment a write failed in", e);
            return false;
        }
        let path = store::segment_path(&self.dir, self.next_seq);
        let header = pb::SegmentHeader {
            segment_seq: self.next_seq,
            ..self.header.clone()
        };
        match SegmentWriter::create(&path, &header) {
            Ok(w) => {
                self.next_seq += 1;
                self.writer = Some(w);
                self.opened = Instant::now();
                true
            }
            Err(e) => {
                // The file may exist half-made: try the next name next time.
                if path.exists() {
                    self.next_seq += 1;
                    self.damaged = Some(path);
                }
                self.fail("creating a segment", e);
                false
            }
        }
    }

    /// Closes the open segment (index, trailer, fsync).
    pub fn rotate(&mut self) {
        self.flush();
        if let Some(w) = self.writer.take() {
            let path = w.path().to_owned();
            match w.close() {
                Ok(_) => self.stats.segments_closed += 1,
                Err(e) => {
                    self.damaged = Some(path);
                    self.fail("closing a segment", e);
                }
            }
        }
    }

    /// Periodic work: a frame at least every tick, rotation, retention.
    pub fn tick(&mut self) {
        self.flush();
        let rotate = self.writer.as_ref().is_some_and(|w| {
            w.len() >= self.cfg.segment_bytes
                || (self.opened.elapsed() >= self.cfg.segment_age && !w.is_empty())
        });
        if rotate {
            self.rotate();
            self.retention();
        }
    }

    /// Deletes the oldest closed segments beyond the byte and age limits.
    pub fn retention(&mut self) {
        let Ok(segments) = store::list(&self.dir) else {
            return;
        };
        let open = self.writer.as_ref().map(|w| w.path().to_owned());
        let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
        let now = SystemTime::now();
        for s in &segments {
            if Some(&s.path) == open.as_ref() || s.index.is_none() {
                continue;
            }
            let age = std::fs::metadata(&s.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if total <= self.cfg.retain_bytes && age <= self.cfg.retain_age {
                break;
            }
            match std::fs::remove_file(&s.path) {
                Ok(()) => {
                    total -= s.bytes;
                    self.stats.segments_deleted += 1;
                }
                Err(e) => tracing::warn!("retention: removing {}: {e}", s.path.display()),
            }
        }
    }

    /// Flushes and closes on shutdown.
    pub fn close(&mut self) {
        self.rotate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64) -> pb::Event {
        pb::Event {
            seq,
            pid: 1,
            ts_ns: seq,
            ..Default::default()
        }
    }

    #[test]
    fn writes_rotates_and_keeps_within_limits() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            segment_bytes: 2000,
            retain_bytes: 6000,
            batch_events: 10,
            ..Default::default()
        };
        let mut p = Persist::open(dir.path(), cfg).unwrap();
        for i in 0..5000 {
            p.push(ev(i));
            if i % 50 == 0 {
                p.tick();
            }
        }
        p.close();
        let segs = store::list(dir.path()).unwrap();
        assert!(p.stats.segments_closed > 3);
        assert!(p.stats.segments_deleted > 0, "{:?}", p.stats);
        let total: u64 = segs.iter().map(|s| s.bytes).sum();
        assert!(
            total <= 6000 + 2000 + 4096,
            "retention keeps the store near its limit: {total}"
        );
        assert!(
            segs.iter().all(|s| s.index.is_some()),
            "every segment is closed"
        );
        // The newest events survive.
        let r = store::query(dir.path(), &Default::default()).unwrap();
        assert_eq!(r.events.last().unwrap().seq, 4999);
    }

    /// Incompressible bytes, so that zstd cannot hide a batch's size.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn read_of(seq: u64, len: usize) -> pb::Event {
        pb::Event {
            seq,
            pid: 1,
            ts_ns: seq,
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                nr: 0,
                ret: len as i64,
                buffers: vec![pb::Buffer {
                    arg: 1,
                    direction: pb::Direction::Out as i32,
                    data: noise(seq, len),
                    total_len: len as u64,
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    /// The case: 900 reads of 128 KiB from one process, between
    /// two ticks. Batched by count only, they made one 115 MB frame that
    /// the reader refused; by bytes they are frames of a few MiB.
    #[test]
    fn many_large_reads_make_frames_of_a_few_mib_all_readable() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Persist::open(dir.path(), StoreConfig::default()).unwrap();
        for i in 0..900 {
            p.push(read_of(i, 128 << 10));
        }
        p.close();
        assert_eq!(p.stats.events_written, 900);
        assert_eq!(p.stats.events_dropped, 0);
        assert!(p.stats.frames_written >= 25, "{:?}", p.stats);
        let r = store::query(
            dir.path(),
            &store::Query {
                pids: vec![1],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(r.damage.is_empty(), "{:?}", r.damage);
        assert_eq!(r.events.len(), 900);
        assert!(r.events == (0..900).map(|i| read_of(i, 128 << 10)).collect::<Vec<_>>());
        for seg in store::list(dir.path()).unwrap() {
            let s = segment::scan(&seg.path).unwrap();
            let mut at = segment::MAGIC.len();
            let data = std::fs::read(&seg.path).unwrap();
            while let Ok(f) = tracer_store::frame::decode(&data[at..]) {
                assert!(f.size < 6 << 20, "a frame of {} bytes", f.size);
                at += f.size;
            }
            assert!(s.damage.is_empty());
        }
    }

    #[test]
    fn an_unwritable_directory_drops_and_counts_then_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Persist::open(dir.path(), StoreConfig::default()).unwrap();
        p.push(ev(1));
        p.flush();
        p.rotate();
        // Make new segments impossible: a file where the directory was.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        std::fs::write(dir.path(), b"not a dir").unwrap();
        p.push(ev(2));
        p.flush();
        assert!(p.stats.writing_suspended);
        assert_eq!(p.stats.events_dropped, 1);
        std::fs::remove_file(dir.path()).unwrap();
        std::fs::rename(&moved, dir.path()).unwrap();
        p.push(ev(3));
        p.flush();
        assert!(!p.stats.writing_suspended, "resumes by itself");
        p.close();
        let r = store::query(dir.path(), &Default::default()).unwrap();
        assert_eq!(
            r.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }
}
