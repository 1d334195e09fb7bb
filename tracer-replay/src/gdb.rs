//! A gdb remote-protocol server for a replay (the `gdbstub` crate): gdb
//! drives the replay with continue and step, reads and writes registers
//! and memory, and sets breakpoints; the emulated syscalls stay invisible
//! to it. `monitor` commands show and move through the recorded events.
//!
//! Reverse execution goes back to a checkpoint (a stopped fork of the
//! program, taken at a syscall boundary every `checkpoint_every` events)
//! and runs forward from there (a replay is deterministic):
//! `reverse-continue` runs forward with the same breakpoints, notes each
//! hit until the present, and stops again at the last one (an earlier
//! checkpoint when there is none since the nearest); `reverse-step`/
//! `reverse-stepi` go back to the previous syscall boundary; `monitor goto`
//! backwards starts from the nearest checkpoint before the bookmark.
//!
//! Threads: gdb sees the recorded process's threads by their recorded
//! ids. They run as the replay schedules them (one at a time, syscalls in
//! the recorded order), whatever gdb's scheduler-locking says: a stepped
//! thread may need the others to reach its turn. When one stops, all are
//! stopped.
//!
//! Ctrl-C halts at the next syscall the replay answers, or stops the
//! task that computes (a SIGSTOP, told to gdb as SIGINT).
//!
//! Boundaries: child processes replay under the scheduler but are not
//! gdb's (they do not stop at its breakpoints, and no checkpoint is taken
//! while one runs).
use gdbstub::{
    common::{Signal as GdbSignal, Tid},
    conn::ConnectionExt,
    outputln,
    stub::{DisconnectReason, GdbStub, MultiThreadStopReason, run_blocking},
    target::{
        Target, TargetError, TargetResult,
        ext::{
            auxv::{Auxv, AuxvOps},
            base::{
                BaseOps,
                multithread::{
                    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps,
                    MultiThreadSchedulerLocking, MultiThreadSchedulerLockingOps,
                    MultiThreadSingleStep, MultiThreadSingleStepOps,
                },
                reverse_exec::{
                    ReplayLogPosition, ReverseCont, ReverseContOps, ReverseStep, ReverseStepOps,
                },
            },
            breakpoints::{
                Breakpoints, BreakpointsOps, HwWatchpoint, HwWatchpointOps, SwBreakpoint,
                SwBreakpointOps, WatchKind,
            },
            exec_file::{ExecFile, ExecFileOps},
            monitor_cmd::{ConsoleOutput, MonitorCmd, MonitorCmdOps},
            thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps},
        },
    },
};
use gdbstub_arch::x86::{X86_64_SSE, reg::X86_64CoreRegs};

use crate::{
    ReplayError,
    engine::{Engine, Halt, Options},
    recording::Recording,
    report::{Outcome, Report},
    tracee::ChildSignalsBlocked,
};

type StopReason = MultiThreadStopReason<u64>;

/// gdb's id of a recorded thread (recorded ids are never 0).
fn gdb_tid(rtid: u32) -> Tid {
    Tid::new(rtid as usize).unwrap_or(Tid::MIN)
}

mod host_io;

const INT3: u8 = 0xcc;

/// The replay as gdb sees it.
pub struct ReplayTarget<'a> {
    rec: &'a Recording,
    opts: &'a Options,
    engine: Engine<'a>,
    /// The int3s of the breakpoints (`engine.int3s`) are in the program.
    int3s_in: bool,
    /// The thread gdb's resume steps (the others continue).
    step: Option<u32>,
    /// gdb asked to go backwards.
    reverse: Option<Reverse>,
    /// The program file gdb reads symbols from (the first run's).
    exe: std::path::PathBuf,
    /// Private directories of earlier runs (they hold `exe`).
    kept: Vec<tempfile::TempDir>,
    /// Files gdb opened on this host (`host_io`).
    open_files: host_io::OpenFiles,
    /// Hardware watchpoints, one per x86 debug address register.
    watch: [Option<(u64, u64, WatchKind)>; 4],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reverse {
    Continue,
    Step,
}

