//! Frames: the unit of a segment file.
//!
//! ```text
//! frame  = len:u32le crc:u32le kind:u8 reserved:[u8;3] payload:[u8; len]
//! crc    = crc32c(kind ++ reserved ++ payload)
//! ```
//! A frame is either whole and valid, or it is reported: torn (the file ends
//! inside it) or corrupt (bad checksum, bad kind, impossible length). After a
//! corrupt frame the reader resynchronizes by searching for the next offset
//! where a whole, valid frame starts, so one damaged frame costs only itself.
use thiserror::Error;

pub const FRAME_HEADER: usize = 12;
/// Largest payload a frame may declare; checked before anything is
/// allocated, so a damaged length cannot make the reader allocate gigabytes.
pub const MAX_FRAME: u32 = 64 << 20;
/// Largest uncompressed payload a writer puts in one compressed frame:
/// zstd's worst case for this many bytes (incompressible data grows by
/// 1/256) still fits in `MAX_FRAME`, so a frame the writer makes can never
/// be one its reader refuses, whatever the data. Writers split anything
/// bigger across frames.
pub const MAX_RAW: usize = MAX_FRAME as usize - (MAX_FRAME as usize >> 7);
/// Largest size a reader decompresses one frame to. Above `MAX_RAW` on
/// purpose: older writers bounded only the compressed size, and their
/// frames (up to 64 MiB of zstd) are still read; the bound only stops a
/// damaged frame from asking for unbounded memory.
pub const MAX_DECOMPRESSED: usize = 8 * MAX_FRAME as usize;
const _: () = assert!(
    MAX_RAW <= MAX_DECOMPRESSED,
    "a reader takes what a writer makes"
);

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `SegmentHeader`, uncompressed protobuf.
    Header = 1,
    /// `EventBatch`, zstd-compressed protobuf.
    Batch = 2,
    /// `SegmentIndex`, uncompressed protobuf.
    Index = 3,
    /// `Blob` (a file of a bundle), zstd-compressed protobuf.
    Blob = 4,
}

impl Kind {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Header),
            2 => Some(Self::Batch),
            3 => Some(Self::Index),
            4 => Some(Self::Blob),
            _ => None,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("the data ends inside a frame (torn write)")]
    Torn,
    #[error("frame length {0} is larger than the limit {MAX_FRAME}")]
    TooLong(u32),
    #[error("frame kind {0} is unknown")]
    BadKind(u8),
    #[error("frame checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
}

fn crc(kind: u8, payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&[kind, 0, 0, 0]);
    crc32c::crc32c_append(c, payload)
}

/// Appends one frame to `out`.
pub fn encode(kind: Kind, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc(kind as u8, payload).to_le_bytes());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// A valid frame found in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: Kind,
    pub payload: &'a [u8],
    /// Bytes the frame occupies, header included.
    pub size: usize,
}

/// Decodes the frame at the start of `data`.
pub fn decode(data: &[u8]) -> Result<Frame<'_>, FrameError> {
    if data.len() < FRAME_HEADER {
        return Err(FrameError::Torn);
    }
    let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let stored = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let kind_byte = data[8];
    if len > MAX_FRAME {
        return Err(FrameError::TooLong(len));
    }
    let kind = Kind::from_u8(kind_byte).ok_or(FrameError::BadKind(kind_byte))?;
    // Checked before the CRC, so scanning garbage for the next frame rarely
    // computes one (resync stays linear in practice).
    if data[9..12] != [0, 0, 0] {
        return Err(FrameError::Checksum {
            stored,
            computed: 0,
        });
    }
    let end = FRAME_HEADER + len as usize;
    if data.len() < end {
        return Err(FrameError::Torn);
    }
    let payload = &data[FRAME_HEADER..end];
    let computed = crc(kind_byte, payload);
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok(Frame {
        kind,
        payload,
        size: end,
    })
}

/// Offset (from the start of `data`) of the next whole, valid frame after a
/// damaged one at offset 0, if any.
pub fn resync(data: &[u8]) -> Option<usize> {
    (1..data.len()).find(|&at| decode(&data[at..]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_bound_fits_a_frame_whatever_the_data() {
        assert!(zstd::zstd_safe::compress_bound(MAX_RAW) <= MAX_FRAME as usize);
    }

    #[test]
    fn round_trips() {
        let mut buf = Vec::new();
        encode(Kind::Batch, b"hello", &mut buf);
        encode(Kind::Index, b"", &mut buf);
        let f = decode(&buf).unwrap();
        assert_eq!(
            (f.kind, f.payload, f.size),
            (Kind::Batch, &b"hello"[..], 17)
        );
        let g = decode(&buf[f.size..]).unwrap();
        assert_eq!((g.kind, g.payload), (Kind::Index, &b""[..]));
    }

    #[test]
    fn every_damage_is_reported_not_panicked_on() {
        let mut buf = Vec::new();
        encode(Kind::Batch, b"some payload bytes", &mut buf);
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]), Err(FrameError::Torn), "cut at {cut}");
        }
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                assert!(
                    decode(&b).is_err(),
                    "flip byte {i} bit {bit} went unnoticed"
                );
            }
        }
        let mut huge = buf.clone();
        huge[0..4].copy_from_slice(&(MAX_FRAME + 1).to_le_bytes());
        assert_eq!(decode(&huge), Err(FrameError::TooLong(MAX_FRAME + 1)));
    }

    #[test]
    fn resyncs_to_the_next_good_frame() {
        let mut buf = Vec::new();
        encode(Kind::Batch, b"first", &mut buf);
        let second_at = buf.len();
        encode(Kind::Batch, b"second", &mut buf);
        buf[3] = 0x7f; // damage the first frame's length
        assert!(decode(&buf).is_err());
        assert_eq!(resync(&buf), Some(second_at));
    }
}
