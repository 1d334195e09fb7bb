//! The program's image where the recording had it. The replay runs without
//! address randomization, so the kernel loads a position-independent
//! executable and its interpreter (ld.so) at other addresses than the
//! recorded ones; addresses then show in what the program does (the heap
//! and the mappings it places after its image, sizes it trims to an
//! alignment, pointers it passes). At the exec stop, before the first
//! instruction (nothing has run, nothing is relocated yet), each of the
//! two is moved to its recorded base (`mremap`), and the registers and the
//! auxv on the stack say so, as the kernel would have.
use crate::{ReplayError, tracee::Tracee};

const AT_PHDR: u64 = 3;
const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Map {
    pub start: u64,
    pub end: u64,
    /// The file, a special name (`[stack]`, `[vdso]`), or "" for anonymous.
    pub path: String,
}

/// The tracee's mappings, in address order.
pub(crate) fn maps(pid: i32) -> Result<Vec<Map>, ReplayError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| ReplayError::Io(format!("/proc/{pid}/maps: {e}")))?;
    Ok(text.lines().filter_map(parse_map).collect())
}

fn parse_map(line: &str) -> Option<Map> {
    let mut f = line.split_whitespace();
    let (a, b) = f.next()?.split_once('-')?;
    let path = f.nth(4).unwrap_or("").to_owned();
    Some(Map {
        start: u64::from_str_radix(a, 16).ok()?,
        end: u64::from_str_radix(b, 16).ok()?,
        path,
    })
}

/// `(type, value)` pairs of an auxv as words.
fn auxv_get(words: &[u64], ty: u64) -> Option<u64> {
    words
        .chunks_exact(2)
        .take_while(|p| p[0] != 0)
        .find(|p| p[0] == ty)
        .map(|p| p[1])
}

/// The mappings of the file mapped at `addr`, and the anonymous mapping
/// right after them (its bss), in address order.
fn image_at(all: &[Map], addr: u64) -> Vec<Map> {
    let Some(path) = all
        .iter()
        .find(|m| (m.start..m.end).contains(&addr) && !m.path.is_empty())
        .map(|m| m.path.clone())
    else {
        return vec![];
    };
    let mut out: Vec<Map> = vec![];
    for m in all {
        let follows = out
            .last()
            .is_some_and(|l| l.end == m.start && m.path.is_empty());
        if m.path == path || follows {
            out.push(m.clone());
        }
    }
    out
}