/// Where a replay is, precisely enough to find it again on a re-run:
/// the recorded event it is at, the thread at hand and its registers.
#[derive(PartialEq, Eq, Clone)]
struct Point {
    pos: usize,
    tid: u32,
    pending: bool,
    regs: [u64; 18],
}

impl<'a> ReplayTarget<'a> {
    fn new(rec: &'a Recording, opts: &'a Options) -> Result<Self, ReplayError> {
        let engine = debugged(rec, opts)?;
        let engine_exe = engine.exe_file.clone();
        Ok(Self {
            rec,
            opts,
            engine,
            int3s_in: true,
            step: None,
            reverse: None,
            exe: engine_exe,
            kept: Vec::new(),
            open_files: Default::default(),
            watch: [None; 4],
        })
    }

    /// gdb's continue or step of a thread: forwards, without a signal of
    /// its own (the replay delivers the recorded ones).
    fn forward(&mut self, signal: Option<GdbSignal>, step: Option<u32>) -> Result<(), String> {
        if signal.is_some() {
            return Err("the replay delivers the recorded signals; gdb cannot add one".into());
        }
        if step.is_some() {
            self.step = step;
        }
        self.reverse = None;
        Ok(())
    }

    /// After a trap: whether it was one of our int3s, and if so the
    /// program counter back on the breakpoint's address (as gdb expects).
    fn on_breakpoint(&self) -> Result<bool, ReplayError> {
        let t = self.tracee()?;
        let mut r = t.regs()?;
        if !self.engine.int3s.contains_key(&(r.rip - 1)) {
            return Ok(false);
        }
        r.rip -= 1;
        t.set_regs(r)?;
        Ok(true)
    }

    fn point(&self) -> Result<Point, ReplayError> {
        let r = self.tracee()?.regs()?;
        Ok(Point {
            pos: self.engine.position(),
            tid: self.engine.current_tid(),
            pending: self.engine.pending_syscall,
            regs: [
                r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
                r.r12, r.r13, r.r14, r.r15, r.rip, r.eflags,
            ],
        })
    }

    /// Back to the checkpoint at event `at`, or to the start when `None`;
    /// breakpoints and watchpoints as they are now.
    fn back_to(&mut self, at: Option<usize>) -> Result<(), ReplayError> {
        let restored = match at {
            Some(n) => self.engine.restore_before(n)?,
            None => false,
        };
        if restored {
            self.apply_watchpoints()?;
        } else {
            self.relaunch()?;
        }
        let on = self.int3s_in;
        self.set_int3(on)
    }

    /// Loads the watchpoints into every thread's debug registers: DR0-DR3
    /// hold the addresses, DR7 enables each with its access kind and length.
    fn apply_watchpoints(&mut self) -> Result<(), ReplayError> {
        let mut dr = [0u64; 5];
        let mut dr7 = 0u64;
        for (i, w) in self.watch.iter().enumerate() {
            let Some((addr, len, kind)) = *w else {
                continue;
            };
            dr[i] = addr;
            // x86 has no read-only watch: reads are watched with writes.
            let rw = if kind == WatchKind::Write { 0b01 } else { 0b11 };
            let size = match len {
                1 => 0b00,
                2 => 0b01,
                8 => 0b10,
                _ => 0b11,
            };
            dr7 |= (1 << (2 * i)) | (rw << (16 + 4 * i)) | (size << (18 + 4 * i));
        }
        dr[4] = dr7;
        self.engine.debug_regs = dr;
        self.engine.load_debug_regs_all()
    }

    /// After a trap that was no breakpoint: the watchpoint that fired, if
    /// one did (DR6 says which; it is cleared for the next).
    fn watch_hit(&self) -> Result<Option<(u64, WatchKind)>, ReplayError> {
        let t = self.tracee()?;
        let dr6 = t.debug_reg(6)?;
        let hit = (0..4).find(|&i| dr6 & (1 << i) != 0);
        if dr6 & 0xf != 0 {
            t.set_debug_reg(6, 0)?;
        }
        Ok(hit
            .and_then(|i| self.watch[i])
            .map(|(addr, _, kind)| (addr, kind)))
    }

