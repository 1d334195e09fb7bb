//! One segment file: magic, a header frame, batch frames, and (once closed)
//! an index frame.
use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

use prost::Message as _;
use thiserror::Error;
use tracer_proto as pb;

use crate::{
    frame::{self, FrameError, Kind},
    index::IndexBuilder,
};

/// First bytes of every segment file; the last byte is the format version.
pub const MAGIC: &[u8; 8] = b"TRCSEG\x00\x01";
/// Last 16 bytes of a closed segment: the index frame's offset (u64 LE),
/// then this magic. Lets a reader find the index without a scan.
pub const TRAILER_MAGIC: &[u8; 8] = b"TRCINDEX";
pub const TRAILER: usize = 16;
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum SegmentError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a tracer segment (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("{path}: no header frame")]
    NoHeader { path: PathBuf },
    #[error("{path}: a batch compressed to {bytes} bytes, over the frame limit")]
    FrameTooLarge { path: PathBuf, bytes: usize },
}

/// What `SegmentWriter::append` wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Bytes added to the file.
    pub bytes: u64,
    pub frames: u64,
    pub events: u64,
    /// Events left out: each alone encodes to more than a frame holds.
    pub too_large: Vec<TooLarge>,
}

/// An event too large for any frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub pid: u32,
    pub seq: u64,
    /// Its encoded size.
    pub bytes: usize,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SegmentError + '_ {
    move |source| SegmentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Appends frames to a new segment.
pub struct SegmentWriter {
    file: File,
    path: PathBuf,
    len: u64,
    index: IndexBuilder,
    scratch: Vec<u8>,
    /// The encoded batch before compression (kept: a batch is megabytes).
    raw: Vec<u8>,
    packed: Vec<u8>,
    /// One compression context for the segment's frames, with its level
    /// (making a context per frame showed in profiles).
    zstd: Option<(i32, zstd::bulk::Compressor<'static>)>,
}

impl SegmentWriter {
    /// Creates `path` (which must not exist) with its header frame. The
    /// file is made under `unfinished_path(path)` and renamed into place
    /// once its header is written, so that a reader listing the store never
    /// meets a segment without one (which it would have to report as
    /// damage).
    pub fn create(path: &Path, header: &pb::SegmentHeader) -> Result<Self, SegmentError> {
        if path.exists() {
            return Err(SegmentError::Io {
                path: path.to_owned(),
                source: io::ErrorKind::AlreadyExists.into(),
            });
        }
        let tmp = unfinished_path(path);
        // One left by a crash or a failed write holds no events.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&tmp)(e)),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let mut buf = MAGIC.to_vec();
        frame::encode(Kind::Header, &header.encode_to_vec(), &mut buf);
        let made = file
            .write_all(&buf)
            .map_err(io_err(&tmp))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(io_err(path)));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            len: buf.len() as u64,
            index: IndexBuilder::default(),
            scratch: Vec::new(),
            raw: Vec::new(),
            packed: Vec::new(),
            zstd: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.index.event_count() == 0
    }

    /// Events written so far.
    pub fn event_count(&self) -> u64 {
        self.index.event_count()
    }

    /// Compresses and appends `events` as one batch frame, or as several
    /// when one would hold more than `frame::MAX_RAW` encoded bytes: no
    /// frame is ever one the reader refuses, whatever the batch. An event
    /// that alone is over that bound is not written (it is reported in the
    /// result; the eBPF side cannot make one). On error the file may hold a
    /// torn frame, which recovery truncates.
    pub fn append(&mut self, events: &[pb::Event], level: i32) -> Result<Appended, SegmentError> {
        let mut raw = std::mem::take(&mut self.raw);
        let mut done = Appended::default();
        let mut too_large = Vec::new();
        let r = for_each_run(
            events,
            frame::MAX_RAW,
            usize::MAX,
            &mut raw,
            |run, raw| {
                done.bytes += self.write_frame(run, raw, level)?;
                done.frames += 1;
                done.events += run.len() as u64;
                Ok(())
            },
            |e, bytes| {
                too_large.push(TooLarge {
                    pid: e.pid,
                    seq: e.seq,
                    bytes,
                })
            },
        );
        self.raw = raw;
        done.too_large = too_large;
        r.map(|()| done)
    }

