//! The x86_64 table, sorted by syscall number.
//!
//! One row per syscall the kernel's `syscall_64.tbl` lists (as the
//! `syscalls` crate spells them), with the arguments named as in the man
//! page or the kernel prototype. Struct sizes are those of the x86_64 kernel
//! ABI (what the kernel copies), not of any libc wrapper.
//!
//! Conventions:
//! - [`Effects::NoMemory`]: the syscall reads and writes no user memory
//!   (or returns `ENOSYS` on x86_64, or replay must execute it for real and
//!   the comment says why).
//! - [`Effects::Known`]: every buffer the kernel *writes* is listed, so that
//!   replay can write it back. Inputs are listed where a rule fits; a missing
//!   input only costs display, never replay, and the comment says so.
//! - [`Effects::Unknown`]: the kernel writes memory no rule can describe
//!   (command-dependent, asynchronous, or another process's); capture records
//!   args and return value only and replay stops there.
use super::ArgFmt::*;
use super::Direction::*;
use super::SizeRule::*;
use super::*;

const fn row(
    nr: u32,
    name: &'static str,
    args: &'static [(&'static str, ArgFmt)],
    effects: Effects,
) -> SyscallInfo {
    SyscallInfo {
        nr,
        name,
        args,
        effects,
    }
}

// Kernel ABI sizes on x86_64.
const STAT: u32 = 144; // struct stat
const STATX: u32 = 256; // struct statx
const STATFS: u32 = 120; // struct statfs
const TIMESPEC: u32 = 16; // struct __kernel_timespec
const TIMEVAL: u32 = 16; // struct timeval
const TIMEZONE: u32 = 8; // struct timezone
const ITIMERVAL: u32 = 32; // struct itimerval
const ITIMERSPEC: u32 = 32; // struct itimerspec
const TIMEX: u32 = 208; // struct __kernel_timex
const RUSAGE: u32 = 144; // struct rusage
const RLIMIT: u32 = 16; // struct rlimit / rlimit64
const UTSNAME: u32 = 390; // struct new_utsname
const SYSINFO: u32 = 112; // struct sysinfo
const TMS: u32 = 32; // struct tms
const USTAT: u32 = 32; // struct ustat
const SIGACTION: u32 = 32; // kernel struct sigaction (handler, flags, restorer, mask)
const STACK_T: u32 = 24; // stack_t
const SIGINFO: u32 = 128; // siginfo_t
const SIGEVENT: u32 = 64; // struct sigevent
const EPOLL_EVENT: u32 = 12; // struct epoll_event (packed on x86_64)
const POLLFD: u32 = 8; // struct pollfd
const SCHED_PARAM: u32 = 4; // struct sched_param
const CAP_HEADER: u32 = 8; // struct __user_cap_header_struct
const MQ_ATTR: u32 = 64; // struct mq_attr
const SEMBUF: u32 = 6; // struct sembuf
const MMSGHDR: u32 = 64; // struct mmsghdr (msghdr 56 + msg_len 4 + padding)
const IOVEC: u32 = 16; // struct iovec
const KEXEC_SEGMENT: u32 = 32; // struct kexec_segment
const FUTEX_WAITV: u32 = 24; // struct futex_waitv
const CACHESTAT_RANGE: u32 = 16; // struct cachestat_range
const CACHESTAT: u32 = 40; // struct cachestat
const LANDLOCK_PATH_BENEATH: u32 = 12; // struct landlock_path_beneath_attr (packed)
const OFF_T: u32 = 8; // loff_t
const INT: u32 = 4; // int, u32, socklen_t, gid_t, timer_t
const LONG: u32 = 8; // long, size_t, pointers
const XATTR_NAME: u32 = 256; // XATTR_NAME_MAX + NUL
const NAME: u32 = 256; // short kernel names (fs types, key types, memfd names)

/// Output whose length is the `u32` that argument `len_arg` points to, read
/// at exit (value-result `socklen_t`, `optlen`, ...).
const fn out_ptr_u32(arg: u8, len_arg: u8) -> Effect {
    effect(arg, Out, PtrU32, len_arg, 0)
}
/// Output sized by another argument.
const fn out_arg(arg: u8, size_arg: u8) -> Effect {
    effect(arg, Out, Arg, size_arg, 0)
}
/// Input array of `count_arg` elements of `elem` bytes.
const fn in_times(arg: u8, count_arg: u8, elem: u32) -> Effect {
    effect(arg, In, ArgTimes, count_arg, elem)
}
/// Output array of as many `elem`-byte elements as the return value says.
const fn out_ret_times(arg: u8, elem: u32) -> Effect {
    effect(arg, Out, RetTimes, 0, elem)
}
/// Input NUL-terminated string of at most `max` bytes (not a path).
const fn string(arg: u8, max: u32) -> Effect {
    effect(arg, In, CString, 0, max)
}
/// Input NULL-terminated array of strings (argv, envp).
const fn strings(arg: u8) -> Effect {
    effect(arg, In, StringArray, 0, 0)
}
/// Input iovec array of `count_arg` elements (the memory they point to).
const fn iov_in(arg: u8, count_arg: u8) -> Effect {
    effect(arg, In, Iovec, count_arg, 0)
}
/// Output iovec array of `count_arg` elements, filled up to the return value.
const fn iov_out(arg: u8, count_arg: u8) -> Effect {
    effect(arg, Out, Iovec, count_arg, 0)
}
/// select's fd_set, read and rewritten, of `nfds` (argument 0) bits.
const fn fd_set(arg: u8) -> Effect {
    effect(arg, InOut, FdSet, 0, 0)
}
/// A NUMA node bitmap of `args[maxnode_arg]` bits. The FdSet rule is the
/// same shape (a bitmap of N bits in whole longs, at most 1024 bits, which is
/// MAX_NUMNODES on x86_64). The kernel uses `maxnode - 1` bits, so when
/// `maxnode - 1` is a multiple of 64 this takes one long more than the kernel
/// touches.
const fn nodemask(arg: u8, dir: Direction, maxnode_arg: u8) -> Effect {
    effect(arg, dir, FdSet, maxnode_arg, 0)
}

// Argument lists shared by several rows.
const NO_ARGS: &[(&str, ArgFmt)] = &[];
const FD: &[(&str, ArgFmt)] = &[("fd", Fd)];
const PATHNAME: &[(&str, ArgFmt)] = &[("pathname", Str)];
const PATH_STAT: &[(&str, ArgFmt)] = &[("pathname", Str), ("statbuf", Ptr)];
const PATH_MODE: &[(&str, ArgFmt)] = &[("pathname", Str), ("mode", Octal)];
const PATH_OWNER: &[(&str, ArgFmt)] = &[("pathname", Str), ("owner", Int), ("group", Int)];
const OLD_NEW: &[(&str, ArgFmt)] = &[("oldpath", Str), ("newpath", Str)];
const SOCKADDR_OUT: &[(&str, ArgFmt)] = &[("sockfd", Fd), ("addr", Ptr), ("addrlen", Ptr)];
const SOCKADDR_IN: &[(&str, ArgFmt)] = &[("sockfd", Fd), ("addr", Ptr), ("addrlen", UInt)];
const SOCKET: &[(&str, ArgFmt)] = &[("domain", Int), ("type", Int), ("protocol", Int)];
const RESID_GET: &[(&str, ArgFmt)] = &[("ruid", Ptr), ("euid", Ptr), ("suid", Ptr)];
const RESGID_GET: &[(&str, ArgFmt)] = &[("rgid", Ptr), ("egid", Ptr), ("sgid", Ptr)];
const RW: &[(&str, ArgFmt)] = &[("fd", Fd), ("buf", Buf), ("count", UInt)];
const PRW: &[(&str, ArgFmt)] = &[("fd", Fd), ("buf", Buf), ("count", UInt), ("offset", Int)];
const RWV: &[(&str, ArgFmt)] = &[("fd", Fd), ("iov", Ptr), ("iovcnt", Int)];
const PRWV: &[(&str, ArgFmt)] = &[
    ("fd", Fd),
    ("iov", Ptr),
    ("iovcnt", Int),
    ("pos_l", Int),
    ("pos_h", Int),
];
const PRWV2: &[(&str, ArgFmt)] = &[
    ("fd", Fd),
    ("iov", Ptr),
    ("iovcnt", Int),
    ("pos_l", Int),
    ("pos_h", Int),
    ("flags", Hex),
];
const SETXATTR: &[(&str, ArgFmt)] = &[
    ("path", Str),
    ("name", Str),
    ("value", Buf),
    ("size", UInt),
    ("flags", Hex),
];
const GETXATTR: &[(&str, ArgFmt)] = &[("path", Str), ("name", Str), ("value", Buf), ("size", UInt)];
const LISTXATTR: &[(&str, ArgFmt)] = &[("path", Str), ("list", Buf), ("size", UInt)];
const REMOVEXATTR: &[(&str, ArgFmt)] = &[("path", Str), ("name", Str)];
const IO_GETEVENTS: &[(&str, ArgFmt)] = &[
    ("ctx_id", Hex),
    ("min_nr", Int),
    ("nr", Int),
    ("events", Ptr),
    ("timeout", Ptr),
];
const EPOLL_WAIT: &[(&str, ArgFmt)] = &[
    ("epfd", Fd),
    ("events", Ptr),
    ("maxevents", Int),
    ("timeout", Int),
];
const ACCESS_AT: &[(&str, ArgFmt)] = &[("dirfd", AtFd), ("pathname", Str), ("mode", Int)];
const XATTR_AT: &[(&str, ArgFmt)] = &[
    ("dirfd", AtFd),
    ("pathname", Str),
    ("at_flags", Hex),
    ("name", Str),
    ("uargs", Ptr),
    ("usize", UInt),
];
const FILE_ATTR: &[(&str, ArgFmt)] = &[
    ("dfd", AtFd),
    ("filename", Str),
    ("ufattr", Ptr),
    ("usize", UInt),
    ("at_flags", Hex),
];
const STREAMS: &[(&str, ArgFmt)] = &[
    ("fd", Fd),
    ("ctlptr", Ptr),
    ("dataptr", Ptr),
    ("bandp", Ptr),
    ("flagsp", Ptr),
];