    /// A fresh replay from the start. The first run's files stay: gdb
    /// keeps reading the program from there.
    fn relaunch(&mut self) -> Result<(), ReplayError> {
        let mut old = std::mem::replace(&mut self.engine, debugged(self.rec, self.opts)?);
        old.hand_over(&mut self.engine);
        if let Some(d) = old.into_dir() {
            self.kept.push(d);
        }
        self.apply_watchpoints()
    }

    /// Continues to the next breakpoint; `None` when the replay ends.
    fn next_hit(&mut self) -> Result<Option<(Point, StopReason)>, ReplayError> {
        // Off a breakpoint first: its own byte back, one step, int3 again.
        let rip = self.tracee()?.regs()?.rip;
        if let Some(&orig) = self.engine.int3s.get(&rip) {
            self.tracee()?.write(rip, &[orig])?;
            self.engine.stepping = Some(self.engine.current_tid());
            let h = self.engine.advance(&mut || false)?;
            self.engine.stepping = None;
            if let Halt::End(_) = h {
                return Ok(None);
            }
            self.tracee()?.write(rip, &[INT3])?;
            // Another thread may have hit one meanwhile.
            if h == Halt::Trap
                && let Some(hit) = self.hit()?
            {
                return Ok(Some(hit));
            }
        }
        self.engine.stepping = None;
        loop {
            match self.engine.advance(&mut || false)? {
                Halt::Trap => {
                    if let Some(hit) = self.hit()? {
                        return Ok(Some(hit));
                    }
                }
                Halt::Step | Halt::Bookmark | Halt::Interrupted => {}
                Halt::End(_) => return Ok(None),
            }
        }
    }

    /// After a trap: the breakpoint or watchpoint that fired, if one did,
    /// with where the replay is.
    fn hit(&mut self) -> Result<Option<(Point, StopReason)>, ReplayError> {
        let tid = self.stopped_tid();
        let reason = if self.on_breakpoint()? {
            StopReason::SwBreak(tid)
        } else if let Some((addr, kind)) = self.watch_hit()? {
            StopReason::Watch { tid, kind, addr }
        } else {
            return Ok(None);
        };
        Ok(Some((self.point()?, reason)))
    }

    /// Back to the last breakpoint or watchpoint hit before the present
    /// (a watchpoint stops just after the write): from the
    /// nearest checkpoint behind it, the hits up to the present are
    /// counted, and the last one is gone to; without any, the checkpoint
    /// before that one is tried, back to the start.
    fn reverse_continue(&mut self) -> Result<StopReason, ReplayError> {
        let now = self.point()?;
        // A checkpoint is at its event's syscall stop: one at `now.pos` is
        // behind the present only if the present is stopped there too.
        let mut limit = if now.pending {
            Some(now.pos)
        } else {
            now.pos.checked_sub(1)
        };
        // Hits count while they are before the window's end.
        let mut before_end: Box<dyn Fn(&Point) -> bool> =
            Box::new(move |p: &Point| *p != now && p.pos <= now.pos);
        loop {
            let from = limit.and_then(|l| self.engine.checkpoint_before(l));
            self.back_to(from)?;
            let mut hits = 0usize;
            while let Some((p, _)) = self.next_hit()? {
                if !before_end(&p) {
                    break;
                }
                hits += 1;
            }
            if hits > 0 {
                self.back_to(from)?;
                let mut last = None;
                for _ in 0..hits {
                    last = self.next_hit()?;
                    if last.is_none() {
                        return Err(ReplayError::Ptrace(
                            "the replay did not repeat itself on a re-run".into(),
                        ));
                    }
                }
                if let Some((_, reason)) = last {
                    return Ok(reason);
                }
            }
            let Some(c) = from else {
                self.back_to(None)?;
                return Ok(StopReason::ReplayLog {
                    tid: None,
                    pos: ReplayLogPosition::Begin,
                });
            };
            before_end = Box::new(move |p: &Point| p.pos <= c);
            limit = c.checked_sub(1);
        }
    }