    /// Compresses one run's encoded batch (`raw`, at most `MAX_RAW` bytes)
    /// and appends it as a frame; returns the frame's size.
    fn write_frame(
        &mut self,
        events: &[pb::Event],
        raw: &[u8],
        level: i32,
    ) -> Result<u64, SegmentError> {
        let z = match &mut self.zstd {
            Some((l, z)) if *l == level => z,
            slot => {
                let z = zstd::bulk::Compressor::new(level).map_err(io_err(&self.path))?;
                &mut slot.insert((level, z)).1
            }
        };
        // Into a kept buffer: a fresh one per frame is megabytes of new
        // pages for the kernel to zero each time.
        self.packed.clear();
        self.packed
            .reserve(zstd::zstd_safe::compress_bound(raw.len()));
        z.compress_to_buffer(raw, &mut self.packed)
            .map_err(io_err(&self.path))?;
        if self.packed.len() > frame::MAX_FRAME as usize {
            // Cannot happen for a run within MAX_RAW (zstd's bound); kept
            // so that a mistake there is an error, never a frame that
            // every reader would skip as damaged.
            return Err(SegmentError::FrameTooLarge {
                path: self.path.clone(),
                bytes: self.packed.len(),
            });
        }
        self.scratch.clear();
        frame::encode(Kind::Batch, &self.packed, &mut self.scratch);
        self.file
            .write_all(&self.scratch)
            .map_err(io_err(&self.path))?;
        self.index.add_batch(events, self.len);
        self.len += self.scratch.len() as u64;
        Ok(self.scratch.len() as u64)
    }

    /// Flushes file data to disk.
    pub fn sync(&mut self) -> Result<(), SegmentError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// Writes the index frame and syncs: the segment is closed.
    pub fn close(mut self) -> Result<pb::SegmentIndex, SegmentError> {
        let index = self.index.build();
        let buf = index_and_trailer(&index, self.len);
        self.file.write_all(&buf).map_err(io_err(&self.path))?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        Ok(index)
    }
}

/// `events` encoded as a `pb::EventBatch`, into `out` (cleared first):
/// the same bytes as `EventBatch { events }.encode_to_vec()`, without
/// copying every event into a batch first.
pub fn encode_batch(events: &[pb::Event], out: &mut Vec<u8>) {
    // No sizing pass: `out` is kept from frame to frame, and prost's
    // length prefixes already walk every event once more.
    out.clear();
    for e in events {
        prost::encoding::message::encode(1, e, out);
    }
}

/// Where a segment is made before it has its header: a name that is not a
/// segment's, so readers do not list it.
pub fn unfinished_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// Splits `events` into runs of at most `max_count` events whose encoded
/// `EventBatch` is at most `limit` bytes, encoding each run once into
/// `raw`; `emit` gets each run with its encoding. An event that alone
/// encodes to more than `limit` bytes goes to `oversized` (with its encoded
/// size), in no run. Sizes are learnt by encoding, which is the work a
/// frame needs anyway: no sizing pass over every event.
pub(crate) fn for_each_run<E>(
    events: &[pb::Event],
    limit: usize,
    max_count: usize,
    raw: &mut Vec<u8>,
    mut emit: impl FnMut(&[pb::Event], &[u8]) -> Result<(), E>,
    mut oversized: impl FnMut(&pb::Event, usize),
) -> Result<(), E> {
    let max_count = max_count.max(1);
    raw.clear();
    let mut start = 0;
    let mut i = 0;
    while i < events.len() {
        let before = raw.len();
        prost::encoding::message::encode(1, &events[i], raw);
        if raw.len() <= limit && i - start < max_count {
            i += 1;
            continue;
        }
        if i > start {
            // The run so far is full: emit it, and start the next one
            // with this event (encoded again there).
            raw.truncate(before);
            emit(&events[start..i], raw)?;
            raw.clear();
            start = i;
        } else {
            oversized(&events[i], raw.len());
            raw.clear();
            i += 1;
            start = i;
        }
    }
    if start < events.len() {
        emit(&events[start..], raw)?;
    }
    Ok(())
}

