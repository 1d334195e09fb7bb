//! Maps shared by the programs. Sizes here are defaults; the daemon can
//! change the ring size at load time.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use tracer_common::wire::{
    Config, KernelOffsets, LOSS_KINDS, LossKind, NUM_ARGS, Peers, SYSCALL_TABLE_LEN, SyscallSpec,
    TASK_LOSS_ENTRIES, TimeState, Tracked,
};

/// Default ring: 64 MiB, enough for about 200 ms of a syscall storm.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(64 << 20, 0);

#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
pub static OFFSETS: Array<KernelOffsets> = Array::with_max_entries(1, 0);

/// Other tracer daemons (`tracer_common::wire::Peers`), kept by user space.
#[map]
pub static PEERS: Array<Peers> = Array::with_max_entries(1, 0);

#[map]
pub static SYSCALLS: Array<SyscallSpec> = Array::with_max_entries(SYSCALL_TABLE_LEN, 0);

/// Tgids selected by pid rules (and their descendants), with their payload
/// setting.
#[map]
pub static TRACKED: HashMap<u32, Tracked> = HashMap::with_max_entries(65536, 0);

/// Records lost, per CPU, per [`LossKind`].
#[map]
pub static LOSS: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOSS_KINDS, 0);

/// Records lost per tgid, so the daemon can flag incomplete processes.
#[map]
pub static TASK_LOSS: LruHashMap<u32, u64> = LruHashMap::with_max_entries(TASK_LOSS_ENTRIES, 0);

/// A syscall between its enter and its exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InFlight {
    pub enter_ns: u64,
    pub nr: i64,
    pub args: [u64; NUM_ARGS],
    pub buffers: u32,
    pub flags: u32,
}

/// `InFlight::flags` bit: the thread is between enter and exit.
pub const INFLIGHT_ACTIVE: u32 = 1 << 31;
/// `InFlight::flags` bit: an input could not be read at entry, so the exit
/// reads the inputs again (`BUFFER_AT_EXIT`).
pub const INFLIGHT_INPUT_FAULT: u32 = 1 << 29;
/// Bits of `InFlight::flags` that are the programs' own, never sent.
pub const INFLIGHT_PRIVATE: u32 = INFLIGHT_ACTIVE | INFLIGHT_INPUT_FAULT;

/// The tid that called exec, by the tid it has after (a non-leader thread
/// takes the leader's): left by `sched_process_exec` for the exec record
/// that the same thread's execve exit emits. LRU, so that a note whose
/// exit never came cannot fill the map.
#[map]
pub static EXEC_OLD_TID: LruHashMap<u32, u32> = LruHashMap::with_max_entries(4096, 0);

/// Exec notices for the daemon's vDSO patcher (`vdso::note_exec`): its
/// own small ring, woken at every record, since the patch races the
/// program's first time read.
#[map]
pub static EXEC_NOTIFY: RingBuf = RingBuf::with_byte_size(256 << 10, 0);

/// Processes the daemon is asked to patch for exact time, by tgid (see
/// `vdso`). LRU: entries of processes gone are pushed out.
#[map]
pub static TIME_STATE: LruHashMap<u32, TimeState> = LruHashMap::with_max_entries(65536, 0);

/// Where a syscall between enter and exit is kept.
///
/// Most syscalls enter and exit on one CPU without a context switch in
/// between, so the entry lives in a per-CPU slot (an inlined array access)
/// rather than a hash map (a hashed, locked update per syscall). When the
/// task is switched out mid-syscall, the `sched_switch` hook spills the slot
/// into `INFLIGHT`, keyed by tid, where the exit (on any CPU) finds it.
///
/// The slot also caches the cgroup id of the thread last seen on this CPU
/// (`cg_tid`): the helper that reads it costs about 100 ns here. The cache is
/// dropped at every context switch, so an id is at most one scheduling
/// period old.
///
/// It also holds where the fast path builds its record (see `fast`).
#[repr(C)]
pub struct Slot {
    pub tid: u32,
    pub cg_tid: u32,
    pub f: InFlight,
    pub cgroup: u64,
    /// Bytes of inline buffers in `inl`.
    pub inl_len: u32,
    pub tgid: u32,
    /// The name of thread `cg_tid` (cached with its cgroup id).
    pub comm: [u64; 2],
    /// Its uid (low half) and gid (cached with its cgroup id).
    pub uid_gid: u64,
    /// Where in this CPU's stage the record goes (`fast::place`); its
    /// inline buffers follow it there.
    pub pos: u32,
    pub _pad: u32,
}