/// Moves the executable and the interpreter to the bases `recorded_auxv`
/// gives. Where a recorded range is taken here, or the recording has no
/// auxv, the image stays and a note says so. Returns the auxv as the kernel
/// would now give it (its own copy still names the first place) when
/// something moved.
pub fn place_image(
    t: &mut Tracee,
    insn: u64,
    recorded_auxv: &[u64],
    notes: &mut Vec<String>,
) -> Result<Option<Vec<u8>>, ReplayError> {
    let pid = t.pid.as_raw();
    let raw = std::fs::read(format!("/proc/{pid}/auxv"))
        .map_err(|e| ReplayError::Io(format!("/proc/{pid}/auxv: {e}")))?;
    let now: Vec<u64> = raw
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
        .collect();
    let mut moves = vec![];
    for (ty, what) in [(AT_ENTRY, "executable"), (AT_BASE, "interpreter")] {
        let (Some(cur), Some(rec)) = (auxv_get(&now, ty), auxv_get(recorded_auxv, ty)) else {
            continue;
        };
        if cur == 0 || rec == 0 || cur == rec {
            continue;
        }
        moves.push((ty, what, cur, rec.wrapping_sub(cur)));
    }
    if moves.is_empty() {
        return Ok(None);
    }
    let mut regs = t.regs()?;
    let mut moved = 0;
    let mut auxv = now.clone();
    for (ty, what, cur, delta) in moves {
        let all = maps(pid)?;
        let image = image_at(&all, cur);
        let (Some(lo), Some(hi)) = (image.first().map(|m| m.start), image.last().map(|m| m.end))
        else {
            continue;
        };
        let (to_lo, to_hi) = (lo.wrapping_add(delta), hi.wrapping_add(delta));
        if to_lo % 4096 != 0
            || to_hi < to_lo
            || all.iter().any(|m| m.start < to_hi && to_lo < m.end)
        {
            notes.push(format!(
                "the recorded place of the {what} ({to_lo:#x}) is taken here; it stays at {lo:#x}"
            ));
            continue;
        }
        for m in &image {
            let len = m.end - m.start;
            let got = t.inject(
                insn,
                libc::SYS_mremap,
                [
                    m.start,
                    len,
                    len,
                    MREMAP_MAYMOVE | MREMAP_FIXED,
                    m.start.wrapping_add(delta),
                    0,
                ],
            )?;
            if got as u64 != m.start.wrapping_add(delta) {
                return Err(ReplayError::Ptrace(format!(
                    "moving the {what}'s mapping {:#x}-{:#x} to its recorded place failed ({got})",
                    m.start, m.end
                )));
            }
        }
        if (lo..hi).contains(&regs.rip) {
            regs.rip = regs.rip.wrapping_add(delta);
        }
        let fixed: &[u64] = if ty == AT_ENTRY {
            &[AT_ENTRY, AT_PHDR]
        } else {
            &[AT_BASE]
        };
        set_stack_auxv(t, regs.rsp, fixed, delta)?;
        for p in auxv.chunks_exact_mut(2) {
            if fixed.contains(&p[0]) {
                p[1] = p[1].wrapping_add(delta);
            }
        }
        moved += 1;
    }
    t.set_regs(regs)?;
    Ok((moved > 0).then(|| auxv.iter().flat_map(|w| w.to_le_bytes()).collect()))
}

/// Adds `delta` to the auxv entries of types `types` on the initial stack
/// at `rsp` (argc, argv, NULL, envp, NULL, auxv).
fn set_stack_auxv(t: &Tracee, rsp: u64, types: &[u64], delta: u64) -> Result<(), ReplayError> {
    let argc = t.read_u64(rsp)?;
    let mut at = rsp + 8 * (argc + 2);
    // envp up to its NULL.
    for _ in 0..1_000_000 {
        let v = t.read_u64(at)?;
        at += 8;
        if v == 0 {
            break;
        }
    }
    for _ in 0..128 {
        let ty = t.read_u64(at)?;
        if ty == 0 {
            break;
        }
        if types.contains(&ty) {
            let v = t.read_u64(at + 8)?;
            t.write(at + 8, &v.wrapping_add(delta).to_le_bytes())?;
        }
        at += 16;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_its_file_mappings_and_its_bss() {
        let all: Vec<Map> = [
            "555555554000-555555556000 r--p 00000000 fe:00 12 /usr/bin/cat",
            "555555556000-55555555a000 r-xp 00002000 fe:00 12 /usr/bin/cat",
            "55555555a000-55555555c000 rw-p 00006000 fe:00 12 /usr/bin/cat",
            "55555555c000-55555555d000 rw-p 00000000 00:00 0",
            "55555555d000-55555557e000 rw-p 00000000 00:00 0 [heap]",
            "7ffff7fc3000-7ffff7fc5000 r--p 00000000 fe:00 7 /usr/lib/ld-linux-x86-64.so.2",
            "7ffff7ff0000-7ffff7ff2000 rw-p 00000000 00:00 0",
        ]
        .iter()
        .filter_map(|l| parse_map(l))
        .collect();
        let img = image_at(&all, 0x555555557000);
        assert_eq!(img.len(), 4);
        assert_eq!(img[3].start, 0x55555555c000);
        assert_eq!(image_at(&all, 0x7ffff7fc3000).len(), 1);
        assert!(image_at(&all, 0x1000).is_empty());
        let auxv = [AT_PHDR, 0x40, AT_ENTRY, 0x1234, 0, 0, AT_BASE, 9];
        assert_eq!(auxv_get(&auxv, AT_ENTRY), Some(0x1234));
        assert_eq!(auxv_get(&auxv, AT_BASE), None, "after AT_NULL");
    }
}