fn index_and_trailer(index: &pb::SegmentIndex, at: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    frame::encode(Kind::Index, &index.encode_to_vec(), &mut buf);
    buf.extend_from_slice(&at.to_le_bytes());
    buf.extend_from_slice(TRAILER_MAGIC);
    buf
}

/// The index of a closed segment, read through its trailer (no scan).
/// `None` when the segment has no (valid) trailer: scan or recover it.
pub fn read_index(path: &Path) -> Result<Option<pb::SegmentIndex>, SegmentError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    if len < (MAGIC.len() + TRAILER) as u64 {
        return Ok(None);
    }
    let mut t = [0u8; TRAILER];
    f.seek(SeekFrom::End(-(TRAILER as i64)))
        .map_err(io_err(path))?;
    f.read_exact(&mut t).map_err(io_err(path))?;
    if &t[8..] != TRAILER_MAGIC {
        return Ok(None);
    }
    let at = u64::from_le_bytes(t[..8].try_into().unwrap_or_default());
    let frame_len = len - TRAILER as u64;
    if at < MAGIC.len() as u64 || at >= frame_len || frame_len - at > frame::MAX_FRAME as u64 + 12 {
        return Ok(None);
    }
    let mut buf = vec![0u8; (frame_len - at) as usize];
    f.seek(SeekFrom::Start(at)).map_err(io_err(path))?;
    f.read_exact(&mut buf).map_err(io_err(path))?;
    match frame::decode(&buf) {
        Ok(fr) if fr.kind == Kind::Index && fr.size == buf.len() => {
            Ok(pb::SegmentIndex::decode(fr.payload).ok())
        }
        _ => Ok(None),
    }
}

/// Reads and decodes the batch frames at `offsets` (from an index) one at a
/// time, without scanning the rest of the segment; `each` gets every batch
/// and returns false to stop. Frames that fail are returned as damage.
pub fn for_each_batch(
    path: &Path,
    offsets: &[u64],
    mut each: impl FnMut(Vec<pb::Event>) -> bool,
) -> Result<Vec<Damage>, SegmentError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let mut damage = Vec::new();
    let mut buf = Vec::new();
    for &at in offsets {
        let mut head = [0u8; frame::FRAME_HEADER];
        let fail = |e: String| Damage {
            offset: at,
            error: e,
        };
        if at + frame::FRAME_HEADER as u64 > len {
            damage.push(fail("index points past the end".into()));
            continue;
        }
        f.seek(SeekFrom::Start(at)).map_err(io_err(path))?;
        f.read_exact(&mut head).map_err(io_err(path))?;
        let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if n > frame::MAX_FRAME || at + frame::FRAME_HEADER as u64 + n as u64 > len {
            damage.push(fail(format!("frame length {n} out of bounds")));
            continue;
        }
        buf.clear();
        buf.extend_from_slice(&head);
        buf.resize(frame::FRAME_HEADER + n as usize, 0);
        f.read_exact(&mut buf[frame::FRAME_HEADER..])
            .map_err(io_err(path))?;
        match frame::decode(&buf) {
            Ok(fr) if fr.kind == Kind::Batch => match decode_batch(fr.payload) {
                Ok(b) => {
                    if !each(b) {
                        break;
                    }
                }
                Err(e) => damage.push(fail(e)),
            },
            Ok(_) => damage.push(fail("not a batch frame".into())),
            Err(e) => damage.push(fail(e.to_string())),
        }
    }
    Ok(damage)
}

/// Damage found while reading a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub error: String,
}

