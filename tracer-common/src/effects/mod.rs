//! The syscall memory-effects table: for every x86_64 syscall, which user
//! memory the kernel reads (inputs) and writes (outputs), and how big it is.
//!
//! Capture encodes it into the `SYSCALLS` BPF map ([`encode`]): inputs are
//! copied at `sys_enter`, outputs at `sys_exit`. Replay uses it to know which
//! recorded buffers to write back into the tracee. A syscall the table marks
//! [`Effects::Unknown`] is recorded with args and return value only, flagged
//! `effects_unknown`, and replay stops there instead of guessing.
//!
//! The table ([`x86_64::TABLE`]) is data: one [`SyscallInfo`] per syscall
//! number, sorted by number. A unit test checks it against the complete
//! x86_64 syscall list so that nothing is silently missing.

use crate::wire::{EffectSlot, MAX_EFFECTS, SPEC_HAS_IN, SPEC_HAS_OUT, SPEC_KNOWN, SyscallSpec};

pub mod x86_64;

/// Which way memory flows between user space and the kernel.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The kernel reads it: copied at `sys_enter`.
    In = 1,
    /// The kernel writes it: copied at `sys_exit`.
    Out = 2,
    /// The kernel reads and writes it: copied at both.
    InOut = 3,
}

impl Direction {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::In),
            2 => Some(Self::Out),
            3 => Some(Self::InOut),
            _ => None,
        }
    }
    pub const fn is_in(self) -> bool {
        matches!(self, Self::In | Self::InOut)
    }
    pub const fn is_out(self) -> bool {
        matches!(self, Self::Out | Self::InOut)
    }
}

/// How the size of a buffer is found. The `u8` values are what the eBPF
/// program switches on; they are stable.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeRule {
    /// `param` bytes (the size of a struct).
    Const = 1,
    /// The value of argument `size_arg`.
    Arg = 2,
    /// Argument `size_arg` times `param` (an array of `param`-byte elements).
    ArgTimes = 3,
    /// The return value, when positive (bytes read, entries returned).
    Ret = 4,
    /// The return value times `param`.
    RetTimes = 5,
    /// A NUL-terminated string of at most `param` bytes (4096 for paths).
    CString = 6,
    /// `*(u32 *)args[size_arg]`: a value-result length such as `socklen_t`,
    /// read at enter for inputs and at exit for outputs.
    PtrU32 = 7,
    /// An array of `struct iovec` of `args[size_arg]` elements; the memory
    /// each element points to is captured (outputs bounded by the return
    /// value).
    Iovec = 8,
    /// A `struct msghdr`: the header, the name, the iovecs' memory and the
    /// control buffer (outputs bounded by the return value).
    Msghdr = 9,
    /// `ioctl`'s third argument, sized by the request code (tty, FIONREAD,
    /// ...); requests the kernel program does not know are not copied.
    Ioctl = 10,
    /// A NULL-terminated array of C strings (`execve` argv and envp).
    StringArray = 11,
    /// `fd_set` bitmaps of `args[size_arg]` descriptors (select).
    FdSet = 12,
    /// `fcntl`'s third argument: a `struct flock` for the lock commands, no
    /// memory for the others.
    Fcntl = 13,
    /// `prctl`'s second argument, by the option in `args[size_arg]`
    /// ([`prctl_memory`]).
    Prctl = 14,
    /// A command-multiplexed syscall's pointer: the memory command
    /// `args[size_arg]` reads and writes there, from the command table
    /// `param` ([`cmd_memory`]; `CMD_*`).
    Cmd = 15,
    /// The return value plus `param` bytes, when it is not negative
    /// (`msgrcv`: an 8-byte mtype, then the bytes received).
    RetPlus = 16,
    /// One byte per 4096-byte page of `args[size_arg]` bytes (`mincore`).
    Pages = 17,
    /// The capability data of `capget`/`capset`: one 12-byte
    /// `__user_cap_data_struct` for `_LINUX_CAPABILITY_VERSION_1`, two for
    /// the later versions, by the version in the header at
    /// `args[size_arg]`.
    CapData = 18,
    /// An iovec array of `args[size_arg]` elements in this process's own
    /// memory, written when `args[0]` is this process
    /// (`process_vm_writev` to itself; outputs bounded by the return
    /// value). Into another process, nothing of this one.
    SelfIovec = 19,
    /// A `struct perf_event_attr`, sized by its own `size` field (the u32
    /// at byte 4; 0 is PERF_ATTR_SIZE_VER0, 64 bytes). Read at entry; on
    /// E2BIG the kernel writes its own size into that field (the first 8
    /// bytes are recorded, [`writes_when_failed`]).
    PerfEventAttr = 20,
    /// recvmmsg's array of `struct mmsghdr`, filled for the returned
    /// number of messages: the headers (item 0, 64 bytes each), and each
    /// message's name, control buffer and iovecs' memory as a msghdr
    /// capture's items plus [`MMSG_ITEM_STRIDE`] times its index + 1.
    Mmsghdr = 21,
    /// `bpf(cmd, attr, size)`'s `union bpf_attr` of `args[size_arg]`
    /// bytes, read at entry and again at exit (commands write fields of it
    /// back: ids, counts, log sizes), and the buffers it points to that
    /// command `args[0]` writes ([`bpf_memory`]; items from 1).
    Bpf = 22,
}

/// What a `bpf` command writes beyond its attr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpfMemory {
    /// Nothing (fields of the attr, at most).
    Attr,
    /// A log buffer (item 1), written when the log level is set: the
    /// attr offsets of the level (u32), the size (u32), the buffer, and
    /// the true size (u32) the kernel writes back when the attr is long
    /// enough to hold it (Linux 6.4 on).
    Log {
        level: u32,
        size: u32,
        buf: u32,
        true_size: u32,
    },
    /// `BPF_PROG_QUERY`'s arrays of u32 (ids and flags, items 1 to 4 at
    /// [`BPF_QUERY_ARRAYS`]), as many as the count at byte 24 the kernel
    /// writes back.
    Query,
    /// Memory no rule here describes (a map's key or value, whose size is
    /// the map's; an info struct whose pointers depend on the object):
    /// recorded `effects_unknown` ([`op_unknown`]).
    Unknown,
}

