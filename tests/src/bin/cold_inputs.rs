//! Syscall inputs in pages the program has never touched, for the recorder's
//! truth test: a user read from eBPF cannot fault a page in, so inputs read
//! only at syscall entry would be missing.
//!
//! Usage: `cold-inputs FILE`. Writes FILE with one path every [`STRIDE`]
//! bytes and a known byte pattern after them, maps it read-only without
//! touching it, waits for a byte on stdin, then makes raw syscalls whose
//! inputs lie only in that mapping: `openat` of each path (the kernel is the
//! first to touch its page), `newfstatat` of one, and `write`s
//! of 100, 20000 and 256 bytes of the pattern to FILE.out. Exits with 3 after printing one
//! JSON line: the paths in order and each write's offset and length.
use std::{ffi::CString, io::Write as _, os::fd::AsRawFd as _};

use tracer_tests::cold::{STRIDE, pattern};

/// A raw syscall; an error is returned as the kernel does, -errno.
fn sys(n: libc::c_long, a: [usize; 4]) -> isize {
    // SAFETY: raw syscalls with arguments prepared by the caller.
    let r = unsafe { libc::syscall(n, a[0], a[1], a[2], a[3]) as isize };
    if r == -1 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as isize)
    } else {
        r
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: cold-inputs FILE");
    let mut paths: Vec<String> = vec![
        "/dev/zero".into(),
        "/dev/null".into(),
        "/proc/self/stat".into(),
        "/nonexistent/cold/path".into(),
    ];
    // Distinct paths to the same file: each open is told apart.
    for k in 0..12 {
        paths.push(format!("/dev{}/null", "/.".repeat(k + 1)));
    }
    let writes: [(usize, usize); 3] = [(0, 100), (3 * STRIDE / 2, 20_000), (5 * STRIDE, 256)];
    let pattern_at = paths.len() * STRIDE;
    let mut content = vec![0u8; pattern_at + 6 * STRIDE];
    for (k, p) in paths.iter().enumerate() {
        content[k * STRIDE..k * STRIDE + p.len()].copy_from_slice(p.as_bytes());
    }
    for (i, b) in content[pattern_at..].iter_mut().enumerate() {
        *b = pattern(i);
    }
    std::fs::write(&path, &content).expect("write FILE");
    let file = std::fs::File::open(&path).expect("open FILE");
    // SAFETY: a new read-only private mapping of a file we just wrote.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            content.len(),
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert!(map != libc::MAP_FAILED, "mmap failed");
    let base = map as usize;
    drop(content);
    // A file, not /dev/null: the kernel must copy what is written.
    let sink = CString::new(format!("{path}.out")).expect("path");
    // SAFETY: a valid C string.
    let out = unsafe { libc::open(sink.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600) };
    assert!(out >= 0, "open FILE.out");

    let mut go = [0u8; 1];
    // SAFETY: reading one byte into a valid buffer.
    unsafe { libc::read(0, go.as_mut_ptr().cast(), 1) };

    let mut rets = vec![];
    for k in 0..paths.len() {
        let fd = sys(
            libc::SYS_openat,
            [
                libc::AT_FDCWD as usize,
                base + k * STRIDE,
                libc::O_RDONLY as usize,
                0,
            ],
        );
        rets.push(fd);
        if fd >= 0 {
            sys(libc::SYS_close, [fd as usize, 0, 0, 0]);
        }
    }
    // A page the kernel has now faulted in, for a stat of a path read there.
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys(
        libc::SYS_newfstatat,
        [
            libc::AT_FDCWD as usize,
            base + STRIDE,
            &mut st as *mut _ as usize,
            0,
        ],
    );
    for (off, len) in writes {
        sys(
            libc::SYS_write,
            [out as usize, base + pattern_at + off, len, 0],
        );
    }
    let quoted: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
    let rets: Vec<String> = rets.iter().map(|r| r.to_string()).collect();
    let w: Vec<String> = writes.iter().map(|(o, l)| format!("[{o},{l}]")).collect();
    let report = format!(
        "{{\"pid\":{},\"fd\":{out},\"paths\":[{}],\"rets\":[{}],\"writes\":[{}]}}\n",
        std::process::id(),
        quoted.join(","),
        rets.join(","),
        w.join(",")
    );
    let _ = std::io::stdout().write_all(report.as_bytes());
    let _ = std::io::stdout().flush();
    sys(libc::SYS_exit_group, [3, 0, 0, 0]);
}