/// What a scan of a segment found.
#[derive(Debug, Default)]
pub struct Scan {
    pub header: Option<pb::SegmentHeader>,
    pub index: Option<pb::SegmentIndex>,
    /// Batches in file order, decoded.
    pub batches: Vec<Vec<pb::Event>>,
    /// Byte offset of each batch's frame (parallel to `batches`).
    pub batch_offsets: Vec<u64>,
    /// Valid batch frames seen.
    pub batch_count: u64,
    /// Frames skipped because they were damaged.
    pub damage: Vec<Damage>,
    /// End of the last whole frame; bytes after it are a torn tail.
    pub valid_len: u64,
    /// Where the index frame starts, if there is one.
    pub index_offset: Option<u64>,
    /// The file ends with a valid trailer.
    pub has_trailer: bool,
    pub file_len: u64,
}

pub(crate) fn decode_batch(payload: &[u8]) -> Result<Vec<pb::Event>, String> {
    // The decompressed size is bounded like a frame, so a damaged payload
    // cannot ask for unbounded memory.
    let raw = zstd::bulk::decompress(payload, frame::MAX_DECOMPRESSED)
        .map_err(|e| format!("zstd: {e}"))?;
    pb::EventBatch::decode(raw.as_slice())
        .map(|b| b.events)
        .map_err(|e| format!("protobuf: {e}"))
}

/// Reads every intact frame of the segment at `path`, reporting damage
/// instead of failing on it.
pub fn scan(path: &Path) -> Result<Scan, SegmentError> {
    let data = std::fs::read(path).map_err(io_err(path))?;
    scan_bytes(path, &data)
}

pub fn scan_bytes(path: &Path, data: &[u8]) -> Result<Scan, SegmentError> {
    let mut batches = Vec::new();
    let mut s = scan_bytes_each(path, data, &mut |batch, _| {
        batches.push(batch);
        true
    })?;
    s.batches = batches;
    Ok(s)
}

/// Reads the segment at `path`, handing each decoded batch (and its frame
/// offset) to `each` instead of keeping them: memory stays one batch plus
/// the file. `each` returns false to stop. The returned scan has no
/// batches.
pub fn scan_each(
    path: &Path,
    each: &mut dyn FnMut(Vec<pb::Event>, u64) -> bool,
) -> Result<Scan, SegmentError> {
    let data = std::fs::read(path).map_err(io_err(path))?;
    scan_bytes_each(path, &data, each)
}

fn scan_bytes_each(
    path: &Path,
    data: &[u8],
    each: &mut dyn FnMut(Vec<pb::Event>, u64) -> bool,
) -> Result<Scan, SegmentError> {
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return Err(SegmentError::BadMagic {
            path: path.to_owned(),
        });
    }
    let mut s = Scan {
        file_len: data.len() as u64,
        ..Default::default()
    };
    let mut at = MAGIC.len();
    s.valid_len = at as u64;
    let mut end = data.len();
    if end >= MAGIC.len() + TRAILER && &data[end - 8..] == TRAILER_MAGIC {
        end -= TRAILER;
    }
    let data_all = data;
    let data = &data_all[..end];
    while at < data.len() {
        match frame::decode(&data[at..]) {
            Ok(f) => {
                match f.kind {
                    Kind::Header => match pb::SegmentHeader::decode(f.payload) {
                        Ok(h) if s.header.is_none() => s.header = Some(h),
                        Ok(_) => s.damage.push(Damage {
                            offset: at as u64,
                            error: "second header frame".into(),
                        }),
                        Err(e) => s.damage.push(Damage {
                            offset: at as u64,
                            error: format!("header: {e}"),
                        }),
                    },
                    Kind::Batch => match decode_batch(f.payload) {
                        Ok(b) => {
                            s.batch_offsets.push(at as u64);
                            s.batch_count += 1;
                            if !each(b, at as u64) {
                                return Ok(s);
                            }
                        }
                        Err(e) => s.damage.push(Damage {
                            offset: at as u64,
                            error: e,
                        }),
                    },
                    Kind::Blob => s.damage.push(Damage {
                        offset: at as u64,
                        error: "a bundle's blob frame inside a segment".into(),
                    }),
                    Kind::Index => match pb::SegmentIndex::decode(f.payload) {
                        Ok(i) => {
                            s.index = Some(i);
                            s.index_offset = Some(at as u64);
                        }
                        Err(e) => s.damage.push(Damage {
                            offset: at as u64,
                            error: format!("index: {e}"),
                        }),
                    },
                }
                at += f.size;
                s.valid_len = at as u64;
            }
            Err(FrameError::Torn) if frame::resync(&data[at..]).is_none() => {
                // The file ends inside this frame: a torn tail.
                break;
            }
            Err(e) => {
                s.damage.push(Damage {
                    offset: at as u64,
                    error: e.to_string(),
                });
                match frame::resync(&data[at..]) {
                    Some(skip) => at += skip,
                    None => break,
                }
            }
        }
    }
    if s.header.is_none() {
        if s.batch_count == 0 && s.index.is_none() {
            return Err(SegmentError::NoHeader {
                path: path.to_owned(),
            });
        }
        // A damaged header costs the header, not the batches after it.
        s.damage.push(Damage {
            offset: MAGIC.len() as u64,
            error: "no valid header frame".into(),
        });
    }
    if s.valid_len == end as u64 && end < data_all.len() && s.index.is_some() {
        s.valid_len = data_all.len() as u64;
        s.has_trailer = true;
    }
    Ok(s)
}