/// The attr offsets of `BPF_PROG_QUERY`'s array pointers: prog_ids,
/// prog_attach_flags, link_ids, link_attach_flags (items 1 to 4).
pub const BPF_QUERY_ARRAYS: [u32; 4] = [16, 32, 40, 48];

/// What `bpf` command `cmd` writes besides its attr (Linux 6.x).
pub const fn bpf_memory(cmd: u64) -> BpfMemory {
    match cmd {
        // BPF_PROG_LOAD: log_level, log_size, log_buf, log_true_size.
        5 => BpfMemory::Log {
            level: 24,
            size: 28,
            buf: 32,
            true_size: 140,
        },
        // BPF_BTF_LOAD: btf_log_buf, btf_log_size, btf_log_level,
        // btf_log_true_size.
        18 => BpfMemory::Log {
            level: 24,
            size: 20,
            buf: 8,
            true_size: 28,
        },
        16 => BpfMemory::Query,
        // MAP_LOOKUP_ELEM, MAP_GET_NEXT_KEY, MAP_LOOKUP_AND_DELETE_ELEM
        // (a value or key of the map's size); PROG_TEST_RUN (data and
        // context out); OBJ_GET_INFO_BY_FD (an info struct whose pointers
        // depend on the object); TASK_FD_QUERY (a name buffer); the batch
        // map operations; PROG_STREAM_READ_BY_FD (a stream buffer) and what
        // comes after.
        1 | 4 | 10 | 15 | 20 | 21 | 24..=27 | 37.. => BpfMemory::Unknown,
        // MAP_CREATE, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, OBJ_PIN, OBJ_GET,
        // PROG_ATTACH, PROG_DETACH, the GET_NEXT_ID (next_id is in the
        // attr) and GET_FD_BY_ID ones, RAW_TRACEPOINT_OPEN, MAP_FREEZE,
        // the LINK ones, ENABLE_STATS, ITER_CREATE, PROG_BIND_MAP,
        // TOKEN_CREATE: their inputs only (display), or the attr.
        _ => BpfMemory::Attr,
    }
}

/// The attr offset of the pointer to item `item` (from 1) of a `bpf`
/// command's capture.
pub const fn bpf_item_pointer(cmd: u64, item: u32) -> Option<u32> {
    match bpf_memory(cmd) {
        BpfMemory::Log { buf, .. } if item == 1 => Some(buf),
        BpfMemory::Query if item >= 1 && item <= 4 => Some(BPF_QUERY_ARRAYS[item as usize - 1]),
        _ => None,
    }
}

/// Item numbers of one message of a [`SizeRule::Mmsghdr`] capture are its
/// msghdr items (1 name, 2 control, 16 + n the n-th iovec) plus this
/// times its index + 1.
pub const MMSG_ITEM_STRIDE: u32 = 32;
/// Most messages of one recvmmsg captured; a call that returned more is
/// recorded with its buffers lost (replay then stops there, saying so).
pub const MAX_MMSGS: u32 = 8;

/// Command tables of [`SizeRule::Cmd`] (its `param`).
pub const CMD_SECCOMP: u32 = 1;
pub const CMD_SHMCTL: u32 = 2;
pub const CMD_SEMCTL: u32 = 3;
pub const CMD_MSGCTL: u32 = 4;
pub const CMD_QUOTACTL: u32 = 5;
pub const CMD_KEYCTL: u32 = 6;
pub const CMD_PTRACE: u32 = 7;

/// How many bytes one side of a command touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdSize {
    None,
    /// A struct of this many bytes.
    Const(u32),
    /// `min(return value, args[k])` bytes (a buffer of `args[k]` bytes the
    /// kernel fills with up to the answer's length, which it returns).
    RetUpTo(u8),
    /// Memory no rule describes: a successful call of this command is
    /// recorded `effects_unknown` ([`op_unknown`]).
    Unknown,
}

/// What one command does with the memory at one pointer argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdMemory {
    /// Read at entry (a missing input costs display, never replay).
    pub reads: CmdSize,
    /// Written by a successful call.
    pub writes: CmdSize,
    /// The struct read is a `struct sock_fprog`: its filter array of
    /// `len` 8-byte instructions is read too (item 1 of the buffer).
    pub fprog: bool,
    /// The struct is one `struct iovec`: the bytes it points to are item
    /// 1, `iov_len` of them as the kernel left it (ptrace's GETREGSET sets
    /// it to what it wrote), on the side the struct is.
    pub iovec: bool,
}

impl CmdMemory {
    const NONE: Self = Self {
        reads: CmdSize::None,
        writes: CmdSize::None,
        fprog: false,
        iovec: false,
    };
    const fn reads(n: u32) -> Self {
        Self {
            reads: CmdSize::Const(n),
            ..Self::NONE
        }
    }
    const fn writes(n: u32) -> Self {
        Self {
            writes: CmdSize::Const(n),
            ..Self::NONE
        }
    }
    const fn writes_ret_up_to(k: u8) -> Self {
        Self {
            writes: CmdSize::RetUpTo(k),
            ..Self::NONE
        }
    }
    const UNKNOWN: Self = Self {
        writes: CmdSize::Unknown,
        ..Self::NONE
    };
}

// x86_64 kernel ABI sizes of the System V IPC structs the ctl calls copy
// (the 64-bit layouts: asm-generic ipcbuf.h, shmbuf.h, msgbuf.h and
// x86's sembuf.h; struct ipc64_perm is 48 bytes).
const SHMID64_DS: u32 = 112;
const SHMINFO64: u32 = 72; // 9 unsigned longs
const SHM_INFO: u32 = 48; // int used_ids (padded), then 5 unsigned longs
const SEMID64_DS: u32 = 104;
const SEMINFO: u32 = 40; // 10 ints
const MSQID64_DS: u32 = 120;
const MSGINFO: u32 = 32; // 7 ints and a short, padded
// Quota structs (include/uapi/linux/quota.h): if_dqblk is 8 u64 and a
// u32 (72 with padding), if_nextdqblk adds the u32 id (72), if_dqinfo
// is 2 u64 and 2 u32 (24).
const IF_DQBLK: u32 = 72;
const IF_NEXTDQBLK: u32 = 72;
const IF_DQINFO: u32 = 24;
// x86_64 ptrace structs: user_regs_struct is 27 u64, user_fpregs_struct
// the 512-byte FXSAVE area, struct user_desc 4 u32, siginfo_t 128 bytes.
const USER_REGS: u32 = 216;
const USER_FPREGS: u32 = 512;
const USER_DESC: u32 = 16;
const SIGINFO: u32 = 128;

