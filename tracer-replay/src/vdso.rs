//! Time without the vDSO's help: in replay, time calls must not read the
//! real clock. The replayer overwrites each vDSO time function in the
//! tracee with a stub that makes the real syscall (the stubs the recorder
//! puts in, `tracer_common::vdso`), which the replayer then answers from
//! the recording: the recorded time syscall where the recorder patched the
//! program too (exact time), else the recorded timeline. The vDSO stays
//! mapped and announced, so the dynamic loader does what it did when
//! recorded.
use tracer_common::vdso::patches;

use crate::{ReplayError, tracee::Tracee};

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
    let image = t.read(start, (end - start) as usize)?;
    let patches = patches(&image).map_err(ReplayError::Io)?;
    for p in &patches {
        t.write(start + p.offset, &p.bytes)?;
    }
    Ok((patches.len(), patches.last().map(|p| start + p.offset)))
}
