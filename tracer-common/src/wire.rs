//! Ring-buffer records and map values, laid out identically in the kernel and
//! in user space.
//!
//! A syscall's data reaches user space as one or more [`BufferHeader`]
//! records (each followed by `len` bytes of user memory) and then one
//! [`SyscallRecord`]. Input buffers are emitted at `sys_enter`, output buffers
//! at `sys_exit`, and the syscall record last, so for one thread every buffer
//! precedes the syscall it belongs to. A buffer names its syscall by
//! `(tid, enter_ns)`, which lets the reader drop buffers whose syscall record
//! was lost instead of attaching them to the wrong syscall.
//!
//! The common case is cheaper: a syscall whose memory is small on each side
//! is one compact [`SysRecord`] with its buffers inline (see
//! [`InlineHeader`]), and a CPU sends those in `Batch` records ([`Stage`]),
//! where a [`TaskRecord`] says once who the thread is. Inputs that must leave a CPU before their syscall ends (the
//! task is switched out) go first as [`BufferHeader`] records, so the rule
//! above holds for every record kind.
//!
//! Every struct here uses fixed-width integers with explicit padding fields so
//! that it has no implicit padding (a `Pod` requirement) and the same layout
//! on both sides.

/// Length of `task_struct::comm`.
pub const COMM_LEN: usize = 16;
/// Syscall arguments on x86_64.
pub const NUM_ARGS: usize = 6;
/// Largest piece of user memory one [`BufferHeader`] record carries. Larger
/// buffers are split into several records with increasing `offset`.
pub const CHUNK_MAX: usize = 16384;
/// Hard upper bound of the per-buffer snapshot limit (what the kernel copies
/// of one buffer). The configured limit is clamped to this.
pub const SNAPSHOT_LIMIT_MAX: u32 = 16 << 20;
/// Default per-buffer snapshot limit: replay needs every byte the kernel
/// wrote into a program, so this is a safety bound far above real sizes
/// (a `read` of a whole file in one call), not a sampling size. What it
/// cuts is flagged truncated and counted as loss.
pub const SNAPSHOT_LIMIT_DEFAULT: u32 = SNAPSHOT_LIMIT_MAX;
/// Most bytes one syscall side sends (in `CHUNK_MAX` chunks): two buffers
/// at the snapshot limit.
pub const SIDE_BYTES_MAX: u32 = 2 * SNAPSHOT_LIMIT_MAX;
/// Size of the syscall-spec array map (indexed by syscall number).
pub const SYSCALL_TABLE_LEN: u32 = 512;
/// Most memory effects one syscall can declare.
pub const MAX_EFFECTS: usize = 4;
/// Most iovec elements captured for one `readv`/`writev`/`sendmsg`/`recvmsg`.
pub const MAX_IOVECS: u32 = 16;
/// Number of filter rules the kernel evaluates.
pub const MAX_RULES: usize = 16;

/// Kind of a ring-buffer record: the first `u32` of every record.
/// Values are stable; gaps are deliberate so kinds can be added.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Syscall = 1,
    Buffer = 2,
    /// A [`SyscallRecord`] followed by `inline_len` bytes of inline buffers
    /// (each an [`InlineHeader`] and its data, padded to 8 bytes).
    SyscallInline = 3,
    /// A [`BatchHeader`] followed by `len` bytes of `Sys` and `Task`
    /// records, back to back, in the order they were made.
    Batch = 4,
    /// A [`SysRecord`] followed by `inline_len` bytes of inline buffers (as
    /// in `SyscallInline`). Only inside a `Batch`, after a `Task` record of
    /// its thread.
    Sys = 5,
    /// A [`TaskRecord`]: who the `Sys` records of its thread that follow it
    /// in the batch belong to. Only inside a `Batch`.
    Task = 6,
    Fork = 10,
    Exec = 11,
    Exit = 12,
    Signal = 13,
    /// A [`LossRecord`]. Made by the daemon, never by the kernel programs:
    /// queued behind the records drained so far once it sees that a
    /// process lost records.
    Loss = 14,
    /// A [`TimeRecord`]: how a process image's time reads are recorded.
    /// Made by the daemon once it has patched (or failed to patch) the
    /// vDSO; the kernel programs send the same record to `EXEC_NOTIFY` to
    /// ask for the patch.
    Time = 15,
}

