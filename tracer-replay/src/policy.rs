//! Which syscalls replay runs for real and which it answers from the
//! recording. Only what shapes the address space or the task runs; nothing
//! that reaches the outside world does.

/// How a recorded syscall is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answered from the recording: not run, recorded result and outputs.
    Emulate,
    /// Run for real; the program sees the real result (addresses).
    ExecuteReal,
    /// Run for real; the program sees the recorded result (a tid, 0).
    ExecuteRecorded,
    /// Run for real and never returns (exit, rt_sigreturn).
    ExecuteNoReturn,
    /// A file-backed mmap: mapped anonymously, filled from the recorded file.
    MapFile,
    /// An exec: run for real, of the bundle's copy of the new program.
    Exec,
    /// A new thread or process (clone, fork, vfork, clone3): run for real
    /// when the recording has the new task's events, else answered.
    Spawn,
    /// A System V segment attached (`shmat`) or detached (`shmdt`): see
    /// `engine/shm.rs`.
    AttachShm,
    DetachShm,
    /// Replay cannot do this yet; the reason says why.
    Unsupported(&'static str),
}

pub const CLONE_THREAD: u64 = 0x10000;
pub const MAP_ANONYMOUS: u64 = 0x20;

/// The action for syscall `name` with these arguments.
pub fn action(name: &str, args: &[u64; 6]) -> Action {
    match name {
        "mmap" if args[3] & MAP_ANONYMOUS == 0 && args[4] as i32 >= 0 => Action::MapFile,
        "mmap" | "mremap" | "brk" => Action::ExecuteReal,
        "munmap" | "mprotect" | "madvise" | "arch_prctl" | "set_robust_list" | "rseq"
        | "rt_sigaction" | "rt_sigprocmask" | "sigaltstack" | "pkey_mprotect" | "pkey_alloc"
        | "pkey_free" | "mlock" | "mlock2" | "munlock" | "mlockall" | "munlockall"
        | "set_tid_address" => Action::ExecuteRecorded,
        // Setting limits shapes the task; reading them is answered.
        "prlimit64" | "setrlimit" if args[0] == 0 || name == "setrlimit" => {
            if name == "setrlimit" || args[2] != 0 {
                Action::ExecuteRecorded
            } else {
                Action::Emulate
            }
        }
        "exit" | "exit_group" | "rt_sigreturn" => Action::ExecuteNoReturn,
        "clone" | "clone3" | "fork" | "vfork" => Action::Spawn,
        "execve" | "execveat" => Action::Exec,
        "shmat" => Action::AttachShm,
        "shmdt" => Action::DetachShm,
        "io_uring_setup" | "io_setup" => {
            Action::Unsupported("memory another party writes (io_uring, aio)")
        }
        // A filter the program installs (seccomp, or prctl's
        // PR_SET_SECCOMP) is answered, never installed: under it, the
        // replayer's own syscalls in the program (mmap, its fork
        // points) would be filtered too. What the filter did when
        // recorded, the recording has: the syscalls it failed or trapped
        // (recorded without an entry) are answered as such, and a trap's
        // SIGSYS is sent with the kernel's siginfo (engine.rs,
        // `stopped_by_filter`).
        "seccomp" => Action::Emulate,
        // The System V ctl calls, msgrcv, semop, keyctl, quotactl,
        // mincore, capget and process_vm_writev (into the program itself;
        // into another process replay stops) are answered from their
        // recorded memory per command (effects::cmd_memory).
        _ => Action::Emulate,
    }
}

/// Time syscalls the vDSO answers while recording: in replay they are
/// syscalls, answered from the recorded timeline when the recording has
/// no matching syscall.
pub fn is_time(name: &str) -> bool {
    matches!(
        name,
        "clock_gettime" | "gettimeofday" | "time" | "getcpu" | "clock_getres"
    )
}

/// Syscalls whose argument 1 is data written out to argument 0: what the
/// replay shows of stdout and stderr, and what a program that read
/// approximate times may write otherwise (a timestamp) without having done
/// anything else otherwise.
pub fn writes_data_out(name: &str) -> bool {
    matches!(
        name,
        "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" | "sendto"
    )
}

/// `fcntl` commands whose third argument is an integer the kernel reads
/// (for the others it is a pointer, or whatever the register held).
pub fn fcntl_int_arg(cmd: u64) -> bool {
    // F_DUPFD, F_SETFD, F_SETFL, F_SETOWN, F_SETSIG, F_SETLEASE, F_NOTIFY,
    // F_DUPFD_CLOEXEC, F_SETPIPE_SZ, F_ADD_SEALS.
    matches!(cmd, 0 | 2 | 4 | 8 | 10 | 1024 | 1026 | 1030 | 1031 | 1033)
}

