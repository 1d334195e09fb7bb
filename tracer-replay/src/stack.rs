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

/// `AT_RANDOM`: the 16 random bytes, the lowest thing the kernel puts
/// above the stack's pointer arrays.
const AT_RANDOM: u64 = 25;
/// `AT_EXECFN`: the program's name, among the strings at the top.
const AT_EXECFN: u64 = 31;

/// Moves the initial stack so that both of its parts are where the
/// recording had them. The kernel lays it out in two parts with a random
/// gap between them (up to 8 KiB, `arch_align_stack`): at the top the
/// argument and environment strings (from `arg_start`), below the gap the
/// platform strings, the random bytes (`AT_RANDOM`) and then auxv, envp,
/// argv and argc, where the stack pointer starts. A replay without ASLR
/// has no gap, so moving the whole stack by one offset puts either the
/// strings or the stack pointer elsewhere than recorded, and programs that
/// take an address on their stack as entropy (glibc's `mkstemp`) or print
/// it behave otherwise. Each part moves by its own offset, the gap between
/// them is zeros, and each pointer moves with the part it points into.
pub fn relocate(
    t: &mut Tracee,
    insn: u64,
    recorded_arg_start: u64,
    recorded_auxv: &[u64],
    notes: &mut Vec<String>,
) -> Result<(), ReplayError> {
    let Some((_, stack_end)) = vdso::mapping(t.pid.as_raw(), "[stack]")? else {
        return Ok(());
    };
    let mut regs = t.regs()?;
    let rsp = regs.rsp;
    let arg_start = t.read_u64(rsp + 8)?;
    let high = recorded_arg_start.wrapping_sub(arg_start);
    let image = t.read(rsp, (stack_end - rsp) as usize)?;
    let word = |img: &[u8], at: usize| {
        img.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    // The argv and envp pointers (their offsets), then auxv's entries
    // (offset of the value, type, value).
    let mut pointers = Vec::new();
    let mut at = 8;
    for _ in 0..2 {
        while let Some(v) = word(&image, at) {
            at += 8;
            if v == 0 {
                break;
            }
            pointers.push((at - 8, v));
        }
    }
    let mut auxv = Vec::new();
    while let (Some(ty), Some(v)) = (word(&image, at), word(&image, at + 8)) {
        if ty == 0 {
            break;
        }
        auxv.push((at + 8, ty, v));
        at += 16;
    }
    let aux = |want: u64| auxv.iter().find(|e| e.1 == want).map(|e| e.2);
    let recorded_random = recorded_auxv
        .chunks_exact(2)
        .find(|kv| kv[0] == AT_RANDOM)
        .map(|kv| kv[1]);
    // The lower part's offset; the whole stack's when the two cannot be
    // told apart (then the stack pointer is the strings' offset away).
    let low = match (recorded_random, aux(AT_RANDOM)) {
        (Some(r), Some(here)) if r.wrapping_sub(here) <= high && here < arg_start => {
            r.wrapping_sub(here)
        }
        _ => high,
    };
    let new_rsp = rsp.wrapping_add(low);
    if new_rsp & 0xf != 0 || (low == 0 && high == 0) {
        return Ok(());
    }
    let in_low = |v: u64| v >= rsp && v < arg_start;
    let in_high = |v: u64| v >= arg_start && v < stack_end;
    let moved = |v: u64| {
        if in_low(v) {
            v.wrapping_add(low)
        } else if in_high(v) {
            v.wrapping_add(high)
        } else {
            v
        }
    };
    // The new image, from the new stack pointer to the top: the lower part,
    // the gap (zeros), the strings.
    let split = (arg_start - rsp) as usize;
    let gap = (high - low) as usize;
    let mut out = Vec::with_capacity(image.len() + gap);
    out.extend_from_slice(&image[..split]);
    out.resize(split + gap, 0);
    out.extend_from_slice(&image[split..]);
    let put = |out: &mut Vec<u8>, at: usize, v: u64| {
        out[at..at + 8].copy_from_slice(&v.to_le_bytes());
    };
    for &(at, v) in &pointers {
        put(&mut out, at, moved(v));
    }
    for &(at, ty, v) in &auxv {
        if STACK_POINTERS.contains(&ty) || ty == AT_EXECFN {
            put(&mut out, at, moved(v));
        }
    }
    let top = (new_rsp + out.len() as u64).div_ceil(PAGE) * PAGE;
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
    t.write(new_rsp, &out)?;
    regs.rsp = new_rsp;
    t.set_regs(regs)?;
    Ok(())
}
