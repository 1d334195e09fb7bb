//! A store directory: segments named by sequence number, read through their
//! indexes so that queries skip segments that cannot match.
use std::path::{Path, PathBuf};

use tracer_proto as pb;

use crate::segment::{self, Damage, SegmentError};

/// `seg-<16 digit sequence>.tseg`
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("seg-{seq:016}.tseg"))
}

fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".tseg")?
        .parse()
        .ok()
}

/// One segment of a store.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
    /// From the trailer; `None` for the open segment (or one needing
    /// recovery).
    pub index: Option<pb::SegmentIndex>,
}

/// Whether `e` says the segment file is gone: retention deleted it after
/// it was listed. Its events went with it; a reader skips it.
pub fn is_gone(e: &SegmentError) -> bool {
    matches!(e, SegmentError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Segment files of `dir` by name, oldest first; nothing is read.
fn names(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SegmentError> {
    let io = |source| SegmentError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if let Some(seq) = name.to_str().and_then(seq_of) {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|s| s.0);
    Ok(out)
}

/// Removes segments a crash or a failed write left before their header
/// was written (`segment::unfinished_path`: they hold no events); returns
/// how many.
pub fn remove_unfinished(dir: &Path) -> Result<usize, SegmentError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SegmentError::Io { path, source }
    };
    let mut n = 0;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let unfinished = name
            .to_str()
            .and_then(|n| n.strip_suffix(".new"))
            .and_then(seq_of)
            .is_some();
        if unfinished {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&entry.path())(e)),
            }
        }
    }
    Ok(n)
}

/// A listed segment's size and index, or `None` when it is gone.
fn info(seq: u64, path: PathBuf) -> Result<Option<SegmentInfo>, SegmentError> {
    let bytes = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SegmentError::Io { path, source }),
    };
    let index = match segment::read_index(&path) {
        Ok(i) => i,
        Err(e) if is_gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(SegmentInfo {
        seq,
        path,
        bytes,
        index,
    }))
}

/// The segments of `dir`, oldest first (those deleted while it ran are
/// left out).
pub fn list(dir: &Path) -> Result<Vec<SegmentInfo>, SegmentError> {
    let mut out = Vec::new();
    for (seq, path) in names(dir)? {
        out.extend(info(seq, path)?);
    }
    Ok(out)
}

/// Most times a walk lists the directory again for segments made while it
/// ran; only a writer rotating faster than a reader reads meets it.
const WALK_ROUNDS: usize = 64;