/// The memory command `cmd` of command table `table` (`CMD_*`) reads and
/// writes at pointer argument `arg` (Linux 6.x, x86_64). A command that
/// fails writes nothing (its failure is the recorded result), so unknown
/// and invalid commands only matter when they succeed.
pub const fn cmd_memory(table: u32, cmd: u64, arg: u8) -> CmdMemory {
    match table {
        CMD_SECCOMP => match cmd {
            // SECCOMP_SET_MODE_FILTER: a struct sock_fprog (u16 len, then
            // the filter pointer at 8) and the filter it points to.
            1 => CmdMemory {
                reads: CmdSize::Const(16),
                fprog: true,
                ..CmdMemory::NONE
            },
            // SECCOMP_GET_ACTION_AVAIL: the u32 action asked about.
            2 => CmdMemory::reads(4),
            // SECCOMP_GET_NOTIF_SIZES: struct seccomp_notif_sizes, 3 u16.
            3 => CmdMemory::writes(6),
            // SECCOMP_SET_MODE_STRICT takes no memory; others fail.
            _ => CmdMemory::NONE,
        },
        CMD_SHMCTL => match cmd {
            1 => CmdMemory::reads(SHMID64_DS), // IPC_SET
            // IPC_STAT, SHM_STAT, SHM_STAT_ANY
            2 | 13 | 15 => CmdMemory::writes(SHMID64_DS),
            3 => CmdMemory::writes(SHMINFO64), // IPC_INFO
            14 => CmdMemory::writes(SHM_INFO), // SHM_INFO
            // IPC_RMID, SHM_LOCK, SHM_UNLOCK
            _ => CmdMemory::NONE,
        },
        CMD_SEMCTL => match cmd {
            1 => CmdMemory::reads(SEMID64_DS), // IPC_SET
            // IPC_STAT, SEM_STAT, SEM_STAT_ANY
            2 | 18 | 20 => CmdMemory::writes(SEMID64_DS),
            3 | 19 => CmdMemory::writes(SEMINFO), // IPC_INFO, SEM_INFO
            // GETALL writes one u16 per semaphore of the set: a count the
            // call does not say (the set's, in the kernel). SETALL reads
            // as many (an input: display only).
            13 => CmdMemory::UNKNOWN,
            // IPC_RMID, GETPID, GETVAL, GETNCNT, GETZCNT, SETVAL (arg is
            // the value), SETALL.
            _ => CmdMemory::NONE,
        },
        CMD_MSGCTL => match cmd {
            1 => CmdMemory::reads(MSQID64_DS), // IPC_SET
            // IPC_STAT, MSG_STAT, MSG_STAT_ANY
            2 | 11 | 13 => CmdMemory::writes(MSQID64_DS),
            3 | 12 => CmdMemory::writes(MSGINFO), // IPC_INFO, MSG_INFO
            _ => CmdMemory::NONE,                 // IPC_RMID
        },
        // QCMD(subcmd, type): the subcommand is above the low 8 bits.
        CMD_QUOTACTL => match (cmd as u32) >> 8 {
            0x80_0004 => CmdMemory::writes(4), // Q_GETFMT: the format id
            0x80_0005 => CmdMemory::writes(IF_DQINFO), // Q_GETINFO
            0x80_0006 => CmdMemory::reads(IF_DQINFO), // Q_SETINFO
            0x80_0007 => CmdMemory::writes(IF_DQBLK), // Q_GETQUOTA
            0x80_0008 => CmdMemory::reads(IF_DQBLK), // Q_SETQUOTA
            0x80_0009 => CmdMemory::writes(IF_NEXTDQBLK), // Q_GETNEXTQUOTA
            // Q_SYNC, Q_QUOTAOFF: no memory; Q_QUOTAON reads a path (an
            // input: display only).
            0x80_0001..=0x80_0003 => CmdMemory::NONE,
            // The XFS commands ('X' << 8 | n) and anything else: their
            // structs are not described here.
            _ => CmdMemory::UNKNOWN,
        },
        // keyctl(op, arg2, arg3, arg4, arg5): args[1..=4] are arg2..arg5.
        CMD_KEYCTL => match cmd {
            // KEYCTL_DESCRIBE, KEYCTL_READ, KEYCTL_GET_SECURITY and
            // KEYCTL_DH_COMPUTE fill the buffer arg3 of arg4 bytes with
            // up to the answer's length, which they return (a key type
            // that writes all or nothing writes at most that).
            6 | 11 | 17 | 23 if arg == 2 => CmdMemory::writes_ret_up_to(3),
            // KEYCTL_CAPABILITIES: the buffer arg2 of arg3 bytes.
            31 if arg == 1 => CmdMemory::writes_ret_up_to(2),
            // KEYCTL_PKEY_QUERY writes a struct at arg5, the PKEY
            // ENCRYPT, DECRYPT and SIGN a buffer whose length is in the
            // params struct at arg2: not described here.
            24..=27 => CmdMemory::UNKNOWN,
            // Operations past KEYCTL_WATCH_KEY are unknown to this table.
            33.. => CmdMemory::UNKNOWN,
            // The rest take values, or read names, payloads and iovecs
            // (inputs: display only).
            _ => CmdMemory::NONE,
        },
        // ptrace(request, pid, addr, data): what the request does with
        // `data` in the tracer (arg 3). What it does to the tracee is the
        // tracee's (replay: engine.rs, `incomplete`).
        CMD_PTRACE if arg == 3 => match cmd {
            // PEEKTEXT, PEEKDATA, PEEKUSER: the word read, stored at data.
            1..=3 => CmdMemory::writes(8),
            // GETREGS, GETFPREGS: struct user_regs_struct, user_fpregs_struct.
            12 => CmdMemory::writes(USER_REGS),
            14 => CmdMemory::writes(USER_FPREGS),
            13 => CmdMemory::reads(USER_REGS),   // SETREGS
            15 => CmdMemory::reads(USER_FPREGS), // SETFPREGS
            // GET_THREAD_AREA, SET_THREAD_AREA: a struct user_desc.
            25 => CmdMemory::writes(USER_DESC),
            26 => CmdMemory::reads(USER_DESC),
            0x4201 => CmdMemory::writes(8),       // GETEVENTMSG
            0x4202 => CmdMemory::writes(SIGINFO), // GETSIGINFO
            0x4203 => CmdMemory::reads(SIGINFO),  // SETSIGINFO
            // GETREGSET, SETREGSET: an iovec of the regset's bytes.
            0x4204 => CmdMemory {
                writes: CmdSize::Const(16),
                iovec: true,
                ..CmdMemory::NONE
            },
            0x4205 => CmdMemory {
                reads: CmdSize::Const(16),
                iovec: true,
                ..CmdMemory::NONE
            },
            0x420a => CmdMemory::writes(8),  // GETSIGMASK (addr is 8)
            0x420b => CmdMemory::reads(8),   // SETSIGMASK
            0x420d => CmdMemory::writes(16), // SECCOMP_GET_METADATA
            // GET_SYSCALL_INFO, GET_RSEQ_CONFIGURATION: up to `addr`
            // bytes of a struct whose full size they return.
            0x420e | 0x420f => CmdMemory::writes_ret_up_to(2),
            // TRACEME, POKE* (data is the word), CONT, KILL, SINGLESTEP,
            // ATTACH, DETACH, SYSCALL, SYSEMU*, SINGLEBLOCK, SETOPTIONS,
            // SEIZE, INTERRUPT, LISTEN: data is a value or unused.
            0 | 4..=9 | 16 | 17 | 24 | 31..=33 | 0x4200 | 0x4206..=0x4208 => CmdMemory::NONE,
            // PEEKSIGINFO (an array of the count returned),
            // SECCOMP_GET_FILTER, ARCH_PRCTL, the syscall
            // user dispatch config and anything newer.
            _ => CmdMemory::UNKNOWN,
        },
        _ => CmdMemory::UNKNOWN,
    }
}