// Effect lists shared by several rows.
const READ_RET: Effects = Effects::Known(&[out_ret(1)]);
const WRITE_ARG: Effects = Effects::Known(&[in_arg(1, 2)]);
const PATH0: Effects = Effects::Known(&[path(0)]);
const PATH1: Effects = Effects::Known(&[path(1)]);
const PATHS01: Effects = Effects::Known(&[path(0), path(1)]);
const PATHS13: Effects = Effects::Known(&[path(1), path(3)]);
const PATH_STAT_OUT: Effects = Effects::Known(&[path(0), out_const(1, STAT)]);
const SOCKADDR_OUT_EFFECTS: Effects = Effects::Known(&[out_ptr_u32(1, 2), inout_const(2, INT)]);
const SOCKADDR_IN_EFFECTS: Effects = Effects::Known(&[in_arg(1, 2)]);
const RESID_OUT: Effects =
    Effects::Known(&[out_const(0, INT), out_const(1, INT), out_const(2, INT)]);
const SETXATTR_EFFECTS: Effects = Effects::Known(&[path(0), string(1, XATTR_NAME), in_arg(2, 3)]);
const GETXATTR_EFFECTS: Effects = Effects::Known(&[path(0), string(1, XATTR_NAME), out_ret(2)]);
const LISTXATTR_EFFECTS: Effects = Effects::Known(&[path(0), out_ret(1)]);
const REMOVEXATTR_EFFECTS: Effects = Effects::Known(&[path(0), string(1, XATTR_NAME)]);
/// Returns ENOSYS on x86_64: the 64-bit table has no entry point for it.
const ENOSYS: Effects = Effects::NoMemory;
const AIO: Effects =
    Effects::Unknown("AIO: the kernel reads iocbs and fills their buffers asynchronously");
const IO_URING: Effects =
    Effects::Unknown("io_uring: rings and buffers shared with the kernel, filled asynchronously");

