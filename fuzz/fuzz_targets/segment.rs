//! Any bytes given to the segment and frame decoders: no panic, no hang,
//! no unbounded allocation (libFuzzer's RSS limit catches that).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer_store::{frame, segment};

fuzz_target!(|data: &[u8]| {
    let _ = frame::decode(data);
    let _ = frame::resync(data);
    if let Ok(s) = segment::scan_bytes(std::path::Path::new("fuzz"), data) {
        // What the reader returns is internally consistent.
        assert!(s.valid_len <= s.file_len);
    }
});