/// ptrace requests that change the tracee (its memory, registers, pending
/// signal or mask): replay would have to do the same to the replayed
/// tracee, which it does not yet.
pub const fn ptrace_changes_tracee(request: u64) -> bool {
    matches!(request, 4..=6 | 13 | 15 | 26 | 0x4203 | 0x4205 | 0x420b)
}

/// Why a successful syscall's memory for this operation cannot be known,
/// if it cannot (per command, where the table knows the syscall but not
/// every command of it): the daemon records it `effects_unknown`, and
/// replay stops there saying this.
pub fn op_unknown(nr: i64, args: &[u64; 6], ret: i64) -> Option<&'static str> {
    const NR_IOCTL: i64 = 16;
    const NR_BPF: i64 = 321;
    if ret < 0 {
        return None;
    }
    if nr == NR_BPF {
        return matches!(bpf_memory(args[0]), BpfMemory::Unknown).then_some(match args[0] {
            1 | 4 | 21 => "a map's key or value, whose size is the map's, not the call's",
            15 => "an info struct whose pointers depend on the object's type",
            _ => "a command whose output this table does not describe",
        });
    }
    if nr == NR_IOCTL {
        return (!ioctl_memory(args[1], args[2]).known)
            .then_some("not an encoded request, or one whose struct points to more memory");
    }
    let Effects::Known(list) = lookup(nr)?.effects else {
        return None;
    };
    for e in list {
        if e.rule != SizeRule::Cmd || args[e.arg as usize % 6] == 0 {
            continue;
        }
        let cmd = args[e.size_arg as usize % 6];
        if matches!(cmd_memory(e.param, cmd, e.arg).writes, CmdSize::Unknown) {
            return Some(match e.param {
                CMD_SEMCTL => {
                    "GETALL writes one u16 per semaphore of the set, a count the call does not say"
                }
                CMD_QUOTACTL => {
                    "a quota command whose struct this table does not describe (the XFS ones)"
                }
                CMD_KEYCTL => {
                    "a keyctl operation that writes through a struct (PKEY_*) or that this table does not know"
                }
                CMD_PTRACE => {
                    "a ptrace request that writes an array of a count it returns (PEEKSIGINFO, SECCOMP_GET_FILTER), or that this table does not know"
                }
                _ => "a command this table does not describe",
            });
        }
    }
    None
}

/// Bytes of `SizeRule::CapData` for the header version `version`.
pub const fn cap_data_bytes(version: u32) -> u32 {
    const V1: u32 = 0x1998_0330;
    if version == V1 { 12 } else { 24 }
}

/// What `prctl(option, arg2, arg3, ...)` does with the memory at `arg2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrctlMemory {
    /// Nothing (a value option, or one that returns its answer).
    None,
    /// Reads a NUL-terminated name of at most 16 bytes (`PR_SET_NAME`).
    ReadsName,
    /// Writes this many bytes.
    Writes(u32),
    /// Writes the auxv, `min(return value, arg3)` bytes (`PR_GET_AUXV`).
    WritesAuxv,
}

/// The memory `prctl` reads or writes at its second argument, per option
/// (Linux 6.x, x86_64). Options that take a pointer elsewhere (PR_SET_MM,
/// PR_SET_VMA) only read it, which costs display, never replay.
pub const fn prctl_memory(option: u64) -> PrctlMemory {
    match option {
        15 => PrctlMemory::ReadsName,  // PR_SET_NAME
        16 => PrctlMemory::Writes(16), // PR_GET_NAME
        // PR_GET_PDEATHSIG, PR_GET_UNALIGN, PR_GET_FPEMU, PR_GET_FPEXC,
        // PR_GET_ENDIAN, PR_GET_TSC, PR_GET_CHILD_SUBREAPER: an int.
        2 | 5 | 9 | 11 | 19 | 25 | 37 => PrctlMemory::Writes(4),
        40 => PrctlMemory::Writes(8),           // PR_GET_TID_ADDRESS
        0x4155_5856 => PrctlMemory::WritesAuxv, // PR_GET_AUXV
        _ => PrctlMemory::None,
    }
}

