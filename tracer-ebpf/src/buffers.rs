//! Copying user (or kernel) memory into buffer records.
//!
//! Two passes keep the verifier's work small: first the syscall's pieces of
//! memory are planned into the per-CPU `WORK` value (plain bounded loops
//! that only read pointers and lengths), then one `bpf_loop` sends them, one
//! chunk per iteration. All loop state lives in map memory, which the
//! verifier does not track, so its exploration converges at once instead of
//! walking every iteration.
//!
//! The per-CPU values are safe to reuse because these programs do not nest
//! on one CPU: a syscall hook cannot be interrupted by another syscall hook.
use core::{ffi::c_void, mem::size_of};

use aya_ebpf::{helpers::generated, macros::map, maps::PerCpuArray};
use tracer_common::wire::{
    BUFFER_AT_EXIT, BUFFER_FAULT, BUFFER_STRING, BUFFER_TRUNCATED, BufferHeader, BufferRecord,
    CHUNK_MAX, INLINE_MAX, InlineHeader, LossKind, NUM_ARGS, RecordKind, SIDE_BYTES_MAX,
    SNAPSHOT_LIMIT_MAX, SyscallSpec,
};

use crate::{
    maps::{EVENTS, count_loss},
    mem::{copy, put},
};

const BPF_RB_NO_WAKEUP: u64 = 1;

/// Most pieces of memory one syscall side captures.
pub const MAX_PIECES: u32 = 32;
/// Longest string copied (PATH_MAX).
const STR_MAX: u32 = 4096;
/// Most chunks sent for one syscall side.
const MAX_SENDS: u32 = SIDE_BYTES_MAX / CHUNK_MAX as u32;

/// `Piece::kind` bits. A piece is bytes unless `PIECE_STRING`;
/// `PIECE_AGAIN` marks an input read again at exit (`BUFFER_AT_EXIT`).
pub const PIECE_BYTES: u8 = 0;
pub const PIECE_STRING: u8 = 1;
pub const PIECE_AGAIN: u8 = 2;

/// One piece of memory to copy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Piece {
    pub src: u64,
    pub total: u64,
    pub item: u32,
    pub arg: u8,
    pub dir: u8,
    pub kernel: u8,
    pub kind: u8,
}

/// The plan and progress of one syscall side.
#[repr(C)]
pub struct Work {
    pub enter_ns: u64,
    pub tid: u32,
    pub tgid: u32,
    pub limit: u32,
    pub emitted: u32,
    pub lost: u32,
    pub n: u32,
    pub cur: u32,
    /// Some piece could not be read (a page not resident).
    pub faulted: u32,
    pub off: u64,
    pub pieces: [Piece; MAX_PIECES as usize],
    // Planning state, kept here (not on the stack) so loops stay cheap to verify.
    pub spec: SyscallSpec,
    pub args: [u64; NUM_ARGS],
    pub ret: i64,
    /// What is being planned: one of the `PLAN_*` values.
    pub planning: u64,
    /// Array being expanded (iovecs, strings), its remaining byte budget and
    /// the template of its pieces.
    pub arr_budget: u64,
    pub arr_base: Piece,
    /// Messages of a recvmmsg capture being planned.
    pub arr_count: u64,
    /// A user struct being planned from (a msghdr, an mmsghdr, an iovec),
    /// read here rather than onto the stack: the verifier bounds the stack
    /// of the whole call chain under sys_exit to 512 bytes.
    pub words: [u64; 8],
    /// What the exec record needs, planned with the exec's buffers.
    pub exec: crate::process::ExecInfo,
}

/// The plan of this CPU, inside a loop callback.
#[inline(always)]
pub fn current() -> Option<&'static mut Work> {
    let w = WORK.get_ptr_mut(0)?;
    // SAFETY: per-CPU value, exclusively ours while this program runs.
    Some(unsafe { &mut *w })
}

#[map]
static WORK: PerCpuArray<Work> = PerCpuArray::with_max_entries(1, 0);

#[map]
static SCRATCH: PerCpuArray<BufferRecord> = PerCpuArray::with_max_entries(1, 0);

