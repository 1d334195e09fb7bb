//! The working directory of a process at its exec, walked in the kernel.
//!
//! An exec by a relative path (`./configure`'s test programs, `make`'s
//! `./gen`, `sh -c ./x`) names its program relative to a directory the
//! recording does not otherwise hold; user space could resolve it through
//! `/proc/PID/exe` only while the process lives, and a short one is gone
//! before the daemon looks. `bpf_d_path` would do this walk, but it is
//! allowed only in fentry and LSM programs, which this machine kind
//! refuses; so the walk is the kernel's `prepend_path` by hand: dentry
//! names up to the mount's root, then across to the mount point in the
//! parent mount, until the root mount.
use core::ffi::c_void;

use aya_ebpf::{helpers::generated, macros::map, maps::PerCpuArray};
use tracer_common::wire::KernelOffsets;

use crate::process::read_kernel;

/// Components kept at most; a deeper directory is sent incomplete.
const MAX_STEPS: u32 = 48;
/// Bytes of components at most (a power of two, for the verifier).
const AREA: usize = 4096;
/// Bytes of one component at most (NAME_MAX and its NUL).
const NAME: usize = 256;

#[repr(C)]
pub struct CwdScratch {
    /// 1 when the walk reached the root mount's root, else 0.
    pub complete: u8,
    pub data: [u8; AREA + NAME],
}

#[map]
static CWD: PerCpuArray<CwdScratch> = PerCpuArray::with_max_entries(1, 0);

/// Walks the current task's working directory into this CPU's scratch;
/// returns its kernel address and length (the byte `complete`, then the
/// components leaf first, each NUL-terminated). `None` when the offsets are
/// unknown. The scratch stays valid until this program ends.
#[inline(never)]
pub fn walk(task: u64, off: &KernelOffsets) -> Option<(u64, u64)> {
    if off.task_fs == 0 || off.dentry_name == 0 {
        return None;
    }
    let s = CWD.get_ptr_mut(0)?;
    let fs: u64 = read_kernel(task + off.task_fs as u64);
    if fs == 0 {
        return None;
    }
    let pwd = fs + off.fs_pwd as u64;
    let mut vfsmnt: u64 = read_kernel(pwd + off.path_mnt as u64);
    let mut dentry: u64 = read_kernel(pwd + off.path_dentry as u64);
    let mut root: u64 = read_kernel(vfsmnt + off.vfsmount_root as u64);
    let mut len: u32 = 0;
    let mut complete = 0u8;
    for _ in 0..MAX_STEPS {
        if dentry == 0 || vfsmnt == 0 {
            break;
        }
        let parent: u64 = read_kernel(dentry + off.dentry_parent as u64);
        if dentry == root || dentry == parent {
            // The root of a mount: on to its mount point in the parent.
            let mnt = vfsmnt - off.mount_mnt as u64;
            let up: u64 = read_kernel(mnt + off.mount_parent as u64);
            if up == mnt || up == 0 {
                complete = 1;
                break;
            }
            dentry = read_kernel(mnt + off.mount_mountpoint as u64);
            vfsmnt = up + off.mount_mnt as u64;
            root = read_kernel(vfsmnt + off.vfsmount_root as u64);
            continue;
        }
        let name: u64 = read_kernel(dentry + off.dentry_name as u64);
        // Read back through memory so that the mask survives: the
        // compiler knows len < AREA here, the verifier does not.
        // SAFETY: a local.
        let at = (unsafe { core::ptr::read_volatile(&len) } as usize) & (AREA - 1);
        // SAFETY: at < AREA and the area has NAME bytes past it.
        let n = unsafe {
            generated::bpf_probe_read_kernel_str(
                (*s).data.as_mut_ptr().add(at) as *mut c_void,
                NAME as u32,
                name as *const c_void,
            )
        };
        if n <= 0 {
            break;
        }
        len += n as u32;
        if len as usize >= AREA {
            break;
        }
        dentry = parent;
    }
    // SAFETY: this CPU's scratch, owned by this program run.
    unsafe {
        (*s).complete = complete;
    }
    let len = if len as usize > AREA {
        AREA as u32
    } else {
        len
    };
    Some((s as u64, len as u64 + 1))
}
