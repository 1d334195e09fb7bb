//! Checkpoints under a debugger: stopped forks of the program at syscall
//! boundaries, with what the replayer knew there; going back forks the
//! nearest one again, so it is never used up.
//!
//! A fork copies one thread, the one at hand. The others are kept as
//! images (registers, FPU and vector state, signal mask, clear-tid word,
//! and where they stood: before a syscall or after one) and made again
//! in each copy with `clone`, as rr does. Their ids change; the program
//! never sees real ids (the replay answers with the recorded ones).
//! Not carried over: robust futex lists, rseq registration and alternate
//! signal stacks of the threads made again.
use std::collections::HashMap;

use libc::user_regs_struct;
use nix::sys::signal::Signal;

use super::{Engine, Proc, Task, TaskState};
use crate::{ReplayError, report::Outcome, report::Report, tracee::Tracee};

/// A stopped fork of the program at a syscall boundary (before its
/// syscall is handled), with what the replayer knew there. Going back to
/// it forks it again, so it can be gone back to any number of times.
pub(super) struct Checkpoint {
    /// A copy of the thread at hand, the process's only thread.
    proc: Tracee,
    /// The registers at that syscall stop.
    regs: user_regs_struct,
    stub: u64,
    /// The process's other threads, made again in each copy.
    threads: Vec<ThreadImage>,
    saved: Saved,
}

/// A thread of a checkpoint other than the one forked.
struct ThreadImage {
    /// Its index among the tasks.
    task: usize,
    regs: user_regs_struct,
    xstate: Vec<u8>,
    sigmask: u64,
    /// Stopped before a syscall not made yet (made again in a copy), not
    /// after one.
    at_syscall: bool,
}

/// A task as the replayer knew it (its tracee aside).
#[derive(Clone)]
struct TaskImage {
    rtid: u32,
    rpid: u32,
    pos: usize,
    pending_signals: Vec<Signal>,
    sigsys: Option<super::SeccompTrap>,
    state: TaskState,
    sig: Option<Signal>,
    yielded: Option<u64>,
    retried: bool,
    held_seq: u64,
}

impl TaskImage {
    fn of(t: &Task) -> Self {
        Self {
            rtid: t.rtid,
            rpid: t.rpid,
            pos: t.pos,
            pending_signals: t.pending_signals.clone(),
            sigsys: t.sigsys,
            state: t.state,
            sig: t.sig,
            yielded: t.yielded,
            retried: t.retried,
            held_seq: t.held_seq,
        }
    }

    fn task(&self) -> Task {
        Task {
            rtid: self.rtid,
            rpid: self.rpid,
            t: None,
            pos: self.pos,
            pending_signals: self.pending_signals.clone(),
            sigsys: self.sigsys,
            state: self.state,
            sig: self.sig,
            yielded: self.yielded,
            retried: self.retried,
            held_seq: self.held_seq,
        }
    }
}

