//! The end of a replay: how it ended, what it did, and, when it stopped
//! early, where and why. Printed as a summary, and as JSON with `--report`.
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// The program exited with this status, as recorded.
    Exited { code: i32 },
    /// The program died by this signal, as recorded.
    Killed { signal: i32 },
    /// The program did something the recording does not have.
    Diverged,
    /// The recording stops here (lost or cut events, or something replay
    /// cannot reproduce yet).
    Incomplete,
}

/// Where and how a replay left the recording.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Divergence {
    /// Index of the recorded event (among this process's events after its
    /// exec) the program was at.
    pub event_index: usize,
    pub reason: String,
    /// The recorded event, strace-style.
    pub expected: Option<String>,
    /// What the program did instead, strace-style.
    pub actual: Option<String>,
    /// The last events replayed before it.
    pub recent: Vec<String>,
}

/// A place where the program wrote other bytes than recorded after it
/// had read times the recording does not hold (answered from the recorded
/// timeline): the replay went on, and showed what was recorded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TimeDifference {
    pub event_index: usize,
    pub syscall: String,
    pub arg: u32,
    pub item: u32,
    /// The first byte that differs, and the lengths.
    pub first_byte: usize,
    pub bytes_now: usize,
    pub bytes_recorded: usize,
    pub recorded: Option<String>,
    pub replayed: Option<String>,
}

/// How a debugger went back in time.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct Travel {
    /// Checkpoints taken (stopped forks of the program).
    pub checkpoints: u64,
    /// Times the replay went back to a checkpoint.
    pub restores: u64,
    /// Times it started again from the program's start.
    pub restarts: u64,
    /// Threads made again in the copies of checkpoints gone back to.
    pub threads_remade: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub pid: u32,
    pub program: String,
    pub outcome: Outcome,
    pub divergence: Option<Divergence>,
    /// Writes that differed where only approximate times explain it (the
    /// replay then went on; none with `--strict`).
    pub time_differences: Vec<TimeDifference>,
    /// The tracee left stopped for a debugger, after a divergence.
    pub stopped_pid: Option<i32>,
    pub events_total: usize,
    pub events_replayed: usize,
    pub syscalls_executed: u64,
    pub syscalls_emulated: u64,
    /// Of those answered: syscalls the program's own seccomp filter
    /// stopped at entry when recorded (failed or trapped, never run).
    pub syscalls_stopped_by_filter: u64,
    /// Time calls the recording saw through the vDSO, answered from the
    /// recorded timeline.
    pub time_calls_from_timeline: u64,
    /// Every time read of the replayed processes was recorded (the daemon
    /// made their vDSO time functions syscalls in time).
    pub time_exact: bool,
    /// `rdtsc`/`rdtscp` the program executed, trapped and answered from
    /// the recorded timeline (no recording holds their values).
    pub tsc_reads: u64,
    pub signals_delivered: u64,
    /// Threads and processes replayed (1: the program alone).
    pub tasks: usize,
    /// Between threads: recorded futex calls the replay did not make, and
    /// futex calls it made that the recording does not have (the threads'
    /// user-space code interleaved otherwise between two syscalls).
    pub futexes_skipped: u64,
    pub futexes_added: u64,
    /// Between threads: recorded time reads a thread did not make (it spun
    /// or waited otherwise before its next syscall).
    pub time_calls_skipped: u64,
    /// Syscalls answered out of the recorded order: a thread waited in user
    /// space (on a lock) for one whose turn had not come.
    pub out_of_order: u64,
    /// Memory syscalls (an anonymous mmap, munmap, mprotect, madvise) that
    /// a thread of the process made where the recording has another
    /// thread make them, with the same arguments: shared state (an
    /// allocator's arena or chunk) that whichever thread came first made.
    pub moved_between_threads: u64,
    /// Under a debugger: going back in time.
    pub travel: Travel,
    pub wall_ms: f64,
    pub us_per_syscall: f64,
    pub notes: Vec<String>,
}

impl Report {
    /// The report of a replay that has not done anything yet.
    pub fn new(pid: u32, program: String, events_total: usize, notes: Vec<String>) -> Self {
        Self {
            pid,
            program,
            outcome: Outcome::Incomplete,
            divergence: None,
            time_differences: Vec::new(),
            stopped_pid: None,
            events_total,
            events_replayed: 0,
            syscalls_executed: 0,
            syscalls_emulated: 0,
            syscalls_stopped_by_filter: 0,
            time_calls_from_timeline: 0,
            time_exact: false,
            tsc_reads: 0,
            signals_delivered: 0,
            tasks: 1,
            futexes_skipped: 0,
            futexes_added: 0,
            time_calls_skipped: 0,
            out_of_order: 0,
            moved_between_threads: 0,
            travel: Travel::default(),
            wall_ms: 0.0,
            us_per_syscall: 0.0,
            notes,
        }
    }

    /// The exit status `tracectl replay` ends with: the recorded one; 124
    /// when the program ended as recorded but wrote other bytes where it
    /// read approximate times; 125 when the replay stopped early.
    pub fn exit_status(&self) -> i32 {
        match self.outcome {
            _ if self.ended_with_time_differences() => 124,
            Outcome::Exited { code } => code,
            Outcome::Killed { signal } => 128 + signal,
            Outcome::Diverged | Outcome::Incomplete => 125,
        }
    }