/// What `ioctl(fd, request, argp)` does with the memory at `argp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlMemory {
    /// Bytes the kernel reads at `argp` (0: none).
    pub reads: u16,
    /// Bytes the kernel writes at `argp` on success (0: none).
    pub writes: u16,
    /// Whether the two sizes are known to be the whole effect: a request
    /// this table does not know, or one whose struct points to more memory
    /// (`FS_IOC_FIEMAP`'s extents, `SIOCGIFCONF`'s buffer, `SIOCETHTOOL`),
    /// touches memory nobody captured, and is recorded as such.
    pub known: bool,
}

impl IoctlMemory {
    const fn new(reads: u16, writes: u16) -> Self {
        Self {
            reads,
            writes,
            known: true,
        }
    }
    const NONE: Self = Self::new(0, 0);
    const UNKNOWN: Self = Self {
        reads: 0,
        writes: 0,
        known: false,
    };
}

/// The memory an ioctl request reads and writes at its third argument
/// (Linux 6.x, x86_64). An encoded request (`_IOR`, `_IOW`, `_IOWR`) says
/// its own direction and size, except the few listed whose struct leads
/// to more memory; the legacy unencoded ones (tty `0x54xx`, socket
/// `0x89xx`, block `0x12xx`) are listed one by one. A request with no
/// direction and no size that is not listed may still use `argp` as a
/// pointer (the block ones do), so it is known only when `argp` is NULL.
pub const fn ioctl_memory(request: u64, argp: u64) -> IoctlMemory {
    let req = request as u32;
    let dir = req >> 30;
    let size = ((req >> 16) & 0x3fff) as u16;
    let ty = (req >> 8) & 0xff;
    let listed = match req {
        // FS_IOC_FIEMAP: a header, then fm_extent_count extents.
        0xC020_660B => Some(IoctlMemory::UNKNOWN),
        // SIOCGIFCONF (a buffer ifc_buf points to), SIOCGIFBR/SIOCSIFBR
        // (arrays named by its args), SIOCETHTOOL, SIOCWANDEV and the
        // device-private range (ifr_data points to the driver's struct).
        0x8912 | 0x8940 | 0x8941 | 0x8946 | 0x894A | 0x89F0..=0x89FF => Some(IoctlMemory::UNKNOWN),
        0x5401 => Some(IoctlMemory::new(0, 36)), // TCGETS: struct termios
        0x5402..=0x5404 => Some(IoctlMemory::new(36, 0)), // TCSETS, TCSETSW, TCSETSF
        0x5405 => Some(IoctlMemory::new(0, 18)), // TCGETA: struct termio
        0x5406..=0x5408 => Some(IoctlMemory::new(18, 0)), // TCSETA, TCSETAW, TCSETAF
        // TCSBRK, TCXONC, TCFLSH, TIOCEXCL, TIOCNXCL, TIOCSCTTY, TIOCCONS,
        // TIOCNOTTY, TCSBRKP, TIOCSBRK, TIOCCBRK, FIONCLEX, FIOCLEX,
        // TIOCMIWAIT: an int argument or none.
        0x5409..=0x540E | 0x541D | 0x5422 | 0x5425 | 0x5427 | 0x5428 | 0x5450 | 0x5451 | 0x545C => {
            Some(IoctlMemory::NONE)
        }
        // TIOCGPGRP, TIOCOUTQ, TIOCMGET, TIOCGSOFTCAR, FIONREAD, TIOCGETD,
        // TIOCGSID: an int.
        0x540F | 0x5411 | 0x5415 | 0x5419 | 0x541B | 0x5424 | 0x5429 => {
            Some(IoctlMemory::new(0, 4))
        }
        // TIOCSPGRP, TIOCMBIS, TIOCMBIC, TIOCMSET, TIOCSSOFTCAR, TIOCPKT,
        // FIONBIO, TIOCSETD, FIOASYNC: an int.
        0x5410 | 0x5416..=0x5418 | 0x541A | 0x5420 | 0x5421 | 0x5423 | 0x5452 => {
            Some(IoctlMemory::new(4, 0))
        }
        0x5412 => Some(IoctlMemory::new(1, 0)), // TIOCSTI: a char
        0x5413 => Some(IoctlMemory::new(0, 8)), // TIOCGWINSZ: struct winsize
        0x5414 => Some(IoctlMemory::new(8, 0)), // TIOCSWINSZ
        0x541E => Some(IoctlMemory::new(0, 72)), // TIOCGSERIAL: struct serial_struct
        0x541F => Some(IoctlMemory::new(72, 0)), // TIOCSSERIAL
        0x5460 => Some(IoctlMemory::new(0, 8)), // FIOQSIZE: loff_t
        // FIOSETOWN, SIOCSPGRP: an int; FIOGETOWN, SIOCGPGRP, SIOCATMARK.
        0x8901 | 0x8902 => Some(IoctlMemory::new(4, 0)),
        0x8903..=0x8905 => Some(IoctlMemory::new(0, 4)),
        // SIOCGSTAMP, SIOCGSTAMPNS: a struct timeval / timespec.
        0x8906 | 0x8907 => Some(IoctlMemory::new(0, 16)),
        // The interface requests: a struct ifreq (name, then a union that
        // holds the answer), read and written whole.
        0x8910..=0x893F | 0x8942..=0x8945 | 0x8947..=0x8949 => Some(IoctlMemory::new(40, 40)),
        // BLKROGET, BLKSSZGET, BLKIOMIN, BLKIOOPT, BLKALIGNOFF, BLKPBSZGET,
        // BLKDISCARDZEROES: an int; BLKGETSIZE: a long.
        0x125E | 0x1268 | 0x1278..=0x127C => Some(IoctlMemory::new(0, 4)),
        0x1260 => Some(IoctlMemory::new(0, 8)),
        // BLKROSET: an int read; BLKRRPART, BLKFLSBUF: none.
        0x125D => Some(IoctlMemory::new(4, 0)),
        0x125F | 0x1261 => Some(IoctlMemory::NONE),
        _ => None,
    };
    if let Some(m) = listed {
        return m;
    }
    if dir != 0 && size != 0 {
        return IoctlMemory::new(
            if dir & 1 != 0 { size } else { 0 },
            if dir & 2 != 0 { size } else { 0 },
        );
    }
    // perf_event ('$') requests without a size take an int or nothing.
    if argp == 0 || (dir == 0 && size == 0 && ty == 0x24) {
        return IoctlMemory::NONE;
    }
    IoctlMemory::UNKNOWN
}

