//! Replaying several tasks (threads, child processes): they run one at a
//! time, from a syscall to their next one, and their syscalls are answered
//! in the recorded order; clones and forks the recording has the new task
//! of run for real; futex calls the user-space interleaving changed are
//! skipped or answered; a watchdog bounds every wait.
use std::collections::HashMap;

use libc::user_regs_struct;
use nix::{
    sys::{signal::Signal, wait::WaitStatus},
    unistd::Pid,
};
use tracer_common::effects;
use tracer_proto as pb;

use super::{Engine, Halt, Next, Task, TaskState, args_of, same_time_call};
use crate::{
    ReplayError, policy,
    recording::Recording,
    report::{Divergence, Outcome},
    tracee::{Stop, Tracee, wait_any},
};

const WATCHDOG_DEFAULT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the scheduler waits for the task that is due before it lets
/// a held task run early (a task may wait in user space on one that
/// replay holds back).
pub(super) const HELD_PATIENCE: std::time::Duration = std::time::Duration::from_millis(50);

/// How often a debugger's Ctrl-C is looked for while tasks compute.
const INTERRUPT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

pub(super) const CLONE_VM: u64 = 0x100;

pub(super) const CLONE_VFORK: u64 = 0x4000;

pub(super) const CLONE_THREAD: u64 = 0x10000;

pub(super) const CLONE_PARENT_SETTID: u64 = 0x0010_0000;

pub(super) const CLONE_CHILD_SETTID: u64 = 0x0100_0000;

pub(super) const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;

pub(super) const NR_FORK: u64 = 57;

pub(super) const NR_FUTEX: i64 = 202;
pub(super) const NR_EXIT: i64 = 60;

pub(super) const EAGAIN: i64 = 11;

/// The recorded clone that makes each task, by the task's recorded tid.
pub(super) fn creators(rec: &Recording) -> HashMap<u32, usize> {
    rec.events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.kind {
            Some(pb::event::Kind::Syscall(s))
                if s.ret > 0
                    && matches!(
                        effects::name(s.nr),
                        Some("clone" | "clone3" | "fork" | "vfork")
                    ) =>
            {
                Some((s.ret as u32, i))
            }
            _ => None,
        })
        .collect()
}

/// The recorded syscall ended with a restart code and was not restarted:
/// the thread's end (its group's exit, a fatal signal) cut it short.
fn cut_short(s: &pb::Syscall) -> bool {
    crate::tracee::RESTART_CODES.contains(&s.ret)
}

/// The recorded syscall is the futex call (or other syscall) made now:
/// the same operation (the word's address and value are the threads' own).
fn same_futex(s: &pb::Syscall, nr: i64, args: &[u64; 6]) -> bool {
    s.nr == nr && (nr != NR_FUTEX || s.args.get(1) == Some(&args[1]))
}

/// A recorded futex wait (FUTEX_WAIT, FUTEX_WAIT_BITSET).
fn futex_is_wait(s: &pb::Syscall) -> bool {
    matches!(s.args.get(1).map(|op| op & 0x7f), Some(0 | 9))
}

/// A recorded futex call that only waited or woke (no memory changed).
fn futex_without_effect(s: &pb::Syscall) -> bool {
    // FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET.
    s.nr == NR_FUTEX && matches!(s.args.get(1).map(|op| op & 0x7f), Some(0 | 1 | 9 | 10))
}