    /// The program ended as recorded, but wrote other bytes where it read
    /// approximate times.
    fn ended_with_time_differences(&self) -> bool {
        !self.time_differences.is_empty()
            && matches!(
                self.outcome,
                Outcome::Exited { .. } | Outcome::Killed { .. }
            )
    }

    /// The human summary (one line per fact).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let head = match &self.outcome {
            Outcome::Exited { code } => format!("exited with {code}, as recorded"),
            Outcome::Killed { signal } => format!(
                "killed by {}, as recorded",
                tracer_format::signal_name(*signal as u32)
            ),
            Outcome::Diverged => "DIVERGED from the recording".to_owned(),
            Outcome::Incomplete => "stopped: the recording cannot be replayed further".to_owned(),
        };
        let head = if self.ended_with_time_differences() {
            format!("{head}, but NOT IDENTICAL where it read approximate times")
        } else {
            head
        };
        s.push_str(&format!(
            "replay: {} (pid {}): {head}\n",
            self.program, self.pid
        ));
        if let Some(d) = &self.divergence {
            s.push_str(&format!(
                "replay: at event {}: {}\n",
                d.event_index, d.reason
            ));
            if let Some(e) = &d.expected {
                s.push_str(&format!("replay:   recorded: {e}\n"));
            }
            if let Some(a) = &d.actual {
                s.push_str(&format!("replay:   replayed: {a}\n"));
            }
            if !d.recent.is_empty() {
                s.push_str("replay:   the events before it:\n");
                for r in &d.recent {
                    s.push_str(&format!("replay:     {r}\n"));
                }
            }
        }
        if !self.time_differences.is_empty() {
            s.push_str(&format!(
                "replay: NOT IDENTICAL: {} writes differed from the recording after the program \
                 read times the recording does not hold (answered from its timeline); the \
                 replay went on and showed what was recorded (--strict stops at the first):\n",
                self.time_differences.len()
            ));
            for d in self.time_differences.iter().take(10) {
                s.push_str(&format!(
                    "replay:   at event {}: {} argument {}{}: first difference at byte {} \
                     ({} bytes now, {} recorded)\n",
                    d.event_index,
                    d.syscall,
                    d.arg,
                    if d.item > 0 {
                        format!(" item {}", d.item)
                    } else {
                        String::new()
                    },
                    d.first_byte,
                    d.bytes_now,
                    d.bytes_recorded
                ));
                if let Some(r) = &d.recorded {
                    s.push_str(&format!("replay:     recorded: {r}\n"));
                }
                if let Some(a) = &d.replayed {
                    s.push_str(&format!("replay:     replayed: {a}\n"));
                }
            }
        }
        if let Some(p) = self.stopped_pid {
            s.push_str(&format!(
                "replay: the replayed process {p} is left stopped there, before that syscall\n"
            ));
        }
        s.push_str(&format!(
            "replay: {} of {} events replayed: {} syscalls run, {} answered from the recording, \
             {} time calls from the timeline, {} signals; {:.1} ms, {:.1} µs per syscall\n",
            self.events_replayed,
            self.events_total,
            self.syscalls_executed,
            self.syscalls_emulated,
            self.time_calls_from_timeline,
            self.signals_delivered,
            self.wall_ms,
            self.us_per_syscall
        ));
        s.push_str(if self.time_exact {
            "replay: time: exact (every time read was recorded)"
        } else {
            "replay: time: approximate (time reads the recording does not have are answered \
                 from its timeline)"
        });
        if self.tsc_reads > 0 {
            s.push_str(&format!(
                "; {} rdtsc reads answered from the recorded timeline (a counter no \
                 recording holds)",
                self.tsc_reads
            ));
        }
        s.push('\n');
        if self.syscalls_stopped_by_filter > 0 {
            s.push_str(&format!(
                "replay: {} syscalls the program's own seccomp filter stopped when recorded \
                 were answered as it did (the filter is not installed in replay)\n",
                self.syscalls_stopped_by_filter
            ));
        }
        if self.tasks > 1 {
            let mut line = format!(
                "replay: {} threads and processes, in the recorded order",
                self.tasks
            );
            if self.out_of_order > 0 {
                line += &format!(" but for {} syscalls", self.out_of_order);
            }
            if self.moved_between_threads > 0 {
                line += &format!(
                    "; {} memory syscalls made by another thread of the process than recorded",
                    self.moved_between_threads
                );
            }
            if self.futexes_skipped + self.futexes_added > 0 {
                line += &format!(
                    "; futex calls: {} recorded ones not made, {} made that were not recorded",
                    self.futexes_skipped, self.futexes_added
                );
            }
            if self.time_calls_skipped > 0 {
                line += &format!(
                    "; {} recorded time reads not made (a thread spun or waited otherwise)",
                    self.time_calls_skipped
                );
            }
            s.push_str(&line);
            s.push('\n');
        }
        let t = self.travel;
        if t != Travel::default() {
            s.push_str(&format!(
                "replay: {} checkpoints taken; back to one {} times ({} threads made again), \
                 to the start {} times\n",
                t.checkpoints, t.restores, t.threads_remade, t.restarts
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("replay: note: {n}\n"));
        }
        s
    }
}