impl RecordKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Syscall,
            2 => Self::Buffer,
            3 => Self::SyscallInline,
            4 => Self::Batch,
            5 => Self::Sys,
            6 => Self::Task,
            10 => Self::Fork,
            11 => Self::Exec,
            12 => Self::Exit,
            13 => Self::Signal,
            14 => Self::Loss,
            15 => Self::Time,
            _ => return None,
        })
    }
}

/// The syscall number is not in the effects table: args and return value are
/// recorded, memory is not.
pub const SYSCALL_EFFECTS_UNKNOWN: u32 = 1 << 0;
/// The exit was seen without its enter (the tracer attached mid-syscall, or
/// this is a new task returning from `clone`). `enter_ns` is 0 and `args` were
/// read from the registers at exit.
pub const SYSCALL_NO_ENTER: u32 = 1 << 1;
/// At least one buffer record of this syscall could not be reserved.
pub const SYSCALL_BUFFER_LOST: u32 = 1 << 2;
/// Payload capture was switched off for this task by a filter rule.
pub const SYSCALL_NO_PAYLOAD: u32 = 1 << 3;
/// `TimeRecord::flags`: the daemon made the vDSO's time functions
/// syscalls in this process; every later time read is a recorded syscall.
pub const TIME_EXACT: u32 = 1 << 0;
/// `TimeRecord::flags`: the process read the vDSO's clock data (its first
/// read of a vDSO data page faulted): a time read the recording does not
/// have, made before the patch or by a function the patch does not cover.
pub const TIME_MISSED: u32 = 1 << 1;
/// `TimeRecord::flags`: the daemon could not patch this process's vDSO
/// (`reason` says why); its time reads are not recorded.
pub const TIME_NOT_PATCHED: u32 = 1 << 2;

/// A process the daemon is asked to patch, in `TIME_STATE` (by tgid):
/// its image, and where its vDSO is (its data pages lie just below).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeState {
    pub exec_ns: u64,
    pub start_ns: u64,
    pub vdso: u64,
    /// A `TIME_MISSED` record was sent for this process.
    pub missed: u32,
    /// The daemon has patched the process: its forks from now on have
    /// the patch, and need no notice.
    pub patched: u32,
}

/// Reasons in `TimeRecord::reason` for `TIME_NOT_PATCHED`.
pub const TIME_REASON_GONE: u32 = 1;
pub const TIME_REASON_DENIED: u32 = 2;
pub const TIME_REASON_NO_VDSO: u32 = 3;
pub const TIME_REASON_UNKNOWN_VDSO: u32 = 4;
pub const TIME_REASON_BUSY: u32 = 6;

/// How a process image's time reads are recorded. Also the record of the
/// exec ring (`EXEC_NOTIFY`) that asks the daemon to patch a process
/// (`flags` 0; `exec_ns` names the image, the exec's `ts_ns`; `start_ns`
/// the process).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeRecord {
    pub kind: u32,
    pub flags: u32,
    pub ts_ns: u64,
    pub exec_ns: u64,
    pub start_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub reason: u32,
    pub _pad: u32,
    /// The vDSO's address in the process (0: unknown), for the patcher.
    pub vdso: u64,
}

/// One finished syscall.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SyscallRecord {
    pub kind: u32,
    pub flags: u32,
    pub enter_ns: u64,
    pub exit_ns: u64,
    pub cgroup_id: u64,
    pub nr: i64,
    pub args: [u64; NUM_ARGS],
    pub ret: i64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: [u8; COMM_LEN],
    /// Buffer records emitted for this syscall (all chunks of all buffers),
    /// not counting inline buffers.
    pub buffers: u32,
    /// Bytes of inline buffers after the record (`RecordKind::SyscallInline`),
    /// else 0.
    pub inline_len: u32,
}