impl Engine<'_> {
    /// Every task's stops, in the order the recording sets, until the
    /// replay ends or (under a debugger) must halt. One task runs at a
    /// time, from a syscall to its next one, so that what the threads do
    /// in user space between their syscalls interleaves at syscall
    /// granularity as it did when recorded. `interrupted` is asked before
    /// each wait (a debugger's Ctrl-C halts at the next syscall answered).
    pub(super) fn run(
        &mut self,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Halt, ReplayError> {
        loop {
            if self.tasks.iter().all(|t| t.state == TaskState::Gone) {
                return Ok(Halt::End(
                    self.root_outcome.clone().unwrap_or(Outcome::Incomplete),
                ));
            }
            // A new task's first stop is waited for too: what runs next
            // must not depend on when it comes.
            let running = self
                .tasks
                .iter()
                .any(|t| matches!(t.state, TaskState::Running | TaskState::Starting));
            if !running {
                // A task whose syscall is done runs on to its next one
                // before the next recorded syscall is answered.
                if let Some(i) = self.next_to_release() {
                    if let Some(word) = self.tasks[i].yielded
                        && let Some(j) = self.out_of_turn(word)
                    {
                        // The due thread waits in user space (a lock) on one
                        // stopped at a syscall whose turn has not come: that
                        // one goes first, out of the recorded order.
                        // Once: then the yielded thread tries again (the
                        // lock may be free now).
                        self.tasks[i].yielded = None;
                        if !self.tasks[i].retried && self.at_own_next_syscall(j)? {
                            // That one is at a syscall of its own recording,
                            // not releasing a lock: the lock may be free
                            // already, and making that syscall now (a write
                            // out) would change the recorded order for
                            // nothing. The yielded thread tries once more
                            // first.
                            self.tasks[i].retried = true;
                            let r = self.release(i).map(|()| Next::Continue);
                            self.unless_gone(i, r)?;
                            continue;
                        }
                        let next = self.dispatch(j, true);
                        if let Some(next) = self.unless_gone(j, next)?
                            && let Some(h) = self.halt_of(next)
                        {
                            return Ok(h);
                        }
                        continue;
                    }
                    let r = self.release(i).map(|()| Next::Continue);
                    self.unless_gone(i, r)?;
                    continue;
                }
                if let Some(i) = (0..self.tasks.len()).find(|&i| {
                    matches!(
                        self.tasks[i].state,
                        TaskState::AtStop | TaskState::Parked(_)
                    ) && self.is_due(i)
                }) {
                    let next = self.dispatch(i, false);
                    if let Some(next) = self.unless_gone(i, next)?
                        && let Some(h) = self.halt_of(next)
                    {
                        return Ok(h);
                    }
                    continue;
                }
            }
            // One task alone is never waited on by another: however long it
            // computes, it is not stalled.
            let watchdog = if self.rec.is_multi() {
                self.opts.watchdog.unwrap_or(WATCHDOG_DEFAULT)
            } else {
                std::time::Duration::from_secs(86_400 * 365)
            };
            // Stops that come without an event replayed (a thread that
            // spins on futex calls the recording does not have) count as
            // no progress.
            if self.progress.elapsed() >= watchdog {
                return Ok(Halt::End(self.stalled(watchdog)));
            }
            if self.debugger && interrupted() {
                self.interrupt_asked = true;
            }
            let held = !running
                && self
                    .tasks
                    .iter()
                    .any(|t| matches!(t.state, TaskState::Held(_)));
            let mut patience = if held { HELD_PATIENCE } else { watchdog };
            if self.debugger {
                // A debugger's Ctrl-C is looked for while a task computes.
                patience = patience.min(INTERRUPT_POLL);
            }
            let Some(status) = wait_any(patience)? else {
                if self.interrupt_asked && self.interrupting.is_none() {
                    // The running task has made no syscall to halt at: it
                    // is stopped where it is.
                    if let Some(i) = self
                        .tasks
                        .iter()
                        .position(|t| t.state == TaskState::Running)
                        && let Some(t) = &self.tasks[i].t
                    {
                        t.kill(Signal::SIGSTOP)?;
                        self.interrupting = Some(i);
                    }
                }
                if held {
                    self.release_earliest()?;
                } else if self.progress.elapsed() >= watchdog {
                    return Ok(Halt::End(self.stalled(watchdog)));
                }
                continue;
            };
            let Some(pid) = status.pid() else { continue };
            let Some(i) = self.tasks.iter().position(|t| {
                t.state != TaskState::Gone && t.t.as_ref().is_some_and(|t| t.pid == pid)
            }) else {
                // A new task before its clone returned: kept for then.
                self.early.insert(pid, status);
                continue;
            };
            let next = self.on_task_stop(i, status);
            if let Some(next) = self.unless_gone(i, next)?
                && let Some(h) = self.halt_of(next)
            {
                return Ok(h);
            }
        }
    }

    /// A task that vanished under a ptrace request (ESRCH: another thread's
    /// `exit_group` or a fatal signal is taking it) is waited for like a
    /// running one: its end comes as a wait status, and is then checked
    /// against its recording. `None` then; any other error stays one.
    fn unless_gone(
        &mut self,
        i: usize,
        r: Result<Next, ReplayError>,
    ) -> Result<Option<Next>, ReplayError> {
        match r {
            Err(ReplayError::Ptrace(m)) if m.contains("ESRCH") => {
                tracing::debug!("task {} went while replayed: {m}", self.tasks[i].rtid);
                self.tasks[i].state = TaskState::Running;
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Where the loop stops for `next`, if it does. A task that stopped
    /// for the debugger (a trap, a step) is halted: it goes on as it was
    /// when the debugger resumes it.
    pub(super) fn halt_of(&mut self, next: Next) -> Option<Halt> {
        match next {
            Next::Continue => None,
            Next::Done(o) => Some(Halt::End(o)),
            Next::Halt(h) => {
                if matches!(h, Halt::Trap | Halt::Step) {
                    self.task_mut().state = TaskState::Halted;
                }
                Some(h)
            }
        }
    }

    /// Task `i`, at a syscall stop whose turn has come (or at a time call
    /// the recording does not have), makes its syscall; `forced` when it
    /// goes out of turn (the due one waits on it in user space). Under a
    /// debugger, a recorded syscall is where checkpoints are taken, and
    /// where the replay halts for a bookmark or an interrupt (the syscall
    /// is then made when the debugger resumes: [`Engine::advance`]).
    pub(super) fn dispatch(&mut self, i: usize, forced: bool) -> Result<Next, ReplayError> {
        self.cur = i;
        self.tasks[i].state = TaskState::Running;
        if self.debugger && !std::mem::take(&mut self.passing) && (forced || self.is_due(i)) {
            if !forced {
                self.maybe_checkpoint()?;
            }
            let at = self.peek_syscall().map(|(at, _)| at);
            let bookmark = self.goto.is_some_and(|g| at.is_none_or(|a| a >= g));
            if bookmark || self.interrupt_asked {
                self.interrupt_asked = false;
                // A SIGSTOP sent meanwhile is ignored when it comes.
                self.interrupting = None;
                self.pending_syscall = true;
                self.pending_forced = forced;
                self.tasks[i].state = TaskState::AtStop;
                return Ok(Next::Halt(if bookmark {
                    self.goto = None;
                    Halt::Bookmark
                } else {
                    Halt::Interrupted
                }));
            }
        }
        if forced {
            self.report.out_of_order += 1;
            tracing::debug!(
                "task {} goes out of turn at event {}",
                self.tasks[i].rtid,
                self.tasks[i].pos
            );
        }
        self.forced = forced;
        let next = self.on_syscall();
        self.forced = false;
        next
    }

    /// One stop of task `i`.
    pub(super) fn on_task_stop(
        &mut self,
        i: usize,
        status: WaitStatus,
    ) -> Result<Next, ReplayError> {
        self.cur = i;
        let starting = self.task().state == TaskState::Starting;
        let stop = self.tm().stopped(status);
        self.task_mut().state = TaskState::Running;
        let next = match stop {
            Stop::Signal(Signal::SIGSTOP) if self.interrupting == Some(i) => {
                // Stopped for the debugger's Ctrl-C: it goes on as it was.
                self.interrupting = None;
                self.interrupt_asked = false;
                self.task_mut().state = TaskState::Halted;
                return Ok(Next::Halt(Halt::Interrupted));
            }
            Stop::Signal(Signal::SIGSTOP) if starting => {
                if self.debugger {
                    self.load_debug_regs(i)?;
                }
                self.resume(None)?;
                Next::Continue
            }
            Stop::Syscall if self.waits_for_group_exit(i) => {
                // Its recording ends in this syscall (or before it): the
                // group's exit, still to come, ends it here.
                self.task_mut().state = TaskState::AtStop;
                Next::Continue
            }
            Stop::Syscall => {
                if self.is_due(i) || self.unrecorded_time_call()? {
                    self.dispatch(i, false)?
                } else {
                    let r = self.t().regs()?;
                    let args = args_of(&r);
                    let extra_wait = self.rec.is_multi()
                        && r.orig_rax as i64 == NR_FUTEX
                        && matches!(args[1] & 0x7f, 0 | 9)
                        && self
                            .peek_syscall()
                            .is_none_or(|(_, s)| !same_futex(s, r.orig_rax as i64, &args));
                    self.task_mut().state = if extra_wait {
                        TaskState::Parked(args[0])
                    } else {
                        TaskState::AtStop
                    };
                    Next::Continue
                }
            }
            Stop::Exited(code) => self.task_ended(Outcome::Exited { code }),
            Stop::Killed(sig, _) => self.task_ended(Outcome::Killed { signal: sig as i32 }),
            Stop::Signal(sig) => self.on_signal(sig)?,
            Stop::SyscallExit | Stop::Other => {
                self.resume(None)?;
                Next::Continue
            }
        };
        Ok(next)
    }

    /// The task at hand is at a time call the recording does not have as
    /// a syscall (the vDSO answered it): answered now, whatever is due.
    pub(super) fn unrecorded_time_call(&self) -> Result<bool, ReplayError> {
        let regs = self.t().regs()?;
        let name = effects::name(regs.orig_rax as i64).unwrap_or("?");
        Ok(policy::is_time(name)
            && self
                .peek_syscall()
                .is_none_or(|(_, s)| !same_time_call(name, &args_of(&regs), s)))
    }

    /// The next recorded syscall of every task: the one replayed next. A
    /// task's first event waits for the clone that makes it.
    pub(super) fn due_event(&mut self) -> Option<usize> {
        let ev = &self.rec.events;
        while self.frontier < ev.len()
            && (self.done[self.frontier]
                || !matches!(ev[self.frontier].kind, Some(pb::event::Kind::Syscall(_))))
        {
            self.frontier += 1;
        }
        let mut at = self.frontier;
        for _ in 0..self.tasks.len() + 2 {
            let e = ev.get(at)?;
            if self.by_rtid.contains_key(&e.tid) {
                return Some(at);
            }
            match self.creators.get(&e.tid) {
                Some(&c) if !self.done[c] => at = c,
                _ => return Some(at),
            }
        }
        Some(at)
    }

    /// Task `i` (at a syscall stop) may make its syscall now.
    pub(super) fn is_due(&mut self, i: usize) -> bool {
        let saved = self.cur;
        self.cur = i;
        let mine = self.peek_syscall().map(|(at, _)| at);
        self.cur = saved;
        let due = self.due_event();
        match (mine, due) {
            (Some(m), Some(d)) => m == d,
            // Nothing of its own is left: it is looked at once nothing is.
            (None, d) => d.is_none(),
            (Some(_), None) => true,
        }
    }

    /// When the task at hand, its syscall done, may run on: the recorded
    /// time (ns) that the others must have reached, 0 for at once.
    ///
    /// At once, as a rule: what a thread does in user space after a
    /// syscall mostly comes right after it (taking a lock), so running it
    /// before the next recorded syscall is answered keeps the order in
    /// which threads took locks. But a thread whose next syscall is a
    /// futex wait found, when recorded, a lock taken or a condition unmet:
    /// it goes on only once the others have done what they did before that
    /// wait began, so that it finds the same. So does a thread whose next
    /// syscall is its `exit`: what it does last (giving its stack back to
    /// the thread library's cache) is seen by the others only after that;
    /// and one whose next event is a fault (made in user space: a fatal
    /// one ends the process). (`TRACER_REPLAY_RELEASE=late`
    /// holds every thread so, for comparison.)
    pub(super) fn release_ns(&self) -> u64 {
        match self.rec.events.get(self.pos()).map(|e| (e, &e.kind)) {
            Some((e, Some(pb::event::Kind::Syscall(s))))
                if self.release_late
                    || s.nr == NR_FUTEX && futex_is_wait(s)
                    || self.exits_soon() =>
            {
                if s.enter_ns > 0 {
                    s.enter_ns
                } else {
                    e.ts_ns
                }
            }
            // Its next event is a fault of its own: it comes in user space,
            // and ends the process when fatal, so not before the others
            // have done what they did before it.
            Some((e, Some(pb::event::Kind::Signal(sig)))) if super::is_fault(sig) => {
                if self
                    .exit_of_process()
                    .is_some_and(|x| x.signal == sig.signo)
                {
                    // Fatal: the syscalls the other threads were making
                    // as the kernel took the process down were recorded
                    // after it, and are made first.
                    self.rec
                        .events
                        .iter()
                        .filter(|x| {
                            x.pid == e.pid && matches!(x.kind, Some(pb::event::Kind::Syscall(_)))
                        })
                        .map(|x| x.ts_ns)
                        .max()
                        .unwrap_or(0)
                        .max(e.ts_ns)
                } else {
                    e.ts_ns
                }
            }
            _ => 0,
        }
    }

    /// Task `i`, at a syscall stop, is at its own next recorded syscall
    /// (not a futex call: one may release a lock).
    fn at_own_next_syscall(&mut self, i: usize) -> Result<bool, ReplayError> {
        let saved = self.cur;
        self.cur = i;
        let nr = self.t().regs().map(|r| r.orig_rax as i64);
        let mine = self.peek_syscall().map(|(_, s)| s.nr);
        self.cur = saved;
        let nr = nr?;
        Ok(nr != NR_FUTEX && mine == Some(nr))
    }

    /// The task at hand's thread exits within its next few syscalls: what
    /// it does in user space on its way out (glibc gives its malloc arena
    /// to the free list, its stack to the cache, before blocking signals
    /// and `exit`) is seen by the others only that late.
    fn exits_soon(&self) -> bool {
        /// glibc's way out: rt_sigprocmask, madvise of the stack, exit.
        const EXIT_PATH: usize = 3;
        self.own_from(self.pos())
            .filter_map(|(_, e)| match &e.kind {
                Some(pb::event::Kind::Syscall(s)) => Some(s.nr),
                _ => None,
            })
            .take(EXIT_PATH)
            .any(|nr| nr == NR_EXIT)
    }

    /// A task stopped at a syscall that is not its turn yet, to go first
    /// for a thread that waits on the futex `word` (a lock): the one whose
    /// recording wakes that word next (the lock's holder, releasing it to
    /// waiters), else the one whose recorded syscall comes first. Not one
    /// parked on a futex: that one waits for a wake. Nor one whose
    /// recording has nothing left but the syscall its process's exit cut
    /// short: that one is in it when the group exits, and running it first
    /// would take the thread past its recording.
    pub(super) fn out_of_turn(&mut self, word: u64) -> Option<usize> {
        let mut candidates = Vec::new();
        for i in 0..self.tasks.len() {
            if self.tasks[i].state == TaskState::AtStop && !self.only_its_end_left(i) {
                candidates.push(i);
            }
        }
        candidates
            .into_iter()
            .min_by_key(|&i| (!self.wakes_soon(i, word), self.tasks[i].pos))
    }

    /// Task `i` is where its recording ends: another thread's exit_group
    /// (or a fatal signal) killed it in its last syscall or after it, and
    /// that is still to come. It makes no more syscalls (not even time
    /// reads, which would take it past its recording) until it dies.
    fn waits_for_group_exit(&mut self, i: usize) -> bool {
        if !self.rec.is_multi() || !self.only_its_end_left(i) {
            return false;
        }
        let rtid = self.tasks[i].rtid;
        let killed = self
            .rec
            .events
            .iter()
            .rev()
            .filter(|e| e.tid == rtid)
            .take_while(|e| !matches!(e.kind, Some(pb::event::Kind::Syscall(_))))
            .any(|e| matches!(&e.kind, Some(pb::event::Kind::Signal(s)) if s.signo == 9));
        killed && self.due_event().is_some()
    }

    /// Task `i` has no recorded syscall left, or only its last, which the
    /// group's exit (another thread's exit_group, a fatal signal) cut short.
    fn only_its_end_left(&mut self, i: usize) -> bool {
        let saved = self.cur;
        self.cur = i;
        let next = self.peek_syscall().map(|(at, s)| (at, cut_short(s)));
        self.cur = saved;
        match next {
            None => true,
            Some((at, cut)) => {
                let rtid = self.tasks[i].rtid;
                cut && self.rec.events[at + 1..]
                    .iter()
                    .all(|e| e.tid != rtid || !matches!(e.kind, Some(pb::event::Kind::Syscall(_))))
            }
        }
    }

    /// Task `i`'s next recorded futex call on `word`, among its next few
    /// events, is a wake.
    fn wakes_soon(&self, i: usize, word: u64) -> bool {
        const LOOK_AHEAD: usize = 16;
        // Its next few events are near: a thread with few left must not
        // make each choice a walk to the end of the recording.
        const WINDOW: usize = 4096;
        let t = &self.tasks[i];
        self.rec.events[t.pos.min(self.rec.events.len())..]
            .iter()
            .take(WINDOW)
            .filter(|e| e.tid == t.rtid)
            .take(LOOK_AHEAD)
            .filter_map(|e| match &e.kind {
                Some(pb::event::Kind::Syscall(s))
                    if s.nr == NR_FUTEX && s.args.first() == Some(&word) =>
                {
                    Some(s)
                }
                _ => None,
            })
            .next()
            .is_some_and(|s| !futex_is_wait(s))
    }

    /// The held task to run next: of those whose time has come, the one
    /// held first; a thread that waits on the others (a futex call the
    /// recording does not have) lets them go first.
    pub(super) fn next_to_release(&mut self) -> Option<usize> {
        let due = self
            .due_event()
            .map(|d| (self.rec.events[d].tid, self.rec.events[d].ts_ns));
        let held = |i: usize| match self.tasks[i].state {
            TaskState::Held(release) => Some((
                self.tasks[i].yielded.is_some(),
                self.tasks[i].held_seq,
                release,
                i,
            )),
            _ => None,
        };
        let pick = (0..self.tasks.len())
            .filter_map(held)
            .filter(|&(_, _, release, i)| match due {
                _ if release == 0 => true,
                None => true,
                Some((tid, ts)) => tid == self.tasks[i].rtid || ts >= release,
            })
            .min()?;
        if pick.0
            && let Some(other) = (0..self.tasks.len())
                .filter_map(held)
                .filter(|&(y, ..)| !y)
                .min()
        {
            // Even before its time.
            return Some(other.3);
        }
        Some(pick.3)
    }

    /// Task `i` goes on: by one instruction when a debugger steps it.
    pub(super) fn release(&mut self, i: usize) -> Result<(), ReplayError> {
        let step = self.stepping == Some(self.tasks[i].rtid);
        let t = &mut self.tasks[i];
        t.state = TaskState::Running;
        t.yielded = None;
        let sig = t.sig.take();
        if let Some(tr) = &t.t {
            if step {
                tr.step(sig)?;
            } else {
                tr.cont(sig)?;
            }
        }
        Ok(())
    }

    /// Nothing due came while tasks were held: one of them may be what the
    /// due task waits for in user space; the earliest goes on.
    pub(super) fn release_earliest(&mut self) -> Result<(), ReplayError> {
        let i = (0..self.tasks.len())
            .filter_map(|i| match self.tasks[i].state {
                TaskState::Held(_) => Some((self.tasks[i].held_seq, i)),
                _ => None,
            })
            .min()
            .map(|(_, i)| i);
        if let Some(i) = i {
            self.release(i)?;
        }
        Ok(())
    }

    /// The due task did not come to its event in time: where each task is.
    pub(super) fn stalled(&mut self, waited: std::time::Duration) -> Outcome {
        let due = self.due_event();
        let mut lines = Vec::new();
        for i in 0..self.tasks.len() {
            self.cur = i;
            let t = self.task();
            if t.state == TaskState::Gone {
                continue;
            }
            let at = self.peek_syscall().map(|(at, _)| at);
            let what = match at.and_then(|a| self.rec.events.get(a)) {
                Some(e) => format!("event {} ({})", at.unwrap_or(0), tracer_format::line(e)),
                None => "no recorded event left".to_owned(),
            };
            let state = match t.state {
                TaskState::AtStop => "waits at its syscall for",
                TaskState::Parked(_) => "waits on a futex the recording does not have, before",
                TaskState::Held(_) => "is held before",
                _ => "runs, has not reached",
            };
            lines.push(format!("thread {} {state} {what}", t.rtid));
        }
        let reason = format!(
            "the replay stalled: no task reached the next recorded event ({}) in {:.1} s; {}",
            due.map(|d| d.to_string()).unwrap_or_else(|| "none".into()),
            waited.as_secs_f64(),
            lines.join("; ")
        );
        self.report.divergence = Some(Divergence {
            event_index: due.unwrap_or(self.rec.events.len()),
            reason,
            expected: due
                .and_then(|d| self.rec.events.get(d))
                .map(tracer_format::line),
            actual: None,
            recent: Vec::new(),
        });
        if self.debugger {
            let mut r = self.report.clone();
            r.outcome = Outcome::Diverged;
            eprint!("{}", r.summary());
            self.ended = Some(Outcome::Diverged);
            // Left for the debugger to look at where each thread waits: the
            // ones that run are stopped where they are.
            if self.stop_running().is_ok() {
                return Outcome::Diverged;
            }
        }
        self.end_all();
        Outcome::Diverged
    }

    /// Stops the tasks that run (or start) where they are, for a debugger.
    fn stop_running(&mut self) -> Result<(), ReplayError> {
        for i in 0..self.tasks.len() {
            let starting = match self.tasks[i].state {
                TaskState::Running => false,
                TaskState::Starting => true,
                _ => continue,
            };
            let Some(t) = self.tasks[i].t.as_mut() else {
                continue;
            };
            if !starting {
                t.kill(Signal::SIGSTOP)?;
            }
            // Its SIGSTOP (a new task has one already), or whatever stop
            // comes first: either way it is stopped.
            match t.wait()? {
                Stop::Exited(_) | Stop::Killed(..) => self.tasks[i].state = TaskState::Gone,
                _ => self.tasks[i].state = TaskState::Halted,
            }
        }
        Ok(())
    }

    /// Leaves the root process stopped for a debugger where the replay
    /// stopped (the task at hand before its syscall when `at_syscall`),
    /// every thread of it before the syscall it waits at; the other
    /// processes end.
    pub(super) fn leave_root_stopped(&mut self, at_syscall: bool) -> Result<(), ReplayError> {
        let Some(tgid) = self.task().t.as_ref().map(|t| t.tgid) else {
            self.end_all();
            return Ok(());
        };
        nix::sys::signal::kill(tgid, Signal::SIGSTOP)
            .map_err(|e| ReplayError::Ptrace(format!("stopping process {tgid}: {e}")))?;
        for i in 0..self.tasks.len() {
            let t = &mut self.tasks[i];
            if t.state == TaskState::Gone || t.t.as_ref().is_none_or(|x| x.tgid != tgid) {
                continue;
            }
            let before_syscall = if i == self.cur {
                at_syscall
            } else {
                matches!(t.state, TaskState::AtStop | TaskState::Parked(_))
            };
            t.state = TaskState::Gone;
            if let Some(tr) = t.t.take()
                && let Err(e) = tr.let_go(before_syscall)
            {
                // A thread that never stopped for us yet (just made).
                tracing::debug!("leaving a thread stopped: {e}");
            }
        }
        // Its threads take the stop as they resume: it is stopped before
        // anyone is told to look at it.
        let status = format!("/proc/{tgid}/status");
        for _ in 0..200 {
            if std::fs::read_to_string(&status).is_ok_and(|s| s.contains("State:\tT")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.report.stopped_pid = Some(tgid.as_raw());
        self.end_all();
        Ok(())
    }

    /// Kills every task of the replay and reaps them.
    pub(super) fn end_all(&mut self) {
        let mut groups: Vec<Pid> = self
            .tasks
            .iter()
            .filter(|t| t.state != TaskState::Gone)
            .filter_map(|t| t.t.as_ref().map(|t| t.tgid))
            .collect();
        groups.dedup();
        for g in &groups {
            let _ = nix::sys::signal::kill(*g, Signal::SIGKILL);
        }
        let mut left: Vec<Tracee> = self
            .tasks
            .iter_mut()
            .filter(|t| t.state != TaskState::Gone)
            .filter_map(|t| {
                t.state = TaskState::Gone;
                t.t.take()
            })
            .collect();
        // A thread group's leader can be reaped only once its other
        // threads are.
        left.sort_by_key(|t| t.pid == t.tgid);
        for t in &mut left {
            t.reap();
        }
    }

    /// The task at hand ended (`Next::Done` when the replay is over).
    pub(super) fn task_ended(&mut self, outcome: Outcome) -> Next {
        let (rtid, rpid) = (self.task().rtid, self.task().rpid);
        self.task_mut().state = TaskState::Gone;
        if !self.rec.is_multi() {
            return Next::Done(self.on_end(outcome));
        }
        if rtid == self.rec.pid {
            let o = self.on_end(outcome);
            if o == Outcome::Diverged {
                self.end_all();
                return Next::Done(o);
            }
            self.root_outcome = Some(o);
        } else {
            if let Some(i) = self.syscalls_left_at_end() {
                return Next::Done(self.ended_early(i, rtid, format!("{outcome:?}")));
            }
            let recorded = self.rec.child_exits.get(&rpid).map(|x| {
                if x.signal != 0 {
                    Outcome::Killed {
                        signal: x.signal as i32,
                    }
                } else {
                    Outcome::Exited { code: x.exit_code }
                }
            });
            if rtid == rpid
                && let Some(r) = recorded
                && r != outcome
            {
                let i = self.pos();
                return Next::Done(self.ended_early(
                    i,
                    rtid,
                    format!("{outcome:?}; the recording says {r:?}"),
                ));
            }
            let len = self.rec.events.len();
            self.set_pos(len);
        }
        if let Some(t) = self.task_mut().t.as_mut() {
            t.forget();
        }
        if self.tasks.iter().all(|t| t.state == TaskState::Gone) {
            return Next::Done(self.root_outcome.clone().unwrap_or(Outcome::Incomplete));
        }
        Next::Continue
    }

    /// The task at hand has ended: the first of its recorded syscalls it
    /// did not make, if any. A thread (its process's leader too) that
    /// another's exit, a fatal signal of the process or an exec ended
    /// while in a syscall is the exception: its recording ends with that
    /// one syscall cut short (a restart code, no restart), as the replay's
    /// does.
    ///
    /// So is one syscall that the recording has end after another thread's
    /// `exit_group` began (the kernel kills the others as that one goes
    /// on; a thread may come out of a syscall meanwhile): in replay that
    /// exit_group, made for real, ends the thread at once.
    pub(super) fn syscalls_left_at_end(&self) -> Option<usize> {
        let left: Vec<(usize, &pb::Syscall)> = self
            .own_from(self.pos())
            .filter_map(|(i, e)| match &e.kind {
                Some(pb::event::Kind::Syscall(s)) => Some((i, s)),
                _ => None,
            })
            .collect();
        let &(i, s) = left.first()?;
        let rpid = self.task().rpid;
        let after_group_exit = || {
            self.rec.events[..i].iter().any(|e| {
                e.pid == rpid
                    && matches!(&e.kind, Some(pb::event::Kind::Syscall(x))
                        if effects::name(x.nr) == Some("exit_group"))
            })
        };
        (!(left.len() == 1 && (cut_short(s) || after_group_exit()))).then_some(i)
    }

    /// The task at hand leads its thread group (in a checkpoint's copy, the
    /// thread forked is the leader) and other threads of it live.
    pub(super) fn leader_among_threads(&self) -> bool {
        let t = self.t();
        t.pid == t.tgid
            && self.tasks.iter().enumerate().any(|(i, o)| {
                i != self.cur
                    && o.state != TaskState::Gone
                    && o.t.as_ref().is_some_and(|x| x.tgid == t.tgid)
            })
    }

    /// The task at hand, a thread group's leader, ends its thread: the
    /// kernel tells of that only once the group's other threads are gone,
    /// so it is seen to be done (a zombie, its clear-tid word cleared)
    /// rather than waited for.
    pub(super) fn leader_exits(&mut self, code: i32) -> Result<Next, ReplayError> {
        let pid = self.t().pid;
        self.t().cont(None)?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if matches!(crate::tracee::proc_state(pid), None | Some('Z' | 'X')) {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(ReplayError::Ptrace(format!(
                    "thread {pid} did not end after its exit"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Its end comes with the group's; it is not waited for.
        self.tm().forget();
        // The root process's leader: the process ends when its last
        // thread does, as recorded (that one's exit_group status is
        // compared as it is made).
        let outcome = match self.rec.exit {
            Some(x) if self.task().rtid == self.rec.pid && x.signal != 0 => Outcome::Killed {
                signal: x.signal as i32,
            },
            Some(x) if self.task().rtid == self.rec.pid => Outcome::Exited { code: x.exit_code },
            _ => Outcome::Exited { code },
        };
        Ok(self.task_ended(outcome))
    }

    /// A task other than the root ended otherwise than recorded.
    pub(super) fn ended_early(&mut self, at: usize, rtid: u32, how: String) -> Outcome {
        self.report.divergence = Some(Divergence {
            event_index: at,
            reason: format!("task {rtid} ended ({how}) otherwise than its recording"),
            expected: self.rec.events.get(at).map(tracer_format::line),
            actual: None,
            recent: self.recent(at),
        });
        self.end_all();
        Outcome::Diverged
    }

    /// Futex calls between threads depend on how their user-space code
    /// interleaved, which replay reproduces only at syscall granularity: a
    /// recorded futex wait or wake this replay does not make is skipped (it
    /// changed no memory), and one it makes that the recording does not
    /// have is answered (a wait as if the word had changed) while the
    /// thread lets the others go first. `Some` when the syscall is dealt
    /// with (answered, or held until the thread's next event is due).
    pub(super) fn futex_slack(
        &mut self,
        nr: i64,
        args: &[u64; 6],
    ) -> Result<Option<Next>, ReplayError> {
        let same = |s: &pb::Syscall| same_futex(s, nr, args);
        if nr == NR_FUTEX && matches!(args[1] & 0x7f, 1 | 10) {
            self.wake_parked(args[0])?;
        }
        let mut skipped = false;
        while let Some((at, s)) = self.peek_syscall() {
            if s.nr != NR_FUTEX || same(s) || !futex_without_effect(s) {
                break;
            }
            self.set_pos(at + 1);
            self.report.futexes_skipped += 1;
            skipped = true;
        }
        if nr == NR_FUTEX && self.peek_syscall().is_none_or(|(_, s)| !same(s)) {
            let wait = matches!(args[1] & 0x7f, 0 | 9);
            let mut regs = self.t().regs()?;
            regs.orig_rax = u64::MAX;
            regs.rax = if wait { (-EAGAIN) as u64 } else { 0 };
            self.t().set_regs(regs)?;
            self.report.futexes_added += 1;
            if self.report.futexes_added < 20 {
                tracing::debug!(
                    "task {} futex({:#x}, {}) not recorded here: answered ({} next)",
                    self.task().rtid,
                    args[0],
                    args[1],
                    self.peek_syscall().map(|(at, _)| at).unwrap_or(0)
                );
            }
            self.task_mut().yielded = Some(args[0]);
            self.resume(None)?;
            return Ok(Some(Next::Continue));
        }
        if skipped && !self.forced && !self.is_due(self.cur) {
            self.task_mut().state = TaskState::AtStop;
            return Ok(Some(Next::Continue));
        }
        Ok(None)
    }

    /// Between threads, how often a thread reads the clock follows how
    /// long it waited or spun (Go's scheduler, a lock's backoff), as how
    /// often it calls futex does. Where the program makes syscall `nr`
    /// and the recording has this thread read the clock first, those
    /// recorded reads (and effect-free futex calls among them) are passed
    /// over when `nr` comes right after them.
    pub(super) fn time_slack(&mut self, nr: i64) {
        let (mut reads, mut futexes) = (0u64, 0u64);
        let mut upto = None;
        for (i, e) in self.own_from(self.pos()) {
            match &e.kind {
                Some(pb::event::Kind::Syscall(s))
                    if policy::is_time(effects::name(s.nr).unwrap_or_default()) =>
                {
                    reads += 1;
                    if reads > 64 {
                        return;
                    }
                }
                Some(pb::event::Kind::Syscall(s)) if s.nr == nr => {
                    upto = Some(i);
                    break;
                }
                // A wait or wake in between goes with the spin.
                Some(pb::event::Kind::Syscall(s)) if futex_without_effect(s) => futexes += 1,
                _ => return,
            }
        }
        if let Some(i) = upto
            && reads > 0
        {
            self.set_pos(i);
            self.report.time_calls_skipped += reads;
            self.report.futexes_skipped += futexes;
        }
    }

    /// A futex wake of `word`: the threads parked on it (at waits the
    /// recording does not have) are answered as woken, and go on before
    /// the waker does.
    pub(super) fn wake_parked(&mut self, word: u64) -> Result<(), ReplayError> {
        let saved = self.cur;
        for i in 0..self.tasks.len() {
            if self.tasks[i].state != TaskState::Parked(word) {
                continue;
            }
            self.cur = i;
            let mut regs = self.t().regs()?;
            regs.orig_rax = u64::MAX;
            regs.rax = 0;
            self.t().set_regs(regs)?;
            self.report.futexes_added += 1;
            self.resume(None)?;
        }
        self.cur = saved;
        Ok(())
    }

    /// The flags of a clone-like syscall (clone3 passes them in memory).
    pub(super) fn clone_flags(&self, name: &str, args: &[u64; 6]) -> Result<u64, ReplayError> {
        Ok(match name {
            "clone" => args[0],
            "clone3" => self.t().read_u64(args[0])?,
            "vfork" => CLONE_VM | CLONE_VFORK,
            _ => 0,
        })
    }

    /// A clone, fork or vfork whose new task the recording has: run for
    /// real, the new task replayed from its own recorded events. The
    /// program sees the recorded ids. A vfork runs as a fork: the parent
    /// must not wait in the kernel for a child the replay holds back.
    pub(super) fn spawn(
        &mut self,
        regs: user_regs_struct,
        name: &str,
        args: &[u64; 6],
        s: &pb::Syscall,
        at: usize,
    ) -> Result<Next, ReplayError> {
        let flags = self.clone_flags(name, args)?;
        let vfork = flags & CLONE_VFORK != 0;
        let thread = flags & CLONE_THREAD != 0;
        let mut r = regs;
        match name {
            "vfork" => r.orig_rax = NR_FORK,
            "clone" if vfork => r.rdi = flags & !(CLONE_VFORK | CLONE_VM),
            "clone3" if vfork => self
                .t()
                .write(args[0], &(flags & !(CLONE_VFORK | CLONE_VM)).to_le_bytes())?,
            _ => {}
        }
        self.t().set_regs(r)?;
        let ran = self.tm().run_clone();
        if name == "clone3" && vfork {
            self.t().write(args[0], &flags.to_le_bytes())?;
        }
        let (mut done, child) = ran?;
        let real = done.rax as i64;
        let Some(child) = child.filter(|_| real > 0) else {
            return self.stop_here(
                Outcome::Diverged,
                format!(
                    "{name} failed when run for real: {} (recorded {})",
                    tracer_format::errno_name((-real) as i32),
                    s.ret
                ),
                Some(at),
                None,
            );
        };
        done.rax = s.ret as u64;
        done.rdi = args[0];
        self.t().set_regs(done)?;
        let rtid = s.ret as u32;
        let parent = self.cur;
        let rpid = if thread { self.task().rpid } else { rtid };
        let tgid = if thread { self.t().tgid } else { child };
        let tracee = Tracee::attached(child, tgid)?;
        if self.debugger && !thread {
            // A child process is not the debugger's: its copy of the
            // program's memory goes without the debugger's int3s.
            for (&addr, &orig) in &self.int3s {
                tracee.write(addr, &[orig])?;
            }
        }
        // Where the kernel wrote the new task's real id, the recorded one.
        let (parent_tid, child_tid) = match name {
            "clone" => (args[2], args[3]),
            "clone3" => (
                self.t().read_u64(args[0] + 24)?,
                self.t().read_u64(args[0] + 16)?,
            ),
            _ => (0, 0),
        };
        if flags & CLONE_PARENT_SETTID != 0 && parent_tid != 0 {
            self.t().write(parent_tid, &rtid.to_le_bytes())?;
        }
        if flags & CLONE_CHILD_SETTID != 0 && child_tid != 0 {
            tracee.write(child_tid, &rtid.to_le_bytes())?;
        }
        if flags & CLONE_CHILD_CLEARTID != 0 {
            self.tid_addrs.insert(rtid, child_tid);
        }
        if !thread {
            let p = self
                .procs
                .get(&self.task().rpid)
                .cloned()
                .unwrap_or_default();
            self.procs.insert(rpid, p);
        }
        self.tasks.push(Task {
            rtid,
            rpid,
            t: Some(tracee),
            pos: 0,
            pending_signals: Vec::new(),
            sigsys: None,
            state: TaskState::Starting,
            sig: None,
            yielded: None,
            retried: false,
            held_seq: 0,
        });
        let i = self.tasks.len() - 1;
        self.by_rtid.insert(rtid, i);
        self.cur = i;
        self.set_pos(0);
        self.cur = parent;
        self.report.syscalls_executed += 1;
        self.set_pos(at + 1);
        self.timeline_ns = s.exit_ns.max(self.timeline_ns);
        // The parent is held first, then the child (when its first stop
        // came before the clone returned): the same order every time.
        self.after_syscall()?;
        if let Some(st) = self.early.remove(&child) {
            let next = self.on_task_stop(i, st)?;
            if !matches!(next, Next::Continue) {
                return Ok(next);
            }
            self.cur = parent;
        }
        Ok(Next::Continue)
    }
}