/// Starts a plan for this CPU.
#[inline(always)]
pub fn begin(tid: u32, tgid: u32, enter_ns: u64, limit: u32) -> Option<&'static mut Work> {
    let w = WORK.get_ptr_mut(0)?;
    // SAFETY: per-CPU value, exclusively ours while this program runs.
    let w = unsafe { &mut *w };
    put(&mut w.enter_ns, enter_ns);
    put(&mut w.tid, tid);
    put(&mut w.tgid, tgid);
    put(
        &mut w.limit,
        if limit > SNAPSHOT_LIMIT_MAX {
            SNAPSHOT_LIMIT_MAX
        } else {
            limit
        },
    );
    put(&mut w.emitted, 0);
    put(&mut w.lost, 0);
    put(&mut w.n, 0);
    put(&mut w.cur, 0);
    put(&mut w.faulted, 0);
    put(&mut w.off, 0);
    Some(w)
}

/// Adds a piece to the plan; a full plan drops it and counts the loss.
#[inline(always)]
pub fn add(w: &mut Work, p: Piece) {
    if p.src == 0 {
        return;
    }
    let i = w.n;
    if i >= MAX_PIECES {
        w.lost = 1;
        return;
    }
    copy(&mut w.pieces[(i & (MAX_PIECES - 1)) as usize], &p);
    w.n = i + 1;
}

#[inline(always)]
fn output(w: &mut Work, rec: &BufferRecord, n: u32) -> bool {
    let mut size = size_of::<BufferHeader>() as u64 + n as u64;
    if size > size_of::<BufferRecord>() as u64 {
        size = size_of::<BufferRecord>() as u64;
    }
    // SAFETY: the scratch value is `size_of::<BufferRecord>()` bytes long and
    // size is bounded by it.
    let r = unsafe {
        generated::bpf_ringbuf_output(
            &EVENTS as *const _ as *mut c_void,
            rec as *const _ as *mut c_void,
            size,
            // The syscall record that follows decides on the wakeup.
            BPF_RB_NO_WAKEUP,
        )
    };
    if r < 0 {
        count_loss(LossKind::Buffer, w.tgid);
        w.lost = 1;
        return false;
    }
    w.emitted += 1;
    true
}

/// Sends the next chunk of the plan. Returns false when the plan is done.
#[inline(always)]
fn send_next(w: &mut Work) -> bool {
    if w.cur >= w.n {
        return false;
    }
    let slot = &w.pieces[(w.cur & (MAX_PIECES - 1)) as usize];
    let p = Piece {
        src: slot.src,
        total: slot.total,
        item: slot.item,
        arg: slot.arg,
        dir: slot.dir,
        kernel: slot.kernel,
        kind: slot.kind,
    };
    let Some(rec) = SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: per-CPU scratch value.
    let rec: &mut BufferRecord = unsafe { &mut *rec };
    let off = w.off;
    let mut flags: u16 = 0;
    let mut total = p.total;
    let n: u32;
    let mut last = true;
    if p.kind & PIECE_AGAIN != 0 {
        flags |= BUFFER_AT_EXIT;
    }
    if p.kind & PIECE_STRING != 0 {
        flags |= BUFFER_STRING;
        // SAFETY: STR_MAX is below the scratch data size.
        let r = unsafe {
            generated::bpf_probe_read_user_str(
                rec.data.as_mut_ptr() as *mut c_void,
                STR_MAX,
                p.src as *const c_void,
            )
        };
        if r < 0 {
            flags |= BUFFER_FAULT;
            w.faulted = 1;
            n = 0;
        } else {
            let len = (r as u32) & (STR_MAX * 2 - 1);
            if len >= STR_MAX {
                flags |= BUFFER_TRUNCATED;
            }
            n = if len > STR_MAX { STR_MAX } else { len };
        }
        total = n as u64;
    } else {
        let mut want = p.total;
        if want > w.limit as u64 {
            want = w.limit as u64;
            flags |= BUFFER_TRUNCATED;
        }
        let mut len = want.saturating_sub(off);
        if len > CHUNK_MAX as u64 {
            len = CHUNK_MAX as u64;
        }
        let mut len = len as u32;
        if len > 0 {
            // SAFETY: len is at most CHUNK_MAX, the scratch data size.
            let r = unsafe {
                let dst = rec.data.as_mut_ptr() as *mut c_void;
                let src = (p.src + off) as *const c_void;
                if p.kernel != 0 {
                    generated::bpf_probe_read_kernel(dst, len & (CHUNK_MAX as u32 * 2 - 1), src)
                } else {
                    generated::bpf_probe_read_user(dst, len & (CHUNK_MAX as u32 * 2 - 1), src)
                }
            };
            if r < 0 {
                flags |= BUFFER_FAULT;
                w.faulted = 1;
                len = 0;
            }
        }
        n = len;
        last = n == 0 || off + n as u64 >= want;
    }
    let h = &mut rec.hdr;
    put(&mut h.kind, RecordKind::Buffer as u32);
    put(&mut h.tid, w.tid);
    put(&mut h.enter_ns, w.enter_ns);
    put(&mut h.total_len, total);
    put(&mut h.offset, off as u32);
    put(&mut h.len, n);
    put(&mut h.arg, p.arg);
    put(&mut h.dir, p.dir);
    put(&mut h.flags, flags);
    put(&mut h.item, p.item);
    if !output(w, rec, n) {
        last = true;
    }
    if last {
        w.cur += 1;
        w.off = 0;
    } else {
        w.off = off + n as u64;
    }
    true
}