/// One finished syscall of the fast path: what varies from one syscall to
/// the next. Who made it (pid, uid, gid, cgroup, name) is said once per
/// batch and thread by a [`TaskRecord`] before it, instead of in every
/// record: 88 bytes instead of the 136 of a [`SyscallRecord`], fewer to copy
/// for the kernel and for the daemon, and no uid helper call per syscall.
/// A syscall whose number or buffer count does not fit takes the general
/// path (a [`SyscallRecord`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SysRecord {
    /// `RecordKind::Sys`. The kinds of records inside a batch are `u16`.
    pub kind: u16,
    pub nr: u16,
    pub tid: u32,
    pub flags: u32,
    /// As `SyscallRecord::buffers`.
    pub buffers: u16,
    /// As `SyscallRecord::inline_len`.
    pub inline_len: u16,
    pub enter_ns: u64,
    pub exit_ns: u64,
    pub ret: i64,
    pub args: [u64; NUM_ARGS],
}

/// Who a thread is, for the [`SysRecord`]s of that thread that follow in
/// the same batch. The kernel sends one at the start of each batch and
/// again when the thread changes, or when its name or ids may have changed
/// (`prctl`, the `set*id` calls), so no state carries over from one batch to
/// the next: a lost batch takes its own identities with it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskRecord {
    /// `RecordKind::Task`.
    pub kind: u16,
    pub _pad: u16,
    pub tid: u32,
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub _pad2: u32,
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
}

/// Most bytes of inline buffers (headers and padded data) one
/// `SyscallInline` record carries. Syscalls whose memory does not fit are
/// sent the general way, as [`BufferHeader`] records.
pub const INLINE_MAX: usize = 256;

/// Most bytes of records one `Batch` carries.
pub const STAGE_MAX: usize = 8192;

/// A batch of fast-path records from one CPU (see [`Stage`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchHeader {
    pub kind: u32,
    pub len: u32,
}

/// A CPU's fast-path records not yet sent (the `STAGE` per-CPU map value):
/// the header and data of its next `Batch` record. The daemon reads what is
/// left here once the programs are detached.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Stage {
    /// `exit_ns` of the oldest staged record (0: none yet).
    pub first_ns: u64,
    /// Thread of the last `Task` record in the stage (0: none yet).
    pub task_tid: u32,
    /// Where the kernel is, walking a batch it could not send to count its
    /// loss per process, and the process there (map memory, which the
    /// verifier does not track: the walk is verified once).
    pub walk_pid: u32,
    pub walk_off: u32,
    pub walk_len: u32,
    /// Right before `data`: the two are sent as one `Batch` record.
    pub hdr: BatchHeader,
    /// Twice the most used, so that masked offsets and sizes stay inside.
    pub data: [u8; 2 * STAGE_MAX],
}

/// One small buffer inside a `SyscallInline` record, followed by `len`
/// bytes of data and zero padding up to a multiple of 8. Same meaning as
/// the fields of [`BufferHeader`] (the buffer is whole: offset 0, item 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineHeader {
    pub arg: u8,
    pub dir: u8,
    pub flags: u16,
    pub len: u32,
    pub total_len: u64,
}

/// The buffer was longer than the snapshot limit; `total_len` is its real size.
pub const BUFFER_TRUNCATED: u16 = 1 << 0;
/// Reading the user memory failed (bad pointer, page not present).
pub const BUFFER_FAULT: u16 = 1 << 1;
/// The buffer is a NUL-terminated string (its length was found by the copy).
pub const BUFFER_STRING: u16 = 1 << 2;
/// An input read again at the syscall's exit, because some input of the
/// syscall could not be read at its entry (a page not yet resident: the
/// kernel faults it in while it copies, after the entry hook). The daemon
/// keeps it in place of an entry copy that faulted, and drops it otherwise.
pub const BUFFER_AT_EXIT: u16 = 1 << 3;

/// Pseudo argument indexes for buffers that are not a plain syscall argument.
pub const ARG_EXEC_ARGV: u8 = 16;
pub const ARG_EXEC_ENVP: u8 = 17;
pub const ARG_EXEC_AUXV: u8 = 18;
pub const ARG_EXEC_FILENAME: u8 = 19;
/// The working directory of a process at its exec, from the kernel's
/// dentries: a byte 1 when the walk reached the root (else 0), then the
/// components from the leaf up, each NUL-terminated.
pub const ARG_EXEC_CWD: u8 = 20;

