//! The vDSO's time functions, made syscalls. The vDSO answers time reads in
//! user space, where no syscall tracepoint sees them; overwriting the start
//! of each time function with `mov $nr, %eax; syscall; ret` makes every
//! read a real syscall with the same arguments and result. The recorder
//! does this to a recorded process right after its exec (exact time); the
//! replayer to the replayed one, and answers those syscalls from the
//! recording.
use std::{string::String, vec::Vec};

use object::{Object, ObjectSegment, ObjectSymbol};

/// vDSO functions and the syscalls that replace them (x86_64).
pub const FUNCTIONS: &[(&str, u32)] = &[
    ("__vdso_clock_gettime", 228),
    ("__vdso_gettimeofday", 96),
    ("__vdso_time", 201),
    ("__vdso_getcpu", 309),
    ("__vdso_clock_getres", 229),
];

/// `mov $nr, %eax; syscall; ret`
pub fn stub(nr: u32) -> [u8; 8] {
    let n = nr.to_le_bytes();
    [0xb8, n[0], n[1], n[2], n[3], 0x0f, 0x05, 0xc3]
}

/// One write that turns a time function into its syscall: at `offset`
/// from the start of the vDSO mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: [u8; 8],
}

/// The patches for a vDSO image (its mapping's bytes): one per time
/// function it exports (functions shorter than the stub are left).
pub fn patches(image: &[u8]) -> Result<Vec<Patch>, String> {
    let elf = object::File::parse(image).map_err(|e| std::format!("parsing the vDSO: {e}"))?;
    // The stubs are x86_64 syscalls: a 32-bit process's vDSO (ia32, x32)
    // is left alone.
    if elf.architecture() != object::Architecture::X86_64 || !elf.is_64() {
        return Err("not an x86_64 vDSO".into());
    }
    let base = elf.segments().map(|s| s.address()).min().unwrap_or(0);
    let mut out = Vec::new();
    for sym in elf.dynamic_symbols() {
        let Ok(name) = sym.name() else { continue };
        let Some(&(_, nr)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        if sym.size() < 8 {
            continue;
        }
        let offset = sym.address() - base;
        if offset as usize + 8 > image.len() {
            return Err(std::format!("{name} lies outside the vDSO image"));
        }
        out.push(Patch {
            offset,
            bytes: stub(nr),
        });
    }
    Ok(out)
}

/// `image` with `patches` applied: what a patched vDSO reads as.
pub fn apply(image: &[u8], patches: &[Patch]) -> Vec<u8> {
    let mut v = image.to_vec();
    for p in patches {
        let at = p.offset as usize;
        v[at..at + 8].copy_from_slice(&p.bytes);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_is_a_syscall() {
        assert_eq!(stub(228), [0xb8, 228, 0, 0, 0, 0x0f, 0x05, 0xc3]);
    }

    /// This process's own vDSO, from its memory map.
    fn own_vdso() -> &'static [u8] {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let line = maps
            .lines()
            .find(|l| l.ends_with("[vdso]"))
            .expect("a vDSO on this machine");
        let range = line.split_whitespace().next().expect("range");
        let (a, b) = range.split_once('-').expect("range");
        let start = u64::from_str_radix(a, 16).expect("hex");
        let end = u64::from_str_radix(b, 16).expect("hex");
        // SAFETY: the vDSO is mapped readable for the life of the process.
        unsafe { std::slice::from_raw_parts(start as *const u8, (end - start) as usize) }
    }

    #[test]
    fn this_machines_vdso_has_its_time_functions_patched() {
        let image = own_vdso();
        let p = patches(image).expect("patches");
        assert!(p.len() >= 4, "{p:?}");
        assert!(p.iter().any(|x| x.bytes == stub(228)));
        let patched = apply(image, &p);
        assert_ne!(patched, image);
        // Patching twice changes nothing more.
        assert_eq!(apply(&patched, &p), patched);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(patches(b"not an ELF").is_err());
        assert!(patches(&[]).is_err());
    }
}
