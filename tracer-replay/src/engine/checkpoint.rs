//! Checkpoints under a debugger: stopped forks of the program at syscall
//! boundaries, with what the replayer knew there; going back forks the
//! nearest one again, so it is never used up.
use std::collections::HashMap;

use libc::user_regs_struct;
use nix::sys::signal::Signal;

use super::{Engine, Proc, TaskState};
use crate::{ReplayError, report::Report, tracee::Tracee};

/// A stopped fork of the program at a syscall boundary (before its
/// syscall is handled), with what the replayer knew there. Going back to
/// it forks it again, so it can be gone back to any number of times.
pub(super) struct Checkpoint {
    proc: Tracee,
    /// The registers at that syscall stop.
    regs: user_regs_struct,
    stub: u64,
    saved: Saved,
}

/// The replayer's side of a checkpoint.
#[derive(Clone)]
struct Saved {
    pos: usize,
    pending_signals: Vec<Signal>,
    done: Vec<bool>,
    replayed: usize,
    frontier: usize,
    procs: HashMap<u32, Proc>,
    report: Report,
    timeline_ns: u64,
    kernel_copies: u64,
    execs: usize,
    children: Vec<i64>,
    exe_file: std::path::PathBuf,
}

/// Most checkpoints kept (each a stopped process).
const MAX_CHECKPOINTS: usize = 256;

impl Engine<'_> {
    /// At a syscall stop under a debugger: a checkpoint, when the last one
    /// is far enough behind.
    pub(super) fn maybe_checkpoint(&mut self) -> Result<(), ReplayError> {
        let every = self.opts.checkpoint_every;
        let Some(stub) = self.stub else {
            return Ok(());
        };
        let pos = self.pos();
        let due = match self.checkpoints.last() {
            None => true,
            Some(c) => pos >= c.saved.pos + every,
        };
        if !self.debugger || every == 0 || !due || self.rec.is_multi() {
            return Ok(());
        }
        let regs = self.t().regs()?;
        // Only at a recorded syscall: a time call the vDSO answered is in
        // the middle of the program's code before it, not a boundary.
        if self
            .peek_syscall()
            .is_none_or(|(at, s)| at != pos || s.nr != regs.orig_rax as i64)
        {
            return Ok(());
        }
        let proc = self.tm().fork_at_syscall(stub)?;
        // Kept without the debugger's int3s: they go in as it goes back.
        for (&addr, &orig) in &self.int3s {
            proc.write(addr, &[orig])?;
        }
        let saved = self.save();
        self.travel.checkpoints += 1;
        self.checkpoints.push(Checkpoint {
            proc,
            regs,
            stub,
            saved,
        });
        if self.checkpoints.len() > MAX_CHECKPOINTS {
            // Every other one goes (not the first): the program's history
            // stays covered, more sparsely the further back it is.
            let mut k = 0;
            self.checkpoints.retain(|_| {
                k += 1;
                k == 1 || k % 2 == 0
            });
        }
        Ok(())
    }

    fn save(&self) -> Saved {
        Saved {
            pos: self.pos(),
            pending_signals: self.task().pending_signals.clone(),
            done: self.done.clone(),
            replayed: self.replayed,
            frontier: self.frontier,
            procs: self.procs.clone(),
            report: self.report.clone(),
            timeline_ns: self.timeline_ns,
            kernel_copies: self.kernel_copies,
            execs: self.execs,
            children: self.children.clone(),
            exe_file: self.exe_file.clone(),
        }
    }

    /// A new run of the same replay takes over this one's checkpoints and
    /// breakpoints.
    pub(crate) fn hand_over(&mut self, to: &mut Engine<'_>) {
        to.checkpoints = std::mem::take(&mut self.checkpoints);
        to.int3s = std::mem::take(&mut self.int3s);
        to.travel = self.travel;
        to.travel.restarts += 1;
    }

    /// The position of the latest checkpoint at or before event `n`.
    pub(crate) fn checkpoint_before(&self, n: usize) -> Option<usize> {
        self.checkpoints
            .iter()
            .rev()
            .map(|c| c.saved.pos)
            .find(|&p| p <= n)
    }

    /// Goes back to the latest checkpoint at or before event `n`: the
    /// program as it was there (a fresh fork of the checkpoint, with the
    /// debugger's int3s, which the debugger puts back), stopped at that
    /// syscall, not handled yet. False
    /// when there is none.
    pub(crate) fn restore_before(&mut self, n: usize) -> Result<bool, ReplayError> {
        let Some(i) = self.checkpoints.iter().rposition(|c| c.saved.pos <= n) else {
            return Ok(false);
        };
        // Later checkpoints stay: they are the same future.
        let c = &mut self.checkpoints[i];
        let stub = c.stub;
        let mut fresh = c.proc.fork_via(stub)?;
        let regs = c.regs;
        let saved = c.saved.clone();
        fresh.restart_syscall(&regs)?;
        // The present is dropped (killed) for the checkpoint's copy.
        self.task_mut().t = Some(fresh);
        self.task_mut().pos = saved.pos;
        self.task_mut().pending_signals = saved.pending_signals;
        self.task_mut().state = TaskState::Running;
        self.done = saved.done;
        self.replayed = saved.replayed;
        self.frontier = saved.frontier;
        self.procs = saved.procs;
        self.report = saved.report;
        self.timeline_ns = saved.timeline_ns;
        self.kernel_copies = saved.kernel_copies;
        self.execs = saved.execs;
        self.children = saved.children;
        self.exe_file = saved.exe_file;
        self.stub = Some(stub);
        self.travel.restores += 1;
        self.pending_syscall = true;
        self.ended = None;
        self.goto = None;
        Ok(true)
    }
}