extern "C" fn send_cb(_i: u64, _ctx: *mut c_void) -> i64 {
    let Some(w) = WORK.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: per-CPU value, exclusively ours while this program runs.
    if send_next(unsafe { &mut *w }) { 0 } else { 1 }
}

/// Sends every planned piece. Returns (records emitted, whether any was lost).
#[inline(never)]
pub fn flush() -> (u32, bool) {
    let Some(w) = WORK.get_ptr_mut(0) else {
        return (0, false);
    };
    // SAFETY: per-CPU value.
    let w = unsafe { &mut *w };
    if w.n > 0 {
        // SAFETY: callback follows bpf_loop's contract; it takes no context.
        unsafe {
            generated::bpf_loop(MAX_SENDS, send_cb as *mut c_void, core::ptr::null_mut(), 0);
        }
        if w.cur < w.n {
            // The side's bound cut it: what was not sent is loss, said so.
            w.lost = 1;
            count_loss(LossKind::Buffer, w.tgid);
        }
    }
    (w.emitted, w.lost != 0)
}

/// Sends one small, whole buffer (an inline buffer leaving its slot) as a
/// buffer record; `src` is kernel memory holding its `h.len` bytes.
/// False when the ring is full (the caller counts the loss).
#[inline(always)]
pub fn emit_small(tid: u32, enter_ns: u64, h: &InlineHeader, src: u64) -> bool {
    let Some(rec) = SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: per-CPU scratch value.
    let rec: &mut BufferRecord = unsafe { &mut *rec };
    let n = h.len & (INLINE_MAX as u32 - 1);
    if n > 0 {
        // SAFETY: n is below INLINE_MAX, within the scratch data; src is
        // the caller's kernel memory of at least n bytes.
        unsafe {
            generated::bpf_probe_read_kernel(
                rec.data.as_mut_ptr() as *mut c_void,
                n,
                src as *const c_void,
            )
        };
    }
    let r = &mut rec.hdr;
    put(&mut r.kind, RecordKind::Buffer as u32);
    put(&mut r.tid, tid);
    put(&mut r.enter_ns, enter_ns);
    put(&mut r.total_len, h.total_len);
    put(&mut r.offset, 0);
    put(&mut r.len, n);
    put(&mut r.arg, h.arg);
    put(&mut r.dir, h.dir);
    put(&mut r.flags, h.flags);
    put(&mut r.item, 0);
    let size = size_of::<BufferHeader>() as u64 + n as u64;
    // SAFETY: the scratch value is larger than size.
    let rc = unsafe {
        generated::bpf_ringbuf_output(
            &EVENTS as *const _ as *mut c_void,
            rec as *const _ as *mut c_void,
            size,
            BPF_RB_NO_WAKEUP,
        )
    };
    rc >= 0
}