// One row per syscall, kept on one line each: rustfmt would spread them.
#[rustfmt::skip]
pub static TABLE: &[SyscallInfo] = &[
    row(0, "read", RW, READ_RET),
    row(1, "write", RW, WRITE_ARG),
    row(2, "open", &[("pathname", Str), ("flags", OpenFlags), ("mode", Octal)], PATH0),
    row(3, "close", FD, Effects::NoMemory),
    row(4, "stat", PATH_STAT, PATH_STAT_OUT),
    row(5, "fstat", &[("fd", Fd), ("statbuf", Ptr)], Effects::Known(&[out_const(1, STAT)])),
    row(6, "lstat", PATH_STAT, PATH_STAT_OUT),
    row(7, "poll", &[("fds", Ptr), ("nfds", UInt), ("timeout", Int)], Effects::Known(&[effect(0, InOut, ArgTimes, 1, POLLFD)])),
    row(8, "lseek", &[("fd", Fd), ("offset", Int), ("whence", Int)], Effects::NoMemory),
    // File-backed mappings bring file contents into memory; that is the
    // replayer's business, not a copy of user memory.
    row(9, "mmap", &[("addr", Hex), ("length", UInt), ("prot", Hex), ("flags", Hex), ("fd", Fd), ("offset", Hex)], Effects::NoMemory),
    row(10, "mprotect", &[("addr", Hex), ("len", UInt), ("prot", Hex)], Effects::NoMemory),
    row(11, "munmap", &[("addr", Hex), ("length", UInt)], Effects::NoMemory),
    row(12, "brk", &[("addr", Hex)], Effects::NoMemory),
    row(13, "rt_sigaction", &[("signum", Signal), ("act", Ptr), ("oldact", Ptr), ("sigsetsize", UInt)], Effects::Known(&[in_const(1, SIGACTION), out_const(2, SIGACTION)])),
    row(14, "rt_sigprocmask", &[("how", Int), ("set", Ptr), ("oldset", Ptr), ("sigsetsize", UInt)], Effects::Known(&[in_arg(1, 3), out_arg(2, 3)])),
    // Reads the signal frame off the stack to restore registers and the
    // mask; replay must execute it for real, so there is nothing to copy.
    row(15, "rt_sigreturn", NO_ARGS, Effects::NoMemory),
    row(16, "ioctl", &[("fd", Fd), ("request", Hex), ("argp", Ptr)], Effects::Known(&[effect(2, InOut, Ioctl, 1, 0)])),
    row(17, "pread64", PRW, READ_RET),
    row(18, "pwrite64", PRW, WRITE_ARG),
    row(19, "readv", RWV, Effects::Known(&[iov_out(1, 2)])),
    row(20, "writev", RWV, Effects::Known(&[iov_in(1, 2)])),
    row(21, "access", &[("pathname", Str), ("mode", Int)], PATH0),
    row(22, "pipe", &[("pipefd", Ptr)], Effects::Known(&[out_const(0, 2 * INT)])),
    row(23, "select", &[("nfds", Int), ("readfds", Ptr), ("writefds", Ptr), ("exceptfds", Ptr), ("timeout", Ptr)], Effects::Known(&[fd_set(1), fd_set(2), fd_set(3), inout_const(4, TIMEVAL)])),
    row(24, "sched_yield", NO_ARGS, Effects::NoMemory),
    row(25, "mremap", &[("old_address", Hex), ("old_size", UInt), ("new_size", UInt), ("flags", Hex), ("new_address", Hex)], Effects::NoMemory),
    row(26, "msync", &[("addr", Hex), ("length", UInt), ("flags", Hex)], Effects::NoMemory),
    // vec gets one byte per page of the range (length rounded up to pages).
    row(27, "mincore", &[("addr", Hex), ("length", UInt), ("vec", Ptr)], Effects::Known(&[effect(2, Out, Pages, 1, 0)])),
    row(28, "madvise", &[("addr", Hex), ("length", UInt), ("advice", Int)], Effects::NoMemory),
    row(29, "shmget", &[("key", Hex), ("size", UInt), ("shmflg", Hex)], Effects::NoMemory),
    // Maps a segment, copying no memory: what it holds is its writers'
    // (replay has it when they are all in the recording: engine/shm.rs).
    row(30, "shmat", &[("shmid", Int), ("shmaddr", Hex), ("shmflg", Hex)], Effects::NoMemory),
    // Per command (effects::cmd_memory): IPC_SET reads struct shmid64_ds,
    // the STAT commands write it, IPC_INFO and SHM_INFO write their structs.
    row(31, "shmctl", &[("shmid", Int), ("cmd", Int), ("buf", Ptr)], Effects::Known(&[effect(2, InOut, Cmd, 1, CMD_SHMCTL)])),
    row(32, "dup", &[("oldfd", Fd)], Effects::NoMemory),
    row(33, "dup2", &[("oldfd", Fd), ("newfd", Fd)], Effects::NoMemory),
    row(34, "pause", NO_ARGS, Effects::NoMemory),
    row(35, "nanosleep", &[("req", Ptr), ("rem", Ptr)], Effects::Known(&[in_const(0, TIMESPEC), out_const(1, TIMESPEC)])),
    row(36, "getitimer", &[("which", Int), ("curr_value", Ptr)], Effects::Known(&[out_const(1, ITIMERVAL)])),
    row(37, "alarm", &[("seconds", UInt)], Effects::NoMemory),
    row(38, "setitimer", &[("which", Int), ("new_value", Ptr), ("old_value", Ptr)], Effects::Known(&[in_const(1, ITIMERVAL), out_const(2, ITIMERVAL)])),
    row(39, "getpid", NO_ARGS, Effects::NoMemory),
    row(40, "sendfile", &[("out_fd", Fd), ("in_fd", Fd), ("offset", Ptr), ("count", UInt)], Effects::Known(&[inout_const(2, OFF_T)])),
    row(41, "socket", SOCKET, Effects::NoMemory),
    row(42, "connect", SOCKADDR_IN, SOCKADDR_IN_EFFECTS),
    row(43, "accept", SOCKADDR_OUT, SOCKADDR_OUT_EFFECTS),
    row(44, "sendto", &[("sockfd", Fd), ("buf", Buf), ("len", UInt), ("flags", Hex), ("dest_addr", Ptr), ("addrlen", UInt)], Effects::Known(&[in_arg(1, 2), in_arg(4, 5)])),
    row(45, "recvfrom", &[("sockfd", Fd), ("buf", Buf), ("len", UInt), ("flags", Hex), ("src_addr", Ptr), ("addrlen", Ptr)], Effects::Known(&[out_ret(1), out_ptr_u32(4, 5), inout_const(5, INT)])),
    row(46, "sendmsg", &[("sockfd", Fd), ("msg", Ptr), ("flags", Hex)], Effects::Known(&[effect(1, In, Msghdr, 0, 0)])),
    row(47, "recvmsg", &[("sockfd", Fd), ("msg", Ptr), ("flags", Hex)], Effects::Known(&[effect(1, Out, Msghdr, 0, 0)])),
    row(48, "shutdown", &[("sockfd", Fd), ("how", Int)], Effects::NoMemory),
    row(49, "bind", SOCKADDR_IN, SOCKADDR_IN_EFFECTS),
    row(50, "listen", &[("sockfd", Fd), ("backlog", Int)], Effects::NoMemory),
    row(51, "getsockname", SOCKADDR_OUT, SOCKADDR_OUT_EFFECTS),
    row(52, "getpeername", SOCKADDR_OUT, SOCKADDR_OUT_EFFECTS),
    row(53, "socketpair", &[("domain", Int), ("type", Int), ("protocol", Int), ("sv", Ptr)], Effects::Known(&[out_const(3, 2 * INT)])),
    row(54, "setsockopt", &[("sockfd", Fd), ("level", Int), ("optname", Int), ("optval", Ptr), ("optlen", UInt)], Effects::Known(&[in_arg(3, 4)])),
    row(55, "getsockopt", &[("sockfd", Fd), ("level", Int), ("optname", Int), ("optval", Ptr), ("optlen", Ptr)], Effects::Known(&[out_ptr_u32(3, 4), inout_const(4, INT)])),
    // The kernel writes the new tid to parent_tid (CLONE_PARENT_SETTID, in
    // the parent) and child_tid (CLONE_CHILD_SETTID, in the child); replay
    // executes clone for real, so the kernel writes them again.
    row(56, "clone", &[("flags", Hex), ("stack", Hex), ("parent_tid", Ptr), ("child_tid", Ptr), ("tls", Hex)], Effects::NoMemory),
    row(57, "fork", NO_ARGS, Effects::NoMemory),
    row(58, "vfork", NO_ARGS, Effects::NoMemory),
    row(59, "execve", &[("pathname", Str), ("argv", Ptr), ("envp", Ptr)], Effects::Known(&[path(0), strings(1), strings(2)])),
    row(60, "exit", &[("status", Int)], Effects::NoMemory),
    row(61, "wait4", &[("pid", Int), ("wstatus", Ptr), ("options", Hex), ("rusage", Ptr)], Effects::Known(&[out_const(1, INT), out_const(3, RUSAGE)])),
    row(62, "kill", &[("pid", Int), ("sig", Signal)], Effects::NoMemory),
    row(63, "uname", &[("buf", Ptr)], Effects::Known(&[out_const(0, UTSNAME)])),
    row(64, "semget", &[("key", Hex), ("nsems", Int), ("semflg", Hex)], Effects::NoMemory),
    row(65, "semop", &[("semid", Int), ("sops", Ptr), ("nsops", UInt)], Effects::Known(&[in_times(1, 2, SEMBUF)])),
    // Per command (effects::cmd_memory): arg is a pointer for IPC_SET (read),
    // the STAT and INFO commands (written), GETALL (written, of a size the
    // call does not say: recorded effects_unknown) and SETALL; a value else.
    row(66, "semctl", &[("semid", Int), ("semnum", Int), ("cmd", Int), ("arg", Hex)], Effects::Known(&[effect(3, InOut, Cmd, 2, CMD_SEMCTL)])),
    row(67, "shmdt", &[("shmaddr", Hex)], Effects::NoMemory),
    row(68, "msgget", &[("key", Hex), ("msgflg", Hex)], Effects::NoMemory),
    // struct msgbuf is an 8-byte mtype followed by msgsz bytes of mtext;
    // there is no "argument plus constant" rule, so the last 8 bytes of
    // mtext are not captured (an input: display only).
    row(69, "msgsnd", &[("msqid", Int), ("msgp", Ptr), ("msgsz", UInt), ("msgflg", Hex)], Effects::Known(&[in_arg(1, 2)])),
    // The 8-byte mtype, then the returned number of mtext bytes.
    row(70, "msgrcv", &[("msqid", Int), ("msgp", Ptr), ("msgsz", UInt), ("msgtyp", Int), ("msgflg", Hex)], Effects::Known(&[effect(1, Out, RetPlus, 0, 8)])),
    // Per command (effects::cmd_memory): IPC_SET reads struct msqid64_ds,
    // the STAT commands write it, IPC_INFO and MSG_INFO write struct msginfo.
    row(71, "msgctl", &[("msqid", Int), ("cmd", Int), ("buf", Ptr)], Effects::Known(&[effect(2, InOut, Cmd, 1, CMD_MSGCTL)])),
    // The Fcntl rule covers the commands that take a pointer: struct flock
    // (the lock commands), struct f_owner_ex (F_SETOWN_EX, F_GETOWN_EX) and
    // u64 (the read-write hint commands).
    row(72, "fcntl", &[("fd", Fd), ("cmd", Int), ("arg", Hex)], Effects::Known(&[effect(2, InOut, Fcntl, 1, 0)])),
    row(73, "flock", &[("fd", Fd), ("operation", Int)], Effects::NoMemory),
    row(74, "fsync", FD, Effects::NoMemory),
    row(75, "fdatasync", FD, Effects::NoMemory),
    row(76, "truncate", &[("path", Str), ("length", Int)], PATH0),
    row(77, "ftruncate", &[("fd", Fd), ("length", Int)], Effects::NoMemory),
    row(78, "getdents", &[("fd", Fd), ("dirp", Ptr), ("count", UInt)], READ_RET),
    row(79, "getcwd", &[("buf", Buf), ("size", UInt)], Effects::Known(&[out_ret(0)])),
    row(80, "chdir", &[("path", Str)], PATH0),
    row(81, "fchdir", FD, Effects::NoMemory),
    row(82, "rename", OLD_NEW, PATHS01),
    row(83, "mkdir", PATH_MODE, PATH0),
    row(84, "rmdir", PATHNAME, PATH0),
    row(85, "creat", PATH_MODE, PATH0),
    row(86, "link", OLD_NEW, PATHS01),
    row(87, "unlink", PATHNAME, PATH0),
    row(88, "symlink", &[("target", Str), ("linkpath", Str)], PATHS01),
    row(89, "readlink", &[("pathname", Str), ("buf", Buf), ("bufsiz", UInt)], Effects::Known(&[path(0), out_ret(1)])),
    row(90, "chmod", PATH_MODE, PATH0),
    row(91, "fchmod", &[("fd", Fd), ("mode", Octal)], Effects::NoMemory),
    row(92, "chown", PATH_OWNER, PATH0),
    row(93, "fchown", &[("fd", Fd), ("owner", Int), ("group", Int)], Effects::NoMemory),
    row(94, "lchown", PATH_OWNER, PATH0),
    row(95, "umask", &[("mask", Octal)], Effects::NoMemory),
    row(96, "gettimeofday", &[("tv", Ptr), ("tz", Ptr)], Effects::Known(&[out_const(0, TIMEVAL), out_const(1, TIMEZONE)])),
    row(97, "getrlimit", &[("resource", Int), ("rlim", Ptr)], Effects::Known(&[out_const(1, RLIMIT)])),
    row(98, "getrusage", &[("who", Int), ("usage", Ptr)], Effects::Known(&[out_const(1, RUSAGE)])),
    row(99, "sysinfo", &[("info", Ptr)], Effects::Known(&[out_const(0, SYSINFO)])),
    row(100, "times", &[("buf", Ptr)], Effects::Known(&[out_const(0, TMS)])),
    // Per request (effects::cmd_memory): the tracer's own memory at data.
    row(101, "ptrace", &[("request", Int), ("pid", Int), ("addr", Hex), ("data", Hex)], Effects::Known(&[effect(3, InOut, Cmd, 0, CMD_PTRACE)])),
    row(102, "getuid", NO_ARGS, Effects::NoMemory),
    // The READ actions write the returned byte count to bufp; the others
    // write nothing (and bufp is usually NULL then).
    row(103, "syslog", &[("type", Int), ("bufp", Buf), ("len", Int)], Effects::Known(&[out_ret(1)])),
    row(104, "getgid", NO_ARGS, Effects::NoMemory),
    row(105, "setuid", &[("uid", Int)], Effects::NoMemory),
    row(106, "setgid", &[("gid", Int)], Effects::NoMemory),
    row(107, "geteuid", NO_ARGS, Effects::NoMemory),
    row(108, "getegid", NO_ARGS, Effects::NoMemory),
    row(109, "setpgid", &[("pid", Int), ("pgid", Int)], Effects::NoMemory),
    row(110, "getppid", NO_ARGS, Effects::NoMemory),
    row(111, "getpgrp", NO_ARGS, Effects::NoMemory),
    row(112, "setsid", NO_ARGS, Effects::NoMemory),
    row(113, "setreuid", &[("ruid", Int), ("euid", Int)], Effects::NoMemory),
    row(114, "setregid", &[("rgid", Int), ("egid", Int)], Effects::NoMemory),
    row(115, "getgroups", &[("size", Int), ("list", Ptr)], Effects::Known(&[out_ret_times(1, INT)])),
    row(116, "setgroups", &[("size", Int), ("list", Ptr)], Effects::Known(&[in_times(1, 0, INT)])),
    row(117, "setresuid", &[("ruid", Int), ("euid", Int), ("suid", Int)], Effects::NoMemory),
    row(118, "getresuid", RESID_GET, RESID_OUT),
    row(119, "setresgid", &[("rgid", Int), ("egid", Int), ("sgid", Int)], Effects::NoMemory),
    row(120, "getresgid", RESGID_GET, RESID_OUT),
    row(121, "getpgid", &[("pid", Int)], Effects::NoMemory),
    row(122, "setfsuid", &[("fsuid", Int)], Effects::NoMemory),
    row(123, "setfsgid", &[("fsgid", Int)], Effects::NoMemory),
    row(124, "getsid", &[("pid", Int)], Effects::NoMemory),
    // The header is read, and its version rewritten when unsupported. The
    // data is two 12-byte structs for capability versions 2 and 3.
    // The data is one struct for _LINUX_CAPABILITY_VERSION_1, two after; an
    // unknown version has the kernel's written into the header (and EINVAL,
    // or 0 when datap is NULL).
    row(125, "capget", &[("hdrp", Ptr), ("datap", Ptr)], Effects::Known(&[inout_const(0, CAP_HEADER), effect(1, Out, CapData, 0, 0)])),
    row(126, "capset", &[("hdrp", Ptr), ("datap", Ptr)], Effects::Known(&[in_const(0, CAP_HEADER), effect(1, In, CapData, 0, 0)])),
    row(127, "rt_sigpending", &[("set", Ptr), ("sigsetsize", UInt)], Effects::Known(&[out_arg(0, 1)])),
    row(128, "rt_sigtimedwait", &[("set", Ptr), ("info", Ptr), ("timeout", Ptr), ("sigsetsize", UInt)], Effects::Known(&[in_arg(0, 3), out_const(1, SIGINFO), in_const(2, TIMESPEC)])),
    row(129, "rt_sigqueueinfo", &[("tgid", Int), ("sig", Signal), ("info", Ptr)], Effects::Known(&[in_const(2, SIGINFO)])),
    row(130, "rt_sigsuspend", &[("mask", Ptr), ("sigsetsize", UInt)], Effects::Known(&[in_arg(0, 1)])),
    row(131, "sigaltstack", &[("ss", Ptr), ("old_ss", Ptr)], Effects::Known(&[in_const(0, STACK_T), out_const(1, STACK_T)])),
    // struct utimbuf: two time_t.
    row(132, "utime", &[("filename", Str), ("times", Ptr)], Effects::Known(&[path(0), in_const(1, 2 * LONG)])),
    row(133, "mknod", &[("pathname", Str), ("mode", Octal), ("dev", Hex)], PATH0),
    row(134, "uselib", &[("library", Str)], ENOSYS),
    row(135, "personality", &[("persona", Hex)], Effects::NoMemory),
    row(136, "ustat", &[("dev", Hex), ("ubuf", Ptr)], Effects::Known(&[out_const(1, USTAT)])),
    row(137, "statfs", &[("path", Str), ("buf", Ptr)], Effects::Known(&[path(0), out_const(1, STATFS)])),
    row(138, "fstatfs", &[("fd", Fd), ("buf", Ptr)], Effects::Known(&[out_const(1, STATFS)])),
    row(139, "sysfs", &[("option", Int), ("arg1", Hex), ("arg2", Hex)], Effects::Unknown("option-dependent: 1 reads a name from arg1, 2 writes a name to arg2")),
    row(140, "getpriority", &[("which", Int), ("who", Int)], Effects::NoMemory),
    row(141, "setpriority", &[("which", Int), ("who", Int), ("prio", Int)], Effects::NoMemory),
    row(142, "sched_setparam", &[("pid", Int), ("param", Ptr)], Effects::Known(&[in_const(1, SCHED_PARAM)])),
    row(143, "sched_getparam", &[("pid", Int), ("param", Ptr)], Effects::Known(&[out_const(1, SCHED_PARAM)])),
    row(144, "sched_setscheduler", &[("pid", Int), ("policy", Int), ("param", Ptr)], Effects::Known(&[in_const(2, SCHED_PARAM)])),
    row(145, "sched_getscheduler", &[("pid", Int)], Effects::NoMemory),
    row(146, "sched_get_priority_max", &[("policy", Int)], Effects::NoMemory),
    row(147, "sched_get_priority_min", &[("policy", Int)], Effects::NoMemory),
    row(148, "sched_rr_get_interval", &[("pid", Int), ("tp", Ptr)], Effects::Known(&[out_const(1, TIMESPEC)])),
    row(149, "mlock", &[("addr", Hex), ("len", UInt)], Effects::NoMemory),
    row(150, "munlock", &[("addr", Hex), ("len", UInt)], Effects::NoMemory),
    row(151, "mlockall", &[("flags", Hex)], Effects::NoMemory),
    row(152, "munlockall", NO_ARGS, Effects::NoMemory),
    row(153, "vhangup", NO_ARGS, Effects::NoMemory),
    row(154, "modify_ldt", &[("func", Int), ("ptr", Ptr), ("bytecount", UInt)], Effects::Unknown("func-dependent: 0 and 2 write up to bytecount bytes, 1 and 0x11 read a struct user_desc")),
    row(155, "pivot_root", &[("new_root", Str), ("put_old", Str)], PATHS01),
    // Removed in Linux 5.5.
    row(156, "_sysctl", &[("args", Ptr)], ENOSYS),
    // Per option: PR_SET_NAME reads a name, the PR_GET_* options that
    // answer through arg2 write it (effects::prctl_memory).
    row(157, "prctl", &[("option", Int), ("arg2", Hex), ("arg3", Hex), ("arg4", Hex), ("arg5", Hex)], Effects::Known(&[effect(1, InOut, Prctl, 0, 0)])),
    // ARCH_GET_FS/GS and the other ARCH_GET_* codes write 8 bytes to addr;
    // replay executes arch_prctl for real, so the kernel writes them again.
    row(158, "arch_prctl", &[("code", Hex), ("addr", Hex)], Effects::NoMemory),
    row(159, "adjtimex", &[("buf", Ptr)], Effects::Known(&[inout_const(0, TIMEX)])),
    row(160, "setrlimit", &[("resource", Int), ("rlim", Ptr)], Effects::Known(&[in_const(1, RLIMIT)])),
    row(161, "chroot", &[("path", Str)], PATH0),
    row(162, "sync", NO_ARGS, Effects::NoMemory),
    row(163, "acct", &[("filename", Str)], PATH0),
    row(164, "settimeofday", &[("tv", Ptr), ("tz", Ptr)], Effects::Known(&[in_const(0, TIMEVAL), in_const(1, TIMEZONE)])),
    // data is filesystem-dependent (nearly always an option string; a few
    // old filesystems take a binary struct). Read only: nothing is written.
    row(165, "mount", &[("source", Str), ("target", Str), ("filesystemtype", Str), ("mountflags", Hex), ("data", Str)], Effects::Known(&[path(0), path(1), string(2, NAME), path(4)])),
    row(166, "umount2", &[("target", Str), ("flags", Hex)], PATH0),
    row(167, "swapon", &[("path", Str), ("swapflags", Hex)], PATH0),
    row(168, "swapoff", &[("path", Str)], PATH0),
    // LINUX_REBOOT_CMD_RESTART2 reads a command string from arg; nothing is
    // written.
    row(169, "reboot", &[("magic", Hex), ("magic2", Hex), ("cmd", Hex), ("arg", Ptr)], Effects::NoMemory),
    row(170, "sethostname", &[("name", Buf), ("len", UInt)], Effects::Known(&[in_arg(0, 1)])),
    row(171, "setdomainname", &[("name", Buf), ("len", UInt)], Effects::Known(&[in_arg(0, 1)])),
    row(172, "iopl", &[("level", Int)], Effects::NoMemory),
    row(173, "ioperm", &[("from", Hex), ("num", UInt), ("turn_on", Int)], Effects::NoMemory),
    row(174, "create_module", &[("name", Str), ("size", UInt)], ENOSYS),
    row(175, "init_module", &[("module_image", Ptr), ("len", UInt), ("param_values", Str)], Effects::Known(&[in_arg(0, 1), string(2, 4096)])),
    row(176, "delete_module", &[("name", Str), ("flags", Hex)], Effects::Known(&[string(0, 64)])),
    row(177, "get_kernel_syms", &[("table", Ptr)], ENOSYS),
    row(178, "query_module", &[("name", Str), ("which", Int), ("buf", Ptr), ("bufsize", UInt), ("ret", Ptr)], ENOSYS),
    // Per command (effects::cmd_memory): the Q_GET* commands write their
    // struct at addr, the Q_SET* ones read it; the XFS ones are unknown.
    row(179, "quotactl", &[("cmd", Int), ("special", Str), ("id", Int), ("addr", Ptr)], Effects::Known(&[path(1), effect(3, InOut, Cmd, 0, CMD_QUOTACTL)])),
    row(180, "nfsservctl", &[("cmd", Int), ("argp", Ptr), ("resp", Ptr)], ENOSYS),
    row(181, "getpmsg", STREAMS, ENOSYS),
    row(182, "putpmsg", STREAMS, ENOSYS),
    row(183, "afs_syscall", NO_ARGS, ENOSYS),
    row(184, "tuxcall", NO_ARGS, ENOSYS),
    row(185, "security", NO_ARGS, ENOSYS),
    row(186, "gettid", NO_ARGS, Effects::NoMemory),
    row(187, "readahead", &[("fd", Fd), ("offset", Int), ("count", UInt)], Effects::NoMemory),
    row(188, "setxattr", SETXATTR, SETXATTR_EFFECTS),
    row(189, "lsetxattr", SETXATTR, SETXATTR_EFFECTS),
    row(190, "fsetxattr", &[("fd", Fd), ("name", Str), ("value", Buf), ("size", UInt), ("flags", Hex)], Effects::Known(&[string(1, XATTR_NAME), in_arg(2, 3)])),
    row(191, "getxattr", GETXATTR, GETXATTR_EFFECTS),
    row(192, "lgetxattr", GETXATTR, GETXATTR_EFFECTS),
    row(193, "fgetxattr", &[("fd", Fd), ("name", Str), ("value", Buf), ("size", UInt)], Effects::Known(&[string(1, XATTR_NAME), out_ret(2)])),
    row(194, "listxattr", LISTXATTR, LISTXATTR_EFFECTS),
    row(195, "llistxattr", LISTXATTR, LISTXATTR_EFFECTS),
    row(196, "flistxattr", &[("fd", Fd), ("list", Buf), ("size", UInt)], READ_RET),
    row(197, "removexattr", REMOVEXATTR, REMOVEXATTR_EFFECTS),
    row(198, "lremovexattr", REMOVEXATTR, REMOVEXATTR_EFFECTS),
    row(199, "fremovexattr", &[("fd", Fd), ("name", Str)], Effects::Known(&[string(1, XATTR_NAME)])),
    row(200, "tkill", &[("tid", Int), ("sig", Signal)], Effects::NoMemory),
    row(201, "time", &[("tloc", Ptr)], Effects::Known(&[out_const(0, LONG)])),
    // Only the futex word is listed. The rest depends on futex_op: timeout
    // is a struct timespec for the WAIT ops but a plain count (val2) for the
    // REQUEUE ops; uaddr2 is a second futex word that FUTEX_WAKE_OP writes;
    // the PI ops write the owner tid into *uaddr.
    row(202, "futex", &[("uaddr", Ptr), ("futex_op", Int), ("val", UInt), ("timeout", Ptr), ("uaddr2", Ptr), ("val3", UInt)], Effects::Known(&[in_const(0, INT)])),
    row(203, "sched_setaffinity", &[("pid", Int), ("cpusetsize", UInt), ("mask", Ptr)], Effects::Known(&[in_arg(2, 1)])),
    // The raw syscall returns the number of bytes it wrote to mask.
    row(204, "sched_getaffinity", &[("pid", Int), ("cpusetsize", UInt), ("mask", Ptr)], Effects::Known(&[out_ret(2)])),
    row(205, "set_thread_area", &[("u_info", Ptr)], ENOSYS),
    row(206, "io_setup", &[("nr_events", UInt), ("ctx_idp", Ptr)], Effects::Unknown("creates an AIO ring mapped into the process, which the kernel writes asynchronously")),
    row(207, "io_destroy", &[("ctx_id", Hex)], Effects::NoMemory),
    row(208, "io_getevents", IO_GETEVENTS, AIO),
    row(209, "io_submit", &[("ctx_id", Hex), ("nr", Int), ("iocbpp", Ptr)], AIO),
    row(210, "io_cancel", &[("ctx_id", Hex), ("iocb", Ptr), ("result", Ptr)], AIO),
    row(211, "get_thread_area", &[("u_info", Ptr)], ENOSYS),
    // ENOSYS since Linux 6.7 (the return value bounds the capture).
    row(212, "lookup_dcookie", &[("cookie", Hex), ("buffer", Buf), ("len", UInt)], READ_RET),
    row(213, "epoll_create", &[("size", Int)], Effects::NoMemory),
    row(214, "epoll_ctl_old", NO_ARGS, ENOSYS),
    row(215, "epoll_wait_old", NO_ARGS, ENOSYS),
    row(216, "remap_file_pages", &[("addr", Hex), ("size", UInt), ("prot", Hex), ("pgoff", UInt), ("flags", Hex)], Effects::NoMemory),
    row(217, "getdents64", &[("fd", Fd), ("dirp", Ptr), ("count", UInt)], READ_RET),
    // The kernel writes 0 to tidptr when the thread exits; replay executes
    // set_tid_address for real, so the kernel does it again.
    row(218, "set_tid_address", &[("tidptr", Ptr)], Effects::NoMemory),
    row(219, "restart_syscall", NO_ARGS, Effects::Unknown("continues an interrupted syscall and has its effects (poll writes revents, nanosleep rem)")),
    row(220, "semtimedop", &[("semid", Int), ("sops", Ptr), ("nsops", UInt), ("timeout", Ptr)], Effects::Known(&[in_times(1, 2, SEMBUF), in_const(3, TIMESPEC)])),
    row(221, "fadvise64", &[("fd", Fd), ("offset", Int), ("len", Int), ("advice", Int)], Effects::NoMemory),
    row(222, "timer_create", &[("clockid", Int), ("sevp", Ptr), ("timerid", Ptr)], Effects::Known(&[in_const(1, SIGEVENT), out_const(2, INT)])),
    row(223, "timer_settime", &[("timerid", Int), ("flags", Hex), ("new_value", Ptr), ("old_value", Ptr)], Effects::Known(&[in_const(2, ITIMERSPEC), out_const(3, ITIMERSPEC)])),
    row(224, "timer_gettime", &[("timerid", Int), ("curr_value", Ptr)], Effects::Known(&[out_const(1, ITIMERSPEC)])),
    row(225, "timer_getoverrun", &[("timerid", Int)], Effects::NoMemory),
    row(226, "timer_delete", &[("timerid", Int)], Effects::NoMemory),
    row(227, "clock_settime", &[("clockid", Int), ("tp", Ptr)], Effects::Known(&[in_const(1, TIMESPEC)])),
    row(228, "clock_gettime", &[("clockid", Int), ("tp", Ptr)], Effects::Known(&[out_const(1, TIMESPEC)])),
    row(229, "clock_getres", &[("clockid", Int), ("res", Ptr)], Effects::Known(&[out_const(1, TIMESPEC)])),
    row(230, "clock_nanosleep", &[("clockid", Int), ("flags", Hex), ("request", Ptr), ("remain", Ptr)], Effects::Known(&[in_const(2, TIMESPEC), out_const(3, TIMESPEC)])),
    row(231, "exit_group", &[("status", Int)], Effects::NoMemory),
    row(232, "epoll_wait", EPOLL_WAIT, Effects::Known(&[out_ret_times(1, EPOLL_EVENT)])),
    row(233, "epoll_ctl", &[("epfd", Fd), ("op", Int), ("fd", Fd), ("event", Ptr)], Effects::Known(&[in_const(3, EPOLL_EVENT)])),
    row(234, "tgkill", &[("tgid", Int), ("tid", Int), ("sig", Signal)], Effects::NoMemory),
    row(235, "utimes", &[("filename", Str), ("times", Ptr)], Effects::Known(&[path(0), in_const(1, 2 * TIMEVAL)])),
    row(236, "vserver", NO_ARGS, ENOSYS),
    row(237, "mbind", &[("addr", Hex), ("len", UInt), ("mode", Int), ("nodemask", Ptr), ("maxnode", UInt), ("flags", Hex)], Effects::Known(&[nodemask(3, In, 4)])),
    row(238, "set_mempolicy", &[("mode", Int), ("nodemask", Ptr), ("maxnode", UInt)], Effects::Known(&[nodemask(1, In, 2)])),
    row(239, "get_mempolicy", &[("mode", Ptr), ("nodemask", Ptr), ("maxnode", UInt), ("addr", Hex), ("flags", Hex)], Effects::Known(&[out_const(0, INT), nodemask(1, Out, 2)])),
    row(240, "mq_open", &[("name", Str), ("oflag", OpenFlags), ("mode", Octal), ("attr", Ptr)], Effects::Known(&[path(0), in_const(3, MQ_ATTR)])),
    row(241, "mq_unlink", &[("name", Str)], PATH0),
    row(242, "mq_timedsend", &[("mqdes", Fd), ("msg_ptr", Buf), ("msg_len", UInt), ("msg_prio", UInt), ("abs_timeout", Ptr)], Effects::Known(&[in_arg(1, 2), in_const(4, TIMESPEC)])),
    row(243, "mq_timedreceive", &[("mqdes", Fd), ("msg_ptr", Buf), ("msg_len", UInt), ("msg_prio", Ptr), ("abs_timeout", Ptr)], Effects::Known(&[out_ret(1), out_const(3, INT), in_const(4, TIMESPEC)])),
    row(244, "mq_notify", &[("mqdes", Fd), ("sevp", Ptr)], Effects::Known(&[in_const(1, SIGEVENT)])),
    row(245, "mq_getsetattr", &[("mqdes", Fd), ("newattr", Ptr), ("oldattr", Ptr)], Effects::Known(&[in_const(1, MQ_ATTR), out_const(2, MQ_ATTR)])),
    // The segment array is captured, not the buffers it points to (inputs).
    row(246, "kexec_load", &[("entry", Hex), ("nr_segments", UInt), ("segments", Ptr), ("flags", Hex)], Effects::Known(&[in_times(2, 1, KEXEC_SEGMENT)])),
    row(247, "waitid", &[("idtype", Int), ("id", Int), ("infop", Ptr), ("options", Hex), ("rusage", Ptr)], Effects::Known(&[out_const(2, SIGINFO), out_const(4, RUSAGE)])),
    row(248, "add_key", &[("type", Str), ("description", Str), ("payload", Buf), ("plen", UInt), ("keyring", Int)], Effects::Known(&[string(0, NAME), string(1, 4096), in_arg(2, 3)])),
    row(249, "request_key", &[("type", Str), ("description", Str), ("callout_info", Str), ("dest_keyring", Int)], Effects::Known(&[string(0, NAME), string(1, 4096), string(2, 4096)])),
    // Per operation (effects::cmd_memory): DESCRIBE, READ, GET_SECURITY and
    // DH_COMPUTE fill arg3, CAPABILITIES arg2; the PKEY ones that write are
    // unknown. Inputs (names, payloads, params) are not captured: display only.
    row(250, "keyctl", &[("operation", Int), ("arg2", Hex), ("arg3", Hex), ("arg4", Hex), ("arg5", Hex)], Effects::Known(&[effect(1, Out, Cmd, 0, CMD_KEYCTL), effect(2, Out, Cmd, 0, CMD_KEYCTL)])),
    row(251, "ioprio_set", &[("which", Int), ("who", Int), ("ioprio", Int)], Effects::NoMemory),
    row(252, "ioprio_get", &[("which", Int), ("who", Int)], Effects::NoMemory),
    row(253, "inotify_init", NO_ARGS, Effects::NoMemory),
    row(254, "inotify_add_watch", &[("fd", Fd), ("pathname", Str), ("mask", Hex)], PATH1),
    row(255, "inotify_rm_watch", &[("fd", Fd), ("wd", Int)], Effects::NoMemory),
    row(256, "migrate_pages", &[("pid", Int), ("maxnode", UInt), ("old_nodes", Ptr), ("new_nodes", Ptr)], Effects::Known(&[nodemask(2, In, 1), nodemask(3, In, 1)])),
    row(257, "openat", &[("dirfd", AtFd), ("pathname", Str), ("flags", OpenFlags), ("mode", Octal)], PATH1),
    row(258, "mkdirat", &[("dirfd", AtFd), ("pathname", Str), ("mode", Octal)], PATH1),
    row(259, "mknodat", &[("dirfd", AtFd), ("pathname", Str), ("mode", Octal), ("dev", Hex)], PATH1),
    row(260, "fchownat", &[("dirfd", AtFd), ("pathname", Str), ("owner", Int), ("group", Int), ("flags", Hex)], PATH1),
    row(261, "futimesat", &[("dirfd", AtFd), ("pathname", Str), ("times", Ptr)], Effects::Known(&[path(1), in_const(2, 2 * TIMEVAL)])),
    row(262, "newfstatat", &[("dirfd", AtFd), ("pathname", Str), ("statbuf", Ptr), ("flags", Hex)], Effects::Known(&[path(1), out_const(2, STAT)])),
    row(263, "unlinkat", &[("dirfd", AtFd), ("pathname", Str), ("flags", Hex)], PATH1),
    row(264, "renameat", &[("olddirfd", AtFd), ("oldpath", Str), ("newdirfd", AtFd), ("newpath", Str)], PATHS13),
    row(265, "linkat", &[("olddirfd", AtFd), ("oldpath", Str), ("newdirfd", AtFd), ("newpath", Str), ("flags", Hex)], PATHS13),
    row(266, "symlinkat", &[("target", Str), ("newdirfd", AtFd), ("linkpath", Str)], Effects::Known(&[path(0), path(2)])),
    row(267, "readlinkat", &[("dirfd", AtFd), ("pathname", Str), ("buf", Buf), ("bufsiz", UInt)], Effects::Known(&[path(1), out_ret(2)])),
    // The kernel's fchmodat and faccessat take no flags argument (see
    // fchmodat2 and faccessat2).
    row(268, "fchmodat", &[("dirfd", AtFd), ("pathname", Str), ("mode", Octal)], PATH1),
    row(269, "faccessat", ACCESS_AT, PATH1),
    // The kernel rewrites timeout with the time left. The sixth argument
    // (a 16-byte {sigset_t *ss; size_t ss_len} read at entry) is an input
    // that does not fit in MAX_EFFECTS and is not captured.
    row(270, "pselect6", &[("nfds", Int), ("readfds", Ptr), ("writefds", Ptr), ("exceptfds", Ptr), ("timeout", Ptr), ("sigmask", Ptr)], Effects::Known(&[fd_set(1), fd_set(2), fd_set(3), inout_const(4, TIMESPEC)])),
    // The kernel rewrites tmo_p with the time left.
    row(271, "ppoll", &[("fds", Ptr), ("nfds", UInt), ("tmo_p", Ptr), ("sigmask", Ptr), ("sigsetsize", UInt)], Effects::Known(&[effect(0, InOut, ArgTimes, 1, POLLFD), inout_const(2, TIMESPEC), in_arg(3, 4)])),
    row(272, "unshare", &[("flags", Hex)], Effects::NoMemory),
    // The kernel walks the robust list when the thread exits; replay
    // executes set_robust_list for real.
    row(273, "set_robust_list", &[("head", Ptr), ("len", UInt)], Effects::NoMemory),
    row(274, "get_robust_list", &[("pid", Int), ("head_ptr", Ptr), ("len_ptr", Ptr)], Effects::Known(&[out_const(1, LONG), out_const(2, LONG)])),
    row(275, "splice", &[("fd_in", Fd), ("off_in", Ptr), ("fd_out", Fd), ("off_out", Ptr), ("len", UInt), ("flags", Hex)], Effects::Known(&[inout_const(1, OFF_T), inout_const(3, OFF_T)])),
    row(276, "tee", &[("fd_in", Fd), ("fd_out", Fd), ("len", UInt), ("flags", Hex)], Effects::NoMemory),
    row(277, "sync_file_range", &[("fd", Fd), ("offset", Int), ("nbytes", Int), ("flags", Hex)], Effects::NoMemory),
    // To a pipe's write end the iovecs are read; from its read end they are
    // filled, up to the return value. InOut covers both: an unchanged buffer
    // written back is a no-op.
    row(278, "vmsplice", &[("fd", Fd), ("iov", Ptr), ("nr_segs", UInt), ("flags", Hex)], Effects::Known(&[effect(1, InOut, Iovec, 2, 0)])),
    row(279, "move_pages", &[("pid", Int), ("count", UInt), ("pages", Ptr), ("nodes", Ptr), ("status", Ptr), ("flags", Hex)], Effects::Known(&[in_times(2, 1, LONG), in_times(3, 1, INT), effect(4, Out, ArgTimes, 1, INT)])),
    row(280, "utimensat", &[("dirfd", AtFd), ("pathname", Str), ("times", Ptr), ("flags", Hex)], Effects::Known(&[path(1), in_const(2, 2 * TIMESPEC)])),
    row(281, "epoll_pwait", &[("epfd", Fd), ("events", Ptr), ("maxevents", Int), ("timeout", Int), ("sigmask", Ptr), ("sigsetsize", UInt)], Effects::Known(&[out_ret_times(1, EPOLL_EVENT), in_arg(4, 5)])),
    row(282, "signalfd", &[("fd", Fd), ("mask", Ptr), ("sizemask", UInt)], Effects::Known(&[in_arg(1, 2)])),
    row(283, "timerfd_create", &[("clockid", Int), ("flags", Hex)], Effects::NoMemory),
    row(284, "eventfd", &[("initval", UInt)], Effects::NoMemory),
    row(285, "fallocate", &[("fd", Fd), ("mode", Hex), ("offset", Int), ("len", Int)], Effects::NoMemory),
    row(286, "timerfd_settime", &[("fd", Fd), ("flags", Hex), ("new_value", Ptr), ("old_value", Ptr)], Effects::Known(&[in_const(2, ITIMERSPEC), out_const(3, ITIMERSPEC)])),
    row(287, "timerfd_gettime", &[("fd", Fd), ("curr_value", Ptr)], Effects::Known(&[out_const(1, ITIMERSPEC)])),
    row(288, "accept4", &[("sockfd", Fd), ("addr", Ptr), ("addrlen", Ptr), ("flags", Hex)], SOCKADDR_OUT_EFFECTS),
    row(289, "signalfd4", &[("fd", Fd), ("mask", Ptr), ("sizemask", UInt), ("flags", Hex)], Effects::Known(&[in_arg(1, 2)])),
    row(290, "eventfd2", &[("initval", UInt), ("flags", Hex)], Effects::NoMemory),
    row(291, "epoll_create1", &[("flags", Hex)], Effects::NoMemory),
    row(292, "dup3", &[("oldfd", Fd), ("newfd", Fd), ("flags", Hex)], Effects::NoMemory),
    row(293, "pipe2", &[("pipefd", Ptr), ("flags", Hex)], Effects::Known(&[out_const(0, 2 * INT)])),
    row(294, "inotify_init1", &[("flags", Hex)], Effects::NoMemory),
    row(295, "preadv", PRWV, Effects::Known(&[iov_out(1, 2)])),
    row(296, "pwritev", PRWV, Effects::Known(&[iov_in(1, 2)])),
    row(297, "rt_tgsigqueueinfo", &[("tgid", Int), ("tid", Int), ("sig", Signal), ("info", Ptr)], Effects::Known(&[in_const(3, SIGINFO)])),
    // The attr is read whole (its own size field says how much; E2BIG
    // writes the kernel's size there). What the event then counts is read
    // with read() (recorded); a ring it fills is an mmap of its fd, which
    // replay refuses.
    row(298, "perf_event_open", &[("attr", Ptr), ("pid", Int), ("cpu", Int), ("group_fd", Fd), ("flags", Hex)], Effects::Known(&[effect(0, InOut, PerfEventAttr, 0, 0)])),
    // Each received message's header (msg_len, the name and control
    // lengths, flags), name, control buffer and iovecs' memory; the
    // timeout is read and the time left written back.
    row(299, "recvmmsg", &[("sockfd", Fd), ("msgvec", Ptr), ("vlen", UInt), ("flags", Hex), ("timeout", Ptr)], Effects::Known(&[effect(1, Out, Mmsghdr, 2, 0), inout_const(4, TIMESPEC)])),
    row(300, "fanotify_init", &[("flags", Hex), ("event_f_flags", OpenFlags)], Effects::NoMemory),
    row(301, "fanotify_mark", &[("fanotify_fd", Fd), ("flags", Hex), ("mask", Hex), ("dirfd", AtFd), ("pathname", Str)], Effects::Known(&[path(4)])),
    row(302, "prlimit64", &[("pid", Int), ("resource", Int), ("new_limit", Ptr), ("old_limit", Ptr)], Effects::Known(&[in_const(2, RLIMIT), out_const(3, RLIMIT)])),
    row(303, "name_to_handle_at", &[("dirfd", AtFd), ("pathname", Str), ("handle", Ptr), ("mount_id", Ptr), ("flags", Hex)], Effects::Unknown("writes a struct file_handle of 8 + handle_bytes bytes, sized by its own field: no size rule")),
    // Only the 8-byte header of struct file_handle is captured: the
    // f_handle bytes that follow are sized by it (an input: display only).
    row(304, "open_by_handle_at", &[("mount_fd", Fd), ("handle", Ptr), ("flags", OpenFlags)], Effects::Known(&[in_const(1, 8)])),
    row(305, "clock_adjtime", &[("clk_id", Int), ("buf", Ptr)], Effects::Known(&[inout_const(1, TIMEX)])),
    row(306, "syncfs", FD, Effects::NoMemory),
    // The headers are read and each sent message's msg_len is written; the
    // data they point to is read only (not captured: display only).
    row(307, "sendmmsg", &[("sockfd", Fd), ("msgvec", Ptr), ("vlen", UInt), ("flags", Hex)], Effects::Known(&[effect(1, InOut, ArgTimes, 2, MMSGHDR)])),
    row(308, "setns", &[("fd", Fd), ("nstype", Hex)], Effects::NoMemory),
    // tcache is unused since Linux 2.6.24.
    row(309, "getcpu", &[("cpu", Ptr), ("node", Ptr), ("tcache", Ptr)], Effects::Known(&[out_const(0, INT), out_const(1, INT)])),
    // The local iovecs are filled in order up to the return value, exactly
    // like readv; the remote process is only read.
    row(310, "process_vm_readv", &[("pid", Int), ("local_iov", Ptr), ("liovcnt", UInt), ("remote_iov", Ptr), ("riovcnt", UInt), ("flags", Hex)], Effects::Known(&[iov_out(1, 2)])),
    // Into this process itself the remote iovecs are its own memory, written
    // up to the return value; into another process nothing of this one is
    // (replay cannot do that: the engine says so).
    row(311, "process_vm_writev", &[("pid", Int), ("local_iov", Ptr), ("liovcnt", UInt), ("remote_iov", Ptr), ("riovcnt", UInt), ("flags", Hex)], Effects::Known(&[iov_in(1, 2), effect(3, Out, SelfIovec, 4, 0)])),
    // KCMP_EPOLL_TFD reads a 12-byte struct kcmp_epoll_slot from idx2;
    // nothing is written.
    row(312, "kcmp", &[("pid1", Int), ("pid2", Int), ("type", Int), ("idx1", UInt), ("idx2", UInt)], Effects::NoMemory),
    row(313, "finit_module", &[("fd", Fd), ("param_values", Str), ("flags", Hex)], Effects::Known(&[string(1, 4096)])),
    // struct sched_attr is sized by its first field; on E2BIG the kernel
    // writes its own size there, and the exit-side copy catches that.
    row(314, "sched_setattr", &[("pid", Int), ("attr", Ptr), ("flags", Hex)], Effects::Known(&[effect(1, InOut, PtrU32, 1, 0)])),
    row(315, "sched_getattr", &[("pid", Int), ("attr", Ptr), ("size", UInt), ("flags", Hex)], Effects::Known(&[out_arg(1, 2)])),
    row(316, "renameat2", &[("olddirfd", AtFd), ("oldpath", Str), ("newdirfd", AtFd), ("newpath", Str), ("flags", Hex)], PATHS13),
    // Per operation (effects::cmd_memory): SET_MODE_FILTER reads a
    // sock_fprog and its filter, GET_ACTION_AVAIL a u32, GET_NOTIF_SIZES
    // writes 6 bytes. Replay answers it: the program's filter is never
    // installed under the replayer (policy.rs).
    row(317, "seccomp", &[("operation", Int), ("flags", Hex), ("args", Ptr)], Effects::Known(&[effect(2, InOut, Cmd, 0, CMD_SECCOMP)])),
    row(318, "getrandom", &[("buf", Buf), ("buflen", UInt), ("flags", Hex)], Effects::Known(&[out_ret(0)])),
    row(319, "memfd_create", &[("name", Str), ("flags", Hex)], Effects::Known(&[string(0, NAME)])),
    row(320, "kexec_file_load", &[("kernel_fd", Fd), ("initrd_fd", Fd), ("cmdline_len", UInt), ("cmdline", Str), ("flags", Hex)], Effects::Known(&[in_arg(3, 2)])),
    // Per command (effects::bpf_memory): the attr, read and written back,
    // and the logs and query arrays it points to. A map's keys and values
    // (sized by the map) and info structs are unknown; what a loaded
    // program does runs in the kernel, not in this one.
    row(321, "bpf", &[("cmd", Int), ("attr", Ptr), ("size", UInt)], Effects::Known(&[effect(1, InOut, Bpf, 2, 0)])),
    row(322, "execveat", &[("dirfd", AtFd), ("pathname", Str), ("argv", Ptr), ("envp", Ptr), ("flags", Hex)], Effects::Known(&[path(1), strings(2), strings(3)])),
    row(323, "userfaultfd", &[("flags", Hex)], Effects::NoMemory),
    row(324, "membarrier", &[("cmd", Int), ("flags", Hex), ("cpu_id", Int)], Effects::NoMemory),
    row(325, "mlock2", &[("addr", Hex), ("len", UInt), ("flags", Hex)], Effects::NoMemory),
    row(326, "copy_file_range", &[("fd_in", Fd), ("off_in", Ptr), ("fd_out", Fd), ("off_out", Ptr), ("len", UInt), ("flags", Hex)], Effects::Known(&[inout_const(1, OFF_T), inout_const(3, OFF_T)])),
    row(327, "preadv2", PRWV2, Effects::Known(&[iov_out(1, 2)])),
    row(328, "pwritev2", PRWV2, Effects::Known(&[iov_in(1, 2)])),
    row(329, "pkey_mprotect", &[("addr", Hex), ("len", UInt), ("prot", Hex), ("pkey", Int)], Effects::NoMemory),
    row(330, "pkey_alloc", &[("flags", Hex), ("access_rights", Hex)], Effects::NoMemory),
    row(331, "pkey_free", &[("pkey", Int)], Effects::NoMemory),
    row(332, "statx", &[("dirfd", AtFd), ("pathname", Str), ("flags", Hex), ("mask", Hex), ("statxbuf", Ptr)], Effects::Known(&[path(1), out_const(4, STATX)])),
    row(333, "io_pgetevents", &[("ctx_id", Hex), ("min_nr", Int), ("nr", Int), ("events", Ptr), ("timeout", Ptr), ("usig", Ptr)], AIO),
    // The kernel writes cpu_id and friends into the rseq area at
    // registration and on every return to user space; replay executes rseq
    // for real.
    row(334, "rseq", &[("rseq", Ptr), ("rseq_len", UInt), ("flags", Hex), ("sig", Hex)], Effects::NoMemory),
    row(335, "uretprobe", NO_ARGS, Effects::Unknown("only valid from the kernel's uretprobe trampoline, whose saved registers it pops off the stack")),
    row(336, "uprobe", NO_ARGS, Effects::Unknown("only valid from the kernel's uprobe trampoline, whose saved registers it pops off the stack")),
    row(424, "pidfd_send_signal", &[("pidfd", Fd), ("sig", Signal), ("info", Ptr), ("flags", Hex)], Effects::Known(&[in_const(2, SIGINFO)])),
    row(425, "io_uring_setup", &[("entries", UInt), ("params", Ptr)], IO_URING),
    row(426, "io_uring_enter", &[("fd", Fd), ("to_submit", UInt), ("min_complete", UInt), ("flags", Hex), ("argp", Ptr), ("argsz", UInt)], IO_URING),
    row(427, "io_uring_register", &[("fd", Fd), ("opcode", UInt), ("arg", Ptr), ("nr_args", UInt)], IO_URING),
    row(428, "open_tree", &[("dirfd", AtFd), ("path", Str), ("flags", Hex)], PATH1),
    row(429, "move_mount", &[("from_dirfd", AtFd), ("from_path", Str), ("to_dirfd", AtFd), ("to_path", Str), ("flags", Hex)], PATHS13),
    row(430, "fsopen", &[("fsname", Str), ("flags", Hex)], Effects::Known(&[string(0, NAME)])),
    // value is a string for SET_STRING and SET_PATH, aux bytes for
    // SET_BINARY, unused otherwise; it is captured as a string (an input:
    // display only).
    row(431, "fsconfig", &[("fd", Fd), ("cmd", UInt), ("key", Str), ("value", Ptr), ("aux", Int)], Effects::Known(&[string(2, NAME), path(3)])),
    row(432, "fsmount", &[("fs_fd", Fd), ("flags", Hex), ("attr_flags", Hex)], Effects::NoMemory),
    row(433, "fspick", &[("dirfd", AtFd), ("path", Str), ("flags", Hex)], PATH1),
    row(434, "pidfd_open", &[("pid", Int), ("flags", Hex)], Effects::NoMemory),
    // Reads struct clone_args. The kernel then writes the pidfd, parent_tid
    // and child_tid through pointers inside it; replay executes clone3 for
    // real, so the kernel writes them again.
    row(435, "clone3", &[("cl_args", Ptr), ("size", UInt)], Effects::Known(&[in_arg(0, 1)])),
    row(436, "close_range", &[("first", UInt), ("last", UInt), ("flags", Hex)], Effects::NoMemory),
    row(437, "openat2", &[("dirfd", AtFd), ("pathname", Str), ("how", Ptr), ("size", UInt)], Effects::Known(&[path(1), in_arg(2, 3)])),
    row(438, "pidfd_getfd", &[("pidfd", Fd), ("targetfd", Int), ("flags", Hex)], Effects::NoMemory),
    row(439, "faccessat2", &[("dirfd", AtFd), ("pathname", Str), ("mode", Int), ("flags", Hex)], PATH1),
    // The iovecs describe ranges of the target process: only the array is
    // read, not what it points to.
    row(440, "process_madvise", &[("pidfd", Fd), ("iovec", Ptr), ("vlen", UInt), ("advice", Int), ("flags", Hex)], Effects::Known(&[in_times(1, 2, IOVEC)])),
    row(441, "epoll_pwait2", &[("epfd", Fd), ("events", Ptr), ("maxevents", Int), ("timeout", Ptr), ("sigmask", Ptr), ("sigsetsize", UInt)], Effects::Known(&[out_ret_times(1, EPOLL_EVENT), in_const(3, TIMESPEC), in_arg(4, 5)])),
    row(442, "mount_setattr", &[("dirfd", AtFd), ("pathname", Str), ("flags", Hex), ("attr", Ptr), ("size", UInt)], Effects::Known(&[path(1), in_arg(3, 4)])),
    row(443, "quotactl_fd", &[("fd", Fd), ("cmd", Int), ("id", Int), ("addr", Ptr)], Effects::Known(&[effect(3, InOut, Cmd, 1, CMD_QUOTACTL)])),
    row(444, "landlock_create_ruleset", &[("attr", Ptr), ("size", UInt), ("flags", Hex)], Effects::Known(&[in_arg(0, 1)])),
    // rule_attr is a 12-byte landlock_path_beneath_attr for
    // LANDLOCK_RULE_PATH_BENEATH, 16 bytes for LANDLOCK_RULE_NET_PORT (of
    // which the first 12 are captured; an input: display only).
    row(445, "landlock_add_rule", &[("ruleset_fd", Fd), ("rule_type", Int), ("rule_attr", Ptr), ("flags", Hex)], Effects::Known(&[in_const(2, LANDLOCK_PATH_BENEATH)])),
    row(446, "landlock_restrict_self", &[("ruleset_fd", Fd), ("flags", Hex)], Effects::NoMemory),
    row(447, "memfd_secret", &[("flags", Hex)], Effects::NoMemory),
    row(448, "process_mrelease", &[("pidfd", Fd), ("flags", Hex)], Effects::NoMemory),
    row(449, "futex_waitv", &[("waiters", Ptr), ("nr_futexes", UInt), ("flags", Hex), ("timeout", Ptr), ("clockid", Int)], Effects::Known(&[in_times(0, 1, FUTEX_WAITV), in_const(3, TIMESPEC)])),
    row(450, "set_mempolicy_home_node", &[("start", Hex), ("len", UInt), ("home_node", UInt), ("flags", Hex)], Effects::NoMemory),
    row(451, "cachestat", &[("fd", Fd), ("cstat_range", Ptr), ("cstat", Ptr), ("flags", Hex)], Effects::Known(&[in_const(1, CACHESTAT_RANGE), out_const(2, CACHESTAT)])),
    row(452, "fchmodat2", &[("dirfd", AtFd), ("pathname", Str), ("mode", Octal), ("flags", Hex)], PATH1),
    // The kernel writes a token into the shadow stack it creates, not into
    // existing memory.
    row(453, "map_shadow_stack", &[("addr", Hex), ("size", UInt), ("flags", Hex)], Effects::NoMemory),
    // Wakes by address: the futex word is not read.
    row(454, "futex_wake", &[("uaddr", Ptr), ("mask", Hex), ("nr", Int), ("flags", Hex)], Effects::NoMemory),
    row(455, "futex_wait", &[("uaddr", Ptr), ("val", UInt), ("mask", Hex), ("flags", Hex), ("timeout", Ptr), ("clockid", Int)], Effects::Known(&[in_const(0, INT), in_const(4, TIMESPEC)])),
    // Two struct futex_waitv: the source and the destination futex.
    row(456, "futex_requeue", &[("waiters", Ptr), ("flags", Hex), ("nr_wake", Int), ("nr_requeue", Int)], Effects::Known(&[in_const(0, 2 * FUTEX_WAITV)])),
    // struct mnt_id_req is sized by its first field. The kernel writes at
    // most bufsize bytes of struct statmount (its own size field says how
    // many).
    row(457, "statmount", &[("req", Ptr), ("buf", Ptr), ("bufsize", UInt), ("flags", Hex)], Effects::Known(&[effect(0, In, PtrU32, 0, 0), out_arg(1, 2)])),
    row(458, "listmount", &[("req", Ptr), ("mnt_ids", Ptr), ("nr_mnt_ids", UInt), ("flags", Hex)], Effects::Known(&[effect(0, In, PtrU32, 0, 0), out_ret_times(1, LONG)])),
    // *size is the buffer's length on entry and the bytes written on exit.
    row(459, "lsm_get_self_attr", &[("attr", UInt), ("ctx", Ptr), ("size", Ptr), ("flags", Hex)], Effects::Known(&[out_ptr_u32(1, 2), inout_const(2, INT)])),
    row(460, "lsm_set_self_attr", &[("attr", UInt), ("ctx", Ptr), ("size", UInt), ("flags", Hex)], Effects::Known(&[in_arg(1, 2)])),
    // Returns the number of u64 LSM ids written.
    row(461, "lsm_list_modules", &[("ids", Ptr), ("size", Ptr), ("flags", Hex)], Effects::Known(&[out_ret_times(0, LONG), inout_const(1, INT)])),
    row(462, "mseal", &[("addr", Hex), ("len", UInt), ("flags", Hex)], Effects::NoMemory),
    // The value buffer is a pointer inside struct xattr_args and is not
    // captured (an input: display only).
    row(463, "setxattrat", XATTR_AT, Effects::Known(&[path(1), string(3, XATTR_NAME), in_arg(4, 5)])),
    row(464, "getxattrat", XATTR_AT, Effects::Unknown("writes the value buffer a pointer inside struct xattr_args names: no rule")),
    row(465, "listxattrat", &[("dirfd", AtFd), ("pathname", Str), ("at_flags", Hex), ("list", Buf), ("size", UInt)], Effects::Known(&[path(1), out_ret(3)])),
    row(466, "removexattrat", &[("dirfd", AtFd), ("pathname", Str), ("at_flags", Hex), ("name", Str)], Effects::Known(&[path(1), string(3, XATTR_NAME)])),
    row(467, "open_tree_attr", &[("dirfd", AtFd), ("pathname", Str), ("flags", Hex), ("uattr", Ptr), ("usize", UInt)], Effects::Known(&[path(1), in_arg(3, 4)])),
    // The kernel writes usize bytes of struct file_attr (zero-filled past
    // its own size).
    row(468, "file_getattr", FILE_ATTR, Effects::Known(&[path(1), out_arg(2, 3)])),
    row(469, "file_setattr", FILE_ATTR, Effects::Known(&[path(1), in_arg(2, 3)])),
];
