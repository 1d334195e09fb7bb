//! The replay loop: at each syscall of the tracee, check it against the
//! recording, then run it or answer it (see [`crate::policy`]).
use std::{
    collections::HashMap,
    ffi::CString,
    io::Write as _,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::Path,
    time::Instant,
};

use libc::user_regs_struct;
use nix::{
    sys::{signal::Signal, wait::WaitStatus},
    unistd::Pid,
};
use tracer_common::effects::{self, ArgFmt};
use tracer_proto as pb;

mod checkpoint;
mod sched;
mod shm;

use checkpoint::Checkpoint;
use sched::{CLONE_THREAD, creators};

use crate::{
    ReplayError,
    fds::{self, Fd, FdTable},
    made, memory,
    policy::{self, Action},
    recording::Recording,
    report::{Divergence, Outcome, Report, TimeDifference, Travel},
    stack,
    tracee::{self, ChildSignalsBlocked, Launch, Stop, Tracee},
    vdso,
};

/// How to replay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The process of the bundle to replay (its root by default).
    pub pid: Option<u32>,
    /// Do not show what the program writes to stdout and stderr.
    pub quiet: bool,
    /// After a divergence, kill the tracee instead of leaving it stopped.
    pub kill_on_divergence: bool,
    /// Environment variables set (over the recorded ones) for the replayed
    /// program: "what if" runs, which diverge where the change shows.
    pub env: Vec<(String, String)>,
    /// The program file to run when the bundle has no copy of it.
    pub exe: Option<std::path::PathBuf>,
    /// Under a debugger: a checkpoint (a forked copy of the program) every
    /// this many recorded events, so that going back restarts from the
    /// nearest one (0: none; going back replays from the start).
    pub checkpoint_every: usize,
    /// How long a replay of several threads or processes waits for the
    /// task whose recorded event is next before it stops and says where
    /// each task is (`None`: 10 s).
    pub watchdog: Option<std::time::Duration>,
    /// Stop at the first difference, also a write that approximate times
    /// explain (see `Report::time_differences`).
    pub strict: bool,
}

use crate::tracee::RESTART_CODES;
const EINTR: i64 = 4;
const MAP_PRIVATE: u64 = 0x2;
const MAP_TYPE: u64 = 0xf;
const MAP_NORESERVE: u64 = 0x4000;
const PROT_WRITE: u64 = 0x2;
/// MAP_FIXED and MAP_FIXED_NOREPLACE: the address is the program's choice.
const MAP_FIXED_ANY: u64 = 0x10 | 0x100000;

/// Replays one process of a bundle. Errors are what prevented the replay
/// (a bad bundle, no program to run); a divergence is a [`Report`] outcome.
pub fn replay(bundle: tracer_store::bundle::Bundle, opts: &Options) -> Result<Report, ReplayError> {
    let rec = Recording::from_bundle(bundle, opts.pid)?;
    let _blocked = ChildSignalsBlocked::new();
    let mut e = Engine::launch(&rec, opts)?;
    match e.run(&mut || false)? {
        Halt::End(outcome) => Ok(e.finish(outcome)),
        // Only a debugger's replay halts.
        h => Err(ReplayError::Ptrace(format!(
            "the replay halted ({h:?}) without a debugger"
        ))),
    }
}

impl<'a> Engine<'a> {
    /// Starts the recorded program, stopped before its first instruction.
    pub(crate) fn launch(rec: &'a Recording, opts: &'a Options) -> Result<Self, ReplayError> {
        let dir = tempfile::Builder::new()
            .prefix("tracer-replay-")
            .tempdir()
            .map_err(|e| ReplayError::Io(format!("creating a private directory: {e}")))?;
        let mut notes = Vec::new();
        if let Some(given) = &opts.exe {
            notes.push(format!("ran {} as the program (--exe)", given.display()));
        }
        let exe = opts
            .exe
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .or_else(|| {
                // A `#!` script: the kernel ran its interpreter, with the
                // argv it built (the recorded one).
                let script = rec.executable_path()?;
                match rec.script_interpreter(&script, &rec.exec.argv) {
                    Some(i) => {
                        notes.push(format!(
                            "{script} is a #! script: ran its interpreter {i} with the \
                             argv the kernel built"
                        ));
                        Some(i)
                    }
                    None => Some(script),
                }
            })
            .ok_or_else(|| {
                ReplayError::Launch(format!(
                    "the bundle has no copy of the program ({:?}) and it is not on this machine \
                 (give it with --exe PATH)",
                    rec.exec
                        .argv
                        .first()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .unwrap_or_default()
                ))
            })?;
        let exe_file = match rec.file(&exe)?.filter(|_| opts.exe.is_none()) {
            Some(bytes) => {
                let name = Path::new(&exe)
                    .file_name()
                    .map(|n| n.to_owned())
                    .unwrap_or_else(|| "program".into());
                write_program(&dir.path().join(name), bytes)?
            }
            None => {
                if opts.exe.is_none() {
                    notes.push(format!(
                        "the bundle has no copy of {exe}; this machine's file was run"
                    ));
                }
                exe.clone().into()
            }
        };
        let cwd = dir.path().join("cwd");
        std::fs::create_dir(&cwd)
            .map_err(|e| ReplayError::Io(format!("{}: {e}", cwd.display())))?;
        let cstr =
            |b: &[u8]| CString::new(b.split(|&c| c == 0).next().unwrap_or(b)).unwrap_or_default();
        let launch = Launch {
            exe: cstr(exe_file.as_os_str().as_bytes()),
            argv: rec.exec.argv.iter().map(|a| cstr(a)).collect(),
            envp: environment(&rec.exec.envp, &opts.env)
                .iter()
                .map(|a| cstr(a))
                .collect(),
            cwd: cstr(cwd.as_os_str().as_bytes()),
            ignored: rec.initially_ignored(),
        };
        let started = Instant::now();
        tracee::pin_to_one_cpu();
        let tracee = Tracee::launch(&launch)?;
        let root = Task {
            rtid: rec.pid,
            rpid: rec.pid,
            t: Some(tracee),
            pos: 0,
            pending_signals: Vec::new(),
            sigsys: None,
            state: TaskState::Running,
            sig: None,
            yielded: None,
            retried: false,
            held_seq: 0,
        };
        let mut e = Engine {
            rec,
            tasks: vec![root],
            cur: 0,
            by_rtid: HashMap::from([(rec.pid, 0)]),
            procs: HashMap::from([(rec.pid, Proc::default())]),
            done: vec![false; rec.events.len()],
            replayed: 0,
            frontier: 0,
            handled: 0,
            forced: false,
            release_late: std::env::var("TRACER_REPLAY_RELEASE").is_ok_and(|v| v == "late"),
            early: HashMap::new(),
            root_outcome: None,
            creators: creators(rec),
            shm_segments: HashMap::new(),
            progress: Instant::now(),
            opts,
            report: Report::new(rec.pid, exe.clone(), rec.events.len(), notes),
            timeline_ns: rec.exec_ns,
            last_tsc: 0,
            kernel_copies: 0,
            show_recorded: None,
            started,
            exe_file,
            dir: Some(dir),
            stepping: None,
            debugger: false,
            passing: false,
            pending_forced: false,
            interrupt_asked: false,
            interrupting: None,
            debug_regs: [0; 5],
            goto: None,
            pending_syscall: false,
            ended: None,
            execs: 0,
            stub: None,
            checkpoints: Vec::new(),
            travel: Travel::default(),
            int3s: Default::default(),
            children: Vec::new(),
            tid_addrs: HashMap::new(),
        };
        e.set_pos(0);
        e.prepare_image(rec.exec.arg_start, &rec.exec.auxv)?;
        e.resume(None)?;
        Ok(e)
    }

    /// At an exec stop, before the new program's first instruction: its
    /// vDSO time functions patched, its executable, interpreter and stack
    /// where they were recorded, and a scratch page for the replayer's own
    /// strings.
    fn prepare_image(
        &mut self,
        recorded_arg_start: u64,
        recorded_auxv: &[u64],
    ) -> Result<(), ReplayError> {
        let (patched, insn) = vdso::patch(self.t())?;
        self.stub = insn;
        if patched == 0 {
            self.report
                .notes
                .push("the program has no vDSO here; its time calls are syscalls".to_owned());
        }
        // A new image: nothing of the old one's is kept.
        let p = self.proc_mut();
        (p.scratch, p.auxv, p.heap_end) = (None, None, None);
        if let Some(insn) = insn {
            if layout_on() {
                let mut notes = std::mem::take(&mut self.report.notes);
                let r = crate::layout::place_image(self.tm(), insn, recorded_auxv, &mut notes);
                self.report.notes = notes;
                self.proc_mut().auxv = r?;
            }
            if recorded_arg_start != 0 {
                let mut notes = std::mem::take(&mut self.report.notes);
                let r = stack::relocate(
                    self.tm(),
                    insn,
                    recorded_arg_start,
                    recorded_auxv,
                    &mut notes,
                );
                self.report.notes = notes;
                r?;
            }
            let page = self
                .tm()
                .inject(insn, libc::SYS_mmap, [0, 4096, 0x3, 0x22, u64::MAX, 0])?;
            if page > 0 {
                self.proc_mut().scratch = Some(page as u64);
            }
        }
        Ok(())
    }

    /// The report of a replay that ended with `outcome`.
    pub(crate) fn finish(mut self, outcome: Outcome) -> Report {
        self.report.events_replayed = self.replayed;
        let mut report = std::mem::replace(
            &mut self.report,
            Report::new(0, String::new(), 0, Vec::new()),
        );
        report.outcome = outcome;
        report.tasks = self.tasks.len();
        report.travel = self.travel;
        report.wall_ms = self.started.elapsed().as_secs_f64() * 1e3;
        let calls =
            report.syscalls_executed + report.syscalls_emulated + report.time_calls_from_timeline;
        report.us_per_syscall = if calls > 0 {
            report.wall_ms * 1e3 / calls as f64
        } else {
            0.0
        };
        if !self.children.is_empty() {
            let pids: Vec<String> = self.children.iter().map(|p| p.to_string()).collect();
            report.notes.push(format!(
                "the program started {} child process(es) ({}), which this replay does not run: \
                 what they did and printed is not shown (replay one with --pid PID, from a \
                 bundle fetched with --children)",
                pids.len(),
                pids.join(", ")
            ));
        }
        if let crate::recording::TimeReads::Approximate(why) = &self.rec.time {
            report.notes.push(format!("approximate time: {why}"));
        } else {
            report.time_exact = true;
            if report.time_calls_from_timeline > 0 {
                report.notes.push(format!(
                    "{} time reads were answered from the timeline although the recording \
                 has every time read: the program read the clock where it had not",
                    report.time_calls_from_timeline
                ));
            }
        }
        if self.kernel_copies > 0 {
            report.notes.push(format!(
                "{} bytes went to stdout/stderr by in-kernel copies (sendfile, splice, \
                 copy_file_range); their contents are not in the recording and are not shown",
                self.kernel_copies
            ));
        }
        report
    }
}

/// Where a replayed task is, for the scheduler.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TaskState {
    /// Running (in user space, or in a syscall run for real).
    Running,
    /// Made by a clone the replay ran; its first stop not seen yet.
    Starting,
    /// At a syscall stop, waiting until its recorded event is next.
    AtStop,
    /// At a futex wait on this word that the recording does not have
    /// (its code took a lock another thread holds in replay): woken by the
    /// next wake of the word, or answered when its recorded event is next.
    Parked(u64),
    /// Its syscall is done; resumed once the recording's other tasks have
    /// done what they did before this one's next event (recorded ns).
    Held(u64),
    /// Stopped for a debugger (a breakpoint, a step): it goes on, as it
    /// was running, when the debugger resumes the replay.
    Halted,
    /// Ended.
    Gone,
}