/// One chunk of user memory, followed by `len` bytes of data.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BufferHeader {
    pub kind: u32,
    pub tid: u32,
    /// `enter_ns` of the syscall this buffer belongs to (with `tid`, its key).
    pub enter_ns: u64,
    /// Real length of the whole buffer as the syscall defined it.
    pub total_len: u64,
    /// Offset of this chunk within the buffer.
    pub offset: u32,
    /// Bytes of data following this header.
    pub len: u32,
    /// Argument index (0..6) or one of the `ARG_*` pseudo indexes.
    pub arg: u8,
    /// [`crate::effects::Direction`] as `u8`.
    pub dir: u8,
    pub flags: u16,
    /// Element index for scattered buffers (iovec number), else 0.
    pub item: u32,
}

/// Buffer record as the kernel builds it: header and the largest chunk.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BufferRecord {
    pub hdr: BufferHeader,
    pub data: [u8; CHUNK_MAX],
}

/// The new task is a thread (`CLONE_THREAD`).
pub const FORK_THREAD: u32 = 1 << 0;

/// A task was created by `fork`, `vfork`, `clone` or `clone3`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkRecord {
    pub kind: u32,
    pub flags: u32,
    pub ts_ns: u64,
    pub clone_flags: u64,
    /// `task_struct::start_time` of the child (monotonic ns): with the pid,
    /// the process identity.
    pub child_start_ns: u64,
    pub parent_pid: u32,
    pub parent_tid: u32,
    pub child_pid: u32,
    pub child_tid: u32,
    pub uid: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

/// A successful `execve`/`execveat`, emitted at its `sys_exit` after the
/// buffers `ARG_EXEC_FILENAME`, `ARG_EXEC_ARGV` (the NUL-separated argv block
/// of the new stack), `ARG_EXEC_ENVP` and `ARG_EXEC_AUXV` (keyed by
/// `(tid, enter_ns)` like syscall buffers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecRecord {
    pub kind: u32,
    pub flags: u32,
    pub enter_ns: u64,
    pub ts_ns: u64,
    pub start_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// Thread id that called exec (differs from `tid` when a non-leader thread
    /// of a multi-threaded process exec'd).
    pub old_tid: u32,
    pub uid: u32,
    pub cgroup_id: u64,
    pub arg_start: u64,
    pub env_start: u64,
    pub comm: [u8; COMM_LEN],
}

/// The whole thread group is gone (last thread exited).
pub const EXIT_GROUP_DEAD: u32 = 1 << 0;

/// A task exited.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitRecord {
    pub kind: u32,
    pub flags: u32,
    pub ts_ns: u64,
    pub start_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// `task_struct::exit_code`: `(code << 8) | signal`, as `wait` reports.
    pub exit_code: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

/// The signals an instruction raises (a bad address, an illegal or a
/// trapping instruction, a division): SIGSEGV, SIGBUS, SIGILL, SIGFPE,
/// SIGTRAP.
pub const FAULT_SIGNALS: [u32; 5] = [11, 7, 4, 8, 5];

/// A signal the kernel raised for an instruction (a fault signal, si_code
/// above 0): its siginfo holds the faulting address where a sent one
/// holds the sender's pid.
pub fn is_fault(signo: u32, code: i32) -> bool {
    code > 0 && FAULT_SIGNALS.contains(&signo)
}

/// The siginfo's first union word is an address: a fault's (si_addr), or
/// the syscall instruction's for the SIGSYS of a seccomp filter's
/// `SECCOMP_RET_TRAP` (si_call_addr; code `SYS_SECCOMP`), which replay
/// gives the program again.
pub fn names_an_address(signo: u32, code: i32) -> bool {
    const SIGSYS: u32 = 31;
    const SYS_SECCOMP: i32 = 1;
    is_fault(signo, code) || (signo == SIGSYS && code == SYS_SECCOMP)
}

/// The siginfo of `signo` (with `code`) holds a pid in its first union
/// word: a signal sent (code 0 or below), or SIGCHLD (the child's pid).
pub fn names_a_pid(signo: u32, code: i32) -> bool {
    const SIGCHLD: u32 = 17;
    code <= 0 || signo == SIGCHLD
}

/// A signal is delivered to a task (its handler is about to run, or its
/// default action is taken).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SignalRecord {
    pub kind: u32,
    pub signo: u32,
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub code: i32,
    pub errno: i32,
    /// The siginfo's first union word: a pid in its low half for a signal
    /// sent (`SI_USER`, `SI_QUEUE`, `SI_TKILL`: code 0 or below) and for
    /// SIGCHLD ([`names_a_pid`]), the faulting address for a fault
    /// ([`is_fault`]).
    pub field: u64,
}

