//! Maps shared by the programs. Sizes here are defaults; the daemon can
//! change the ring size at load time.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use tracer_common::wire::{
    Config, KernelOffsets, LOSS_KINDS, LossKind, NUM_ARGS, SYSCALL_TABLE_LEN,
    SyscallSpec, TASK_LOSS_ENTRIES, Tracked,
};

/// Default ring: 64 MiB, enough for about 200 ms of a syscall storm.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(64 << 20, 0);

#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
pub static OFFSETS: Array<KernelOffsets> = Array::with_max_entries(1, 0);

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

#[map]
pub static INFLIGHT: HashMap<u32, InFlight> = HashMap::with_max_entries(65536, 0);

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