/// One replayed thread.
struct Task {
    /// Its recorded tid and pid.
    rtid: u32,
    rpid: u32,
    t: Option<Tracee>,
    /// Index of its next recorded event (the length when none is left).
    pos: usize,
    /// Recorded signals sent to it, not delivered yet.
    pending_signals: Vec<Signal>,
    /// The siginfo of a pending SIGSYS its own seccomp filter raised
    /// when recorded (given to the signal at its delivery).
    sigsys: Option<SeccompTrap>,
    state: TaskState,
    /// The signal it resumes with when released.
    sig: Option<Signal>,
    /// It made a futex wait the recording does not have, on this word:
    /// the others go first.
    yielded: Option<u64>,
    /// It yielded, and tried again instead of making another thread go
    /// out of turn, since its last event replayed.
    retried: bool,
    /// When it was held (the order held tasks go on in).
    held_seq: u64,
}

/// What the threads of one replayed process share.
#[derive(Default, Clone)]
struct Proc {
    fds: FdTable,
    /// A page of the process's for strings the replayer passes (an exec's
    /// path).
    scratch: Option<u64>,
    /// The auxv as the kernel would give it with the image where the
    /// replay put it (the kernel's copy still names the first place).
    auxv: Option<Vec<u8>>,
    /// Files the program made, as the recording shows them (mapped where
    /// the bundle has no copy).
    made: crate::made::MadeFiles,
    /// End of the heap the replay maps at the recorded break (`brk`): the
    /// kernel's own break is where this run's layout put it, elsewhere.
    heap_end: Option<u64>,
    /// System V segments attached, by address: their mapped length.
    shm_attached: HashMap<u64, u64>,
}

pub(crate) struct Engine<'a> {
    rec: &'a Recording,
    opts: &'a Options,
    tasks: Vec<Task>,
    /// The task at hand.
    cur: usize,
    by_rtid: HashMap<u32, usize>,
    /// By recorded pid.
    procs: HashMap<u32, Proc>,
    /// Recorded events replayed (by index), and how many.
    done: Vec<bool>,
    replayed: usize,
    /// No recorded syscall before this index is left.
    frontier: usize,
    /// See [`Engine::release_ns`].
    release_late: bool,
    /// Tasks held so far (the order held tasks go on in).
    handled: u64,
    /// The task at hand makes a syscall out of the recorded order.
    forced: bool,
    /// Stops of new tasks seen before the clone that made them returned.
    early: HashMap<Pid, WaitStatus>,
    /// How the root process ended, once it has.
    root_outcome: Option<Outcome>,
    /// The recorded event that creates each task (its clone), by tid.
    creators: HashMap<u32, usize>,
    /// System V segments the recording shows got (`shmget`), by id.
    shm_segments: HashMap<i64, shm::Segment>,
    /// When a recorded event was last replayed (for the watchdog).
    progress: Instant,
    report: Report,
    /// Recorded time the program is at (monotonic ns).
    timeline_ns: u64,
    /// The last answer to a trapped rdtsc (they only increase).
    last_tsc: u64,
    kernel_copies: u64,
    /// What the next shown write shows instead of the program's bytes (the
    /// recorded ones, at a difference approximate times explain).
    show_recorded: Option<Vec<u8>>,
    started: Instant,
    /// The program as run (the bundle's copy): what a debugger loads.
    pub(crate) exe_file: std::path::PathBuf,
    dir: Option<tempfile::TempDir>,
    /// The task (recorded tid) a debugger steps: it is resumed by single
    /// steps.
    pub(crate) stepping: Option<u32>,
    /// A debugger drives the replay: traps stop it instead of diverging.
    pub(crate) debugger: bool,
    /// The task at hand resumes from a bookmark or an interrupt: its
    /// syscall is made without halting there again.
    passing: bool,
    /// The syscall halted at goes out of turn ([`Engine::dispatch`]).
    pending_forced: bool,
    /// The debugger has something to say: halt at the next syscall.
    interrupt_asked: bool,
    /// The task sent a SIGSTOP for the debugger's Ctrl-C, its stop not seen
    /// yet.
    interrupting: Option<usize>,
    /// The debugger's watchpoints: DR0-DR3 and DR7, loaded into every
    /// thread of the root process (new ones at their first stop).
    pub(crate) debug_regs: [u64; 5],
    /// Stop before this recorded event (a debugger's bookmark).
    pub(crate) goto: Option<usize>,
    /// Stopped at a syscall not handled yet (a bookmark was reached).
    pub(crate) pending_syscall: bool,
    /// The replay cannot go on (diverged under a debugger): the tracee is
    /// never resumed again, so the divergent syscall never runs.
    ended: Option<Outcome>,
    /// Programs exec'd so far (names of their copies).
    execs: usize,
    /// Code in the tracee that makes a syscall (a patched vDSO function):
    /// where the replayer injects its own.
    stub: Option<u64>,
    /// Checkpoints, by position (under a debugger).
    checkpoints: Vec<Checkpoint>,
    /// Going back in time, counted across re-runs.
    pub(crate) travel: Travel,
    /// The debugger's software breakpoints: address and the byte the int3
    /// replaced (checkpoints are kept without them).
    pub(crate) int3s: std::collections::BTreeMap<u64, u8>,
    /// Child processes the recording started (their forks are answered,
    /// not run: the children are not replayed here).
    children: Vec<i64>,
    /// Each thread's clear-tid word (`set_tid_address`,
    /// `CLONE_CHILD_CLEARTID`), by recorded tid: a thread made again for a
    /// checkpoint gets it back.
    tid_addrs: HashMap<u32, u64>,
}

impl Drop for Engine<'_> {
    /// A replay that ends early takes its tasks with it (threads first:
    /// a thread group's leader is reaped last).
    fn drop(&mut self) {
        self.end_all();
    }
}

/// Where the engine goes after a stop.
enum Next {
    Continue,
    Done(Outcome),
    Halt(Halt),
}

/// Why a replay driven by a debugger stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Halt {
    /// A single step is done.
    Step,
    /// A breakpoint (int3) was hit.
    Trap,
    /// The bookmark (`goto`) is reached: stopped before its syscall.
    Bookmark,
    /// The debugger has something to say (Ctrl-C): stopped before a
    /// syscall.
    Interrupted,
    /// The replay is over.
    End(Outcome),
}

