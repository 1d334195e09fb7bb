//! A known script of syscalls for the capture test.
//!
//! Usage: `syscall-script FILE`. Waits for one byte on stdin (so the test can
//! start recording first), then makes exactly these syscalls, each raw so
//! that libc adds nothing in between:
//! openat(marker) = -ENOENT, openat(FILE), read until EOF, close,
//! getrandom(16), newfstatat(FILE), pipe2, write(pipe, "ping"),
//! read(pipe, 4), clock_gettime(CLOCK_MONOTONIC), nanosleep(1 ms),
//! fork (child: execve /bin/true), wait4, write(stdout, report), exit_group(3).
//! The report is one JSON line with what the test cannot know in advance.
use std::ffi::CString;

/// Path opened first: its ENOENT marks where the script starts.
pub const MARKER: &str = "/tracer-test-script-start-marker";

fn sys(n: libc::c_long, a: [usize; 4]) -> isize {
    // SAFETY: raw syscalls with arguments prepared by the caller.
    unsafe { libc::syscall(n, a[0], a[1], a[2], a[3]) as isize }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: syscall-script FILE");
    // Asked before the script starts: getpid is not part of it.
    let me = std::process::id();
    let mut go = [0u8; 1];
    // SAFETY: reading one byte into a valid buffer.
    unsafe { libc::read(0, go.as_mut_ptr().cast(), 1) };

    let marker = CString::new(MARKER).expect("marker");
    let cpath = CString::new(path).expect("path");
    sys(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as usize,
            marker.as_ptr() as usize,
            libc::O_RDONLY as usize,
            0,
        ],
    );
    let fd = sys(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as usize,
            cpath.as_ptr() as usize,
            libc::O_RDONLY as usize,
            0,
        ],
    );
    assert!(fd >= 0, "open failed");
    let mut content = vec![0u8; 1 << 16];
    let mut got = 0usize;
    loop {
        let n = sys(
            libc::SYS_read,
            [
                fd as usize,
                content[got..].as_mut_ptr() as usize,
                content.len() - got,
                0,
            ],
        );
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    sys(libc::SYS_close, [fd as usize, 0, 0, 0]);

    let mut random = [0u8; 16];
    sys(
        libc::SYS_getrandom,
        [random.as_mut_ptr() as usize, 16, 0, 0],
    );

    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    sys(
        libc::SYS_newfstatat,
        [
            libc::AT_FDCWD as usize,
            cpath.as_ptr() as usize,
            &mut st as *mut _ as usize,
            0,
        ],
    );

    let mut fds = [0i32; 2];
    sys(libc::SYS_pipe2, [fds.as_mut_ptr() as usize, 0, 0, 0]);
    sys(
        libc::SYS_write,
        [fds[1] as usize, b"ping".as_ptr() as usize, 4, 0],
    );
    let mut pong = [0u8; 4];
    sys(
        libc::SYS_read,
        [fds[0] as usize, pong.as_mut_ptr() as usize, 4, 0],
    );

    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    sys(
        libc::SYS_clock_gettime,
        [
            libc::CLOCK_MONOTONIC as usize,
            &mut ts as *mut _ as usize,
            0,
            0,
        ],
    );
    let nap = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    sys(libc::SYS_nanosleep, [&nap as *const _ as usize, 0, 0, 0]);

    let truebin = CString::new("/bin/true").expect("path");
    let argv = [truebin.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: fork in a single-threaded program; the child only execs or exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: valid NULL-terminated argv and envp.
        unsafe {
            libc::execve(truebin.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0i32;
    sys(
        libc::SYS_wait4,
        [child as usize, &mut status as *mut _ as usize, 0, 0],
    );

    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let report = format!(
        "{{\"pid\":{},\"child\":{},\"bytes\":{},\"random\":\"{}\",\"size\":{},\"pong\":\"{}\",\"sec\":{},\"nsec\":{},\"status\":{}}}\n",
        me,
        child,
        got,
        hex,
        st.st_size,
        String::from_utf8_lossy(&pong),
        ts.tv_sec,
        ts.tv_nsec,
        status
    );
    sys(
        libc::SYS_write,
        [1, report.as_ptr() as usize, report.len(), 0],
    );
    sys(libc::SYS_exit_group, [3, 0, 0, 0]);
}