/// A failed syscall that still wrote its outputs: a sleep cut short by a
/// signal (EINTR, or the restart code the kernel turns into EINTR or a
/// restart) has written the time that remained; a `perf_event_open`
/// whose attr was larger than the kernel's (E2BIG) has its size written
/// into the attr. Every other failure writes nothing the recording needs.
pub const fn writes_when_failed(nr: i64, ret: i64) -> bool {
    const NANOSLEEP: i64 = 35;
    const CLOCK_NANOSLEEP: i64 = 230;
    const PERF_EVENT_OPEN: i64 = 298;
    const EINTR: i64 = -4;
    const E2BIG: i64 = -7;
    const ERESTART_RESTARTBLOCK: i64 = -516;
    ((nr == NANOSLEEP || nr == CLOCK_NANOSLEEP) && (ret == EINTR || ret == ERESTART_RESTARTBLOCK))
        || (nr == PERF_EVENT_OPEN && ret == E2BIG)
}

/// Bytes of a `struct perf_event_attr` whose `size` field says `size`:
/// 0 is the first version's 64; more than a page the kernel refuses
/// (E2BIG), so no more is read.
pub const fn perf_attr_bytes(size: u32) -> u32 {
    match size {
        0 => 64,
        s if s > 4096 => 4096,
        s => s,
    }
}

/// Whether `prctl` reads argument `k` (0-based) as a value for this option:
/// the others are whatever the registers held (or a pointer) and are not
/// compared in replay.
pub const fn prctl_reads_value(option: u64, k: usize) -> bool {
    match k {
        0 => true,
        1 => matches!(prctl_memory(option), PrctlMemory::None),
        // PR_MCE_KILL, PR_CAP_AMBIENT, PR_SET_SPECULATION_CTRL,
        // PR_GET_SPECULATION_CTRL (arg2 only), PR_SET_SECCOMP (mode, then a
        // pointer), PR_SET_MM (value or pointer).
        2 => matches!(option, 33 | 47 | 53),
        3 => matches!(option, 47),
        _ => false,
    }
}

impl SizeRule {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Const,
            2 => Self::Arg,
            3 => Self::ArgTimes,
            4 => Self::Ret,
            5 => Self::RetTimes,
            6 => Self::CString,
            7 => Self::PtrU32,
            8 => Self::Iovec,
            9 => Self::Msghdr,
            10 => Self::Ioctl,
            11 => Self::StringArray,
            12 => Self::FdSet,
            13 => Self::Fcntl,
            14 => Self::Prctl,
            15 => Self::Cmd,
            16 => Self::RetPlus,
            17 => Self::Pages,
            18 => Self::CapData,
            19 => Self::SelfIovec,
            20 => Self::PerfEventAttr,
            21 => Self::Mmsghdr,
            22 => Self::Bpf,
            _ => return None,
        })
    }
}

/// One buffer a syscall touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Argument index holding the pointer.
    pub arg: u8,
    pub dir: Direction,
    pub rule: SizeRule,
    /// Argument the rule reads (size or count), when it reads one.
    pub size_arg: u8,
    /// Constant the rule uses (bytes, element size, string bound).
    pub param: u32,
}

/// Constructors that keep the table readable.
pub const fn effect(arg: u8, dir: Direction, rule: SizeRule, size_arg: u8, param: u32) -> Effect {
    Effect {
        arg,
        dir,
        rule,
        size_arg,
        param,
    }
}
/// Input: a NUL-terminated path.
pub const fn path(arg: u8) -> Effect {
    effect(arg, Direction::In, SizeRule::CString, 0, 4096)
}
/// Input of a constant size.
pub const fn in_const(arg: u8, bytes: u32) -> Effect {
    effect(arg, Direction::In, SizeRule::Const, 0, bytes)
}
/// Output of a constant size.
pub const fn out_const(arg: u8, bytes: u32) -> Effect {
    effect(arg, Direction::Out, SizeRule::Const, 0, bytes)
}
/// Read and written, of a constant size.
pub const fn inout_const(arg: u8, bytes: u32) -> Effect {
    effect(arg, Direction::InOut, SizeRule::Const, 0, bytes)
}
/// Input sized by another argument.
pub const fn in_arg(arg: u8, size_arg: u8) -> Effect {
    effect(arg, Direction::In, SizeRule::Arg, size_arg, 0)
}
/// Output sized by the return value.
pub const fn out_ret(arg: u8) -> Effect {
    effect(arg, Direction::Out, SizeRule::Ret, 0, 0)
}

/// How a syscall's arguments are shown (strace style).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgFmt {
    Int,
    UInt,
    Hex,
    Octal,
    Fd,
    /// A directory fd that may be `AT_FDCWD`.
    AtFd,
    Ptr,
    /// A NUL-terminated string input (shown from the captured buffer).
    Str,
    /// A data buffer (shown from the captured buffer, quoted and cut).
    Buf,
    /// `open` flags (`O_RDONLY|O_CLOEXEC`).
    OpenFlags,
    Signal,
}

/// What the table says of one syscall's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effects {
    /// The syscall touches no user memory.
    NoMemory,
    /// The buffers it reads and writes.
    Known(&'static [Effect]),
    /// It touches memory the table cannot describe; the reason says what.
    Unknown(&'static str),
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct SyscallInfo {
    pub nr: u32,
    pub name: &'static str,
    /// Arguments, by name and how to show them.
    pub args: &'static [(&'static str, ArgFmt)],
    pub effects: Effects,
}

/// The row for syscall `nr`, if the table has one.
pub fn lookup(nr: i64) -> Option<&'static SyscallInfo> {
    let nr = u32::try_from(nr).ok()?;
    // The table is dense up to the first gap in the numbering, so most
    // rows sit at their number: the daemon looks one up per event.
    if let Some(s) = x86_64::TABLE.get(nr as usize)
        && s.nr == nr
    {
        return Some(s);
    }
    x86_64::TABLE
        .binary_search_by_key(&nr, |s| s.nr)
        .ok()
        .map(|i| &x86_64::TABLE[i])
}