/// The replayer's side of a checkpoint.
#[derive(Clone)]
struct Saved {
    /// The replay's position there ([`Engine::position`]).
    position: usize,
    cur: usize,
    tasks: Vec<TaskImage>,
    by_rtid: HashMap<u32, usize>,
    done: Vec<bool>,
    replayed: usize,
    frontier: usize,
    handled: u64,
    root_outcome: Option<Outcome>,
    tid_addrs: HashMap<u32, u64>,
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
    /// is far enough behind and the replay is one process whose other
    /// threads are all stopped.
    pub(super) fn maybe_checkpoint(&mut self) -> Result<(), ReplayError> {
        let every = self.opts.checkpoint_every;
        let Some(stub) = self.stub else {
            return Ok(());
        };
        let position = self.position();
        let due = match self.checkpoints.last() {
            None => true,
            Some(c) => position >= c.saved.position + every,
        };
        if !self.debugger || every == 0 || !due || !self.one_stopped_process() {
            return Ok(());
        }
        let regs = self.t().regs()?;
        // Only at a recorded syscall: a time call the vDSO answered is in
        // the middle of the program's code before it, not a boundary.
        let pos = self.pos();
        if self
            .peek_syscall()
            .is_none_or(|(at, s)| at != pos || s.nr != regs.orig_rax as i64)
        {
            return Ok(());
        }
        let mut threads = Vec::new();
        for (i, task) in self.tasks.iter().enumerate() {
            let Some(t) = task.t.as_ref().filter(|_| i != self.cur) else {
                continue;
            };
            if task.state == TaskState::Gone {
                continue;
            }
            threads.push(ThreadImage {
                task: i,
                regs: t.regs()?,
                xstate: t.xstate()?,
                sigmask: t.sigmask()?,
                at_syscall: matches!(task.state, TaskState::AtStop | TaskState::Parked(_)),
            });
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
            threads,
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

    /// Every live task is a thread of the recorded process, and all but
    /// the one at hand are stopped where the scheduler keeps them (a
    /// checkpoint of child processes would need a fork of each).
    fn one_stopped_process(&self) -> bool {
        self.early.is_empty()
            && self.tasks.iter().enumerate().all(|(i, t)| match t.state {
                TaskState::Gone => true,
                TaskState::Running | TaskState::Starting | TaskState::Halted => i == self.cur,
                TaskState::AtStop | TaskState::Parked(_) | TaskState::Held(_) => {
                    t.rpid == self.rec.pid && t.t.is_some()
                }
            })
            && self.task().rpid == self.rec.pid
    }

    fn save(&self) -> Saved {
        Saved {
            position: self.position(),
            cur: self.cur,
            tasks: self.tasks.iter().map(TaskImage::of).collect(),
            by_rtid: self.by_rtid.clone(),
            done: self.done.clone(),
            replayed: self.replayed,
            frontier: self.frontier,
            handled: self.handled,
            root_outcome: self.root_outcome.clone(),
            tid_addrs: self.tid_addrs.clone(),
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
            .map(|c| c.saved.position)
            .find(|&p| p <= n)
    }

    /// Goes back to the latest checkpoint at or before event `n`: the
    /// program as it was there (a fresh fork of the checkpoint, its other
    /// threads made again, with the debugger's int3s, which the debugger
    /// puts back), the thread at hand stopped at that syscall, not handled
    /// yet. False when there is none.
    pub(crate) fn restore_before(&mut self, n: usize) -> Result<bool, ReplayError> {
        let Some(i) = self.checkpoints.iter().rposition(|c| c.saved.position <= n) else {
            return Ok(false);
        };
        // The present goes; later checkpoints stay: they are the same
        // future.
        self.end_all();
        let c = &mut self.checkpoints[i];
        let stub = c.stub;
        let saved = c.saved.clone();
        let mut fresh = c.proc.fork_via(stub)?;
        let mut made = Vec::new();
        for th in &c.threads {
            let rtid = saved.tasks[th.task].rtid;
            let clear_tid = saved.tid_addrs.get(&rtid).copied().unwrap_or(0);
            let mut t = fresh.clone_thread_via(stub, clear_tid)?;
            t.set_xstate(&th.xstate)?;
            t.set_sigmask(th.sigmask)?;
            if th.at_syscall {
                t.restart_syscall(&th.regs)?;
            } else {
                // After its syscall: it returns to the program as it did.
                let mut regs = th.regs;
                regs.orig_rax = u64::MAX;
                t.set_regs(regs)?;
            }
            made.push((th.task, t));
        }
        // A fork does not keep the forking thread's clear-tid word.
        if let Some(&word) = saved.tid_addrs.get(&saved.tasks[saved.cur].rtid) {
            fresh.inject(stub, libc::SYS_set_tid_address, [word, 0, 0, 0, 0, 0])?;
        }
        let regs = c.regs;
        fresh.restart_syscall(&regs)?;
        let made_count = made.len() as u64;
        self.tasks = saved.tasks.iter().map(TaskImage::task).collect();
        self.tasks[saved.cur].t = Some(fresh);
        for (k, t) in made {
            self.tasks[k].t = Some(t);
        }
        self.cur = saved.cur;
        self.task_mut().state = TaskState::Running;
        self.by_rtid = saved.by_rtid;
        self.done = saved.done;
        self.replayed = saved.replayed;
        self.frontier = saved.frontier;
        self.handled = saved.handled;
        self.root_outcome = saved.root_outcome;
        self.tid_addrs = saved.tid_addrs;
        self.procs = saved.procs;
        self.report = saved.report;
        self.timeline_ns = saved.timeline_ns;
        self.kernel_copies = saved.kernel_copies;
        self.execs = saved.execs;
        self.children = saved.children;
        self.exe_file = saved.exe_file;
        self.stub = Some(stub);
        self.travel.restores += 1;
        self.travel.threads_remade += made_count;
        self.early.clear();
        self.pending_syscall = true;
        self.pending_forced = false;
        self.passing = false;
        self.interrupt_asked = false;
        self.interrupting = None;
        self.ended = None;
        self.goto = None;
        Ok(true)
    }
}