fn args_of(r: &user_regs_struct) -> [u64; 6] {
    [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
}

impl Engine<'_> {
    fn task(&self) -> &Task {
        &self.tasks[self.cur]
    }

    fn task_mut(&mut self) -> &mut Task {
        &mut self.tasks[self.cur]
    }

    fn t(&self) -> &Tracee {
        self.task()
            .t
            .as_ref()
            .expect("the tracee lives until the replay ends")
    }

    fn tm(&mut self) -> &mut Tracee {
        self.task_mut()
            .t
            .as_mut()
            .expect("the tracee lives until the replay ends")
    }

    /// How the process of the task at hand ended in the recording (the
    /// root's, or a child's).
    fn exit_of_process(&self) -> Option<pb::Exit> {
        let rpid = self.task().rpid;
        if rpid == self.rec.pid {
            self.rec.exit
        } else {
            self.rec.child_exits.get(&rpid).copied()
        }
    }

    /// The root process's auxv where the replay moved its image.
    pub(crate) fn moved_auxv(&self) -> Option<&[u8]> {
        self.procs.get(&self.rec.pid)?.auxv.as_deref()
    }

    /// The process of the task at hand.
    fn proc_mut(&mut self) -> &mut Proc {
        let pid = self.task().rpid;
        self.procs.entry(pid).or_default()
    }

    fn fds(&self) -> &FdTable {
        static NONE: std::sync::LazyLock<FdTable> = std::sync::LazyLock::new(FdTable::default);
        self.procs
            .get(&self.task().rpid)
            .map(|p| &p.fds)
            .unwrap_or(&NONE)
    }

    /// Index of the task's next recorded event.
    fn pos(&self) -> usize {
        self.task().pos
    }

    /// The first event of the task at hand at or after `from`.
    fn next_own(&self, from: usize) -> usize {
        let tid = self.task().rtid;
        let ev = &self.rec.events;
        // An event another thread made (moved_memory_call) is not its own
        // any more.
        (from..ev.len())
            .find(|&i| ev[i].tid == tid && !self.done[i])
            .unwrap_or(ev.len())
    }

    /// Moves the task at hand to its first event at or after `to`; its
    /// events passed on the way are replayed.
    fn set_pos(&mut self, to: usize) {
        let tid = self.task().rtid;
        let from = self.pos();
        for i in from..to.min(self.rec.events.len()) {
            if self.rec.events[i].tid == tid && !self.done[i] {
                self.done[i] = true;
                self.replayed += 1;
                self.progress = Instant::now();
            }
        }
        self.task_mut().retried = false;
        let next = self.next_own(to.max(from));
        self.task_mut().pos = next;
    }

    /// Lets the task at hand go on: it is held until the recording lets
    /// it ([`Engine::release`]).
    pub(crate) fn resume(&mut self, sig: Option<Signal>) -> Result<(), ReplayError> {
        let release = self.release_ns();
        self.handled += 1;
        let seq = self.handled;
        let t = self.task_mut();
        t.state = TaskState::Held(release);
        t.held_seq = seq;
        t.sig = sig;
        Ok(())
    }

    /// The private directory (the program's copy), kept past this run.
    pub(crate) fn into_dir(mut self) -> Option<tempfile::TempDir> {
        self.dir.take()
    }

    pub(crate) fn tracee(&self) -> Option<&Tracee> {
        self.task().t.as_ref()
    }

    /// Index of the next recorded event to replay. Across tasks, the
    /// earliest syscall not answered yet: syscalls are answered in the
    /// recorded order, so it only moves on.
    pub(crate) fn position(&self) -> usize {
        if !self.rec.is_multi() {
            return self.pos();
        }
        let ev = &self.rec.events;
        (self.frontier..ev.len())
            .find(|&i| !self.done[i] && matches!(ev[i].kind, Some(pb::event::Kind::Syscall(_))))
            .unwrap_or(ev.len())
    }

    /// Runs until a debugger must see a stop; every task is stopped then,
    /// the one that halted is the task at hand. `interrupted` is asked
    /// before each wait.
    pub(crate) fn advance(
        &mut self,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Halt, ReplayError> {
        if let Some(o) = &self.ended {
            return Ok(Halt::End(o.clone()));
        }
        if self.task().t.is_none() {
            return Ok(Halt::End(Outcome::Diverged));
        }
        // The time the debugger held the replay is no stall.
        self.progress = Instant::now();
        if std::mem::take(&mut self.pending_syscall) {
            // Halted before its syscall: it is made now, as it would have
            // been.
            self.passing = true;
            let cur = self.cur;
            let forced = std::mem::take(&mut self.pending_forced);
            let next = self.dispatch(cur, forced)?;
            if let Some(h) = self.halt_of(next) {
                return Ok(h);
            }
        } else if self.task().state == TaskState::Halted {
            let cur = self.cur;
            self.release(cur)?;
        }
        self.run(interrupted)
    }

    /// The recorded tid of the task at hand.
    pub(crate) fn current_tid(&self) -> u32 {
        self.task().rtid
    }

    /// The live threads of the recorded process (its children's are not
    /// the debugger's), by recorded tid, with their tracees.
    pub(crate) fn threads(&self) -> impl Iterator<Item = (u32, &Tracee)> {
        self.tasks.iter().filter_map(|t| match (&t.t, t.state) {
            (_, TaskState::Gone | TaskState::Starting) => None,
            (Some(tr), _) if t.rpid == self.rec.pid => Some((t.rtid, tr)),
            _ => None,
        })
    }

    /// The next event of thread `rtid` (the length when none is left).
    pub(crate) fn thread_position(&self, rtid: u32) -> usize {
        self.by_rtid
            .get(&rtid)
            .map(|&i| self.tasks[i].pos)
            .unwrap_or(self.rec.events.len())
    }

    /// Where thread `rtid` is, in words (for a debugger's thread list).
    pub(crate) fn thread_state(&self, rtid: u32) -> String {
        let Some(t) = self.by_rtid.get(&rtid).map(|&i| &self.tasks[i]) else {
            return "unknown".to_owned();
        };
        let state = match t.state {
            TaskState::Running | TaskState::Halted => "runs",
            TaskState::Starting => "starts",
            TaskState::AtStop => "at its syscall",
            TaskState::Parked(_) => "waits on a futex",
            TaskState::Held(_) => "held after a syscall",
            TaskState::Gone => "ended",
        };
        format!("{state}, next event {}", t.pos)
    }

    /// The tracee of thread `rtid` of the recorded process.
    pub(crate) fn thread(&self, rtid: u32) -> Option<&Tracee> {
        self.threads().find(|&(t, _)| t == rtid).map(|(_, tr)| tr)
    }

    /// Loads [`Self::debug_regs`] into task `i`.
    pub(crate) fn load_debug_regs(&self, i: usize) -> Result<(), ReplayError> {
        let t = &self.tasks[i];
        let Some(tr) = t.t.as_ref().filter(|_| t.rpid == self.rec.pid) else {
            return Ok(());
        };
        for (n, &v) in self.debug_regs[..4].iter().enumerate() {
            tr.set_debug_reg(n, v)?;
        }
        tr.set_debug_reg(7, self.debug_regs[4])
    }

    /// Loads [`Self::debug_regs`] into every thread of the recorded process.
    pub(crate) fn load_debug_regs_all(&self) -> Result<(), ReplayError> {
        for i in 0..self.tasks.len() {
            if !matches!(self.tasks[i].state, TaskState::Gone | TaskState::Starting) {
                self.load_debug_regs(i)?;
            }
        }
        Ok(())
    }

    /// The next recorded syscall, skipping events that need no action.
    fn peek_syscall(&self) -> Option<(usize, &pb::Syscall)> {
        self.own_from(self.pos()).find_map(|(i, e)| match &e.kind {
            Some(pb::event::Kind::Syscall(s)) => Some((i, s)),
            _ => None,
        })
    }

    /// The task at hand's events from index `from`, with their indexes.
    fn own_from(&self, from: usize) -> impl Iterator<Item = (usize, &pb::Event)> {
        let tid = self.task().rtid;
        self.rec
            .events
            .iter()
            .enumerate()
            .skip(from)
            .filter(move |(i, e)| e.tid == tid && !self.done[*i])
    }

    /// The task at hand's last five events before `upto`.
    fn recent(&self, upto: usize) -> Vec<String> {
        let tid = self.task().rtid;
        let mut v: Vec<String> = self.rec.events[..upto.min(self.rec.events.len())]
            .iter()
            .rev()
            .filter(|e| e.tid == tid)
            .take(5)
            .map(tracer_format::line)
            .collect();
        v.reverse();
        v
    }

    fn actual_line(&self, nr: i64, args: &[u64; 6], rec: Option<&pb::Syscall>) -> String {
        let ev = pb::Event {
            pid: self.task().rpid,
            tid: self.task().rtid,
            comm: "replay".into(),
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                nr,
                name: effects::name(nr).unwrap_or("?").into(),
                args: args.to_vec(),
                buffers: memory::actual_inputs(self.t(), nr, args, rec),
                ..Default::default()
            })),
            ..Default::default()
        };
        let line = tracer_format::line(&ev);
        // The result is unknown: the syscall did not run.
        match line.rfind(" = ") {
            Some(i) => format!("{} = ?", &line[..i]),
            None => line,
        }
    }

    /// Stops the replay at a syscall stop: the tracee is left stopped
    /// before that syscall for a debugger (or killed, if asked).
    fn stop_here(
        &mut self,
        outcome: Outcome,
        reason: String,
        expected_at: Option<usize>,
        actual: Option<String>,
    ) -> Result<Next, ReplayError> {
        self.stop(outcome, reason, expected_at, actual, true)
    }

    /// Records why the replay stops at `expected_at` and leaves the tracee
    /// to a debugger: under ours it halts there; otherwise it is detached
    /// stopped (before its syscall when `at_syscall`, else where a signal
    /// stopped it), or killed if asked.
    fn stop(
        &mut self,
        outcome: Outcome,
        reason: String,
        expected_at: Option<usize>,
        actual: Option<String>,
        at_syscall: bool,
    ) -> Result<Next, ReplayError> {
        let index = expected_at.unwrap_or(self.pos());
        self.report.divergence = Some(Divergence {
            event_index: index,
            reason,
            expected: expected_at
                .and_then(|i| self.rec.events.get(i))
                .map(tracer_format::line),
            actual,
            recent: self.recent(index),
        });
        if self.debugger {
            // The debugger looks at it where it is; the report is printed.
            let mut r = self.report.clone();
            r.outcome = outcome.clone();
            eprint!("{}", r.summary());
            self.ended = Some(outcome.clone());
            return Ok(Next::Halt(Halt::End(outcome)));
        }
        if self.rec.is_multi() {
            if self.opts.kill_on_divergence || self.task().rpid != self.rec.pid {
                if !self.opts.kill_on_divergence {
                    self.report.notes.push(
                        "the replay stopped in a child process: it is ended, not left stopped"
                            .to_owned(),
                    );
                }
                self.end_all();
            } else {
                self.leave_root_stopped(at_syscall)?;
            }
            return Ok(Next::Done(outcome));
        }
        if let Some(t) = self.task_mut().t.take() {
            if self.opts.kill_on_divergence || !t.alive() {
                drop(t);
            } else {
                let pid = if at_syscall {
                    t.leave_stopped()?
                } else {
                    t.leave_stopped_at_signal()?
                };
                self.report.stopped_pid = Some(pid.as_raw());
            }
        }
        Ok(Next::Done(outcome))
    }

    fn on_syscall(&mut self) -> Result<Next, ReplayError> {
        let regs = self.t().regs()?;
        let nr = regs.orig_rax as i64;
        let args = args_of(&regs);
        let info = effects::lookup(nr);
        let name = info.map(|i| i.name).unwrap_or("?");
        let slack = self.rec.is_multi();
        // A time call is one of the thread's recorded syscalls when time is
        // exact; otherwise the recording may not have it at all.
        let exact = self.rec.time == crate::recording::TimeReads::Exact;
        if slack
            && (exact || !policy::is_time(name))
            && let Some(next) = self.futex_slack(nr, &args)?
        {
            return Ok(next);
        }
        if let Some(e) = self.rec.events.get(self.pos())
            && let Some(pb::event::Kind::Signal(sig)) = &e.kind
            && is_fault(sig)
            && !policy::is_time(name)
        {
            let actual = self.actual_line(nr, &args, None);
            let sig = tracer_format::signal_name(sig.signo);
            return self.stop_here(
                Outcome::Diverged,
                format!("the program made a syscall ({name}) where its recording faults ({sig})"),
                Some(self.pos()),
                Some(actual),
            );
        }
        if slack
            && exact
            && !policy::is_time(name)
            && self.peek_syscall().is_some_and(|(_, s)| {
                s.nr != nr && policy::is_time(effects::name(s.nr).unwrap_or_default())
            })
        {
            self.time_slack(nr);
        }
        let Some((at, s)) = self.peek_syscall() else {
            return self.beyond_the_end(nr, &args, name);
        };
        let s = s.clone();
        if policy::is_time(name) && !same_time_call(name, &args, &s) {
            return self.answer_time(regs, name);
        }
        if s.nr != nr
            && let Some(j) = self.moved_memory_call(nr, &args)
        {
            return self.make_moved(regs, name, j);
        }
        if s.nr != nr {
            let actual = self.actual_line(nr, &args, None);
            return self.stop_here(
                Outcome::Diverged,
                format!(
                    "the program made a different syscall ({name} instead of {})",
                    effects::name(s.nr).unwrap_or("?")
                ),
                Some(at),
                Some(actual),
            );
        }
        if let Some(i) = info {
            for (k, (arg_name, fmt)) in i.args.iter().enumerate() {
                let (a, b) = (args[k], s.args.get(k).copied().unwrap_or(0));
                // Between threads, the value a futex waits on is what
                // user space saw of a word the others change: the op
                // matched, the recorded result is what counts.
                let unused = !policy::reads_arg(name, k, &args)
                    || policy::time_derived(name, k)
                    || (name == "futex" && k == 2 && slack);
                let differs = !unused
                    && match fmt {
                        ArgFmt::Ptr | ArgFmt::Str | ArgFmt::Buf => false,
                        ArgFmt::Hex if policy::is_address_arg(arg_name) => false,
                        ArgFmt::Hex | ArgFmt::UInt => a != b,
                        _ => a as u32 != b as u32,
                    };
                if differs {
                    let actual = self.actual_line(nr, &args, Some(&s));
                    return self.stop_here(
                        Outcome::Diverged,
                        format!("{name}: argument {k} ({arg_name}) is {a:#x}, recorded {b:#x}"),
                        Some(at),
                        Some(actual),
                    );
                }
            }
        }
        if let Some(m) = memory::compare_inputs(self.t(), nr, &args, &s)?
            && !self.time_explains(name, at, &m, &s, nr, &args)
        {
            let actual = self.actual_line(nr, &args, Some(&s));
            let what = match info.and_then(|i| i.args.get(m.arg as usize)) {
                Some((n, _)) => format!("argument {} ({n})", m.arg),
                None => format!("argument {}", m.arg),
            };
            return self.stop_here(
                Outcome::Diverged,
                format!(
                    "{name}: the memory passed in {what}{} differs from the recording \
                     (first difference at byte {}; {} bytes now, {} recorded)",
                    if m.item > 0 {
                        format!(" item {}", m.item)
                    } else {
                        String::new()
                    },
                    first_difference(&m.expected, &m.actual),
                    m.actual.len(),
                    m.expected.len()
                ),
                Some(at),
                Some(actual),
            );
        }
        if self.stopped_by_filter(at, &s) {
            return self.answer_stopped(regs, &s, at);
        }
        let mut action = policy::action(name, &args);
        if action == Action::Spawn && !self.rec.tids.contains(&(s.ret as u32)) {
            action = if self.clone_flags(name, &args)? & CLONE_THREAD != 0 && s.ret > 0 {
                Action::Unsupported("a thread the recording has no events of")
            } else {
                // A child the bundle does not hold: its fork is answered.
                Action::Emulate
            };
        }
        if let Some(why) = self.incomplete(&s, action) {
            return self.stop_here(Outcome::Incomplete, why, Some(at), None);
        }
        if let Action::Unsupported(what) = action {
            return self.stop_here(
                Outcome::Incomplete,
                format!("{name}: replay cannot do {what} yet"),
                Some(at),
                None,
            );
        }
        self.set_pos(at + 1);
        if name == "shmget" {
            shm::note_shmget(&mut self.shm_segments, &args, s.ret);
        }
        if name == "set_tid_address" {
            let rtid = self.task().rtid;
            self.tid_addrs.insert(rtid, args[0]);
        }
        // A failed syscall is answered, never run: its failure is recorded.
        // But madvise acts range by range: one that failed (MADV_DONTNEED
        // reaching an mlocked page) may have changed memory first, so it
        // runs, and must fail as recorded. And rt_sigreturn does not fail:
        // what it returns is the interrupted syscall's result it restores
        // (EINTR); answered, the program would run on past the restorer's
        // syscall instruction into whatever code follows it.
        let action = if s.ret < 0 && name != "madvise" && action != Action::ExecuteNoReturn {
            Action::Emulate
        } else {
            action
        };
        match action {
            Action::Emulate => self.emulate(regs, name, &args, &s, at)?,
            Action::ExecuteReal if name == "brk" && layout_on() => {
                return self.brk_at_recorded(regs, &args, &s, at);
            }
            Action::ExecuteReal | Action::ExecuteRecorded => {
                let mut r = regs;
                // Not fixed: the kernel chose the address (whatever the
                // hint), so the recorded choice is the hint, taken when free.
                if name == "mmap" && args[3] & MAP_FIXED_ANY == 0 && s.ret > 0 {
                    r.rdi = s.ret as u64;
                }
                self.t().set_regs(r)?;
                let mut done = self.tm().run_syscall()?;
                let real = done.rax as i64;
                self.report.syscalls_executed += 1;
                if (-4095..0).contains(&real) && real != s.ret {
                    return self.stop_here(
                        Outcome::Diverged,
                        format!(
                            "{name} failed when run for real: {} (recorded {})",
                            tracer_format::errno_name(-real as i32),
                            s.ret
                        ),
                        Some(at),
                        None,
                    );
                }
                if action == Action::ExecuteRecorded {
                    done.rax = s.ret as u64;
                    if name == "prlimit64" {
                        memory::write_outputs(self.t(), nr, &args, &s)?;
                    }
                }
                self.t().set_regs(done)?;
                self.timeline_ns = s.exit_ns.max(self.timeline_ns);
                self.after_syscall()?;
            }
            Action::ExecuteNoReturn => {
                self.report.syscalls_executed += 1;
                self.timeline_ns = s.exit_ns.max(self.timeline_ns);
                if name == "exit" && self.leader_among_threads() {
                    return self.leader_exits(args[0] as i32);
                }
                self.after_syscall()?;
            }
            Action::MapFile => return self.map_file(regs, &args, &s, at),
            Action::AttachShm => return self.attach_shm(regs, &args, &s, at),
            Action::DetachShm => return self.detach_shm(regs, &args, &s, at),
            Action::Exec => return self.exec(regs, name, at),
            Action::Spawn => return self.spawn(regs, name, &args, &s, at),
            Action::Unsupported(_) => unreachable!("handled above"),
        }
        Ok(Next::Continue)
    }

    /// `brk`, at the recorded break: the heap is mapped (or unmapped) there
    /// page by page as the recording's break moved, and the program gets
    /// the recorded break. Programs keep heap pointers where the kernel
    /// hands them back (epoll data, timers), so the heap must be where the
    /// recording had it.
    fn brk_at_recorded(
        &mut self,
        regs: user_regs_struct,
        args: &[u64; 6],
        s: &pb::Syscall,
        at: usize,
    ) -> Result<Next, ReplayError> {
        use crate::stack::{MAP_PRIVATE_ANON_FIXED_NOREPLACE, PROT_RW};
        let want = (s.ret as u64).div_ceil(4096) * 4096;
        let end = *self.proc_mut().heap_end.get_or_insert(want);
        let mut r = regs;
        (r.orig_rax, r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = if want > end {
            (
                libc::SYS_mmap as u64,
                end,
                want - end,
                PROT_RW,
                MAP_PRIVATE_ANON_FIXED_NOREPLACE,
                u64::MAX,
                0,
            )
        } else if want < end {
            (libc::SYS_munmap as u64, want, end - want, 0, 0, 0, 0)
        } else {
            // Nothing moves: a syscall without effects in its place.
            (libc::SYS_getpid as u64, 0, 0, 0, 0, 0, 0)
        };
        let expect = if want > end {
            end as i64
        } else if want < end {
            0
        } else {
            -1
        };
        self.t().set_regs(r)?;
        let mut done = self.tm().run_syscall()?;
        self.report.syscalls_executed += 1;
        if expect >= 0 && done.rax as i64 != expect {
            return self.stop_here(
                Outcome::Incomplete,
                format!(
                    "brk: the recorded heap {end:#x}-{want:#x} cannot be mapped here ({})",
                    tracer_format::errno_name((-(done.rax as i64)).clamp(0, 4095) as i32)
                ),
                Some(at),
                None,
            );
        }
        self.proc_mut().heap_end = Some(want);
        // The program's registers as a brk leaves them.
        (done.rdi, done.rsi, done.rdx, done.r10, done.r8, done.r9) =
            (args[0], args[1], args[2], args[3], args[4], args[5]);
        done.orig_rax = s.nr as u64;
        done.rax = s.ret as u64;
        self.t().set_regs(done)?;
        self.timeline_ns = s.exit_ns.max(self.timeline_ns);
        self.after_syscall()?;
        Ok(Next::Continue)
    }

    /// Why a recorded syscall cannot be answered faithfully, if it cannot.
    fn incomplete(&self, s: &pb::Syscall, action: Action) -> Option<String> {
        let name = effects::name(s.nr).unwrap_or("?");
        // A syscall the kernel did not have (ENOSYS: a number it does not
        // know, `syscall(-1)`) touched no memory, whatever the table says.
        const ENOSYS: i64 = -38;
        // A recorded tracer's ptrace calls are answered; one that changed
        // a tracee the replay runs too would have to change it the same.
        if name == "ptrace"
            && s.ret >= 0
            && let (Some(&request), Some(&pid)) = (s.args.first(), s.args.get(1))
            && effects::ptrace_changes_tracee(request)
            && self.rec.tids.contains(&(pid as u32))
        {
            return Some(format!(
                "ptrace request {request:#x} changed process {pid}, which the replay runs: replay does not make that change yet"
            ));
        }
        if s.effects_unknown && s.ret != ENOSYS {
            let mut args = [0u64; 6];
            for (a, v) in args.iter_mut().zip(&s.args) {
                *a = *v;
            }
            // Known syscalls whose command is not: named by the command.
            if let Some(why) = effects::op_unknown(s.nr, &args, s.ret) {
                // The argument that says which: ioctl's request, the
                // command argument of the table's per-command rule.
                let (what, k) = match effects::lookup(s.nr).map(|i| i.effects) {
                    Some(effects::Effects::Known(l)) if name != "ioctl" => (
                        "command",
                        l.iter()
                            .find(|e| e.rule == effects::SizeRule::Cmd)
                            .map_or(0, |e| e.size_arg as usize),
                    ),
                    _ => ("request", 1),
                };
                return Some(format!(
                    "{name} {what} {:#x}: its memory effects are unknown ({why})",
                    args[k % 6]
                ));
            }
            let why = match effects::lookup(s.nr).map(|i| i.effects) {
                Some(effects::Effects::Unknown(w)) => w,
                _ => "the effects table does not know it",
            };
            return Some(format!("{name}: its memory effects are unknown ({why})"));
        }
        // Into itself it wrote its own memory (recorded); into another
        // process, memory replay has no record of and does not write.
        if name == "process_vm_writev"
            && s.ret > 0
            && s.args
                .first()
                .is_some_and(|&p| p != self.task().rpid as u64)
        {
            return Some(format!(
                "process_vm_writev into process {}: replay cannot write another process's \
                 memory",
                s.args[0]
            ));
        }
        if action != Action::Emulate || s.ret < 0 {
            return None;
        }
        let has = |out: bool| {
            matches!(
                effects::lookup(s.nr).map(|i| i.effects),
                Some(effects::Effects::Known(l)) if l.iter().any(|e| if out { e.dir.is_out() } else { e.dir.is_in() })
            )
        };
        let has_outputs = has(true);
        // What it passed was lost: whether the program passes the same
        // cannot be told, so replay does not go on as if it could.
        if s.buffers_lost && has(false) && !has_outputs {
            return Some(format!(
                "{name}: the data it passed was lost while recording (ring buffer full)"
            ));
        }
        if has_outputs && (s.buffers_lost || s.no_payload) {
            return Some(format!(
                "{name}: the data it returned was {} while recording",
                if s.no_payload {
                    "not captured (payload capture was off)"
                } else {
                    "lost (ring buffer full)"
                }
            ));
        }
        if let Some(b) = s
            .buffers
            .iter()
            .find(|b| b.direction == pb::Direction::Out as i32 && (b.truncated || b.fault))
        {
            return Some(format!(
                "{name}: the data it returned in argument {} was {} while recording",
                b.arg,
                if b.fault {
                    "unreadable"
                } else {
                    "cut at the snapshot limit"
                }
            ));
        }
        None
    }

    /// Whether the recorded syscall at `at` never ran: the program's own
    /// seccomp filter stopped it at entry (the kernel records its exit
    /// without an entry), failing it with an errno (`SECCOMP_RET_ERRNO`,
    /// a `RET_TRACE` nobody traced) or trapping it (`SECCOMP_RET_TRAP`:
    /// its SIGSYS is the thread's next event). The filter is not
    /// installed under the replayer (seccomp is answered), so replay
    /// stops the syscall instead.
    fn stopped_by_filter(&self, at: usize, s: &pb::Syscall) -> bool {
        if !s.no_enter || (s.ret == 0 && crate::recording::CLONES.contains(&s.nr)) {
            return false;
        }
        if s.ret < 0 {
            return true;
        }
        matches!(
            self.own_from(at + 1).next().map(|(_, e)| &e.kind),
            Some(Some(pb::event::Kind::Signal(sig)))
                if sig.signo == libc::SIGSYS as u32 && sig.code == SYS_SECCOMP
        )
    }

    /// Answers a syscall the program's seccomp filter stopped: nothing
    /// ran, nothing was written (what the recorder read at its exit is
    /// the program's own memory), the result is the recorded one (an
    /// errno, or for a trap the syscall number the kernel left in rax),
    /// and a trap's SIGSYS follows with the kernel's siginfo.
    fn answer_stopped(
        &mut self,
        mut regs: user_regs_struct,
        s: &pb::Syscall,
        at: usize,
    ) -> Result<Next, ReplayError> {
        self.set_pos(at + 1);
        regs.orig_rax = u64::MAX;
        regs.rax = s.ret as u64;
        self.t().set_regs(regs)?;
        self.report.syscalls_emulated += 1;
        self.report.syscalls_stopped_by_filter += 1;
        self.timeline_ns = s.exit_ns.max(self.timeline_ns);
        let trap = match self.own_from(at + 1).next().map(|(_, e)| &e.kind) {
            Some(Some(pb::event::Kind::Signal(sig)))
                if sig.signo == libc::SIGSYS as u32 && sig.code == SYS_SECCOMP =>
            {
                Some(SeccompTrap {
                    errno: sig.errno,
                    call_addr: sig.addr,
                    syscall: s.nr as i32,
                })
            }
            _ => None,
        };
        if trap.is_some() {
            self.task_mut().sigsys = trap;
        }
        self.after_syscall()?;
        Ok(Next::Continue)
    }

    fn emulate(
        &mut self,
        mut regs: user_regs_struct,
        name: &str,
        args: &[u64; 6],
        s: &pb::Syscall,
        at: usize,
    ) -> Result<(), ReplayError> {
        let t = self.t();
        memory::write_outputs(t, s.nr, args, s)?;
        if s.ret > 0 {
            self.show_output(name, args, s.ret as u64)?;
        }
        let p = self.proc_mut();
        p.fds.apply(name, args, s);
        if let Some(change) = p.made.apply(name, args, s, &p.fds) {
            self.mirror_made(change);
        }
        if matches!(name, "fork" | "vfork" | "clone") && s.ret > 0 {
            self.children.push(s.ret);
        }
        let mut ret = s.ret;
        if RESTART_CODES.contains(&ret) {
            // Interrupted by a signal: restarted (the next recorded syscall
            // is the same one) or failed with EINTR.
            if let Some(nr) = self.restarted_as(at, s)? {
                regs.rax = nr;
                regs.orig_rax = u64::MAX;
                regs.rip -= 2;
                self.t().set_regs(regs)?;
                self.report.syscalls_emulated += 1;
                self.after_syscall()?;
                return Ok(());
            }
            ret = -EINTR;
        }
        regs.orig_rax = u64::MAX;
        regs.rax = ret as u64;
        self.t().set_regs(regs)?;
        self.report.syscalls_emulated += 1;
        self.timeline_ns = s.exit_ns.max(self.timeline_ns);
        self.after_syscall()
    }

    /// The recorded memory syscall of another thread of this process,
    /// not made yet, that the task at hand's syscall (`nr`, `args`, one its
    /// recording does not have here) is: an anonymous `mmap` with the
    /// same length, protection and flags (and hint, if one was given), a
    /// `munmap`, `mprotect` or `madvise` of the same range. Threads share
    /// an allocator's state (glibc's arenas, Go's chunks), and which thread
    /// makes such a call is decided in user space by whichever comes
    /// first, which replay reproduces only at syscall granularity; the
    /// memory it makes is the same.
    fn moved_memory_call(&self, nr: i64, args: &[u64; 6]) -> Option<usize> {
        /// The recorded events looked at: the near future.
        const WINDOW: usize = 4096;
        let name = effects::name(nr)?;
        let compared: &[usize] = match name {
            // An anonymous mapping (fd -1): where the kernel put it is the
            // recorded result.
            "mmap" if args[4] as i32 == -1 && args[3] & MAP_FIXED_ANY == 0 => &[0, 1, 2, 3, 4],
            "munmap" => &[0, 1],
            "mprotect" | "madvise" => &[0, 1, 2],
            _ => return None,
        };
        let (me, rpid) = (self.task().rtid, self.task().rpid);
        let threads: Vec<u32> = self
            .tasks
            .iter()
            .filter(|t| t.rpid == rpid && t.rtid != me && t.state != TaskState::Gone)
            .map(|t| t.rtid)
            .collect();
        let ev = &self.rec.events;
        (self.frontier..ev.len()).take(WINDOW).find(|&i| {
            !self.done[i]
                && threads.contains(&ev[i].tid)
                && matches!(&ev[i].kind, Some(pb::event::Kind::Syscall(s))
                    if s.nr == nr
                        && s.ret >= 0
                        && compared.iter().all(|&k| s.args.get(k) == Some(&args[k])))
        })
    }

    /// The task at hand makes recorded event `j`, another thread's memory
    /// syscall ([`Engine::moved_memory_call`]), for real as recorded; its
    /// own next event stays its next.
    fn make_moved(
        &mut self,
        regs: user_regs_struct,
        name: &str,
        j: usize,
    ) -> Result<Next, ReplayError> {
        let Some(pb::event::Kind::Syscall(s)) = self.rec.events[j].kind.clone() else {
            unreachable!("moved_memory_call finds syscalls")
        };
        let mut r = regs;
        if name == "mmap" {
            r.rdi = s.ret as u64;
        }
        self.t().set_regs(r)?;
        let done = self.tm().run_syscall()?;
        let real = done.rax as i64;
        if real != s.ret {
            return self.stop_here(
                Outcome::Diverged,
                format!(
                    "{name}, which the recording has thread {} make, gave {real:#x} when run \
                     for real (recorded {:#x})",
                    self.rec.events[j].tid, s.ret
                ),
                Some(j),
                None,
            );
        }
        self.t().set_regs(done)?;
        tracing::debug!(
            "task {} makes event {j} ({name}) of thread {}",
            self.task().rtid,
            self.rec.events[j].tid
        );
        self.done[j] = true;
        self.replayed += 1;
        self.progress = Instant::now();
        self.report.syscalls_executed += 1;
        self.report.moved_between_threads += 1;
        self.timeline_ns = s.exit_ns.max(self.timeline_ns);
        self.resume(None)?;
        Ok(Next::Continue)
    }

    /// The syscall number the kernel restarts the interrupted syscall `s`
    /// (at `at`) with, if it does: the same one (or `restart_syscall` after
    /// a sleep cut short) as the thread's next syscall, after the
    /// handlers of the signals that came between have returned. A handler
    /// runs first and the syscall restarts at its `rt_sigreturn`, so the
    /// handler's own syscalls are not the restart.
    fn restarted_as(&self, at: usize, s: &pb::Syscall) -> Result<Option<u64>, ReplayError> {
        const NR_RT_SIGRETURN: i64 = 15;
        const NR_RESTART_SYSCALL: i64 = 219;
        const ERESTART_RESTARTBLOCK: i64 = -516;
        // Read from the kernel only once a signal comes.
        let mut caught = None;
        let mut handlers = 0usize;
        for (_, e) in self.own_from(at + 1) {
            match &e.kind {
                Some(pb::event::Kind::Signal(sig)) if (1..=64).contains(&sig.signo) => {
                    let mask = match caught {
                        Some(m) => m,
                        None => *caught.insert(self.caught_signals()?),
                    };
                    if mask & (1 << (sig.signo - 1)) != 0 {
                        handlers += 1;
                    }
                }
                Some(pb::event::Kind::Syscall(n)) if handlers == 0 => {
                    let again = if s.ret == ERESTART_RESTARTBLOCK {
                        n.nr == NR_RESTART_SYSCALL
                    } else {
                        n.nr == s.nr
                    };
                    return Ok(again.then_some(n.nr as u64));
                }
                Some(pb::event::Kind::Syscall(n)) if n.nr == NR_RT_SIGRETURN => handlers -= 1,
                _ => {}
            }
        }
        Ok(None)
    }

    /// The signals the task at hand's process has handlers for (bit
    /// `signo - 1`): the replay runs `rt_sigaction` for real, so the
    /// kernel's own view is the recorded one.
    fn caught_signals(&self) -> Result<u64, ReplayError> {
        let pid = self.t().pid;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| ReplayError::Io(format!("reading /proc/{pid}/status: {e}")))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .ok_or_else(|| ReplayError::Io(format!("no SigCgt in /proc/{pid}/status")))
    }

    /// Whether the difference `m` in what the program passes to `name` is
    /// one that approximate times explain: data written out (never a
    /// syscall, path or request of another kind), after the program read
    /// times the recording does not hold, and not `--strict`. Such a place
    /// is reported, and the recorded data is what is shown.
    fn time_explains(
        &mut self,
        name: &str,
        at: usize,
        m: &memory::InputMismatch,
        s: &pb::Syscall,
        nr: i64,
        args: &[u64; 6],
    ) -> bool {
        if self.opts.strict
            || self.report.time_calls_from_timeline == 0
            || !policy::writes_data_out(name)
        {
            return false;
        }
        let replayed = Some(self.actual_line(nr, args, Some(s)));
        self.report.time_differences.push(TimeDifference {
            event_index: at,
            syscall: name.to_owned(),
            arg: m.arg,
            item: m.item,
            first_byte: first_difference(&m.expected, &m.actual),
            bytes_now: m.actual.len(),
            bytes_recorded: m.expected.len(),
            recorded: self.rec.events.get(at).map(tracer_format::line),
            replayed,
        });
        self.show_recorded = Some(recorded_output(s));
        true
    }

    /// What the program writes to its stdout and stderr, shown as it replays.
    fn show_output(&mut self, name: &str, args: &[u64; 6], n: u64) -> Result<(), ReplayError> {
        let recorded = self.show_recorded.take();
        let fd_arg = match name {
            _ if policy::writes_data_out(name) => args[0],
            "sendfile" | "splice" | "copy_file_range" | "tee" => {
                let out = if name == "sendfile" { args[0] } else { args[2] };
                if matches!(self.fds().get(out as i64), Fd::Stdout | Fd::Stderr) {
                    self.kernel_copies += n;
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let which = self.fds().get(fd_arg as i64);
        if self.opts.quiet || !matches!(which, Fd::Stdout | Fd::Stderr) {
            return Ok(());
        }
        let t = self.t();
        let data = match name {
            _ if recorded.is_some() => recorded.unwrap_or_default(),
            "writev" | "pwritev" | "pwritev2" => {
                let mut out = Vec::new();
                for i in 0..args[2].min(1024) {
                    if out.len() as u64 >= n {
                        break;
                    }
                    let base = t.read_u64(args[1] + 16 * i)?;
                    let len = t.read_u64(args[1] + 16 * i + 8)?;
                    let take = len.min(n - out.len() as u64) as usize;
                    out.extend(t.read(base, take)?);
                }
                out
            }
            _ => t.read(args[1], n as usize)?,
        };
        let r = if which == Fd::Stdout {
            let mut o = std::io::stdout().lock();
            o.write_all(&data).and_then(|_| o.flush())
        } else {
            let mut o = std::io::stderr().lock();
            o.write_all(&data).and_then(|_| o.flush())
        };
        // A closed terminal or pipe does not stop the replay.
        if let Err(e) = r {
            tracing::debug!("showing the program's output: {e}");
        }
        Ok(())
    }

    /// A file-backed mmap: an anonymous mapping of the same shape, filled
    /// with the recorded file's bytes (the bundle's copy).
    fn map_file(
        &mut self,
        regs: user_regs_struct,
        args: &[u64; 6],
        s: &pb::Syscall,
        at: usize,
    ) -> Result<Next, ReplayError> {
        let path = match self.fds().get(args[4] as i64) {
            Fd::File(p) => p,
            _ => {
                return self.stop_here(
                    Outcome::Incomplete,
                    format!(
                        "mmap of fd {}: the recording does not say which file it is",
                        args[4] as i64
                    ),
                    Some(at),
                    None,
                );
            }
        };
        let zero = path == "/dev/zero";
        let local;
        let made = self
            .proc_mut()
            .made
            .contents(&path)
            .map(|(d, len)| (d.to_vec(), len));
        let mut made_len = None;
        let data: &[u8] = match if fds::is_memfd(&path) {
            None
        } else {
            self.rec.file(&path)?
        } {
            Some(d) => d,
            // Made by the program (and gone since): as the recording
            // shows it made it, never this machine's file of that name.
            None if made.is_some() => {
                let (d, len) = made.unwrap_or_default();
                let note = format!(
                    "mapped {path} as the program made it (created empty, then sized and written as recorded)"
                );
                if !self.report.notes.contains(&note) {
                    self.report.notes.push(note);
                }
                made_len = Some(len);
                local = d;
                &local
            }
            None if fds::is_memfd(&path) => {
                return self.stop_here(
                    Outcome::Incomplete,
                    format!(
                        "mmap of {path}: what it holds was changed in a way replay does not follow"
                    ),
                    Some(at),
                    None,
                );
            }
            // A private mapping of /dev/zero is anonymous memory, a shared
            // one shared anonymous memory: what the mmap below makes.
            None if zero => &[],
            None if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) => {
                return self.stop_here(
                    Outcome::Incomplete,
                    format!(
                        "mmap of {path}: a device or special file, whose memory the recording \
                         does not hold"
                    ),
                    Some(at),
                    None,
                );
            }
            None => match std::fs::read(&path) {
                Ok(d) => {
                    self.report.notes.push(format!(
                        "mapped {path} from this machine (the bundle has no copy)"
                    ));
                    local = d;
                    &local
                }
                Err(e) => {
                    return self.stop_here(
                        Outcome::Incomplete,
                        format!("mmap of {path}: the bundle has no copy and this machine's file cannot be read ({e})"),
                        Some(at),
                        None,
                    );
                }
            },
        };
        let mut r = regs;
        let mut flags = args[3] | policy::MAP_ANONYMOUS;
        if made_len.is_some() {
            // A placeholder for the copy mapped over it: never charged
            // (a memfd sized to a TiB and mapped whole is fine for the
            // kernel, a TiB of anonymous memory is not).
            flags |= MAP_NORESERVE;
        }
        if flags & MAP_TYPE != MAP_PRIVATE && args[2] & PROT_WRITE == 0 {
            // Read-only shared: the same to the program, and writable by
            // the replayer.
            flags = (flags & !MAP_TYPE) | MAP_PRIVATE;
        }
        r.r10 = flags;
        r.r8 = u64::MAX;
        r.r9 = 0;
        // Not fixed: the recorded choice is the hint.
        if args[3] & MAP_FIXED_ANY == 0 {
            r.rdi = s.ret as u64;
        }
        self.t().set_regs(r)?;
        let mut done = self.tm().run_syscall()?;
        let addr = done.rax as i64;
        if (-4095..0).contains(&addr) {
            return self.stop_here(
                Outcome::Diverged,
                format!(
                    "mmap of {path} failed when run for real: {}",
                    tracer_format::errno_name(-addr as i32)
                ),
                Some(at),
                None,
            );
        }
        let backed = if zero {
            Ok(true)
        } else {
            self.back_with_file(addr as u64, args, &path, data, made_len)
        };
        match backed {
            Ok(true) => {}
            Ok(false) => {
                let off = (args[5] as usize).min(data.len());
                let end = off.saturating_add(args[1] as usize).min(data.len());
                self.t().write(addr as u64, &data[off..end])?;
            }
            Err(why) => {
                return self.stop_here(
                    Outcome::Incomplete,
                    format!("mmap of {path}: {why}"),
                    Some(at),
                    None,
                );
            }
        }
        // The registers the program passed, with the real address.
        done.rdi = args[0];
        done.r10 = args[3];
        done.r8 = args[4];
        done.r9 = args[5];
        self.t().set_regs(done)?;
        self.ran_for(s, at)
    }

    /// The bookkeeping after a syscall the replay ran in place of the
    /// recorded one `s` at `at` (its registers already set).
    fn ran_for(&mut self, s: &pb::Syscall, at: usize) -> Result<Next, ReplayError> {
        self.set_pos(at + 1);
        self.report.syscalls_executed += 1;
        self.timeline_ns = s.exit_ns.max(self.timeline_ns);
        self.after_syscall()?;
        Ok(Next::Continue)
    }

    /// Puts a file with the recorded content under the mapping at `addr`
    /// (made anonymous): the kernel then does what it does to a file
    /// mapping (`MADV_DONTNEED` of a private one brings the file's bytes
    /// back, a shared one is shared with every process that maps it).
    /// The copy lives in the replay's directory; the tracee opens it
    /// through its scratch page. `Ok(false)` when that cannot be done here
    /// (no scratch page or stub yet: the mapping keeps the bytes written
    /// into it); `Err` when the mapping was replaced and then failed.
    fn back_with_file(
        &mut self,
        addr: u64,
        args: &[u64; 6],
        path: &str,
        data: &[u8],
        made_len: Option<u64>,
    ) -> Result<bool, String> {
        const O_RDWR: u64 = 2;
        const O_CLOEXEC: u64 = 0o2000000;
        const MAP_FIXED: u64 = 0x10;
        const MAP_FIXED_NOREPLACE: u64 = 0x100000;
        let (Some(stub), Some(scratch), Some(dir)) = (
            self.stub,
            self.proc_mut().scratch,
            self.dir.as_ref().map(|d| d.path().to_path_buf()),
        ) else {
            return Ok(false);
        };
        // Named by content: the bundle's digest of its copy (no hashing of
        // the whole file at each of the loader's several mappings of it),
        // else a hash of what the program made.
        let copy = match (made_len, self.rec.file_digest(path)) {
            // One copy per file the program made, kept as it changes it
            // (`mirror_made`): every mapping of it shares its pages.
            (Some(_), _) => made_copy(&dir, path),
            (None, Some(sha)) => dir.join(format!("mapped-{sha}")),
            (None, None) => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (path, data).hash(&mut h);
                dir.join(format!("mapped-{:016x}", h.finish()))
            }
        };
        // One copy per file content (mappings of one file are of one
        // inode, as the kernel needs to merge them), at least as long as
        // every mapping of it: the program may have grown the file under
        // it since (writes the replay answers do not reach the copy), and
        // a page past the copy's end would be a SIGBUS the recording does
        // not have.
        let want = args[5].saturating_add(args[1]);
        if !copy.exists() {
            let made = std::fs::write(&copy, data).and_then(|()| match made_len {
                // Sized as the program sized it: a hole past its bytes.
                Some(len) if len > data.len() as u64 => std::fs::OpenOptions::new()
                    .write(true)
                    .open(&copy)
                    .and_then(|f| f.set_len(len)),
                _ => Ok(()),
            });
            if made.is_err() {
                let _ = std::fs::remove_file(&copy);
                return Ok(false);
            }
        }
        let len = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
        if len < want && want - len <= 1 << 30 {
            let grown = std::fs::OpenOptions::new()
                .write(true)
                .open(&copy)
                .and_then(|f| f.set_len(want));
            if grown.is_err() {
                return Ok(false);
            }
        }
        let mut name = copy.as_os_str().as_bytes().to_vec();
        name.push(0);
        if name.len() > 4096 || self.t().write(scratch, &name).is_err() {
            return Ok(false);
        }
        let shared_write = args[3] & MAP_TYPE != MAP_PRIVATE && args[2] & PROT_WRITE != 0;
        let mode = if shared_write { O_RDWR } else { 0 } | O_CLOEXEC;
        let t = self.tm();
        let fd = t
            .inject(
                stub,
                libc::SYS_openat,
                [(-100i64) as u64, scratch, mode, 0, 0, 0],
            )
            .map_err(|e| e.to_string())?;
        if fd < 0 {
            return Ok(false);
        }
        let flags = (args[3] | MAP_FIXED) & !MAP_FIXED_NOREPLACE;
        let got = t.inject(
            stub,
            libc::SYS_mmap,
            [addr, args[1], args[2], flags, fd as u64, args[5]],
        );
        let _ = t.inject(stub, libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
        match got {
            Ok(a) if a as u64 == addr => Ok(true),
            Ok(a) => Err(format!(
                "mapping the recorded copy at {addr:#x} failed: {}",
                tracer_format::errno_name(-a as i32)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A change the program made to a file it made, as the recording
    /// shows it, applied to the copy its mappings share (if it was mapped):
    /// the kernel would have changed their pages.
    fn mirror_made(&mut self, change: made::Change) {
        let Some(dir) = self.dir.as_ref().map(|d| d.path().to_path_buf()) else {
            return;
        };
        let path = match &change {
            made::Change::Wrote { path, .. } | made::Change::Sized { path, .. } => path.clone(),
        };
        let copy = made_copy(&dir, &path);
        if !copy.exists() {
            return;
        }
        let done = std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .and_then(|f| match change {
                made::Change::Sized { len, .. } => f.set_len(len),
                made::Change::Wrote { at, len, .. } => {
                    use std::os::unix::fs::FileExt as _;
                    let bytes = self
                        .proc_mut()
                        .made
                        .contents(&path)
                        .and_then(|(d, _)| d.get(at as usize..(at + len) as usize))
                        .unwrap_or_default()
                        .to_vec();
                    f.write_all_at(&bytes, at)
                }
            });
        if let Err(e) = done {
            self.report.notes.push(format!(
                "{path}: its mappings miss a change the program made ({e})"
            ));
        }
    }

    /// The next stop of the thread running an exec. The kernel ends the
    /// process's other threads first, and each of them, traced, stops on
    /// its way out until resumed: they are resumed and reaped meanwhile,
    /// else the exec would wait for them forever.
    fn wait_exec(&mut self) -> Result<Stop, ReplayError> {
        use nix::sys::wait::{WaitPidFlag, waitpid};
        let me = self.cur;
        let tgid = self.t().tgid;
        if !self.tasks.iter().enumerate().any(|(i, k)| {
            i != me && k.state != TaskState::Gone && k.t.as_ref().is_some_and(|t| t.tgid == tgid)
        }) {
            return self.tm().wait();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut ended = Vec::new();
        let stop = loop {
            for (i, k) in self.tasks.iter_mut().enumerate() {
                if i == me || k.state == TaskState::Gone {
                    continue;
                }
                let Some(t) = k.t.as_mut().filter(|t| t.tgid == tgid) else {
                    continue;
                };
                match waitpid(t.pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => {}
                    Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => {
                        t.forget();
                        k.state = TaskState::Gone;
                        ended.push(i);
                    }
                    // A stop on its way out.
                    Ok(_) => t.cont(None)?,
                }
            }
            let pid = self.t().pid;
            match waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(st) => break self.tm().stopped(st),
                Err(e) => return Err(ReplayError::Ptrace(format!("waitpid {pid}: {e}"))),
            }
            if std::time::Instant::now() > deadline {
                return Err(ReplayError::Ptrace(format!(
                    "the exec of thread {pid} did not complete in 30 s"
                )));
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        };
        // Their recordings end as the exec ended them (as a thread another's
        // exit ends: `task_ended`'s rule). Anything more is replayed as a
        // divergence later, at the end of the recording.
        let me = self.cur;
        for i in ended {
            self.cur = i;
            if self.syscalls_left_at_end().is_none() {
                let len = self.rec.events.len();
                self.set_pos(len);
            }
        }
        self.cur = me;
        Ok(stop)
    }

    /// An exec after the start: run for real, of the bundle's copy of the
    /// program the recording exec'd.
    fn exec(
        &mut self,
        mut regs: user_regs_struct,
        name: &str,
        at: usize,
    ) -> Result<Next, ReplayError> {
        // The exec record comes just before its execve's syscall record.
        let tid = self.task().rtid;
        // (A non-leader thread's exec record is the leader's, naming it.)
        let recorded = self.rec.events[..at]
            .iter()
            .rev()
            .filter(|e| {
                e.tid == tid
                    || matches!(&e.kind, Some(pb::event::Kind::Exec(x)) if x.old_tid == tid)
            })
            .take_while(|e| !matches!(e.kind, Some(pb::event::Kind::Syscall(_))))
            .find_map(|e| match &e.kind {
                Some(pb::event::Kind::Exec(x)) => Some((e.tid, x.clone())),
                _ => None,
            });
        let recorded = recorded.map(|(_, x)| x);
        let Some(x) = recorded else {
            return self.stop_here(
                Outcome::Incomplete,
                format!("{name}: the recording has no exec event for it"),
                Some(at),
                None,
            );
        };
        // A `#!` script: the interpreter is run, with the argv the kernel
        // built for it (the recorded one), as the kernel did.
        let interpreter = self.rec.script_interpreter(&x.filename, &x.argv);
        let mut program = interpreter.clone().unwrap_or_else(|| x.filename.clone());
        // fexecve: execveat(fd, "", AT_EMPTY_PATH) runs the file the fd is.
        let mut made = None;
        if name == "execveat" && x.filename.is_empty() {
            match self.exec_fd_program(at) {
                Some(FdProgram::Path(p)) => program = p,
                Some(FdProgram::Made(bytes)) => made = Some(bytes),
                None => {}
            }
        }
        let from_bundle = match &made {
            Some(bytes) => Some(bytes.as_slice()),
            None => self.rec.file(&program)?,
        };
        let path = match from_bundle {
            Some(bytes) => {
                self.execs += 1;
                let dir = self
                    .dir
                    .as_ref()
                    .map(|d| d.path().to_path_buf())
                    .unwrap_or_default();
                write_program(&dir.join(format!("exec-{}", self.execs)), bytes)?
            }
            None if program.starts_with('/') && Path::new(&program).is_file() => {
                self.report.notes.push(format!(
                    "the bundle has no copy of {program}; this machine's file was run"
                ));
                program.clone().into()
            }
            None => {
                return self.stop_here(
                    Outcome::Incomplete,
                    format!("{name} of {program:?}: the bundle has no copy of it"),
                    Some(at),
                    None,
                );
            }
        };
        let Some(scratch) = self.proc_mut().scratch else {
            return self.stop_here(
                Outcome::Incomplete,
                format!("{name}: no scratch memory in the program to pass the path"),
                Some(at),
                None,
            );
        };
        let mut bytes = path.as_os_str().as_bytes().to_vec();
        bytes.push(0);
        let argv_at = match interpreter {
            Some(_) => match argv_block(scratch, bytes.len(), &x.argv) {
                Some((at, block)) => {
                    bytes.extend(block);
                    Some(at)
                }
                None => {
                    return self.stop_here(
                        Outcome::Incomplete,
                        format!(
                            "{name} of the script {:?}: its argv is larger than the \
                             replayer's scratch page",
                            x.filename
                        ),
                        Some(at),
                        None,
                    );
                }
            },
            None => None,
        };
        if bytes.len() > 4096 {
            return Err(ReplayError::Io(format!(
                "{}: path too long",
                path.display()
            )));
        }
        self.t().write(scratch, &bytes)?;
        if name == "execveat" {
            regs.rdi = (-100i64) as u64; // AT_FDCWD
            regs.rsi = scratch;
            regs.r8 &= !0x1000; // AT_EMPTY_PATH
            if let Some(a) = argv_at {
                regs.rdx = a;
            }
        } else {
            regs.rdi = scratch;
            if let Some(a) = argv_at {
                regs.rsi = a;
            }
        }
        self.t().set_regs(regs)?;
        self.t().cont(None)?;
        loop {
            match self.wait_exec()? {
                Stop::Other => break,
                Stop::Syscall => {
                    return self.stop_here(
                        Outcome::Diverged,
                        format!("{name} of {} failed in replay", path.display()),
                        Some(at),
                        None,
                    );
                }
                Stop::Exited(code) => {
                    return Ok(Next::Done(self.on_end(Outcome::Exited { code })));
                }
                Stop::Killed(sig, _) => {
                    return Ok(Next::Done(
                        self.on_end(Outcome::Killed { signal: sig as i32 }),
                    ));
                }
                Stop::Signal(_) | Stop::SyscallExit => self.t().cont(None)?,
            }
        }
        self.tm().reopen_mem()?;
        self.report.syscalls_executed += 1;
        self.set_pos(at + 1);
        self.prepare_image(x.arg_start, &x.auxv)?;
        if self.task().rpid == self.rec.pid {
            self.report.program = x.filename.clone();
        }
        self.after_syscall()?;
        Ok(Next::Continue)
    }

    /// What an `execveat(fd, "", AT_EMPTY_PATH)` at `at` runs: the file the
    /// fd was opened on (the process's own program for `/proc/self/exe`),
    /// or what the program wrote into a file it made (a memfd).
    fn exec_fd_program(&mut self, at: usize) -> Option<FdProgram> {
        const AT_EMPTY_PATH: u64 = 0x1000;
        let Some(pb::event::Kind::Syscall(s)) = &self.rec.events.get(at)?.kind else {
            return None;
        };
        if s.args.get(4).is_none_or(|f| f & AT_EMPTY_PATH == 0) {
            return None;
        }
        let fd = *s.args.first()? as i64;
        let Fd::File(path) = self.fds().get(fd) else {
            return None;
        };
        // (Empty: the exec succeeded, so something the model does not
        // follow, a bind mount over it, put a program there.)
        if let Some((data, len)) = self.proc_mut().made.contents(&path)
            && len != 0
        {
            if len != data.len() as u64 {
                return None; // a hole in a program: not one replay runs
            }
            return Some(FdProgram::Made(data.to_vec()));
        }
        let rpid = self.task().rpid;
        if path == "/proc/self/exe" || path == format!("/proc/{rpid}/exe") {
            // The program this process runs: its previous exec's.
            return self.rec.events[..at]
                .iter()
                .rev()
                .filter(|e| e.pid == rpid)
                .filter_map(|e| match &e.kind {
                    Some(pb::event::Kind::Exec(x)) if !x.filename.is_empty() => {
                        Some(x.filename.clone())
                    }
                    _ => None,
                })
                .next()
                .map(FdProgram::Path);
        }
        Some(FdProgram::Path(path))
    }

    /// Recorded signals that come next are sent now (they are delivered
    /// before the program's next syscall); then the program resumes.
    fn after_syscall(&mut self) -> Result<(), ReplayError> {
        while let Some(e) = self.rec.events.get(self.pos()) {
            match &e.kind {
                Some(pb::event::Kind::Signal(sig))
                    if sig.signo == libc::SIGKILL as u32
                        && self.exit_of_process().is_some_and(|x| x.signal == 0) =>
                {
                    // The kernel's kill of a thread (its leader too) when
                    // another exits the group (the process exited with a
                    // status): the replay's exit_group does it again.
                    // Sending it now would end the whole process before
                    // its time.
                    let p = self.pos();
                    self.set_pos(p + 1);
                }
                // The program's own fault (a JVM's deliberate null read,
                // a guard page): it makes it again itself, where it made
                // it; sending it now would put it after this syscall.
                Some(pb::event::Kind::Signal(sig)) if is_fault(sig) => break,
                Some(pb::event::Kind::Signal(sig)) => {
                    // A fatal signal's delivery is seen as SIGKILL (the
                    // kernel's group exit); the exit says which it was.
                    let mut signo = sig.signo as i32;
                    if signo == libc::SIGKILL
                        && let Some(x) = self.exit_of_process()
                        && x.signal != 0
                    {
                        signo = x.signal as i32;
                    }
                    if let Ok(s) = Signal::try_from(signo) {
                        self.t().kill(s)?;
                        if s == Signal::SIGKILL {
                            // Not stoppable: the next wait sees the death.
                            let p = self.pos();
                            self.set_pos(p + 1);
                            return self.resume(None);
                        }
                        self.task_mut().pending_signals.push(s);
                    }
                    let p = self.pos();
                    self.set_pos(p + 1);
                }
                Some(pb::event::Kind::Syscall(_)) | Some(pb::event::Kind::Exit(_)) => break,
                // Fork records, and the like.
                _ => {
                    let p = self.pos();
                    self.set_pos(p + 1);
                }
            }
        }
        // Died by a signal the recorder did not see delivered (SIGKILL):
        // once the recorded syscalls are done, it dies the same way.
        if self.peek_syscall().is_none()
            && self.task().pending_signals.is_empty()
            && self.task().rtid == self.rec.pid
            && let Some(x) = self.rec.exit
            && x.signal != 0
            && let Ok(s) = Signal::try_from(x.signal as i32)
        {
            self.t().kill(s)?;
            self.task_mut().pending_signals.push(s);
        }
        self.resume(None)
    }

    fn on_signal(&mut self, sig: Signal) -> Result<Next, ReplayError> {
        if let Some(i) = self.task().pending_signals.iter().position(|&s| s == sig) {
            self.task_mut().pending_signals.remove(i);
            if sig == Signal::SIGSYS
                && let Some(trap) = self.task_mut().sigsys.take()
            {
                // Sent by tgkill, it would say SI_TKILL and the
                // replayer's pid: the handler reads the trapped call.
                self.t()
                    .set_seccomp_siginfo(trap.errno, trap.call_addr, trap.syscall)?;
            }
            self.report.signals_delivered += 1;
            self.resume(Some(sig))?;
            return Ok(Next::Continue);
        }
        if self.debugger && sig == Signal::SIGTRAP {
            return Ok(Next::Halt(if self.stepping == Some(self.task().rtid) {
                Halt::Step
            } else {
                Halt::Trap
            }));
        }
        let recorded = match self.rec.events.get(self.pos()).map(|e| &e.kind) {
            Some(Some(pb::event::Kind::Signal(s))) if s.signo == sig as u32 => Some(*s),
            _ => None,
        };
        // A program that traps its own rdtsc (PR_SET_TSC) got that SIGSEGV
        // (SI_KERNEL) when recorded: it gets it again.
        if sig == Signal::SIGSEGV
            && recorded.is_none_or(|s| s.code != SI_KERNEL)
            && let Some(next) = self.answer_tsc()?
        {
            return Ok(next);
        }
        let synchronous =
            tracer_common::wire::FAULT_SIGNALS.contains(&(sig as u32)) || sig == Signal::SIGSYS;
        if !synchronous {
            // Not from the recording (job control, a terminal): ignored.
            self.resume(None)?;
            return Ok(Next::Continue);
        }
        if let Some(s) = recorded {
            let (code, addr) = self.t().siginfo()?;
            // A fault is the same fault at the same address (a bundle made
            // before addresses were recorded has 0).
            if is_fault(&s) && code > 0 && s.addr != 0 && addr != s.addr {
                let rip = self.t().regs()?.rip;
                let at = self.pos();
                return self.stop(
                    Outcome::Diverged,
                    format!(
                        "the program got {sig} for address {addr:#x} (at {rip:#x}); its \
                         recording faulted at {:#x}",
                        s.addr
                    ),
                    Some(at),
                    None,
                    false,
                );
            }
            let p = self.pos();
            self.set_pos(p + 1);
            self.report.signals_delivered += 1;
            self.resume(Some(sig))?;
            return Ok(Next::Continue);
        }
        let rip = self.t().regs()?.rip;
        let at = self.peek_syscall().map(|(i, _)| i);
        self.stop(
            Outcome::Diverged,
            format!("the program got {sig} at {rip:#x}, which the recording does not have"),
            at,
            None,
            false,
        )
    }

    /// A syscall after the last recorded one.
    fn beyond_the_end(
        &mut self,
        nr: i64,
        args: &[u64; 6],
        name: &str,
    ) -> Result<Next, ReplayError> {
        let regs = self.t().regs()?;
        if policy::is_time(name) {
            return self.answer_time(regs, name);
        }
        let actual = Some(self.actual_line(nr, args, None));
        let (outcome, why) = if let Some(cut) = &self.rec.cut {
            (
                Outcome::Incomplete,
                format!("the recording ends here: {cut}"),
            )
        } else if self.rec.lost {
            (
                Outcome::Incomplete,
                "the recording ends here: events of this process were lost while recording"
                    .to_owned(),
            )
        } else if self.rec.exit.is_none() {
            (
                Outcome::Incomplete,
                "the recording ends here: the process was still running when it was fetched"
                    .to_owned(),
            )
        } else {
            (
                Outcome::Diverged,
                "the program made a syscall after the end of its recording".to_owned(),
            )
        };
        self.stop_here(outcome, why, None, actual)
    }

    /// A point of the recorded timeline for a time read the recording does
    /// not have: just after the last replayed event (or read), strictly
    /// increasing, and before the next recorded syscall where there is room.
    fn advance_timeline(&mut self) -> u64 {
        let limit = self
            .peek_syscall()
            .map(|(_, s)| s.enter_ns.saturating_sub(1))
            .filter(|&l| l > self.timeline_ns);
        let mut now = self.timeline_ns + 1_000;
        if let Some(l) = limit {
            now = now.min(l);
        }
        self.timeline_ns = now.max(self.timeline_ns + 1);
        self.timeline_ns
    }

    /// The program executed `rdtsc` or `rdtscp`, which the replay traps
    /// (`PR_SET_TSC`): no recording has its value, so it is answered with
    /// the recording host's counter at this point of the recorded timeline
    /// (every replay the same). `None`: this SIGSEGV is something else.
    fn answer_tsc(&mut self) -> Result<Option<Next>, ReplayError> {
        let (code, _) = self.t().siginfo()?;
        if code != SI_KERNEL {
            return Ok(None);
        }
        let mut regs = self.t().regs()?;
        let Ok(insn) = self.t().read(regs.rip, 3) else {
            return Ok(None);
        };
        let len = match insn.as_slice() {
            [0x0f, 0x31, ..] => 2,
            [0x0f, 0x01, 0xf9] => 3,
            _ => return Ok(None),
        };
        let ns = self.advance_timeline() as i128;
        let (khz, at_zero) = self.rec.tsc();
        let counter = if khz == 0 {
            ns // not known: one tick a nanosecond
        } else {
            at_zero as i128 + ns * khz as i128 / 1_000_000
        };
        let value = (counter.max(0) as u64).max(self.last_tsc + 1);
        self.last_tsc = value;
        regs.rax = value & 0xffff_ffff;
        regs.rdx = value >> 32;
        if len == 3 {
            regs.rcx = 0; // IA32_TSC_AUX: CPU 0, node 0, as getcpu is answered
        }
        regs.rip += len;
        self.t().set_regs(regs)?;
        self.report.tsc_reads += 1;
        self.resume(None)?;
        Ok(Some(Next::Continue))
    }

    /// Answers a time call the recording saw through the vDSO, from the
    /// recorded timeline: just after the last replayed event, strictly
    /// increasing, and before the next recorded one.
    fn answer_time(&mut self, mut regs: user_regs_struct, name: &str) -> Result<Next, ReplayError> {
        let args = args_of(&regs);
        let mono = self.advance_timeline() as i128;
        let real = mono + self.rec.realtime_offset_ns() as i128;
        let value = |clock: u64| -> i128 {
            match clock {
                0 | 5 => real,                            // REALTIME, REALTIME_COARSE
                11 => real + 37_000_000_000,              // TAI
                2 | 3 => mono - self.rec.exec_ns as i128, // CPU time: since the exec
                _ => mono,                                // MONOTONIC, _RAW, _COARSE, BOOTTIME
            }
        };
        let t = self.t();
        let ret: i64 = match name {
            "clock_gettime" => {
                let v = value(args[0]);
                let ts = two_words((v / 1_000_000_000) as i64, (v % 1_000_000_000) as i64);
                if args[1] != 0 {
                    t.write(args[1], &ts)?;
                }
                0
            }
            "gettimeofday" => {
                if args[0] != 0 {
                    let tv = two_words(
                        (real / 1_000_000_000) as i64,
                        ((real % 1_000_000_000) / 1000) as i64,
                    );
                    t.write(args[0], &tv)?;
                }
                if args[1] != 0 {
                    t.write(args[1], &[0; 8])?;
                }
                0
            }
            "clock_getres" => {
                // Not a time but a property of the clock: this host's
                // kernel answers it as the recording host's did (1 ns for
                // the high-resolution clocks, the tick for the coarse ones).
                let mut res = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: a valid out-parameter; an invalid clock id fails.
                let r = unsafe { libc::clock_getres(args[0] as libc::clockid_t, &mut res) };
                if r != 0 {
                    -(std::io::Error::last_os_error().raw_os_error().unwrap_or(22) as i64)
                } else {
                    if args[1] != 0 {
                        t.write(args[1], &two_words(res.tv_sec, res.tv_nsec))?;
                    }
                    0
                }
            }
            "time" => {
                let secs = (real / 1_000_000_000) as i64;
                if args[0] != 0 {
                    t.write(args[0], &secs.to_le_bytes())?;
                }
                secs
            }
            _ => {
                // getcpu: CPU 0, node 0.
                for a in [args[0], args[1]] {
                    if a != 0 {
                        t.write(a, &0u32.to_le_bytes())?;
                    }
                }
                0
            }
        };
        regs.orig_rax = u64::MAX;
        regs.rax = ret as u64;
        t.set_regs(regs)?;
        self.report.time_calls_from_timeline += 1;
        self.resume(None)?;
        Ok(Next::Continue)
    }

    /// The tracee ended: as recorded, or not.
    fn on_end(&mut self, outcome: Outcome) -> Outcome {
        let recorded = self.rec.exit.map(|x| {
            if x.signal != 0 {
                Outcome::Killed {
                    signal: x.signal as i32,
                }
            } else {
                Outcome::Exited { code: x.exit_code }
            }
        });
        // Its main thread may have been in a syscall another thread's
        // exit_group or fault cut short.
        let left = self.syscalls_left_at_end();
        let reason = match (&recorded, left) {
            (_, Some(i)) => Some((
                i,
                format!("the program ended ({outcome:?}) before the end of its recording"),
            )),
            (Some(r), None) if *r != outcome => Some((
                self.pos(),
                format!("the program ended with {outcome:?}; the recording says {r:?}"),
            )),
            _ => None,
        };
        if let Some((i, reason)) = reason {
            self.report.divergence = Some(Divergence {
                event_index: i,
                reason,
                expected: self.rec.events.get(i).map(tracer_format::line),
                actual: None,
                recent: self.recent(i),
            });
            return Outcome::Diverged;
        }
        if recorded.is_none() {
            self.report
                .notes
                .push("the recording does not say how the process ended".to_owned());
        }
        let len = self.rec.events.len();
        self.set_pos(len);
        outcome
    }
}

/// `si_code` of a signal the kernel raised itself (a trapped rdtsc).
const SI_KERNEL: i32 = 0x80;

/// si_code of the SIGSYS a seccomp filter's `SECCOMP_RET_TRAP` raises.
const SYS_SECCOMP: i32 = 1;

/// What the SIGSYS of a seccomp trap tells its handler (the kernel's
/// `seccomp_send_sigsys`): the filter's data, where and which syscall.
#[derive(Clone, Copy, Debug)]
struct SeccompTrap {
    errno: i32,
    call_addr: u64,
    syscall: i32,
}

/// A synchronous signal the kernel raised for the instruction the
/// program ran (a fault, a trap), not one sent to it: its code is the
/// kernel's (positive: SEGV_MAPERR, BUS_ADRERR, SI_KERNEL...), where a
/// `kill`, `tgkill` or `sigqueue` has a code of zero or below.
fn is_fault(sig: &pb::Signal) -> bool {
    tracer_common::wire::is_fault(sig.signo, sig.code)
}

/// The recorded syscall is this time call (not one the vDSO answered).
fn same_time_call(name: &str, args: &[u64; 6], s: &pb::Syscall) -> bool {
    effects::name(s.nr) == Some(name)
        && (!matches!(name, "clock_gettime" | "clock_getres")
            || s.args.first().copied() == Some(args[0]))
}

/// A `struct timespec` or `struct timeval` as the kernel writes it: two
/// 64-bit words.
fn two_words(a: i64, b: i64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    out
}

/// The image, stack and heap go where the recording had them (the
/// default); `TRACER_REPLAY_NO_LAYOUT` leaves them where this run's kernel
/// put them, to tell a layout problem from another.
fn layout_on() -> bool {
    std::env::var_os("TRACER_REPLAY_NO_LAYOUT").is_none()
}

/// `argv` laid out for the tracee at `base + used` (its strings, then the
/// 8-aligned, NULL-ended pointer array): the array's address and the bytes.
/// `None` when it does not fit in the 4 KiB scratch page.
fn argv_block(base: u64, used: usize, argv: &[Vec<u8>]) -> Option<(u64, Vec<u8>)> {
    let mut block = Vec::new();
    let mut ptrs = Vec::with_capacity(argv.len() + 1);
    for a in argv {
        ptrs.push(base + (used + block.len()) as u64);
        block.extend(a.split(|&c| c == 0).next().unwrap_or(a));
        block.push(0);
    }
    while !(used + block.len()).is_multiple_of(8) {
        block.push(0);
    }
    let array = base + (used + block.len()) as u64;
    for p in ptrs.into_iter().chain([0]) {
        block.extend(p.to_le_bytes());
    }
    (used + block.len() <= 4096).then_some((array, block))
}

/// The bytes a recorded write-like syscall wrote out: its data argument
/// (each item of an iovec, in order), up to what it returned.
fn recorded_output(s: &pb::Syscall) -> Vec<u8> {
    let mut parts: Vec<&pb::Buffer> = s
        .buffers
        .iter()
        .filter(|b| b.arg == 1 && b.direction == pb::Direction::In as i32)
        .collect();
    parts.sort_by_key(|b| b.item);
    let mut out: Vec<u8> = parts.iter().flat_map(|b| b.data.iter().copied()).collect();
    out.truncate(s.ret.max(0) as usize);
    out
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Writes a bundle's copy of a program where it can be run (owner only).
fn write_program(path: &Path, bytes: &[u8]) -> Result<std::path::PathBuf, ReplayError> {
    std::fs::write(path, bytes)
        .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| ReplayError::Io(format!("writing {}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}

/// The recorded environment with `over` set on top.
fn environment(recorded: &[Vec<u8>], over: &[(String, String)]) -> Vec<Vec<u8>> {
    let mut env: Vec<Vec<u8>> = recorded
        .iter()
        .filter(|e| {
            !over
                .iter()
                .any(|(k, _)| e.starts_with(k.as_bytes()) && e.get(k.len()) == Some(&b'='))
        })
        .cloned()
        .collect();
    env.extend(over.iter().map(|(k, v)| format!("{k}={v}").into_bytes()));
    env
}

/// The program an exec of an fd runs.
enum FdProgram {
    Path(String),
    Made(Vec<u8>),
}

/// Where the copy of a file the program made is kept for its mappings.
fn made_copy(dir: &std::path::Path, path: &str) -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    dir.join(format!("made-{:016x}", h.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_replace_recorded_values() {
        let rec = vec![b"A=1".to_vec(), b"AB=2".to_vec()];
        let env = environment(&rec, &[("A".into(), "9".into())]);
        assert_eq!(env, vec![b"AB=2".to_vec(), b"A=9".to_vec()]);
    }
}