/// What recovery did to a segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut off the end (a torn last frame).
    pub truncated: u64,
    pub index_rebuilt: bool,
    pub damage: Vec<Damage>,
}

/// Makes a segment left open by a crash whole again: truncates a torn tail
/// and appends an index rebuilt from its batches. Closed segments are left
/// as they are.
pub fn recover(path: &Path) -> Result<Recovery, SegmentError> {
    let s = scan(path)?;
    let mut r = Recovery {
        damage: s.damage.clone(),
        ..Default::default()
    };
    if s.has_trailer && s.valid_len == s.file_len {
        return Ok(r);
    }
    // A closed segment whose tail was damaged after the index: keep what is
    // valid and give it a fresh index and trailer.
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    if s.valid_len < s.file_len {
        r.truncated = s.file_len - s.valid_len;
        file.set_len(s.valid_len).map_err(io_err(path))?;
    }
    if let (Some(at), Some(_), false) = (s.index_offset, &s.index, s.has_trailer) {
        // An index without its trailer (cut right after it): add the trailer.
        let mut f = &file;
        use std::io::Seek;
        f.seek(io::SeekFrom::End(0)).map_err(io_err(path))?;
        let mut t = at.to_le_bytes().to_vec();
        t.extend_from_slice(TRAILER_MAGIC);
        f.write_all(&t).map_err(io_err(path))?;
    } else if s.index.is_none() {
        let mut b = IndexBuilder::default();
        for (batch, at) in s.batches.iter().zip(&s.batch_offsets) {
            b.add_batch(batch, *at);
        }
        let buf = index_and_trailer(&b.build(), s.valid_len);
        let mut f = &file;
        use std::io::Seek;
        f.seek(io::SeekFrom::End(0)).map_err(io_err(path))?;
        f.write_all(&buf).map_err(io_err(path))?;
        r.index_rebuilt = true;
    }
    file.sync_all().map_err(io_err(path))?;
    Ok(r)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::frame::FRAME_HEADER;

    fn ev(seq: u64, pid: u32, nr: i64, ret: i64) -> pb::Event {
        pb::Event {
            seq,
            pid,
            tid: pid,
            ts_ns: 1000 + seq,
            comm: "t".into(),
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                nr,
                ret,
                name: "x".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_is_encoded_as_prost_would() {
        let events: Vec<pb::Event> = (0..5).map(|i| ev(i, 7 + i as u32, i as i64, -1)).collect();
        let mut out = vec![1, 2, 3];
        encode_batch(&events, &mut out);
        assert_eq!(
            out,
            pb::EventBatch {
                events: events.clone()
            }
            .encode_to_vec()
        );
        encode_batch(&[], &mut out);
        assert!(out.is_empty());
    }

    fn header() -> pb::SegmentHeader {
        pb::SegmentHeader {
            format_version: FORMAT_VERSION,
            host_name: "h".into(),
            ..Default::default()
        }
    }

    fn write_segment(path: &Path, batches: usize, close: bool) -> Vec<pb::Event> {
        let mut w = SegmentWriter::create(path, &header()).unwrap();
        let mut all = vec![];
        for b in 0..batches {
            let evs: Vec<_> = (0..10)
                .map(|i| ev((b * 10 + i) as u64, 7, 0, if i == 3 { -2 } else { 1 }))
                .collect();
            w.append(&evs, 3).unwrap();
            all.extend(evs);
        }
        if close {
            w.close().unwrap();
        }
        all
    }

    #[test]
    fn writes_and_reads_back_with_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let all = write_segment(&p, 3, true);
        let s = scan(&p).unwrap();
        assert!(s.damage.is_empty());
        assert_eq!(s.batches.concat(), all);
        let idx = s.index.unwrap();
        assert_eq!(
            read_index(&p).unwrap().as_ref(),
            Some(&idx),
            "the trailer finds the same index"
        );
        assert_eq!(idx.event_count, 30);
        assert_eq!(idx.processes.len(), 1);
        let read = idx.syscalls.iter().find(|c| c.nr == 0).unwrap();
        assert_eq!(read.count, 30);
        assert_eq!(read.errors.get(&2), Some(&3));
    }

    #[test]
    fn recovery_truncates_a_torn_tail_and_rebuilds_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let all = write_segment(&p, 3, false);
        let good = std::fs::metadata(&p).unwrap().len();
        // A crash in the middle of a fourth batch.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 2, 0, 0, 0, 9, 9])
            .unwrap();
        let r = recover(&p).unwrap();
        assert_eq!(r.truncated, 14);
        assert!(r.index_rebuilt);
        let s = scan(&p).unwrap();
        assert_eq!(s.batches.concat(), all, "nothing fully written is lost");
        assert_eq!(s.index.unwrap().event_count, 30);
        assert_eq!(read_index(&p).unwrap().unwrap().event_count, 30);
        assert!(std::fs::metadata(&p).unwrap().len() > good);
        // Recovering again changes nothing.
        assert_eq!(recover(&p).unwrap(), Recovery::default());
    }

    #[test]
    fn a_corrupt_frame_is_skipped_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let all = write_segment(&p, 3, true);
        let mut data = std::fs::read(&p).unwrap();
        // Find the second batch frame and flip a payload byte.
        let first = MAGIC.len() + frame::decode(&data[MAGIC.len()..]).unwrap().size;
        let second = first + frame::decode(&data[first..]).unwrap().size;
        data[second + FRAME_HEADER + 5] ^= 0xff;
        let s = scan_bytes(&p, &data).unwrap();
        assert_eq!(s.damage.len(), 1);
        assert_eq!(s.damage[0].offset, second as u64);
        assert_eq!(
            s.batches.concat(),
            [&all[..10], &all[20..]].concat(),
            "the other batches survive"
        );
    }

    /// Incompressible bytes (xorshift), so that zstd cannot shrink a test
    /// batch back under the frame limit.
    pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A `read` event of `pid` with `len` bytes of noise as its out-buffer.
    pub(crate) fn big(seq: u64, pid: u32, len: usize) -> pb::Event {
        pb::Event {
            seq,
            pid,
            tid: pid,
            ts_ns: 1000 + seq,
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

    /// Every event of the segment, read both ways: a scan, and through the
    /// index's frame offsets (as a query for a pid reads).
    fn read_back(p: &Path) -> Vec<pb::Event> {
        let s = scan(p).unwrap();
        assert!(s.damage.is_empty(), "{:?}", s.damage);
        let idx = read_index(p).unwrap().expect("closed");
        let offsets: Vec<u64> = {
            let mut o: Vec<u64> = idx
                .processes
                .iter()
                .flat_map(|p| p.frame_offsets.iter().copied())
                .collect();
            o.sort_unstable();
            o.dedup();
            o
        };
        let mut by_index = vec![];
        let damage = for_each_batch(p, &offsets, |b| {
            by_index.extend(b);
            true
        })
        .unwrap();
        assert!(damage.is_empty(), "{damage:?}");
        let scanned = s.batches.concat();
        assert_eq!(by_index.len(), scanned.len());
        assert!(by_index == scanned, "the index reads what the scan reads");
        scanned
    }

    #[test]
    fn a_batch_far_bigger_than_a_frame_is_split_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut w = SegmentWriter::create(&p, &header()).unwrap();
        // 300 MiB of incompressible reads: more than four frames' worth,
        // with small events between them.
        let all: Vec<pb::Event> = (0..600u64)
            .map(|i| {
                if i % 2 == 0 {
                    big(i, 7, 1 << 20)
                } else {
                    ev(i, 7, 1, 1)
                }
            })
            .collect();
        let a = w.append(&all, 1).unwrap();
        assert!(a.too_large.is_empty());
        assert_eq!(a.events, all.len() as u64);
        assert!(a.frames >= 5, "{a:?}");
        w.close().unwrap();
        let got = read_back(&p);
        assert_eq!(got.len(), all.len());
        assert!(got == all, "every event comes back, in order");
    }

    #[test]
    fn single_events_of_tens_of_mib_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut w = SegmentWriter::create(&p, &header()).unwrap();
        // Two syscall sides of 16 MiB each, the most the eBPF side sends,
        // and events right at the frame's bound.
        let sizes = [20 << 20, 30 << 20, 32 << 20, frame::MAX_RAW - 4096, 3];
        let all: Vec<pb::Event> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| big(i as u64, 9, n))
            .collect();
        let a = w.append(&all, 1).unwrap();
        assert!(a.too_large.is_empty(), "{:?}", a.too_large);
        w.close().unwrap();
        let got = read_back(&p);
        assert!(got == all, "every event comes back whole");
    }

    #[test]
    fn an_event_no_frame_can_hold_is_reported_and_the_rest_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut w = SegmentWriter::create(&p, &header()).unwrap();
        let all = vec![
            big(0, 5, 1000),
            big(1, 5, frame::MAX_RAW + 1),
            big(2, 5, 10 << 20),
        ];
        let a = w.append(&all, 1).unwrap();
        assert_eq!(a.too_large.len(), 1);
        assert_eq!((a.too_large[0].pid, a.too_large[0].seq), (5, 1));
        assert!(a.too_large[0].bytes > frame::MAX_RAW);
        assert_eq!(a.events, 2);
        w.close().unwrap();
        let got = read_back(&p);
        assert!(got == [all[0].clone(), all[2].clone()]);
    }

    #[test]
    fn runs_respect_both_bounds() {
        let events: Vec<pb::Event> = (0..50).map(|i| big(i, 1, 100)).collect();
        let four = {
            let mut v = vec![];
            encode_batch(&events[..4], &mut v);
            v.len()
        };
        let mut raw = vec![];
        let mut runs = vec![];
        for_each_run::<()>(
            &events,
            four,
            3,
            &mut raw,
            |run, raw| {
                let mut v = vec![];
                encode_batch(run, &mut v);
                assert_eq!(v, raw, "the run's encoding is handed with it");
                runs.push(run.len());
                Ok(())
            },
            |_, _| panic!("nothing is oversized"),
        )
        .unwrap();
        assert!(runs.iter().all(|&n| n <= 3));
        assert_eq!(runs.iter().sum::<usize>(), 50);
        runs.clear();
        for_each_run::<()>(
            &events,
            four,
            usize::MAX,
            &mut raw,
            |run, _| {
                runs.push(run.len());
                Ok(())
            },
            |_, _| panic!("nothing is oversized"),
        )
        .unwrap();
        assert_eq!(runs[0], 4);
        assert_eq!(runs.iter().sum::<usize>(), 50);
    }

    #[test]
    fn not_a_segment_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, b"hello").unwrap();
        assert!(matches!(scan(&p), Err(SegmentError::BadMagic { .. })));
        std::fs::write(&p, MAGIC).unwrap();
        assert!(matches!(scan(&p), Err(SegmentError::NoHeader { .. })));
    }
}