/// Records of process `pid` lost (ring buffer or daemon backlog full) at
/// some time between `since_ns` and `until_ns` (monotonic): the daemon's
/// checks of the loss counters before and after.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LossRecord {
    pub kind: u32,
    pub pid: u32,
    pub records: u64,
    pub since_ns: u64,
    pub until_ns: u64,
}

/// Loss counters, one array slot per kind, per CPU.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    Syscall = 0,
    Buffer = 1,
    Fork = 2,
    Exec = 3,
    Exit = 4,
    Signal = 5,
    /// A syscall enter could not be stashed (in-flight map full).
    InFlight = 6,
    /// An exec notice for the vDSO patcher (the process's time reads are
    /// then not recorded exactly).
    Time = 7,
}
pub const LOSS_KINDS: u32 = 8;

/// Per-task loss: the map `TASK_LOSS` counts records lost per tid, so the
/// daemon can say which processes are incomplete.
pub const TASK_LOSS_ENTRIES: u32 = 16384;

/// Effects of one syscall as the kernel reads them (see
/// [`crate::effects::encode`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EffectSlot {
    /// Argument index of the pointer.
    pub arg: u8,
    /// [`crate::effects::Direction`] as `u8` (0 = unused slot).
    pub dir: u8,
    /// [`crate::effects::SizeRule`] as `u8`.
    pub rule: u8,
    /// Argument index used by the rule (size or count argument).
    pub size_arg: u8,
    /// Constant used by the rule (byte count or element size).
    pub param: u32,
}

/// `SyscallSpec::flags`: the table knows this syscall.
pub const SPEC_KNOWN: u32 = 1 << 0;
/// `SyscallSpec::flags`: some effect is read at enter (an input).
pub const SPEC_HAS_IN: u32 = 1 << 1;
/// `SyscallSpec::flags`: some effect is written at exit (an output).
pub const SPEC_HAS_OUT: u32 = 1 << 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallSpec {
    pub flags: u32,
    pub count: u32,
    pub effects: [EffectSlot; MAX_EFFECTS],
}

/// Match kinds of a filter rule.
pub const RULE_MATCH_PID: u32 = 1;
pub const RULE_MATCH_COMM: u32 = 2;
pub const RULE_MATCH_CGROUP: u32 = 3;
pub const RULE_MATCH_UID: u32 = 4;

/// Actions of a filter rule.
pub const RULE_INCLUDE: u32 = 1;
pub const RULE_EXCLUDE: u32 = 2;

/// One filter rule. Rules are evaluated in order; the first that matches
/// decides. A pid rule matches the process and, through the `TRACKED` map
/// the fork hook maintains, its descendants.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub matcher: u32,
    pub action: u32,
    /// Payloads captured for matching tasks (1) or not (0).
    pub payload: u32,
    /// Time reads of matching processes recorded exactly (1: the daemon
    /// patches their vDSO) or not (0).
    pub exact_time: u32,
    /// pid, uid or cgroup id, by `matcher`.
    pub value: u64,
    pub comm: [u8; COMM_LEN],
}

/// Global configuration the daemon writes before attaching (index 0 of the
/// `CONFIG` array map).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The daemon's own tgid: never recorded.
    pub self_pid: u32,
    /// Per-buffer snapshot limit in bytes.
    pub snapshot_limit: u32,
    pub rule_count: u32,
    /// What to do with a task no rule matches: `RULE_INCLUDE` or `RULE_EXCLUDE`.
    pub default_action: u32,
    /// Payloads for tasks no rule matches.
    pub default_payload: u32,
    /// Set when some rule matches on pid: the fork hook then tracks
    /// descendants of tracked pids.
    pub track_descendants: u32,
    /// Wake the reader once this many bytes are queued (a fraction of the
    /// ring), instead of once per record.
    pub wake_bytes: u32,
    /// Exact time (`Rule::exact_time`) for tasks no rule matches.
    pub default_exact_time: u32,
    /// Bytes of vDSO data pages right below the vDSO (`[vvar]`,
    /// `[vvar_vclock]`): a fault there is a read of the clock data.
    pub vvar_below: u32,
    pub _pad: u32,
    pub rules: [Rule; MAX_RULES],
}