    /// Back to the syscall boundary before the present one.
    fn reverse_step(&mut self) -> Result<StopReason, ReplayError> {
        // Events before `here` are done: the last boundary behind the
        // program is the one before event here - 1.
        let here = self.engine.position();
        let back = here.saturating_sub(1);
        let at_start = here == 0;
        self.set_int3(false)?;
        let r = if at_start {
            self.back_to(None)
        } else {
            self.goto(back).map(|_| ())
        };
        self.set_int3(true)?;
        r?;
        Ok(if at_start {
            StopReason::ReplayLog {
                tid: None,
                pos: ReplayLogPosition::Begin,
            }
        } else {
            self.done_step()
        })
    }

    /// The thread at hand (the one that stopped last).
    fn tracee(&self) -> Result<&crate::tracee::Tracee, ReplayError> {
        self.engine
            .tracee()
            .ok_or_else(|| ReplayError::Ptrace("the replayed program is gone".into()))
    }

    /// A thread of the recorded process: where the debugger's int3s go
    /// (its threads share the memory; child processes are not gdb's).
    fn program(&self) -> Result<&crate::tracee::Tracee, ReplayError> {
        self.engine
            .threads()
            .next()
            .map(|(_, t)| t)
            .ok_or_else(|| ReplayError::Ptrace("the replayed program is gone".into()))
    }

    /// The thread gdb is told a stop is in: the task at hand, or, when
    /// that is in a child process (not gdb's), a thread of the program.
    fn stopped_tid(&self) -> Tid {
        let cur = self.engine.current_tid();
        let rtid = if self.engine.thread(cur).is_some() {
            cur
        } else {
            self.engine.threads().next().map(|(t, _)| t).unwrap_or(cur)
        };
        gdb_tid(rtid)
    }

    /// Thread `tid` as gdb names it.
    fn thread(&self, tid: Tid) -> Result<&crate::tracee::Tracee, ReplayError> {
        self.engine
            .thread(tid.get() as u32)
            .ok_or_else(|| ReplayError::Ptrace(format!("there is no thread {tid} now")))
    }

    /// A step is done, by the thread at hand.
    fn done_step(&self) -> StopReason {
        StopReason::SignalWithThread {
            tid: self.stopped_tid(),
            signal: GdbSignal::SIGTRAP,
        }
    }

    fn set_int3(&mut self, on: bool) -> Result<(), ReplayError> {
        self.int3s_in = on;
        let t = self.program()?;
        for (&addr, &orig) in &self.engine.int3s {
            t.write(addr, &[if on { INT3 } else { orig }])?;
        }
        Ok(())
    }

