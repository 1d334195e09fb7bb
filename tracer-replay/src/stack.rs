//! The initial stack at its recorded address. Programs look for their own
//! stack in `/proc/self/maps` (glibc's `pthread_getattr_np`, Rust's stack
//! guard): the replay answers those reads with the recorded map, so the
//! stack must be where the recording says it was. Before the program's
//! first instruction, its initial stack (argc, argv, envp, auxv and the
//! strings) is copied to the recorded place, its pointers moved with it.
use crate::{ReplayError, tracee::Tracee, vdso};

/// Room below the relocated stack (the default RLIMIT_STACK).
const STACK_BYTES: u64 = 8 << 20;
const PAGE: u64 = 4096;
/// auxv entries that point into the stack: AT_PLATFORM, AT_BASE_PLATFORM,
/// AT_RANDOM, AT_EXECFN.
const STACK_POINTERS: [u64; 4] = [15, 24, 25, 31];
pub(crate) const PROT_RW: u64 = 0x3;
pub(crate) const MAP_PRIVATE_ANON_FIXED_NOREPLACE: u64 = 0x2 | 0x20 | 0x100000;

pub fn relocate(
    t: &mut Tracee,
    insn: u64,
    recorded_arg_start: u64,
    notes: &mut Vec<String>,
) -> Result<(), ReplayError> {
    let Some((_, stack_end)) = vdso::mapping(t.pid.as_raw(), "[stack]")? else {
        return Ok(());
    };
    let mut regs = t.regs()?;
    let rsp = regs.rsp;
    let arg_start = t.read_u64(rsp + 8)?;
    let new_rsp = recorded_arg_start.wrapping_sub(arg_start - rsp) & !0xf;
    let delta = new_rsp.wrapping_sub(rsp);
    if delta == 0 {
        return Ok(());
    }
    let mut image = t.read(rsp, (stack_end - rsp) as usize)?;
    let word = |img: &[u8], at: usize| {
        img.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let in_stack = |v: u64| v >= rsp && v < stack_end;
    let mut at = 8;
    // argv, then envp: NULL-terminated pointer arrays.
    for _ in 0..2 {
        while let Some(v) = word(&image, at) {
            at += 8;
            if v == 0 {
                break;
            }
            if in_stack(v) {
                image[at - 8..at].copy_from_slice(&v.wrapping_add(delta).to_le_bytes());
            }
        }
    }
    while let (Some(ty), Some(v)) = (word(&image, at), word(&image, at + 8)) {
        if ty == 0 {
            break;
        }
        if STACK_POINTERS.contains(&ty) && in_stack(v) {
            image[at + 8..at + 16].copy_from_slice(&v.wrapping_add(delta).to_le_bytes());
        }
        at += 16;
    }
    let top = (new_rsp + image.len() as u64).div_ceil(PAGE) * PAGE;
    let base = top - STACK_BYTES;
    let got = t.inject(
        insn,
        libc::SYS_mmap,
        [
            base,
            STACK_BYTES,
            PROT_RW,
            MAP_PRIVATE_ANON_FIXED_NOREPLACE,
            u64::MAX,
            0,
        ],
    )?;
    if got as u64 != base {
        notes.push(format!(
            "the recorded stack address {new_rsp:#x} is taken here ({got:#x}); the stack stays at {rsp:#x}"
        ));
        return Ok(());
    }
    t.write(new_rsp, &image)?;
    regs.rsp = new_rsp;
    t.set_regs(regs)?;
    Ok(())
}
