//! Bundle files: one process's recording, portable to another machine.
//!
//! Same framing as segments (see README.md), with its own magic:
//! `"TRCBNDL" 0x01`, a `BundleHeader` frame, batch frames of events, then
//! zstd-compressed `Blob` frames of the files (executables, mapped files),
//! addressed by SHA-256: one frame per file, or several in a row holding
//! its pieces when it is larger than `BLOB_PIECE`. Every frame is bounded
//! by construction (`frame::MAX_RAW` before compression), so a bundle the
//! writer makes is always one its reader takes. Unlike a segment, a bundle is all or nothing: any
//! damage is an error naming where it is, since replaying part of a
//! recording as if it were whole would be wrong.
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use tracer_proto as pb;

use crate::{
    frame::{self, FrameError, Kind},
    segment::{decode_batch, for_each_run},
};

pub const BUNDLE_MAGIC: &[u8; 8] = b"TRCBNDL\x01";
pub const BUNDLE_VERSION: u32 = 1;
const EVENTS_PER_FRAME: usize = 8192;
/// Bytes of a file per Blob frame: a larger file is split into pieces of
/// this size, each well within `frame::MAX_RAW` with its path and hash.
pub const BLOB_PIECE: usize = 16 << 20;

#[derive(Debug, Error)]
pub enum BundleError {
    #[error("not a tracer bundle (bad magic)")]
    BadMagic,
    #[error("the bundle is truncated at byte {0} of {1}")]
    Truncated(usize, usize),
    #[error("the bundle is damaged at byte {offset}: {error}")]
    Damaged { offset: usize, error: String },
    #[error("the bundle has no header")]
    NoHeader,
    #[error("{what} is too large for a bundle frame ({bytes} bytes encoded)")]
    TooLarge { what: String, bytes: usize },
    #[error("compressing: {0}")]
    Compress(std::io::Error),
    #[error("writing the bundle: {0}")]
    Write(std::io::Error),
}

/// A decoded bundle.
#[derive(Debug, Default, PartialEq)]
pub struct Bundle {
    pub header: pb::BundleHeader,
    pub events: Vec<pb::Event>,
    pub blobs: Vec<pb::Blob>,
}

/// Encodes a bundle.
pub fn encode(b: &Bundle) -> Result<Vec<u8>, BundleError> {
    let mut out = head(&b.header);
    let mut body = Body::new(&mut out);
    body.events(&b.events)?;
    for blob in &b.blobs {
        body.blob(blob)?;
    }
    Ok(out)
}

/// The bundle's first bytes: its magic and header frame. A bundle is
/// `head(header)` followed by what a [`Body`] wrote, so that one too large
/// to hold in memory is written out as it is read, and its header (which
/// counts the events) put in front afterwards.
pub fn head(header: &pb::BundleHeader) -> Vec<u8> {
    let mut out = BUNDLE_MAGIC.to_vec();
    frame::encode(Kind::Header, &header.encode_to_vec(), &mut out);
    out
}

/// Writes a bundle's event and Blob frames, events first, as they come.
pub struct Body<W: std::io::Write> {
    out: W,
    raw: Vec<u8>,
    frame: Vec<u8>,
    written: u64,
}

