//! Bundle files: one process's recording, portable to another machine.
//!
//! Same framing as segments (see README.md), with its own magic:
//! `"TRCBNDL" 0x01`, a `BundleHeader` frame, batch frames of events, then
//! one zstd-compressed `Blob` frame per file (executables, mapped files),
//! addressed by SHA-256. Unlike a segment, a bundle is all or nothing: any
//! damage is an error naming where it is, since replaying part of a
//! recording as if it were whole would be wrong.
use prost::Message as _;
use thiserror::Error;
use tracer_proto as pb;

use crate::{
    frame::{self, FrameError, Kind},
    segment::decode_batch,
};

pub const BUNDLE_MAGIC: &[u8; 8] = b"TRCBNDL\x01";
pub const BUNDLE_VERSION: u32 = 1;
const EVENTS_PER_FRAME: usize = 8192;

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
    #[error("file {path} is too large for a bundle ({bytes} bytes compressed)")]
    TooLarge { path: String, bytes: usize },
    #[error("compressing: {0}")]
    Compress(std::io::Error),
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
    let mut out = BUNDLE_MAGIC.to_vec();
    frame::encode(Kind::Header, &b.header.encode_to_vec(), &mut out);
    for chunk in b.events.chunks(EVENTS_PER_FRAME) {
        let raw = pb::EventBatch {
            events: chunk.to_vec(),
        }
        .encode_to_vec();
        let packed = zstd::bulk::compress(&raw, 3).map_err(BundleError::Compress)?;
        frame::encode(Kind::Batch, &packed, &mut out);
    }
    for blob in &b.blobs {
        let packed =
            zstd::bulk::compress(&blob.encode_to_vec(), 3).map_err(BundleError::Compress)?;
        if packed.len() > frame::MAX_FRAME as usize {
            return Err(BundleError::TooLarge {
                path: blob.path.clone(),
                bytes: packed.len(),
            });
        }
        frame::encode(Kind::Blob, &packed, &mut out);
    }
    Ok(out)
}

/// Decodes a bundle; any damage is an error.
pub fn decode(data: &[u8]) -> Result<Bundle, BundleError> {
    if data.len() < BUNDLE_MAGIC.len() || &data[..BUNDLE_MAGIC.len()] != BUNDLE_MAGIC {
        return Err(BundleError::BadMagic);
    }
    let mut at = BUNDLE_MAGIC.len();
    let mut header = None;
    let mut b = Bundle::default();
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
                let raw = zstd::bulk::decompress(f.payload, 8 * frame::MAX_FRAME as usize)
                    .map_err(|e| damaged(format!("zstd: {e}")))?;
                b.blobs
                    .push(pb::Blob::decode(raw.as_slice()).map_err(|e| damaged(e.to_string()))?);
            }
            other => return Err(damaged(format!("unexpected {other:?} frame"))),
        }
        at += f.size;
    }
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
            }],
        }
    }

    #[test]
    fn round_trips() {
        let b = sample();
        assert_eq!(decode(&encode(&b).unwrap()).unwrap(), b);
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