    /// Runs the replay until gdb must see a stop; `None` when gdb sent
    /// something first (Ctrl-C), with the replay stopped before a syscall.
    fn advance(
        &mut self,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Option<StopReason>, ReplayError> {
        match self.reverse.take() {
            Some(Reverse::Continue) => return self.reverse_continue().map(Some),
            Some(Reverse::Step) => return self.reverse_step().map(Some),
            None => {}
        }
        self.engine.stepping = self.step.take();
        let halt = self.engine.advance(interrupted)?;
        self.engine.stepping = None;
        let tid = self.stopped_tid();
        let signal = |signal| StopReason::SignalWithThread { tid, signal };
        Ok(Some(match halt {
            Halt::Interrupted => return Ok(None),
            // A step can also fire a watchpoint (the stepped instruction
            // wrote the watched memory): gdb wants to know.
            Halt::Step => match self.watch_hit()? {
                Some((addr, kind)) => StopReason::Watch { tid, kind, addr },
                None => self.done_step(),
            },
            Halt::Trap => {
                if self.on_breakpoint()? {
                    StopReason::SwBreak(tid)
                } else if let Some((addr, kind)) = self.watch_hit()? {
                    StopReason::Watch { tid, kind, addr }
                } else {
                    signal(GdbSignal::SIGTRAP)
                }
            }
            Halt::Bookmark => signal(GdbSignal::SIGTRAP),
            Halt::End(Outcome::Exited { code }) => StopReason::Exited(code as u8),
            Halt::End(Outcome::Killed { signal }) => {
                StopReason::Terminated(GdbSignal(signal as u8))
            }
            // Diverged or cut: stopped there, for a look (it does not go on).
            Halt::End(_) => signal(GdbSignal::SIGSYS),
        }))
    }

    /// Runs (or restarts and runs) to just before recorded event `n`.
    fn goto(&mut self, n: usize) -> Result<String, ReplayError> {
        if n > self.rec.events.len() {
            return Ok(format!(
                "there are {} recorded events (0..{})",
                self.rec.events.len(),
                self.rec.events.len()
            ));
        }
        let here = self.engine.position();
        let at_bookmark = self.engine.pending_syscall && here == n;
        if at_bookmark {
            return Ok(self.describe());
        }
        if n < here || (n == here && !self.engine.pending_syscall && n > 0) {
            // Behind us: from the nearest checkpoint before it (replays
            // are deterministic).
            let from = self.engine.checkpoint_before(n);
            self.back_to(from)?;
            if self.engine.pending_syscall && self.engine.position() == n {
                return Ok(self.describe());
            }
        }
        self.engine.goto = Some(n);
        self.engine.stepping = None;
        loop {
            match self.engine.advance(&mut || false)? {
                Halt::Bookmark => break,
                Halt::End(o) => return Ok(format!("the replay ended before event {n}: {o:?}")),
                // A trap of the program's own (no breakpoints are set here).
                Halt::Step | Halt::Trap | Halt::Interrupted => {}
            }
        }
        Ok(self.describe())
    }

    fn line(&self, i: usize) -> String {
        self.rec
            .events
            .get(i)
            .map(tracer_format::line)
            .unwrap_or_else(|| "(the end of the recording)".to_owned())
    }

    fn describe(&self) -> String {
        let i = self.engine.position();
        let at_syscall = if self.engine.pending_syscall {
            " (stopped at its syscall)"
        } else {
            ""
        };
        if !self.rec.is_multi() {
            return format!(
                "event {i} of {}{at_syscall}: {}",
                self.rec.events.len(),
                self.line(i)
            );
        }
        // Threads are at events of their own; the replay as a whole is at
        // the earliest not replayed.
        let tid = self.engine.current_tid();
        let own = self.engine.thread_position(tid);
        format!(
            "event {i} of {}: {}\nthread {tid}{at_syscall} is at event {own}: {}",
            self.rec.events.len(),
            self.line(i),
            self.line(own)
        )
    }
}

/// A replay started for gdb to drive.
fn debugged<'a>(rec: &'a Recording, opts: &'a Options) -> Result<Engine<'a>, ReplayError> {
    let mut engine = Engine::launch(rec, opts)?;
    engine.debugger = true;
    Ok(engine)
}

impl Target for ReplayTarget<'_> {
    type Arch = X86_64_SSE;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }
    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
    fn support_exec_file(&mut self) -> Option<ExecFileOps<'_, Self>> {
        Some(self)
    }
    fn support_host_io(&mut self) -> Option<gdbstub::target::ext::host_io::HostIoOps<'_, Self>> {
        Some(self)
    }
    fn support_auxv(&mut self) -> Option<AuxvOps<'_, Self>> {
        Some(self)
    }
}

fn fatal(e: ReplayError) -> TargetError<String> {
    TargetError::Fatal(e.to_string())
}

/// A thread gdb still believes in is gone (a re-run went back to before
/// it was made): an error for that request, not the end of the session.
fn gone(_: ReplayError) -> TargetError<String> {
    TargetError::NonFatal
}