/// The current thread's cgroup id, from this CPU's cache when it holds it
/// (the fast path fills the cache, with the thread's name).
#[inline(always)]
pub fn current_cgroup(tid: u32) -> u64 {
    if let Some(s) = slot()
        && s.cg_tid == tid
    {
        return s.cgroup;
    }
    // SAFETY: helper without preconditions.
    unsafe { aya_ebpf::helpers::generated::bpf_get_current_cgroup_id() }
}

#[map]
pub static SLOT: PerCpuArray<Slot> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: an entry `finish` records from when it is not the slot's or a
/// spilled one (a syscall exit without its enter: a task returning from
/// clone, a syscall begun before attaching) or must outlive them (a task's
/// last `exit`). In a map, not on the stack: the verifier bounds the stack
/// of the whole call chain under a hook to 512 bytes.
#[map]
pub static NO_ENTER: PerCpuArray<InFlight> = PerCpuArray::with_max_entries(1, 0);

/// Spilled entries of tasks switched out during a syscall.
#[map]
pub static INFLIGHT: HashMap<u32, InFlight> = HashMap::with_max_entries(65536, 0);

#[inline(always)]
pub fn slot() -> Option<&'static mut Slot> {
    // SAFETY: per-CPU value; programs do not nest on one CPU.
    SLOT.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// Moves an active slot into `INFLIGHT` (its task is leaving the CPU).
#[inline(always)]
pub fn spill(s: &mut Slot) {
    if s.f.flags & INFLIGHT_ACTIVE == 0 {
        return;
    }
    if s.inl_len != 0 {
        crate::fast::demote(s);
    }
    if INFLIGHT.insert(s.tid, s.f, 0).is_err() {
        count_loss(LossKind::InFlight, s.tgid);
    }
    s.f.flags &= !INFLIGHT_ACTIVE;
}

/// A copy of the thread's syscall in progress, if any (cold paths only).
#[inline(always)]
pub fn inflight(tid: u32) -> Option<InFlight> {
    if let Some(s) = slot()
        && s.tid == tid
        && s.f.flags & INFLIGHT_ACTIVE != 0
    {
        return Some(s.f);
    }
    // SAFETY: the entry belongs to this thread; nothing else writes it now.
    let f = unsafe { INFLIGHT.get(tid) }?;
    if f.flags & INFLIGHT_ACTIVE != 0 {
        Some(*f)
    } else {
        None
    }
}

#[inline(always)]
pub fn count_loss(kind: LossKind, tgid: u32) {
    if let Some(p) = LOSS.get_ptr_mut(kind as u32) {
        // SAFETY: per-CPU slot; programs do not nest on one CPU for these hooks.
        unsafe { *p += 1 };
    }
    match TASK_LOSS.get_ptr_mut(tgid) {
        Some(p) => {
            // SAFETY: the value pointer is valid until the program returns.
            // Not atomic (the BPF target has no atomic RMW in Rust): two CPUs
            // losing for one process at once may count one; the per-CPU
            // LOSS totals stay exact, and "this process lost events" holds.
            unsafe { *p += 1 };
        }
        None => {
            let _ = TASK_LOSS.insert(tgid, 1u64, 0);
        }
    }
}

#[inline(always)]
pub fn config() -> Option<&'static Config> {
    CONFIG.get(0)
}

#[inline(always)]
pub fn offsets() -> Option<&'static KernelOffsets> {
    OFFSETS.get(0)
}

/// Wake the reader only once this much is queued, or once the oldest
/// unannounced data is this old: a wakeup per record would cost more than
/// the record itself.
const WAKE_NS: u64 = 20_000_000;
/// Once past the byte threshold, wake at most this often: the reader drains
/// everything per wakeup, so more would only cost interrupts.
const WAKE_MIN_NS: u64 = 1_000_000;
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

/// Bytes waiting in the ring when last sampled (for status).
#[map]
pub static RING_FILL: Array<u64> = Array::with_max_entries(1, 0);

/// Last forced wakeup, per CPU.
#[map]
static LAST_WAKE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Flags for submitting a record at time `now`.
#[inline(always)]
pub fn wake_flags(now: u64) -> u64 {
    let Some(last) = LAST_WAKE.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU slot.
    let last = unsafe { &mut *last };
    let wake_bytes = config().map(|c| c.wake_bytes as u64).unwrap_or(0);
    let since = now.wrapping_sub(*last);
    let mut full = false;
    if since > WAKE_MIN_NS {
        let avail = EVENTS.query(BPF_RB_AVAIL_DATA);
        // Sampled for the daemon's status (ring-buffer fill).
        if let Some(f) = RING_FILL.get_ptr_mut(0) {
            // SAFETY: a u64 slot of an array map; a torn read is impossible.
            unsafe { *f = avail };
        }
        full = avail >= wake_bytes;
    }
    if since > WAKE_NS || full {
        *last = now;
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}