#[cfg(test)]
mod damage_tests {
    //! Damage at random places (fixed seed, so failures reproduce): the
    //! reader never panics, reports the damage, and returns every batch
    //! whose frame was not touched.
    use super::*;

    /// xorshift64*: deterministic, dependency-free randomness for the test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A closed segment's bytes, the byte span of each batch frame, and the
    /// batches.
    type Sample = (Vec<u8>, Vec<(usize, usize)>, Vec<Vec<pb::Event>>);

    fn segment(dir: &Path) -> Sample {
        let p = dir.join("s");
        let mut w = SegmentWriter::create(
            &p,
            &pb::SegmentHeader {
                format_version: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let mut batches = vec![];
        for b in 0..12u64 {
            let evs: Vec<pb::Event> = (0..20)
                .map(|i| pb::Event {
                    seq: b * 100 + i,
                    pid: 3,
                    comm: format!("c{b}"),
                    ..Default::default()
                })
                .collect();
            w.append(&evs, 1).unwrap();
            batches.push(evs);
        }
        w.close().unwrap();
        let data = std::fs::read(&p).unwrap();
        // Frame extents of the batches.
        let mut at = MAGIC.len();
        let mut spans = vec![];
        while let Ok(f) = frame::decode(&data[at..]) {
            if f.kind == Kind::Batch {
                spans.push((at, at + f.size));
            }
            at += f.size;
        }
        (data, spans, batches)
    }

    #[test]
    fn random_flips_and_cuts_lose_only_the_damaged_frames() {
        let dir = tempfile::tempdir().unwrap();
        let (data, spans, batches) = segment(dir.path());
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for case in 0..400 {
            let mut d = data.clone();
            let mut touched = vec![];
            for _ in 0..1 + rng.below(3) {
                let at = MAGIC.len() + rng.below(d.len() - MAGIC.len());
                d[at] ^= 1 << rng.below(8);
                touched.push(at);
            }
            if case % 4 == 0 {
                let cut = MAGIC.len() + rng.below(d.len() - MAGIC.len());
                d.truncate(cut);
                touched.push(cut);
            }
            let Ok(s) = scan_bytes(Path::new("case"), &d) else {
                // Only a damaged header may make the whole file unreadable.
                assert!(
                    touched.iter().any(|&t| t < spans[0].0),
                    "case {case}: {touched:?}"
                );
                continue;
            };
            let got: Vec<&Vec<pb::Event>> = s.batches.iter().collect();
            for (i, &(from, to)) in spans.iter().enumerate() {
                let intact = to <= d.len() && !touched.iter().any(|&t| t >= from && t < to);
                if intact {
                    assert!(
                        got.contains(&&batches[i]),
                        "case {case}: intact batch {i} lost ({touched:?})"
                    );
                }
            }
            assert!(
                s.batches.iter().all(|b| batches.contains(b)),
                "case {case}: a damaged batch was returned as good"
            );
            let damaged_batches = spans
                .iter()
                .filter(|&&(f, t)| touched.iter().any(|&x| x >= f && x < t))
                .count();
            if damaged_batches > 0 && d.len() == data.len() {
                assert!(!s.damage.is_empty(), "case {case}: damage went unreported");
            }
        }
    }
}

#[cfg(test)]
mod fuzz_seed {
    use super::*;

    /// Writes the fuzzer's seed corpus (a small valid segment) when asked:
    /// `TRACER_WRITE_FUZZ_SEED=1 cargo test -p tracer-store fuzz_seed`.
    #[test]
    fn fuzz_seed() {
        let Some(dir) = std::env::var_os("TRACER_WRITE_FUZZ_SEED")
            .map(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/segment"))
        else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("s");
        let mut w = SegmentWriter::create(
            &p,
            &pb::SegmentHeader {
                format_version: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let evs: Vec<pb::Event> = (0..3)
            .map(|i| pb::Event {
                seq: i,
                pid: 1,
                comm: "seed".into(),
                kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                    nr: 0,
                    ret: 4,
                    ..Default::default()
                })),
                ..Default::default()
            })
            .collect();
        w.append(&evs, 1).unwrap();
        w.close().unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&p, dir.join("seed-closed-segment")).unwrap();
    }
}