impl MultiThreadBase for ReplayTarget<'_> {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let r = self.thread(tid).map_err(gone)?.regs().map_err(fatal)?;
        regs.regs = [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ];
        regs.rip = r.rip;
        regs.eflags = r.eflags as u32;
        regs.segments.cs = r.cs as u32;
        regs.segments.ss = r.ss as u32;
        regs.segments.ds = r.ds as u32;
        regs.segments.es = r.es as u32;
        regs.segments.fs = r.fs as u32;
        regs.segments.gs = r.gs as u32;
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        let t = self.thread(tid).map_err(gone)?;
        let mut r = t.regs().map_err(fatal)?;
        let g = regs.regs;
        (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp) =
            (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
        (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) =
            (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
        r.rip = regs.rip;
        r.eflags = regs.eflags as u64;
        t.set_regs(r).map_err(fatal)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], tid: Tid) -> TargetResult<usize, Self> {
        let t = self.thread(tid).map_err(gone)?;
        let n = match t.read(start, data.len()) {
            Ok(bytes) => {
                data.copy_from_slice(&bytes);
                data.len()
            }
            // Up to the first unreadable byte.
            Err(_) => {
                let mut n = 0;
                while n < data.len() {
                    match t.read(start + n as u64, 1) {
                        Ok(b) => data[n] = b[0],
                        Err(_) => break,
                    }
                    n += 1;
                }
                n
            }
        };
        if n == 0 {
            return Err(TargetError::NonFatal);
        }
        // gdb sees the code, not our int3s.
        for (&addr, &orig) in self.engine.int3s.range(start..start + n as u64) {
            data[(addr - start) as usize] = orig;
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        let t = self.thread(tid).map_err(gone)?;
        t.write(start, data).map_err(|_| TargetError::NonFatal)
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), Self::Error> {
        for (rtid, _) in self.engine.threads() {
            thread_is_active(gdb_tid(rtid));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl ThreadExtraInfo for ReplayTarget<'_> {
    fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let text = self.engine.thread_state(tid.get() as u32);
        Ok(copy_range(text.as_bytes(), 0, buf.len(), buf))
    }
}

impl MultiThreadResume for ReplayTarget<'_> {
    fn resume(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.step = None;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        _tid: Tid,
        signal: Option<GdbSignal>,
    ) -> Result<(), Self::Error> {
        self.forward(signal, None)
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, Tid, Self>> {
        Some(self)
    }

    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, Tid, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSchedulerLocking for ReplayTarget<'_> {
    /// Accepted, and not honoured: the replay runs the threads in the
    /// recorded order, and a stepped thread may need the others to run
    /// before its turn comes (see the top of this module).
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl ReverseCont<Tid> for ReplayTarget<'_> {
    fn reverse_cont(&mut self) -> Result<(), Self::Error> {
        self.reverse = Some(Reverse::Continue);
        Ok(())
    }
}

impl ReverseStep<Tid> for ReplayTarget<'_> {
    fn reverse_step(&mut self, _tid: Tid) -> Result<(), Self::Error> {
        self.reverse = Some(Reverse::Step);
        Ok(())
    }
}

impl MultiThreadSingleStep for ReplayTarget<'_> {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        signal: Option<GdbSignal>,
    ) -> Result<(), Self::Error> {
        self.forward(signal, Some(tid.get() as u32))
    }
}

impl Breakpoints for ReplayTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl HwWatchpoint for ReplayTarget<'_> {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        // The debug registers watch 1, 2, 4 or 8 aligned bytes.
        if !matches!(len, 1 | 2 | 4 | 8) || !addr.is_multiple_of(len) {
            return Ok(false);
        }
        let Some(slot) = self.watch.iter().position(Option::is_none) else {
            return Ok(false);
        };
        self.watch[slot] = Some((addr, len, kind));
        self.apply_watchpoints().map_err(fatal)?;
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: WatchKind,
    ) -> TargetResult<bool, Self> {
        let Some(slot) = self
            .watch
            .iter()
            .position(|w| *w == Some((addr, len, kind)))
        else {
            return Ok(false);
        };
        self.watch[slot] = None;
        self.apply_watchpoints().map_err(fatal)?;
        Ok(true)
    }
}