/// Name of syscall `nr`, or `None` for a number the table lacks.
pub fn name(nr: i64) -> Option<&'static str> {
    lookup(nr).map(|s| s.name)
}

/// The row's encoding for the kernel's `SYSCALLS` map.
pub fn encode(info: &SyscallInfo) -> SyscallSpec {
    let mut spec = SyscallSpec::default();
    match info.effects {
        Effects::Unknown(_) => {}
        Effects::NoMemory => spec.flags = SPEC_KNOWN,
        Effects::Known(list) => {
            spec.flags = SPEC_KNOWN;
            for (slot, e) in spec.effects.iter_mut().zip(list.iter()) {
                *slot = EffectSlot {
                    arg: e.arg,
                    dir: e.dir as u8,
                    rule: e.rule as u8,
                    size_arg: e.size_arg,
                    param: e.param,
                };
            }
            spec.count = list.len().min(MAX_EFFECTS) as u32;
            for e in &spec.effects[..spec.count as usize] {
                if e.dir & Direction::In as u8 != 0 {
                    spec.flags |= SPEC_HAS_IN;
                }
                if e.dir & Direction::Out as u8 != 0 {
                    spec.flags |= SPEC_HAS_OUT;
                }
            }
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ioctl_requests_say_their_memory() {
        // Encoded: TIOCGPTN (_IOR 4), TIOCSPTLCK (_IOW 4), a _IOWR of 24.
        assert_eq!(ioctl_memory(0x8004_5430, 1), IoctlMemory::new(0, 4));
        assert_eq!(ioctl_memory(0x4004_5431, 1), IoctlMemory::new(4, 0));
        assert_eq!(ioctl_memory(0xC018_1234, 1), IoctlMemory::new(24, 24));
        // Legacy: TCGETS, FIONBIO, SIOCGIFFLAGS, BLKGETSIZE.
        assert_eq!(ioctl_memory(0x5401, 1), IoctlMemory::new(0, 36));
        assert_eq!(ioctl_memory(0x5421, 1), IoctlMemory::new(4, 0));
        assert_eq!(ioctl_memory(0x8913, 1), IoctlMemory::new(40, 40));
        assert_eq!(ioctl_memory(0x1260, 1), IoctlMemory::new(0, 8));
        // Structs that point further, and requests nobody listed.
        for req in [0xC020_660B, 0x8912, 0x8940, 0x8946, 0x89F3, 0x4C82, 0x1234] {
            assert!(!ioctl_memory(req, 1).known, "{req:#x}");
        }
        // Without a pointer a legacy request touches no memory, and a
        // perf_event request without a size takes an int.
        assert_eq!(ioctl_memory(0x4C82, 0), IoctlMemory::NONE);
        assert_eq!(ioctl_memory(0x2400, 1), IoctlMemory::NONE);
        // Only the low 32 bits are the request (the kernel's unsigned int).
        assert_eq!(
            ioctl_memory(0xFFFF_FFFF_0000_5401, 1),
            IoctlMemory::new(0, 36)
        );
    }

    #[test]
    fn commands_say_their_memory() {
        use CmdSize::*;
        // seccomp: the filter is read, the notification sizes written.
        let f = cmd_memory(CMD_SECCOMP, 1, 2);
        assert_eq!((f.reads, f.writes, f.fprog), (Const(16), None, true));
        assert_eq!(cmd_memory(CMD_SECCOMP, 3, 2).writes, Const(6));
        assert_eq!(cmd_memory(CMD_SECCOMP, 0, 2), CmdMemory::NONE);
        // System V: IPC_STAT writes the 64-bit struct, IPC_SET reads it.
        assert_eq!(cmd_memory(CMD_SHMCTL, 2, 2).writes, Const(112));
        assert_eq!(cmd_memory(CMD_SHMCTL, 1, 2).reads, Const(112));
        assert_eq!(cmd_memory(CMD_SHMCTL, 14, 2).writes, Const(48));
        assert_eq!(cmd_memory(CMD_MSGCTL, 2, 2).writes, Const(120));
        assert_eq!(cmd_memory(CMD_MSGCTL, 12, 2).writes, Const(32));
        assert_eq!(cmd_memory(CMD_SEMCTL, 2, 3).writes, Const(104));
        assert_eq!(cmd_memory(CMD_SEMCTL, 19, 3).writes, Const(40));
        assert_eq!(cmd_memory(CMD_SEMCTL, 12, 3), CmdMemory::NONE);
        // Q_GETQUOTA of user quotas.
        assert_eq!(
            cmd_memory(CMD_QUOTACTL, 0x80_0007 << 8, 3).writes,
            Const(72)
        );
        // keyctl READ fills arg3 (args[2]) up to arg4 (args[3]).
        assert_eq!(cmd_memory(CMD_KEYCTL, 11, 2).writes, RetUpTo(3));
        assert_eq!(cmd_memory(CMD_KEYCTL, 11, 1), CmdMemory::NONE);
        assert_eq!(cmd_memory(CMD_KEYCTL, 31, 1).writes, RetUpTo(2));
        assert_eq!(cmd_memory(CMD_PTRACE, 2, 3).writes, Const(8));
        assert_eq!(cmd_memory(CMD_PTRACE, 12, 3).writes, Const(216));
        assert_eq!(cmd_memory(CMD_PTRACE, 0x4201, 3).writes, Const(8));
        assert_eq!(cmd_memory(CMD_PTRACE, 0x420e, 3).writes, RetUpTo(2));
        assert_eq!(cmd_memory(CMD_PTRACE, 0x4206, 3), CmdMemory::NONE);
        assert!(cmd_memory(CMD_PTRACE, 0x4204, 3).iovec);
        assert_eq!(cmd_memory(CMD_PTRACE, 0x4209, 3).writes, CmdSize::Unknown);
        assert!(ptrace_changes_tracee(5) && ptrace_changes_tracee(0x4205));
        assert!(!ptrace_changes_tracee(2) && !ptrace_changes_tracee(0x4206));
    }

    #[test]
    fn unknown_commands_are_named_only_when_they_succeed() {
        const SEMCTL: i64 = 66;
        const KEYCTL: i64 = 250;
        const SECCOMP: i64 = 317;
        const GETALL: u64 = 13;
        assert!(op_unknown(SEMCTL, &[1, 0, GETALL, 0x7ff0, 0, 0], 0).is_some());
        assert!(op_unknown(SEMCTL, &[1, 0, GETALL, 0x7ff0, 0, 0], -22).is_none());
        assert!(op_unknown(SEMCTL, &[1, 0, 2, 0x7ff0, 0, 0], 0).is_none());
        assert!(op_unknown(KEYCTL, &[24, 5, 0, 0, 0x7ff0, 0], 0).is_some());
        assert!(op_unknown(KEYCTL, &[11, 5, 0x7ff0, 64, 0, 0], 10).is_none());
        assert!(op_unknown(SECCOMP, &[1, 0, 0x7ff0, 0, 0, 0], 0).is_none());
        assert!(op_unknown(16, &[0, 0x8912, 0x7ff0, 0, 0, 0], 0).is_some());
        // bpf: a map lookup's value is the map's size; a query's ids are
        // counted in its attr.
        assert!(op_unknown(321, &[1, 0x7ff0, 32, 0, 0, 0], 0).is_some());
        assert!(op_unknown(321, &[1, 0x7ff0, 32, 0, 0, 0], -2).is_none());
        assert!(op_unknown(321, &[16, 0x7ff0, 40, 0, 0, 0], 0).is_none());
        assert_eq!(bpf_item_pointer(16, 3), Some(40));
        assert_eq!(bpf_item_pointer(5, 1), Some(32));
        assert_eq!(bpf_item_pointer(0, 1), None);
        assert!(op_unknown(16, &[0, 0x5401, 0x7ff0, 0, 0, 0], 0).is_none());
    }

    #[test]
    fn capability_data_follows_the_header_version() {
        assert_eq!(cap_data_bytes(0x1998_0330), 12);
        assert_eq!(cap_data_bytes(0x2008_0522), 24);
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in x86_64::TABLE.windows(2) {
            assert!(w[0].nr < w[1].nr, "{} before {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn lookup_finds_each_row_and_nothing_else() {
        for row in x86_64::TABLE {
            assert_eq!(lookup(row.nr as i64).map(|s| s.nr), Some(row.nr));
        }
        let last = x86_64::TABLE.last().map(|s| s.nr).unwrap_or(0);
        for nr in -1..=last as i64 + 2 {
            if !x86_64::TABLE.iter().any(|s| s.nr as i64 == nr) {
                assert!(lookup(nr).is_none(), "{nr} is not in the table");
            }
        }
    }

    #[test]
    fn table_covers_every_x86_64_syscall() {
        let ours: BTreeSet<(u32, &str)> = x86_64::TABLE.iter().map(|s| (s.nr, s.name)).collect();
        let mut missing = std::vec::Vec::new();
        // Sysno::iter() stops before the last syscall; enumerate the numbers.
        let all: std::vec::Vec<_> = (0..=syscalls::x86_64::Sysno::last().id() as usize)
            .filter_map(syscalls::x86_64::Sysno::new)
            .collect();
        for &sys in &all {
            let key = (sys.id() as u32, sys.name());
            if !ours.contains(&key) {
                missing.push(key);
            }
        }
        assert!(
            missing.is_empty(),
            "syscalls missing from the effects table: {missing:?}"
        );
        let known: BTreeSet<u32> = all.iter().map(|s| s.id() as u32).collect();
        let extra: std::vec::Vec<_> = ours.iter().filter(|(nr, _)| !known.contains(nr)).collect();
        assert!(
            extra.is_empty(),
            "rows for numbers that are not x86_64 syscalls: {extra:?}"
        );
    }

    #[test]
    fn effects_are_well_formed() {
        for s in x86_64::TABLE {
            assert!(s.args.len() <= 6, "{}", s.name);
            if let Effects::Known(list) = s.effects {
                assert!(
                    !list.is_empty(),
                    "{}: Known with no effect; use NoMemory",
                    s.name
                );
                assert!(list.len() <= MAX_EFFECTS, "{}: too many effects", s.name);
                for e in list {
                    assert!(
                        (e.arg as usize) < s.args.len().max(1),
                        "{}: pointer arg {} out of range",
                        s.name,
                        e.arg
                    );
                    let reads_arg = matches!(
                        e.rule,
                        SizeRule::Arg
                            | SizeRule::ArgTimes
                            | SizeRule::PtrU32
                            | SizeRule::Iovec
                            | SizeRule::FdSet
                            | SizeRule::Cmd
                            | SizeRule::Pages
                            | SizeRule::CapData
                            | SizeRule::SelfIovec
                            | SizeRule::Mmsghdr
                            | SizeRule::Bpf
                    );
                    if reads_arg {
                        assert!(
                            (e.size_arg as usize) < s.args.len(),
                            "{}: size arg out of range",
                            s.name
                        );
                    }
                    if matches!(
                        e.rule,
                        SizeRule::Ret
                            | SizeRule::RetTimes
                            | SizeRule::RetPlus
                            | SizeRule::SelfIovec
                    ) {
                        assert!(
                            e.dir.is_out(),
                            "{}: a return-value size only makes sense for outputs",
                            s.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lookup_finds_common_syscalls() {
        const READ_EFFECTS: &[Effect] = &[out_ret(1)];
        assert_eq!(name(0), Some("read"));
        assert_eq!(name(1), Some("write"));
        assert_eq!(name(59), Some("execve"));
        assert_eq!(name(-1), None);
        assert_eq!(name(100_000), None);
        let read = lookup(0).unwrap();
        assert_eq!(read.effects, Effects::Known(READ_EFFECTS));
        let spec = encode(read);
        assert_eq!(spec.flags, SPEC_KNOWN | SPEC_HAS_OUT);
        assert_eq!(
            encode(lookup(1).unwrap()).flags,
            SPEC_KNOWN | SPEC_HAS_IN,
            "write"
        );
        assert_eq!(spec.count, 1);
        assert_eq!(spec.effects[0].rule, SizeRule::Ret as u8);
    }
}
