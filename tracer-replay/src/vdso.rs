//! Time without the vDSO's help. While recording, the vDSO answered time
//! calls without a syscall, so the recording has no record of them; in
//! replay they must not read the real clock. The replayer overwrites each
//! vDSO time function in the tracee with a stub that makes the real
//! syscall, which the replayer then answers from the recorded timeline.
//! The vDSO stays mapped and announced, so the dynamic loader does what it
//! did when recorded.
use object::{Object, ObjectSegment, ObjectSymbol};

use crate::{ReplayError, tracee::Tracee};

/// vDSO functions and the syscalls that replace them.
const FUNCTIONS: &[(&str, u32)] = &[
    ("__vdso_clock_gettime", libc::SYS_clock_gettime as u32),
    ("__vdso_gettimeofday", libc::SYS_gettimeofday as u32),
    ("__vdso_time", libc::SYS_time as u32),
    ("__vdso_getcpu", libc::SYS_getcpu as u32),
    ("__vdso_clock_getres", libc::SYS_clock_getres as u32),
];

/// `mov $nr, %eax; syscall; ret`
fn stub(nr: u32) -> [u8; 8] {
    let n = nr.to_le_bytes();
    [0xb8, n[0], n[1], n[2], n[3], 0x0f, 0x05, 0xc3]
}

/// The vDSO's address range in the tracee, from its memory map.
fn vdso_range(pid: i32) -> Result<Option<(u64, u64)>, ReplayError> {
    mapping(pid, "[vdso]")
}

/// The address range of the named special mapping (`[vdso]`, `[stack]`).
pub fn mapping(pid: i32, name: &str) -> Result<Option<(u64, u64)>, ReplayError> {
    Ok(crate::layout::maps(pid)?
        .into_iter()
        .find(|m| m.path == name)
        .map(|m| (m.start, m.end)))
}

/// Patches the tracee's vDSO time functions into syscalls. Returns how
/// many it patched (0 when the tracee has no vDSO) and the address of one
/// of the stubs (for injecting syscalls).
pub fn patch(t: &Tracee) -> Result<(usize, Option<u64>), ReplayError> {
    let Some((start, end)) = vdso_range(t.pid.as_raw())? else {
        return Ok((0, None));
    };
    let mut insn = None;
    let image = t.read(start, (end - start) as usize)?;
    let elf = object::File::parse(image.as_slice())
        .map_err(|e| ReplayError::Io(format!("parsing the vDSO: {e}")))?;
    let base_vaddr = elf.segments().map(|s| s.address()).min().unwrap_or(0);
    let mut patched = 0;
    for sym in elf.dynamic_symbols() {
        let Ok(name) = sym.name() else { continue };
        let Some(&(_, nr)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        if sym.size() < 8 {
            continue;
        }
        let at = start + sym.address() - base_vaddr;
        t.write(at, &stub(nr))?;
        insn = Some(at);
        patched += 1;
    }
    Ok((patched, insn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_is_a_syscall() {
        assert_eq!(stub(228), [0xb8, 228, 0, 0, 0, 0x0f, 0x05, 0xc3]);
    }

    #[test]
    fn this_process_has_a_vdso_with_time_functions() {
        let (start, end) = vdso_range(std::process::id() as i32)
            .expect("maps")
            .expect("a vDSO on this machine");
        // SAFETY: the vDSO is mapped readable in this process.
        let image =
            unsafe { std::slice::from_raw_parts(start as *const u8, (end - start) as usize) };
        let elf = object::File::parse(image).expect("vDSO ELF");
        let names: Vec<String> = elf
            .dynamic_symbols()
            .filter_map(|s| s.name().ok().map(str::to_owned))
            .collect();
        assert!(
            names.iter().any(|n| n == "__vdso_clock_gettime"),
            "{names:?}"
        );
    }
}
