//! System V shared memory in replay. A segment the recording shows made
//! (`shmget` of `IPC_PRIVATE`, or with `IPC_CREAT | IPC_EXCL`) starts as
//! zeros, and what the recorded processes wrote into it is then all it
//! holds (no process outside the recording knows its id). Each such
//! segment is one file in the replay's directory, mapped shared at the
//! recorded address by every `shmat` of it, so the replayed processes
//! share its pages as the kernel had them share the segment; `shmdt`
//! unmaps it. Replay makes no segment of the kernel's (nothing outside the
//! replay sees it). A segment the recording did not see made (another
//! program's) holds what it was given elsewhere: replay stops at its
//! `shmat` with that reason.
use std::collections::HashMap;

use libc::user_regs_struct;
use tracer_proto as pb;

use super::{Engine, MAP_NORESERVE, Next, PROT_WRITE};
use crate::{ReplayError, report::Outcome};

const IPC_PRIVATE: u64 = 0;
const IPC_CREAT: u64 = 0o1000;
const IPC_EXCL: u64 = 0o2000;
const SHM_RDONLY: u64 = 0o10000;
const SHM_EXEC: u64 = 0o100000;
const PROT_READ: u64 = 1;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 1;
const PAGE: u64 = 4096;

/// A segment as its `shmget` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    pub size: u64,
    /// Made by this `shmget`, so empty at birth and known to no process
    /// outside the recording.
    pub made_here: bool,
}

/// Notes the segment a recorded `shmget(key, size, flags)` returned. The
/// first `shmget` of an id says how it came to be; a later one (of the key
/// again) finds it.
pub(super) fn note_shmget(segments: &mut HashMap<i64, Segment>, args: &[u64; 6], ret: i64) {
    if ret < 0 {
        return;
    }
    let made_here =
        args[0] == IPC_PRIVATE || args[2] & (IPC_CREAT | IPC_EXCL) == IPC_CREAT | IPC_EXCL;
    segments.entry(ret).or_insert(Segment {
        size: args[1],
        made_here,
    });
}

/// The protection `shmat` gives with these flags.
fn protection(shmflg: u64) -> u64 {
    let base = if shmflg & SHM_RDONLY != 0 {
        PROT_READ
    } else {
        PROT_READ | PROT_WRITE
    };
    base | if shmflg & SHM_EXEC != 0 { PROT_EXEC } else { 0 }
}

/// The name the segment's copy is kept under (one per segment id).
fn copy_name(id: i64) -> String {
    format!("System V shared memory segment {id}")
}

