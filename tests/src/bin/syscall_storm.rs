//! A syscall storm for the loss test.
//!
//! Usage: `syscall-storm N BYTES [PAUSE_MS]`. Waits for one byte on stdin,
//! writes BYTES-sized buffers to /dev/null N times as fast as it can, pauses
//! (500 ms unless PAUSE_MS says otherwise) so the recorder can drain, then opens a marker path (ENOENT) and exits 0: the
//! marker must be recorded even though the storm overflowed the ring.
use std::ffi::CString;

pub const MARKER: &str = "/tracer-test-storm-done-marker";

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .expect("usage: syscall-storm N BYTES");
    let bytes: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .expect("usage: syscall-storm N BYTES");
    let pause: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(500);
    let mut go = [0u8; 1];
    // SAFETY: reading one byte into a valid buffer.
    unsafe { libc::read(0, go.as_mut_ptr().cast(), 1) };
    let devnull = CString::new("/dev/null").expect("path");
    // SAFETY: plain open of a constant path.
    let fd = unsafe { libc::open(devnull.as_ptr(), libc::O_WRONLY) };
    assert!(fd >= 0);
    // Fresh pseudo-random bytes for every write, so the recording cannot
    // compress them away (the disk-full test needs real volume).
    let mut buf = vec![0u8; bytes];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..n {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        // SAFETY: valid buffer of `bytes` bytes.
        unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), bytes) };
    }
    std::thread::sleep(std::time::Duration::from_millis(pause));
    let marker = CString::new(MARKER).expect("marker");
    // SAFETY: raw openat of a constant path.
    unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            marker.as_ptr(),
            libc::O_RDONLY,
            0,
        )
    };
}