/// Visits every segment of `dir`, oldest first, while the daemon rotates
/// and deletes under it: a segment deleted after it was listed is skipped
/// (`visit` may meet that too: `is_gone`), and once the listed ones are
/// done the directory is listed again for segments made meanwhile. So a
/// reader never fails on a segment retention removed, and never misses
/// events that moved on to a newer segment while it read an older one
/// (a running process whose older segments went is still found).
/// `visit` returns false to stop. Returns the count of segments skipped as
/// gone.
fn walk(
    dir: &Path,
    mut visit: impl FnMut(SegmentInfo) -> Result<bool, SegmentError>,
) -> Result<usize, SegmentError> {
    let mut gone = 0;
    let mut done: Option<u64> = None;
    for _ in 0..WALK_ROUNDS {
        let fresh: Vec<(u64, PathBuf)> = names(dir)?
            .into_iter()
            .filter(|(seq, _)| done.is_none_or(|d| *seq > d))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for (seq, path) in fresh {
            done = Some(seq);
            let Some(seg) = info(seq, path)? else {
                gone += 1;
                continue;
            };
            match visit(seg) {
                Ok(true) => {}
                Ok(false) => return Ok(gone),
                Err(e) if is_gone(&e) => gone += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(gone)
}

/// Which events a query wants. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Processes (by pid; all their threads).
    pub pids: Vec<u32>,
    /// Monotonic time range, inclusive.
    pub since_ns: Option<u64>,
    pub until_ns: Option<u64>,
    /// Syscall numbers; when set, only syscall events are returned.
    pub syscalls: Vec<i64>,
}

impl Query {
    /// Whether a segment with this index can hold a match.
    pub fn may_match(&self, idx: &pb::SegmentIndex) -> bool {
        if self.since_ns.is_some_and(|t| idx.last_ns < t)
            || self.until_ns.is_some_and(|t| idx.first_ns > t)
        {
            return false;
        }
        if !self.pids.is_empty()
            && !idx
                .processes
                .iter()
                .any(|p| p.key.is_some_and(|k| self.pids.contains(&k.pid)))
        {
            return false;
        }
        if !self.syscalls.is_empty() && !idx.syscalls.iter().any(|c| self.syscalls.contains(&c.nr))
        {
            return false;
        }
        true
    }

    pub fn matches(&self, e: &pb::Event) -> bool {
        if !self.pids.is_empty() && !self.pids.contains(&e.pid) {
            return false;
        }
        if self.since_ns.is_some_and(|t| e.ts_ns < t) || self.until_ns.is_some_and(|t| e.ts_ns > t)
        {
            return false;
        }
        if !self.syscalls.is_empty() {
            return matches!(&e.kind, Some(pb::event::Kind::Syscall(s)) if self.syscalls.contains(&s.nr));
        }
        true
    }
}

/// Events that matched, and any damage met on the way.
#[derive(Debug, Default)]
pub struct QueryResult {
    pub events: Vec<pb::Event>,
    pub damage: Vec<(PathBuf, Damage)>,
    pub segments_read: usize,
    pub segments_skipped: usize,
    /// Segments retention deleted while the query ran (their events are
    /// no longer in the store).
    pub segments_gone: usize,
}

/// Runs a query over the store in `dir`, oldest segment first.
pub fn query(dir: &Path, q: &Query) -> Result<QueryResult, SegmentError> {
    let mut events = Vec::new();
    let mut r = query_each(dir, q, |batch| {
        events.extend(batch);
        true
    })?;
    r.events = events;
    Ok(r)
}

/// Runs a query, handing matching events to `each` a batch at a time
/// (memory stays bounded by one segment's matches for one process set);
/// `each` returns false to stop early. The result carries no events.
pub fn query_each(
    dir: &Path,
    q: &Query,
    mut each: impl FnMut(Vec<pb::Event>) -> bool,
) -> Result<QueryResult, SegmentError> {
    let mut r = QueryResult::default();
    r.segments_gone = walk(dir, |seg| {
        if seg.index.as_ref().is_some_and(|i| !q.may_match(i)) {
            r.segments_skipped += 1;
            return Ok(true);
        }
        r.segments_read += 1;
        // With an index and a pid filter, read only those processes' frames.
        if let (Some(idx), false) = (&seg.index, q.pids.is_empty()) {
            let mut offsets: Vec<u64> = idx
                .processes
                .iter()
                .filter(|p| p.key.is_some_and(|k| q.pids.contains(&k.pid)))
                .flat_map(|p| p.frame_offsets.iter().copied())
                .collect();
            offsets.sort_unstable();
            offsets.dedup();
            let mut go_on = true;
            let damage = if q.pids.len() == 1 {
                // One process: its frames are in the order it made events.
                segment::for_each_batch(&seg.path, &offsets, |b| {
                    let m: Vec<pb::Event> = b.into_iter().filter(|e| q.matches(e)).collect();
                    go_on = m.is_empty() || each(m);
                    go_on
                })?
            } else {
                // Frames of several processes interleave: restore the order
                // the daemon received events in, per segment.
                let mut all = Vec::new();
                let d = segment::for_each_batch(&seg.path, &offsets, |b| {
                    all.extend(b.into_iter().filter(|e| q.matches(e)));
                    true
                })?;
                all.sort_by_key(|e| e.seq);
                go_on = all.is_empty() || each(all);
                d
            };
            r.damage
                .extend(damage.into_iter().map(|d| (seg.path.clone(), d)));
            return Ok(go_on);
        }
        // No index (the open segment): scan it, batch by batch.
        let mut go_on = true;
        let scanned = segment::scan_each(&seg.path, &mut |batch, _| {
            let m: Vec<pb::Event> = batch.into_iter().filter(|e| q.matches(e)).collect();
            go_on = m.is_empty() || each(m);
            go_on
        });
        match scanned {
            Ok(s) => r
                .damage
                .extend(s.damage.into_iter().map(|d| (seg.path.clone(), d))),
            // A file that is not a segment at all is reported, not fatal.
            Err(e @ (SegmentError::BadMagic { .. } | SegmentError::NoHeader { .. })) => {
                r.damage.push((
                    seg.path.clone(),
                    Damage {
                        offset: 0,
                        error: e.to_string(),
                    },
                ));
            }
            Err(e) => return Err(e),
        }
        Ok(go_on)
    })?;
    Ok(r)
}

/// Per-syscall counts and errno counts, for one process or the host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyscallStats {
    pub count: u64,
    pub errors: std::collections::BTreeMap<i32, u64>,
    /// Latency histogram: bucket i counts calls of [2^i, 2^(i+1)) ns.
    pub latency_log2: Vec<u64>,
}

impl SyscallStats {
    /// The API's row for syscall `nr` (named `name`).
    pub fn to_proto(&self, nr: i64, name: &str) -> pb::SyscallStat {
        pb::SyscallStat {
            nr,
            name: name.to_owned(),
            count: self.count,
            errors: self.errors.iter().map(|(k, v)| (*k, *v)).collect(),
            p50_ns: self.percentile_ns(0.5).unwrap_or(0),
            p90_ns: self.percentile_ns(0.9).unwrap_or(0),
            p99_ns: self.percentile_ns(0.99).unwrap_or(0),
        }
    }

    /// Upper bound (ns) of the bucket holding quantile `q` (0..1), if any
    /// latency was recorded.
    pub fn percentile_ns(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency_log2.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.latency_log2.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(1u64 << i.min(63));
            }
        }
        None
    }
}