impl Engine<'_> {
    /// `shmat(shmid, shmaddr, shmflg)`, recorded as attached at `s.ret`:
    /// the segment's copy is mapped shared there (the recorded address is
    /// the hint, as for mmap), and the program gets the address.
    pub(super) fn attach_shm(
        &mut self,
        regs: user_regs_struct,
        args: &[u64; 6],
        s: &pb::Syscall,
        at: usize,
    ) -> Result<Next, ReplayError> {
        let id = args[0] as i32 as i64;
        let seg = match self.shm_segments.get(&id).copied() {
            Some(seg) if seg.made_here => seg,
            known => {
                let how = if known.is_some() {
                    "made before the recording (its shmget found it)"
                } else {
                    "the recording does not show it made"
                };
                return self.stop_here(
                    Outcome::Incomplete,
                    format!(
                        "shmat of System V segment {id}: {how}, so what it holds is not recorded"
                    ),
                    Some(at),
                    None,
                );
            }
        };
        let len = seg.size.div_ceil(PAGE) * PAGE;
        let prot = protection(args[2]);
        let mut r = regs;
        // A placeholder at the recorded address, the copy mapped over it.
        (r.orig_rax, r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = (
            libc::SYS_mmap as u64,
            s.ret as u64,
            len,
            prot,
            MAP_SHARED | crate::policy::MAP_ANONYMOUS | MAP_NORESERVE,
            u64::MAX,
            0,
        );
        self.t().set_regs(r)?;
        let mut done = self.tm().run_syscall()?;
        let addr = done.rax as i64;
        if (-4095..0).contains(&addr) {
            return self.stop_here(
                Outcome::Diverged,
                format!(
                    "shmat of System V segment {id}: mapping it failed: {}",
                    tracer_format::errno_name(-addr as i32)
                ),
                Some(at),
                None,
            );
        }
        let name = copy_name(id);
        let map_args = [addr as u64, len, prot, MAP_SHARED, 0, 0];
        match self.back_with_file(addr as u64, &map_args, &name, &[], Some(len)) {
            Ok(true) => {}
            Ok(false) => {
                return self.stop_here(
                    Outcome::Incomplete,
                    format!(
                        "shmat of System V segment {id}: its pages cannot be shared here \
                         (no scratch page in the process yet)"
                    ),
                    Some(at),
                    None,
                );
            }
            Err(why) => {
                return self.stop_here(
                    Outcome::Incomplete,
                    format!("shmat of System V segment {id}: {why}"),
                    Some(at),
                    None,
                );
            }
        }
        self.proc_mut().shm_attached.insert(addr as u64, len);
        // The program's registers, with the address attached.
        (
            done.orig_rax,
            done.rdi,
            done.rsi,
            done.rdx,
            done.r10,
            done.r8,
            done.r9,
        ) = (
            regs.orig_rax,
            regs.rdi,
            regs.rsi,
            regs.rdx,
            regs.r10,
            regs.r8,
            regs.r9,
        );
        self.t().set_regs(done)?;
        self.ran_for(s, at)
    }

    /// `shmdt(shmaddr)` of a segment replay attached: unmapped. Of any
    /// other address it is answered as recorded.
    pub(super) fn detach_shm(
        &mut self,
        regs: user_regs_struct,
        args: &[u64; 6],
        s: &pb::Syscall,
        at: usize,
    ) -> Result<Next, ReplayError> {
        let Some(len) = self.proc_mut().shm_attached.remove(&args[0]) else {
            self.emulate(regs, "shmdt", args, s, at)?;
            return Ok(Next::Continue);
        };
        let mut r = regs;
        (r.orig_rax, r.rdi, r.rsi) = (libc::SYS_munmap as u64, args[0], len);
        self.t().set_regs(r)?;
        let mut done = self.tm().run_syscall()?;
        (done.orig_rax, done.rdi, done.rsi, done.rax) =
            (regs.orig_rax, regs.rdi, regs.rsi, s.ret as u64);
        self.t().set_regs(done)?;
        self.ran_for(s, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_segment_the_recording_made_is_known_empty() {
        let mut segs = HashMap::new();
        note_shmget(&mut segs, &[IPC_PRIVATE, 8192, 0o600, 0, 0, 0], 7);
        note_shmget(
            &mut segs,
            &[0x1234, 4096, IPC_CREAT | IPC_EXCL | 0o600, 0, 0, 0],
            8,
        );
        // IPC_CREAT alone may have found another program's segment.
        note_shmget(&mut segs, &[0x5678, 4096, IPC_CREAT | 0o600, 0, 0, 0], 9);
        note_shmget(&mut segs, &[0x9, 4096, 0, 0, 0, 0], -2);
        // The key again: the first shmget said how the segment came to be.
        note_shmget(&mut segs, &[0x1234, 4096, 0o600, 0, 0, 0], 8);
        assert_eq!(
            segs.get(&7),
            Some(&Segment {
                size: 8192,
                made_here: true
            })
        );
        assert_eq!(segs.get(&8).map(|s| s.made_here), Some(true));
        assert_eq!(segs.get(&9).map(|s| s.made_here), Some(false));
        assert_eq!(segs.len(), 3);
        assert_eq!(protection(SHM_RDONLY), PROT_READ);
        assert_eq!(protection(SHM_EXEC), PROT_READ | PROT_WRITE | PROT_EXEC);
    }
}