impl SwBreakpoint for ReplayTarget<'_> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        if self.engine.int3s.contains_key(&addr) {
            return Ok(true);
        }
        let t = self.program().map_err(fatal)?;
        let Ok(orig) = t.read(addr, 1) else {
            return Ok(false);
        };
        if t.write(addr, &[INT3]).is_err() {
            return Ok(false);
        }
        self.engine.int3s.insert(addr, orig[0]);
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let Some(orig) = self.engine.int3s.remove(&addr) else {
            return Ok(false);
        };
        // Once the replay has ended, there is no program to write to.
        if let Ok(t) = self.program()
            && t.alive()
        {
            t.write(addr, &[orig]).map_err(fatal)?;
        }
        Ok(true)
    }
}

impl MonitorCmd for ReplayTarget<'_> {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let cmd = String::from_utf8_lossy(cmd);
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            ["event"] => outputln!(out, "{}", self.describe()),
            ["events", n] | ["events", n, ..] => match n.parse::<usize>() {
                Ok(n) => {
                    let from = self.engine.position();
                    for i in from..(from + n).min(self.rec.events.len()) {
                        outputln!(out, "{i}: {}", self.line(i));
                    }
                    if from + n > self.rec.events.len() {
                        outputln!(out, "(the end of the recording)");
                    }
                }
                Err(_) => outputln!(out, "monitor events N: N is a number of events"),
            },
            ["goto", n] => match n.parse::<usize>() {
                Ok(n) => {
                    // The run to the bookmark does not stop at breakpoints.
                    let r = self
                        .set_int3(false)
                        .and_then(|_| self.goto(n))
                        .and_then(|text| self.set_int3(true).map(|_| text));
                    match r {
                        Ok(text) => {
                            outputln!(out, "{text}");
                            outputln!(
                                out,
                                "(run `maint flush register-cache` so gdb reads the registers again)"
                            );
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Err(_) => outputln!(out, "monitor goto EVENT: EVENT is an event index"),
            },
            _ => {
                outputln!(out, "tracer replay commands:");
                outputln!(
                    out,
                    "  monitor event       the next recorded event and where the replay is"
                );
                outputln!(out, "  monitor events N    the next N recorded events");
                outputln!(
                    out,
                    "  monitor goto EVENT  run (or restart) to just before recorded event EVENT"
                );
            }
        }
        Ok(())
    }
}

impl ExecFile for ReplayTarget<'_> {
    fn get_exec_file(
        &self,
        _pid: Option<gdbstub::common::Pid>,
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let path = self.exe.as_os_str().as_encoded_bytes();
        Ok(copy_range(path, offset, length, buf))
    }
}

impl Auxv for ReplayTarget<'_> {
    fn get_auxv(&self, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        if let Some(moved) = self.engine.moved_auxv() {
            return Ok(copy_range(moved, offset, length, buf));
        }
        let t = self.program().map_err(fatal)?;
        let auxv =
            std::fs::read(format!("/proc/{}/auxv", t.pid)).map_err(|_| TargetError::NonFatal)?;
        Ok(copy_range(&auxv, offset, length, buf))
    }
}

fn copy_range(data: &[u8], offset: u64, length: usize, buf: &mut [u8]) -> usize {
    let from = (offset as usize).min(data.len());
    let to = from
        .saturating_add(length)
        .min(data.len())
        .min(from + buf.len());
    buf[..to - from].copy_from_slice(&data[from..to]);
    to - from
}

struct EventLoop<'a>(std::marker::PhantomData<&'a ()>);