/// A segment's index: from its trailer, or built by scanning it (the open
/// segment); `None` for a file that is not a readable segment.
fn index_of(seg: SegmentInfo) -> Option<pb::SegmentIndex> {
    if seg.index.is_some() {
        return seg.index;
    }
    let mut b = crate::index::IndexBuilder::default();
    segment::scan_each(&seg.path, &mut |batch, at| {
        b.add_batch(&batch, at);
        true
    })
    .ok()?;
    Some(b.build())
}

/// Process summaries of every segment (oldest first; a process spanning
/// segments appears once per segment).
pub fn processes(dir: &Path) -> Result<Vec<pb::ProcessSummary>, SegmentError> {
    let mut out = Vec::new();
    walk(dir, |seg| {
        out.extend(index_of(seg).into_iter().flat_map(|i| i.processes));
        Ok(true)
    })?;
    Ok(out)
}

/// Statistics of the store (or of one pid), from segment indexes; segments
/// without an index (the open one) are indexed on the fly.
pub fn stats(
    dir: &Path,
    pid: Option<u32>,
) -> Result<std::collections::BTreeMap<i64, SyscallStats>, SegmentError> {
    let mut out: std::collections::BTreeMap<i64, SyscallStats> = Default::default();
    let mut add = |counts: &[pb::SyscallCount]| {
        for c in counts {
            let e = out.entry(c.nr).or_default();
            e.count += c.count;
            for (errno, n) in &c.errors {
                *e.errors.entry(*errno).or_default() += n;
            }
            if e.latency_log2.len() < c.latency_log2.len() {
                e.latency_log2.resize(c.latency_log2.len(), 0);
            }
            for (i, n) in c.latency_log2.iter().enumerate() {
                e.latency_log2[i] += n;
            }
        }
    };
    walk(dir, |seg| {
        let Some(idx) = index_of(seg) else {
            return Ok(true);
        };
        match pid {
            None => add(&idx.syscalls),
            Some(p) => {
                for proc_ in idx
                    .processes
                    .iter()
                    .filter(|x| x.key.is_some_and(|k| k.pid == p))
                {
                    add(&proc_.syscalls);
                }
            }
        }
        Ok(true)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::SegmentWriter;

    fn ev(pid: u32, ts: u64, nr: i64) -> pb::Event {
        pb::Event {
            pid,
            tid: pid,
            ts_ns: ts,
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                nr,
                ret: 0,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn queries_skip_segments_by_index() {
        let dir = tempfile::tempdir().unwrap();
        for (seq, pid) in [(1u64, 10u32), (2, 20), (3, 10)] {
            let mut w =
                SegmentWriter::create(&segment_path(dir.path(), seq), &Default::default()).unwrap();
            w.append(&[ev(pid, seq * 100, 0), ev(pid, seq * 100 + 1, 1)], 1)
                .unwrap();
            w.close().unwrap();
        }
        std::fs::write(dir.path().join("unrelated.txt"), b"x").unwrap();
        let r = query(
            dir.path(),
            &Query {
                pids: vec![10],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.events.len(), 4);
        assert_eq!((r.segments_read, r.segments_skipped), (2, 1));
        let r = query(
            dir.path(),
            &Query {
                since_ns: Some(250),
                syscalls: vec![1],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            r.events.iter().map(|e| e.ts_ns).collect::<Vec<_>>(),
            vec![301]
        );
        assert_eq!(r.segments_skipped, 2);
    }

    /// A writer rotating and deleting segments as fast as it can (a ring
    /// of at most three segments, the oldest deleted each time a new one
    /// opens), while readers query, list processes and count: none fails,
    /// and the process that is in every segment is always found.
    #[test]
    fn readers_never_fail_while_segments_rotate_and_go() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let rounds = std::sync::atomic::AtomicU64::new(0);
        // Set once a whole segment is there, with pid 1 in it.
        let ready = AtomicBool::new(false);
        std::thread::scope(|s| {
            let d = dir.path();
            s.spawn(|| {
                let mut seq = 1u64;
                let mut ts = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut w =
                        SegmentWriter::create(&segment_path(d, seq), &Default::default()).unwrap();
                    for _ in 0..20 {
                        // Pid 1 in every frame; others come and go.
                        let evs = [ev(1, ts, 0), ev(2 + (ts % 5) as u32, ts + 1, 1)];
                        w.append(&evs, 1).unwrap();
                        ts += 2;
                    }
                    // The oldest goes while this one is still open, as
                    // retention runs right after a rotation.
                    if seq > 2 {
                        std::fs::remove_file(segment_path(d, seq - 2)).unwrap();
                    }
                    w.close().unwrap();
                    ready.store(true, Ordering::Release);
                    seq += 1;
                }
            });
            let reader = |kind: usize| {
                let d = dir.path();
                while !ready.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                while !stop.load(Ordering::Relaxed) {
                    match kind {
                        0 => {
                            let r = query(
                                d,
                                &Query {
                                    pids: vec![1],
                                    ..Default::default()
                                },
                            )
                            .unwrap_or_else(|e| panic!("query failed: {e}"));
                            assert!(r.damage.is_empty(), "{:?}", r.damage);
                        }
                        1 => {
                            let p = processes(d).unwrap_or_else(|e| panic!("processes: {e}"));
                            let found = p.iter().any(|p| p.key.is_some_and(|k| k.pid == 1));
                            assert!(found, "pid 1 is in every segment, and was not found");
                        }
                        _ => {
                            stats(d, Some(1)).unwrap_or_else(|e| panic!("stats: {e}"));
                            query(d, &Query::default())
                                .unwrap_or_else(|e| panic!("query all: {e}"));
                        }
                    }
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
            };
            let readers: Vec<_> = (0..3).map(|k| s.spawn(move || reader(k))).collect();
            std::thread::sleep(std::time::Duration::from_secs(4));
            stop.store(true, Ordering::Relaxed);
            for r in readers {
                if let Err(e) = r.join() {
                    stop.store(true, Ordering::Relaxed);
                    std::panic::resume_unwind(e);
                }
            }
        });
        assert!(rounds.load(std::sync::atomic::Ordering::Relaxed) > 10);
    }
}