/// Other tracer daemons this host runs at most, for exclusion.
pub const MAX_PEERS: usize = 16;

/// The tgids of the other tracer daemons on this host (0 = free slot):
/// never recorded, so that two daemons do not record each other's store
/// writes (and each other's recording of those, without end).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peers {
    pub tgids: [u32; MAX_PEERS],
}

/// Kernel structure offsets, read from the running kernel's BTF by user
/// space (the Rust eBPF toolchain has no CO-RE relocations for them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_start_time: u32,
    pub task_exit_code: u32,
    pub task_mm: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_env_start: u32,
    pub mm_env_end: u32,
    pub mm_saved_auxv: u32,
    /// Size in bytes of `mm_struct::saved_auxv`.
    pub mm_saved_auxv_size: u32,
    /// `task_struct::comm`: read directly, since the comm helper costs more
    /// than the rest of the exit program on some kernels.
    pub task_comm: u32,
    /// For the working directory's path (`exec_cwd` in the eBPF crate);
    /// all 0 when the kernel's BTF lacks one of them.
    pub task_fs: u32,
    pub fs_pwd: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub dentry_parent: u32,
    /// `dentry::d_name.name`.
    pub dentry_name: u32,
    /// `mount::mnt`: the `vfsmount` inside a `struct mount`.
    pub mount_mnt: u32,
    pub mount_parent: u32,
    pub mount_mountpoint: u32,
    pub vfsmount_root: u32,
}

/// What the tracked-task map stores per tgid: the pid rule that selected the
/// process or one of its ancestors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tracked {
    pub rule: u32,
    pub _pad: u32,
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for SyscallSpec {}
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for Peers {}
    unsafe impl aya::Pod for KernelOffsets {}
    unsafe impl aya::Pod for Tracked {}
    unsafe impl aya::Pod for TimeState {}
    unsafe impl aya::Pod for Rule {}
    unsafe impl aya::Pod for Stage {}
}

/// View a record read from the ring buffer as `T`, if it is long enough.
///
/// # Safety
/// `T` must be one of the plain-data record types of this module.
#[cfg(feature = "user")]
pub unsafe fn read_record<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < core::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: length checked; the types are plain data valid for any bytes;
    // read_unaligned copes with any alignment of the ring-buffer slice.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn records_have_no_implicit_padding() {
        assert_eq!(size_of::<SyscallRecord>(), 8 * 12 + 4 * 4 + 16 + 8);
        assert_eq!(size_of::<BufferHeader>(), 40);
        assert_eq!(size_of::<InlineHeader>(), 16);
        assert_eq!(
            size_of::<SysRecord>(),
            2 * 2 + 4 * 2 + 2 * 2 + 8 * 3 + 8 * 6
        );
        assert_eq!(size_of::<TaskRecord>(), 2 * 2 + 4 * 5 + 8 + 16);
        assert_eq!(size_of::<ForkRecord>(), 4 * 2 + 8 * 3 + 4 * 6 + 16);
        assert_eq!(size_of::<ExitRecord>(), 4 * 2 + 8 * 2 + 4 * 4 + 16);
        assert_eq!(size_of::<SignalRecord>(), 4 * 2 + 8 + 4 * 6);
        assert_eq!(size_of::<EffectSlot>(), 8);
        assert_eq!(size_of::<Rule>(), 4 * 4 + 8 + 16);
        assert_eq!(size_of::<TimeRecord>(), 4 * 2 + 8 * 4 + 4 * 4);
    }

    #[test]
    fn record_kind_round_trips() {
        for k in [
            RecordKind::Syscall,
            RecordKind::Buffer,
            RecordKind::SyscallInline,
            RecordKind::Batch,
            RecordKind::Sys,
            RecordKind::Task,
            RecordKind::Fork,
            RecordKind::Exec,
            RecordKind::Exit,
            RecordKind::Signal,
            RecordKind::Loss,
            RecordKind::Time,
        ] {
            assert_eq!(RecordKind::from_u32(k as u32), Some(k));
        }
        assert_eq!(RecordKind::from_u32(0), None);
    }
}