impl<'a> run_blocking::BlockingEventLoop for EventLoop<'a> {
    type Target = ReplayTarget<'a>;
    type Connection = Box<dyn ConnectionExt<Error = std::io::Error>>;
    type StopReason = StopReason;

    #[allow(clippy::type_complexity)]
    fn wait_for_stop_reason(
        target: &mut ReplayTarget<'a>,
        conn: &mut Self::Connection,
    ) -> Result<
        run_blocking::Event<StopReason>,
        run_blocking::WaitForStopReasonError<String, std::io::Error>,
    > {
        let mut interrupted = || conn.peek().map(|b| b.is_some()).unwrap_or(true);
        match target.advance(&mut interrupted) {
            Ok(Some(stop)) => Ok(run_blocking::Event::TargetStopped(stop)),
            Ok(None) => conn
                .read()
                .map(run_blocking::Event::IncomingData)
                .map_err(run_blocking::WaitForStopReasonError::Connection),
            Err(e) => Err(run_blocking::WaitForStopReasonError::Target(e.to_string())),
        }
    }

    fn on_interrupt(target: &mut ReplayTarget<'a>) -> Result<Option<StopReason>, String> {
        Ok(Some(StopReason::SignalWithThread {
            tid: target.stopped_tid(),
            signal: GdbSignal::SIGINT,
        }))
    }
}

/// Where gdb connects: `HOST:PORT` or `unix:PATH`.
fn accept(listen: &str) -> Result<Box<dyn ConnectionExt<Error = std::io::Error>>, ReplayError> {
    let io = |e: std::io::Error| ReplayError::Io(format!("--gdb {listen}: {e}"));
    if let Some(path) = listen.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        let l = std::os::unix::net::UnixListener::bind(path).map_err(io)?;
        eprintln!("replay: waiting for gdb on {path} (gdb -ex 'target remote {path}')");
        let (s, _) = l.accept().map_err(io)?;
        Ok(Box::new(s))
    } else {
        let l = std::net::TcpListener::bind(listen).map_err(io)?;
        let addr = l.local_addr().map_err(io)?;
        eprintln!("replay: waiting for gdb on {addr} (gdb -ex 'target remote {addr}')");
        let (s, _) = l.accept().map_err(io)?;
        s.set_nodelay(true).map_err(io)?;
        Ok(Box::new(s))
    }
}

/// Serves one gdb session over the replay of `rec`, then finishes the
/// replay (to its end, without stops) when gdb detaches.
pub fn serve(rec: &Recording, opts: &Options, listen: &str) -> Result<Report, ReplayError> {
    let _blocked = ChildSignalsBlocked::new();
    let mut target = ReplayTarget::new(rec, opts)?;
    let conn = accept(listen)?;
    let stub = GdbStub::new(conn);
    let reason = stub
        .run_blocking::<EventLoop<'_>>(&mut target)
        .map_err(|e| ReplayError::Io(format!("gdb session: {e}")))?;
    let outcome = match reason {
        DisconnectReason::TargetExited(code) => Outcome::Exited { code: code as i32 },
        DisconnectReason::TargetTerminated(sig) => Outcome::Killed {
            signal: sig.0 as i32,
        },
        DisconnectReason::Kill => {
            let mut r = target.engine.finish(Outcome::Incomplete);
            r.notes.push("gdb killed the replayed program".to_owned());
            return Ok(r);
        }
        DisconnectReason::Disconnect => {
            // gdb detached: the rest of the replay runs without it, and
            // without its breakpoints and watchpoints.
            if target.engine.tracee().is_some() {
                target.set_int3(false)?;
                target.watch = [None; 4];
                target.apply_watchpoints()?;
            }
            let mut e = target.engine;
            e.debugger = false;
            e.stepping = None;
            let outcome = loop {
                match e.advance(&mut || false)? {
                    Halt::End(o) => break o,
                    Halt::Step | Halt::Trap | Halt::Bookmark | Halt::Interrupted => {}
                }
            };
            return Ok(e.finish(outcome));
        }
    };
    Ok(target.engine.finish(outcome))
}