impl<W: std::io::Write> Body<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            raw: Vec::new(),
            frame: Vec::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn put(&mut self, kind: Kind, packed: &[u8]) -> Result<(), BundleError> {
        self.frame.clear();
        frame::encode(kind, packed, &mut self.frame);
        self.out
            .write_all(&self.frame)
            .map_err(BundleError::Write)?;
        self.written += self.frame.len() as u64;
        Ok(())
    }

    /// Appends events in frames of at most `EVENTS_PER_FRAME`, each within
    /// `frame::MAX_RAW`.
    pub fn events(&mut self, events: &[pb::Event]) -> Result<(), BundleError> {
        let mut too_large = None;
        let mut raw = std::mem::take(&mut self.raw);
        // Batches bounded by bytes as well as by count: a few events of many
        // MiB each make one frame's worth long before 8192 of them do.
        let r = for_each_run(
            events,
            frame::MAX_RAW,
            EVENTS_PER_FRAME,
            &mut raw,
            |_, raw| {
                let packed = zstd::bulk::compress(raw, 3).map_err(BundleError::Compress)?;
                self.put(Kind::Batch, &packed)
            },
            |e, bytes| {
                too_large.get_or_insert(BundleError::TooLarge {
                    what: format!("event {} of pid {}", e.seq, e.pid),
                    bytes,
                });
            },
        );
        self.raw = raw;
        r?;
        match too_large {
            // A bundle without one of its events would replay as if whole.
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Appends a file, as one Blob frame or as pieces of `BLOB_PIECE` bytes.
    pub fn blob(&mut self, blob: &pb::Blob) -> Result<(), BundleError> {
        let mut frames = Vec::new();
        encode_blob(blob, &mut frames)?;
        self.out.write_all(&frames).map_err(BundleError::Write)?;
        self.written += frames.len() as u64;
        Ok(())
    }
}

/// A file as one Blob frame, or as pieces of `BLOB_PIECE` bytes.
fn encode_blob(blob: &pb::Blob, out: &mut Vec<u8>) -> Result<(), BundleError> {
    let mut put = |piece: &pb::Blob| -> Result<(), BundleError> {
        let raw = piece.encode_to_vec();
        if raw.len() > frame::MAX_RAW {
            // Only a path of tens of MiB gets here.
            return Err(BundleError::TooLarge {
                what: format!("file {}", blob.path),
                bytes: raw.len(),
            });
        }
        let packed = zstd::bulk::compress(&raw, 3).map_err(BundleError::Compress)?;
        frame::encode(Kind::Blob, &packed, out);
        Ok(())
    };
    if blob.data.len() <= BLOB_PIECE {
        // Whole, as bundles have always held files.
        return put(&pb::Blob {
            offset: 0,
            total_len: 0,
            ..blob.clone()
        });
    }
    for (i, data) in blob.data.chunks(BLOB_PIECE).enumerate() {
        put(&pb::Blob {
            sha256: blob.sha256.clone(),
            path: blob.path.clone(),
            data: data.to_vec(),
            offset: (i * BLOB_PIECE) as u64,
            total_len: blob.data.len() as u64,
        })?;
    }
    Ok(())
}

/// Puts a file's pieces back together as they are read, checking that
/// they follow one another and that the whole matches its SHA-256.
#[derive(Default)]
struct Pieces {
    open: Option<pb::Blob>,
}

impl Pieces {
    /// Takes one Blob frame's message; returns a whole file when there is
    /// one.
    fn add(&mut self, piece: pb::Blob) -> Result<Option<pb::Blob>, String> {
        if piece.total_len == 0 {
            if let Some(open) = &self.open {
                return Err(format!("file {} is cut short", open.path));
            }
            return Ok(Some(piece));
        }
        let blob = match self.open.take() {
            None if piece.offset == 0 => pb::Blob {
                sha256: piece.sha256,
                path: piece.path,
                data: piece.data,
                offset: 0,
                total_len: piece.total_len,
            },
            None => return Err(format!("a piece of {} without its start", piece.path)),
            Some(mut open) => {
                if piece.sha256 != open.sha256
                    || piece.path != open.path
                    || piece.total_len != open.total_len
                    || piece.offset != open.data.len() as u64
                {
                    return Err(format!(
                        "file {} is cut short (a piece at {} of {} follows {} bytes)",
                        open.path,
                        piece.offset,
                        piece.path,
                        open.data.len()
                    ));
                }
                open.data.extend_from_slice(&piece.data);
                open
            }
        };
        let have = blob.data.len() as u64;
        if have > blob.total_len {
            return Err(format!(
                "file {} has {have} bytes, more than its {}",
                blob.path, blob.total_len
            ));
        }
        if have < blob.total_len {
            self.open = Some(blob);
            return Ok(None);
        }
        let sum = format!("{:x}", Sha256::digest(&blob.data));
        if sum != blob.sha256 {
            return Err(format!(
                "file {}: its pieces do not make its sha256 {} (they make {sum})",
                blob.path, blob.sha256
            ));
        }
        Ok(Some(pb::Blob {
            total_len: 0,
            ..blob
        }))
    }

    fn finish(&self) -> Result<(), String> {
        match &self.open {
            Some(b) => Err(format!(
                "file {} is cut short ({} of {} bytes)",
                b.path,
                b.data.len(),
                b.total_len
            )),
            None => Ok(()),
        }
    }
}

/// Decodes a bundle; any damage is an error.
pub fn decode(data: &[u8]) -> Result<Bundle, BundleError> {
    if data.len() < BUNDLE_MAGIC.len() || &data[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
        return Err(BundleError::BadMagic);
    }
    let mut at = BUNDLE_MAGIC.len();
    let mut header = None;
    let mut b = Bundle::default();
    let mut pieces = Pieces::default();
    while at < data.len() {
        let f = match frame::decode(&data[at..]) {
            Ok(f) => f,
            Err(FrameError::Torn) => return Err(BundleError::Truncated(at, data.len())),
            Err(e) => {
                return Err(BundleError::Damaged {
                    offset: at,
                    error: e.to_string(),
                });
            }
        };
        let damaged = |error: String| BundleError::Damaged { offset: at, error };
        match f.kind {
            Kind::Header if header.is_none() => {
                header =
                    Some(pb::BundleHeader::decode(f.payload).map_err(|e| damaged(e.to_string()))?)
            }
            Kind::Batch => b.events.extend(decode_batch(f.payload).map_err(damaged)?),
            Kind::Blob => {
                let raw = zstd::bulk::decompress(f.payload, frame::MAX_DECOMPRESSED)
                    .map_err(|e| damaged(format!("zstd: {e}")))?;
                let piece = pb::Blob::decode(raw.as_slice()).map_err(|e| damaged(e.to_string()))?;
                if let Some(whole) = pieces.add(piece).map_err(damaged)? {
                    b.blobs.push(whole);
                }
            }
            other => return Err(damaged(format!("unexpected {other:?} frame"))),
        }
        at += f.size;
    }
    pieces.finish().map_err(|error| BundleError::Damaged {
        offset: data.len(),
        error,
    })?;
    b.header = header.ok_or(BundleError::NoHeader)?;
    if b.header.event_count != b.events.len() as u64 {
        return Err(BundleError::Damaged {
            offset: data.len(),
            error: format!(
                "the header promises {} events, {} are present",
                b.header.event_count,
                b.events.len()
            ),
        });
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bundle {
        let events: Vec<pb::Event> = (0..20_000)
            .map(|i| pb::Event {
                seq: i,
                pid: 4,
                ..Default::default()
            })
            .collect();
        Bundle {
            header: pb::BundleHeader {
                format_version: BUNDLE_VERSION,
                source_host: "h".into(),
                event_count: events.len() as u64,
                ..Default::default()
            },
            events,
            blobs: vec![pb::Blob {
                sha256: "ab".into(),
                path: "/bin/x".into(),
                data: vec![7; 5000],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn round_trips() {
        let b = sample();
        assert_eq!(decode(&encode(&b).unwrap()).unwrap(), b);
    }

    #[test]
    fn a_bundle_written_as_it_is_read_is_the_same_bundle() {
        let b = sample();
        let mut body = Body::new(Vec::new());
        // Events as a store query hands them: in batches of any size.
        for part in b.events.chunks(3001) {
            body.events(part).unwrap();
        }
        for blob in &b.blobs {
            body.blob(blob).unwrap();
        }
        let written = body.written();
        let mut bytes = head(&b.header);
        let tail = body.into_inner();
        assert_eq!(written, tail.len() as u64);
        bytes.extend_from_slice(&tail);
        assert_eq!(decode(&bytes).unwrap(), b);
    }

    /// A bundle bigger than every limit: events of MiBs of incompressible
    /// data (more than a frame's worth), and a file whose compressed size
    /// alone is over `MAX_FRAME`.
    fn huge() -> Bundle {
        use crate::segment::tests::{big, noise};
        let events: Vec<pb::Event> = (0..100).map(|i| big(i, 4, 1 << 20)).collect();
        let data = noise(99, frame::MAX_FRAME as usize + 12345);
        Bundle {
            header: pb::BundleHeader {
                format_version: BUNDLE_VERSION,
                event_count: events.len() as u64,
                ..Default::default()
            },
            events,
            blobs: vec![
                pb::Blob {
                    sha256: format!("{:x}", Sha256::digest(&data)),
                    path: "/usr/lib/huge.so".into(),
                    data,
                    ..Default::default()
                },
                pb::Blob {
                    sha256: "cd".into(),
                    path: "/bin/small".into(),
                    data: vec![1; 100],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn events_and_files_bigger_than_a_frame_round_trip() {
        let b = huge();
        let data = encode(&b).unwrap();
        let got = decode(&data).unwrap();
        assert_eq!(got.events.len(), b.events.len());
        assert!(got == b, "the same bundle comes back");
    }

    #[test]
    fn a_file_missing_a_piece_or_not_matching_its_hash_is_refused() {
        let b = huge();
        let data = encode(&b).unwrap();
        // Frame extents after the header.
        let mut spans = vec![];
        let mut at = BUNDLE_MAGIC.len();
        while at < data.len() {
            let f = frame::decode(&data[at..]).unwrap();
            spans.push((f.kind, at, at + f.size));
            at += f.size;
        }
        let blobs: Vec<_> = spans.iter().filter(|s| s.0 == Kind::Blob).collect();
        assert_eq!(blobs.len(), 6, "5 pieces of the big file, 1 small file");
        // Each piece left out in turn.
        for &&(_, from, to) in &blobs[..5] {
            let mut d = data[..from].to_vec();
            d.extend_from_slice(&data[to..]);
            let e = decode(&d).unwrap_err();
            assert!(e.to_string().contains("huge.so"), "{e}");
        }
        // Two pieces swapped.
        let (a, b2) = (blobs[1], blobs[2]);
        let mut d = data[..a.1].to_vec();
        d.extend_from_slice(&data[b2.1..b2.2]);
        d.extend_from_slice(&data[a.1..a.2]);
        d.extend_from_slice(&data[b2.2..]);
        assert!(decode(&d).is_err());
        // A hash that the pieces do not make.
        let mut wrong = huge();
        wrong.blobs[0].sha256 = "00".into();
        let e = decode(&encode(&wrong).unwrap()).unwrap_err();
        assert!(e.to_string().contains("sha256"), "{e}");
    }

    #[test]
    fn every_cut_and_flip_is_a_clear_error() {
        let data = encode(&sample()).unwrap();
        for cut in (0..data.len()).step_by(97) {
            let e = decode(&data[..cut]).unwrap_err();
            assert!(
                matches!(
                    e,
                    BundleError::Truncated(..)
                        | BundleError::BadMagic
                        | BundleError::NoHeader
                        | BundleError::Damaged { .. }
                ),
                "cut {cut}: {e}"
            );
        }
        for at in (8..data.len()).step_by(89) {
            let mut d = data.clone();
            d[at] ^= 0x40;
            assert!(decode(&d).is_err(), "flip at {at} went unnoticed");
        }
    }
}