/// Whether the kernel reads argument `k` of syscall `name` as a value with
/// these arguments: the others are whatever the register held and are not
/// compared with the recording.
pub fn reads_arg(name: &str, k: usize, args: &[u64; 6]) -> bool {
    const O_CREAT: u64 = 0o100;
    const O_TMPFILE: u64 = 0o20000000;
    match (name, k) {
        // val3 only for the bitset and wake-op operations.
        ("futex", 5) => matches!(args[1] & 0x7f, 5 | 9 | 10),
        ("fcntl", 2) => fcntl_int_arg(args[1]),
        ("prctl", k) => tracer_common::effects::prctl_reads_value(args[0], k),
        // The mode only when a file may be made.
        ("open", 2) => args[1] & (O_CREAT | O_TMPFILE) != 0,
        ("openat", 3) => args[2] & (O_CREAT | O_TMPFILE) != 0,
        // cpu_id only with MEMBARRIER_CMD_FLAG_CPU.
        ("membarrier", 2) => args[1] & 1 != 0,
        _ => true,
    }
}

/// Argument `k` of syscall `name` is a timeout a program computes from the
/// clock (milliseconds left until its next timer): it follows the time the
/// program saw, which replay gives exactly only where the recording has
/// it, so it is not compared. (Timeouts passed by pointer are not
/// compared anyway.)
pub fn time_derived(name: &str, k: usize) -> bool {
    matches!((name, k), ("epoll_wait" | "epoll_pwait", 3) | ("poll", 2))
}

/// Argument `i` of a syscall is an address (differs between recording and
/// replay, not compared).
pub fn is_address_arg(arg_name: &str) -> bool {
    arg_name.contains("addr") || arg_name == "start"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_the_kernel_does_not_read_are_not_compared() {
        assert!(!reads_arg("openat", 3, &[0, 0, 0, 0o644, 0, 0]));
        assert!(reads_arg("openat", 3, &[0, 0, 0o101, 0o644, 0, 0]));
        assert!(!reads_arg("open", 2, &[0, 0o2, 0o644, 0, 0, 0]));
        assert!(reads_arg("open", 2, &[0, 0o20200000, 0, 0, 0, 0]));
        // PR_SET_NO_NEW_PRIVS reads arg2; PR_SET_NAME's arg2 is a pointer.
        assert!(reads_arg("prctl", 1, &[38, 1, 0, 0, 0, 0]));
        assert!(!reads_arg("prctl", 1, &[15, 0x7ffd, 0, 0, 0, 0]));
        assert!(!reads_arg("prctl", 3, &[38, 1, 7, 7, 7, 0]));
        assert!(!reads_arg("membarrier", 2, &[8, 0, 3, 0, 0, 0]));
        assert!(reads_arg("membarrier", 2, &[8, 1, 3, 0, 0, 0]));
        assert!(reads_arg("write", 2, &[1, 0, 5, 0, 0, 0]));
        assert!(time_derived("epoll_wait", 3) && !time_derived("epoll_wait", 2));
    }

    #[test]
    fn only_address_space_and_task_state_runs() {
        assert_eq!(action("write", &[1, 0, 5, 0, 0, 0]), Action::Emulate);
        assert_eq!(action("unlinkat", &[0; 6]), Action::Emulate);
        assert_eq!(action("kill", &[1, 9, 0, 0, 0, 0]), Action::Emulate);
        assert_eq!(
            action("mmap", &[0, 4096, 3, 0x22, u64::MAX, 0]),
            Action::ExecuteReal
        );
        assert_eq!(action("mmap", &[0, 4096, 1, 0x2, 3, 0]), Action::MapFile);
        assert_eq!(action("exit_group", &[0; 6]), Action::ExecuteNoReturn);
        assert_eq!(
            action("prlimit64", &[0, 3, 0, 0x1000, 0, 0]),
            Action::Emulate
        );
        assert_eq!(
            action("clone", &[CLONE_THREAD, 0, 0, 0, 0, 0]),
            Action::Spawn
        );
        assert_eq!(action("clone3", &[0; 6]), Action::Spawn);
        assert_eq!(action("fork", &[0; 6]), Action::Spawn);
        // A program's own seccomp filter is never installed in replay.
        assert_eq!(action("seccomp", &[1, 0, 0x7ff0, 0, 0, 0]), Action::Emulate);
        assert_eq!(action("prctl", &[22, 2, 0x7ff0, 0, 0, 0]), Action::Emulate);
    }
}
