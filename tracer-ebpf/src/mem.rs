//! Word-by-word copies and zeroing.
//!
//! LLVM folds plain struct copies and runs of zero stores into `memcpy` /
//! `memset` calls, which this toolchain links as byte-at-a-time BPF
//! subprograms: on the syscall path they cost more than everything else.
//! Volatile word accesses are never folded, so they stay a few instructions.
use core::mem::size_of;

/// Copies `*src` into `*dst` in words of the type's alignment (8 or 4
/// bytes; the const assertion checks the size is a multiple of it).
#[inline(always)]
pub fn copy<T>(dst: &mut T, src: &T) {
    const { assert!(align_of::<T>() >= 4 && size_of::<T>().is_multiple_of(4)) };
    if align_of::<T>() >= 8 && size_of::<T>().is_multiple_of(8) {
        let d = dst as *mut T as *mut u64;
        let s = src as *const T as *const u64;
        for i in 0..size_of::<T>() / 8 {
            // SAFETY: both point at a T, in bounds by the loop bound and aligned.
            unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
        }
    } else {
        let d = dst as *mut T as *mut u32;
        let s = src as *const T as *const u32;
        for i in 0..size_of::<T>() / 4 {
            // SAFETY: as above, with 4-byte words.
            unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
        }
    }
}

/// Writes `v` without letting LLVM merge it with neighbouring stores.
#[inline(always)]
pub fn put<T: Copy>(dst: &mut T, v: T) {
    // SAFETY: dst is a valid, aligned reference.
    unsafe { core::ptr::write_volatile(dst, v) };
}
