//! What a bundle says about the process being replayed: the exec it starts
//! from, the events after that exec of it, its threads and the child
//! processes the bundle holds (a process tree), in the order they happened,
//! how each ended, and the file contents that travel with it.
//!
//! Order: each thread's events keep their program order (the daemon's
//! sequence numbers); across threads and processes they are merged by
//! their recorded time (a syscall's exit, a process event's own time), so
//! that replay can make syscalls happen in the recorded interleaving.
use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};
use tracer_proto as pb;
use tracer_store::bundle::Bundle;

use crate::ReplayError;

const NR_EXECVE: i64 = 59;
const NR_EXECVEAT: i64 = 322;
/// clone, fork, vfork, clone3: a new task's first recorded event is its
/// return from one of these (with no enter), which is not replayed: the
/// replay's clone makes it.
pub(crate) const CLONES: [i64; 4] = [56, 57, 58, 435];

/// How the replayed processes' time reads were recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeReads {
    /// Every time read of every replayed process image is a recorded
    /// syscall (the daemon patched each image's vDSO before its first read).
    Exact,
    /// Some were not recorded: the replay answers those from the timeline.
    Approximate(String),
}

/// The time marks of the replayed images: the root's exec (`exec`), every
/// exec `after` it, every forked process. A mark names its image by the
/// exec's time (`exec_ns`: the first Exec event of its process at or after
/// it), or 0 for a fork, which runs its parent's image until it execs.
fn time_reads(marks: &[pb::Event], after: &[pb::Event], exec: &pb::Event) -> TimeReads {
    let execs: Vec<&pb::Event> = std::iter::once(exec)
        .chain(
            after
                .iter()
                .filter(|e| matches!(e.kind, Some(pb::event::Kind::Exec(_)))),
        )
        .collect();
    // A forked process (its first image is its parent's), with its parent
    // and when.
    let fork_of: HashMap<u32, (u32, u64)> = after
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Fork(f)) if !f.thread => Some((f.child_pid, (e.pid, e.ts_ns))),
            _ => None,
        })
        .collect();
    let forks = fork_of.keys().copied();
    let images: Vec<(u32, Option<u64>)> = execs
        .iter()
        .map(|e| (e.pid, Some(e.ts_ns)))
        .chain(forks.map(|p| (p, None)))
        .collect();
    let image_of = |m: &pb::Event, t: &pb::TimeReads| -> Option<(u32, Option<u64>)> {
        if t.exec_ns == 0 {
            return Some((m.pid, None));
        }
        execs
            .iter()
            .filter(|e| e.pid == m.pid && e.ts_ns >= t.exec_ns)
            .map(|e| (e.pid, Some(e.ts_ns)))
            .min_by_key(|k| k.1)
    };
    for img in &images {
        let mine: Vec<&pb::TimeReads> = marks
            .iter()
            .filter_map(|m| match &m.kind {
                Some(pb::event::Kind::Time(t)) if image_of(m, t) == Some(*img) => Some(t),
                _ => None,
            })
            .collect();
        let what = match img.1 {
            Some(_) => format!("pid {}'s exec", img.0),
            None => format!("pid {} (forked)", img.0),
        };
        if mine.iter().any(|t| t.missed) {
            return TimeReads::Approximate(format!(
                "{what} read the vDSO's clock before the recorder had made its time calls \
                 syscalls: time reads the recording does not have"
            ));
        }
        if let Some(t) = mine.iter().find(|t| !t.not_patched.is_empty()) {
            return TimeReads::Approximate(format!(
                "{what}: its time reads were not recorded (vDSO not patched: {})",
                t.not_patched
            ));
        }
        // A fork's memory is its parent's: patched if the parent's was then.
        let inherited = img.1.is_none()
            && fork_of.get(&img.0).is_some_and(|&(parent, at)| {
                marks.iter().any(|m| {
                    m.pid == parent
                        && m.ts_ns <= at
                        && matches!(&m.kind, Some(pb::event::Kind::Time(t)) if t.exact)
                })
            });
        if !inherited && !mine.iter().any(|t| t.exact) {
            return TimeReads::Approximate(format!(
                "{what}: its time reads were not recorded (recorded with approximate time, \
                 or by a daemon without exact time)"
            ));
        }
    }
    TimeReads::Exact
}

/// Ends the events where the first recorded loss may have happened: at the
/// first event of the process that lost records whose time is not before
/// the loss's window (the daemon knows a loss only to between two checks of
/// its counters), or at the loss itself. Replaying past a gap would replay
/// a program that skips a syscall. Returns what was lost, for the report.
fn cut_at_loss(events: &mut Vec<pb::Event>) -> Option<String> {
    let (at, pid, until, l) = events.iter().enumerate().find_map(|(i, e)| match &e.kind {
        Some(pb::event::Kind::Loss(l)) => Some((i, e.pid, e.ts_ns, *l)),
        _ => None,
    })?;
    let cut = events[..at]
        .iter()
        .position(|e| e.pid == pid && e.ts_ns >= l.since_ns)
        .unwrap_or(at);
    events.truncate(cut);
    Some(format!(
        "{} records of pid {pid} were lost while recording (ring buffer or daemon backlog \
         full), between monotonic {} and {until} ns",
        l.records, l.since_ns
    ))
}

/// Ends the events where a thread other than its process's leader exec'd
/// (the kernel ends the other threads, and the caller takes the leader's
/// tid): at the first event of that process from the execve's entry on.
fn cut_at_thread_exec(events: &mut Vec<pb::Event>) -> Option<String> {
    let (at, pid, old, name) = events.iter().enumerate().find_map(|(i, e)| match &e.kind {
        Some(pb::event::Kind::Exec(x)) if x.old_tid != 0 && x.old_tid != e.tid => {
            Some((i, e.pid, x.old_tid, x.filename.clone()))
        }
        _ => None,
    })?;
    let began = |e: &pb::Event| match &e.kind {
        Some(pb::event::Kind::Syscall(s)) => s.enter_ns,
        _ => e.ts_ns,
    };
    // The execve is ordered by its entry: before or after the exec record.
    let entry = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Syscall(s))
                if e.tid == old
                    && (s.nr == NR_EXECVE || s.nr == NR_EXECVEAT)
                    && s.ret == 0
                    && s.enter_ns <= events[at].ts_ns =>
            {
                Some(s.enter_ns)
            }
            _ => None,
        })
        .max()
        .unwrap_or(events[at].ts_ns);
    let cut = events
        .iter()
        .position(|e| e.pid == pid && began(e) >= entry)
        .unwrap_or(at)
        .min(at);
    events.truncate(cut);
    Some(format!(
        "thread {old} of pid {pid}, not its leader, exec'd {name:?}: an exec from another \
         thread than the first is not replayed yet"
    ))
}

/// One recorded process, ready to replay.
#[derive(Debug)]
pub struct Recording {
    pub header: pb::BundleHeader,
    pub pid: u32,
    /// The exec the replay starts from.
    pub exec: pb::Exec,
    /// Monotonic time of that exec.
    pub exec_ns: u64,
    /// The events after the exec: syscalls, signals, forks, of every thread
    /// and replayed child process, in the recorded order.
    pub events: Vec<pb::Event>,
    /// How the process ended, when the recording saw it end.
    pub exit: Option<pb::Exit>,
    /// How each replayed child process ended, by recorded pid.
    pub child_exits: HashMap<u32, pb::Exit>,
    /// The processes replayed: the root and the children the bundle holds
    /// events of (their forks run for real; other forks are answered).
    pub pids: BTreeSet<u32>,
    /// The recorded threads (tids) with events, all processes together.
    pub tids: BTreeSet<u32>,
    /// Events of this process were lost while recording.
    pub lost: bool,
    /// Where the recording was cut, and why (records lost: what, whose and
    /// when; an event the replayer cannot follow): the events from there on
    /// are not replayed.
    pub cut: Option<String>,
    /// How the replayed processes' time reads were recorded.
    pub time: TimeReads,
    /// Recorded files by path (the bundle's content-addressed copies).
    files: HashMap<String, pb::Blob>,
}

impl Recording {
    /// Picks process `pid` (the bundle's root when `None`) out of a bundle.
    pub fn from_bundle(b: Bundle, pid: Option<u32>) -> Result<Self, ReplayError> {
        let root = b.header.root.map(|k| k.pid).unwrap_or_default();
        let pid = pid.unwrap_or(root);
        let pids = tree(&b.events, pid);
        let mut mine: Vec<pb::Event> = b
            .events
            .into_iter()
            .filter(|e| pids.contains(&e.pid))
            .collect();
        if !mine.iter().any(|e| e.pid == pid) {
            let pids: Vec<String> = b
                .header
                .processes
                .iter()
                .filter_map(|p| p.key.map(|k| k.pid.to_string()))
                .collect();
            return Err(ReplayError::Bundle(format!(
                "the bundle has no events of pid {pid} (it holds {})",
                if pids.is_empty() {
                    "no processes".to_owned()
                } else {
                    pids.join(", ")
                }
            )));
        }
        // seq is the order the daemon received them; per thread it is
        // program order.
        mine.sort_by_key(|e| e.seq);
        // How time was recorded is said of each process image, not an event
        // to replay.
        let (marks, rest): (Vec<pb::Event>, Vec<pb::Event>) = mine
            .into_iter()
            .partition(|e| matches!(e.kind, Some(pb::event::Kind::Time(_))));
        let mut mine = rest;
        let Some(at) = mine
            .iter()
            .position(|e| e.pid == pid && matches!(e.kind, Some(pb::event::Kind::Exec(_))))
        else {
            return Err(ReplayError::Bundle(format!(
                "pid {pid} has no recorded exec: the recording started after the program did, \
                 so there is no starting point to replay from"
            )));
        };
        let exec_event = mine[at].clone();
        let Some(pb::event::Kind::Exec(exec)) = exec_event.kind.clone() else {
            unreachable!("position() matched an exec");
        };
        let mut after: Vec<pb::Event> = mine.split_off(at + 1);
        let time = time_reads(&marks, &after, &exec_event);
        // The execve syscall that completed the exec is the exec itself.
        if let Some(i) = after.iter().position(|e| {
            e.tid == exec_event.tid
                && matches!(&e.kind, Some(pb::event::Kind::Syscall(s)) if (s.nr == NR_EXECVE || s.nr == NR_EXECVEAT) && s.ret == 0)
        }) && after[..i].iter().filter(|e| e.tid == exec_event.tid).count() < 2
        {
            after.remove(i);
        }
        after.retain(|e| !is_clone_return(e));
        let mut events = merge(after);
        let loss = cut_at_loss(&mut events);
        let lost_cut = loss.is_some();
        let cut = loss.or_else(|| cut_at_thread_exec(&mut events));
        let exit_of = |p: u32| {
            events.iter().rev().find_map(|e| match &e.kind {
                Some(pb::event::Kind::Exit(x))
                    if e.pid == p && (x.group_dead || e.tid == e.pid) =>
                {
                    Some(*x)
                }
                _ => None,
            })
        };
        let exit = exit_of(pid);
        let child_exits = pids
            .iter()
            .filter(|&&p| p != pid)
            .filter_map(|&p| exit_of(p).map(|x| (p, x)))
            .collect();
        let tids = events.iter().map(|e| e.tid).chain([pid]).collect();
        let lost = b
            .header
            .processes
            .iter()
            .any(|p| p.key.is_some_and(|k| pids.contains(&k.pid)) && p.lost)
            || (b.header.events_lost && b.header.processes.is_empty())
            || lost_cut;
        // Each copy is checked once, here: a damaged bundle is refused
        // before anything runs.
        for x in &b.blobs {
            let sum = format!("{:x}", Sha256::digest(&x.data));
            if sum != x.sha256 {
                return Err(ReplayError::Bundle(format!(
                    "the bundle's copy of {} does not match its sha256 ({sum} != {})",
                    x.path, x.sha256
                )));
            }
        }
        let files = b.blobs.into_iter().map(|x| (x.path.clone(), x)).collect();
        Ok(Self {
            header: b.header,
            pid,
            exec,
            exec_ns: exec_event.ts_ns,
            events,
            exit,
            child_exits,
            pids,
            tids,
            lost,
            cut,
            time,
            files,
        })
    }

    /// More than one thread or process is replayed.
    pub fn is_multi(&self) -> bool {
        self.tids.len() > 1
    }

    /// The recorded contents of `path`: the bundle's copy (checked against
    /// its hash when the bundle was read).
    pub fn file(&self, path: &str) -> Result<Option<&[u8]>, ReplayError> {
        Ok(self.files.get(path).map(|b| b.data.as_slice()))
    }

    /// The sha256 of the bundle's copy of `path` (checked when the bundle
    /// was opened).
    pub fn file_digest(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(|b| b.sha256.as_str())
    }

    /// Where the replayed program is found, and its bytes when the bundle
    /// has them: the exec'd path, else the recorded argv[0].
    pub fn executable_path(&self) -> Option<String> {
        let argv0 = self
            .exec
            .argv
            .first()
            .map(|a| String::from_utf8_lossy(a).into_owned());
        let mut candidates = vec![self.exec.filename.clone()];
        candidates.extend(
            self.header
                .processes
                .iter()
                .filter(|p| p.key.is_some_and(|k| k.pid == self.pid))
                .map(|p| p.exe.clone()),
        );
        if let Some(a) = &argv0 {
            candidates.push(a.clone());
            // A bare name: the bundle's file with that name, else $PATH.
            if !a.contains('/') {
                let suffix = format!("/{a}");
                let mut in_bundle: Vec<&String> =
                    self.files.keys().filter(|p| p.ends_with(&suffix)).collect();
                in_bundle.sort();
                candidates.extend(in_bundle.into_iter().cloned());
                candidates.extend(self.path_lookup(a));
            }
        }
        candidates.into_iter().find(|c| {
            c.starts_with('/') && (self.files.contains_key(c) || std::path::Path::new(c).is_file())
        })
    }

    /// The program the kernel ran for an exec of `filename` when it is a
    /// `#!` script: the interpreter, which the kernel put first in the argv
    /// it built (`argv`, as the exec record holds it). `None` for a binary.
    pub fn script_interpreter(&self, filename: &str, argv: &[Vec<u8>]) -> Option<String> {
        let head = match self.files.get(filename) {
            Some(b) => b.data.get(..2).map(<[u8]>::to_vec),
            None => {
                let mut h = [0u8; 2];
                std::fs::File::open(filename)
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut h))
                    .ok()
                    .map(|_| h.to_vec())
            }
        }?;
        if head != b"#!" {
            return None;
        }
        let first = String::from_utf8_lossy(argv.first()?).into_owned();
        first.starts_with('/').then_some(first)
    }

    /// `name` looked up in the recorded `$PATH`.
    fn path_lookup(&self, name: &str) -> Vec<String> {
        let path = self
            .env("PATH")
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{name}", d.trim_end_matches('/')))
            .collect()
    }

    /// A recorded environment variable.
    pub fn env(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.exec.envp.iter().find_map(|e| {
            let s = String::from_utf8_lossy(e);
            s.strip_prefix(&prefix).map(str::to_owned)
        })
    }

    /// Signals the process started with ignored (inherited SIG_IGN), as
    /// its first look at each signal's action shows.
    pub fn initially_ignored(&self) -> Vec<i32> {
        const NR_RT_SIGACTION: i64 = 13;
        let mut seen = std::collections::BTreeMap::new();
        for e in self.events.iter().filter(|e| e.tid == self.pid) {
            let Some(pb::event::Kind::Syscall(s)) = &e.kind else {
                continue;
            };
            if s.nr != NR_RT_SIGACTION || s.ret != 0 {
                continue;
            }
            let sig = s.args.first().copied().unwrap_or(0) as i32;
            let old = s
                .buffers
                .iter()
                .find(|b| b.arg == 2 && b.direction == pb::Direction::Out as i32);
            if let Some(b) = old
                && b.data.len() >= 8
            {
                let handler = u64::from_le_bytes(b.data[..8].try_into().unwrap_or([0; 8]));
                seen.entry(sig).or_insert(handler == 1);
            } else if s.args.get(1).is_some_and(|&a| a != 0) {
                // Set before it was looked at: what it was is unknown.
                seen.entry(sig).or_insert(false);
            }
        }
        seen.into_iter()
            .filter(|&(_, ign)| ign)
            .map(|(s, _)| s)
            .collect()
    }

    /// realtime = monotonic + this.
    pub fn realtime_offset_ns(&self) -> i64 {
        self.header.realtime_offset_ns
    }

    /// The recording host's TSC rate (kHz) and its value at monotonic 0
    /// (0, 0: not known, a bundle from before they were recorded).
    pub fn tsc(&self) -> (u64, i64) {
        (self.header.tsc_khz, self.header.tsc_at_zero)
    }
}

/// `root` and its descendants whose events the bundle holds (a fork whose
/// child it does not hold is answered in replay, not run).
fn tree(events: &[pb::Event], root: u32) -> BTreeSet<u32> {
    let with_events: BTreeSet<u32> = events
        .iter()
        .filter(|e| !matches!(e.kind, Some(pb::event::Kind::Fork(_))))
        .map(|e| e.pid)
        .collect();
    let mut forks: Vec<(u64, u32, u32)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Fork(f)) if !f.thread => Some((e.seq, f.parent_pid, f.child_pid)),
            _ => None,
        })
        .collect();
    forks.sort_unstable();
    let mut set = BTreeSet::from([root]);
    for (_, parent, child) in forks {
        if set.contains(&parent) && with_events.contains(&child) {
            set.insert(child);
        }
    }
    set
}

/// A new task's return from the clone that made it.
fn is_clone_return(e: &pb::Event) -> bool {
    matches!(&e.kind, Some(pb::event::Kind::Syscall(s)) if s.no_enter && s.ret == 0 && CLONES.contains(&s.nr))
}

/// The recorded time an event is ordered by.
fn time_of(e: &pb::Event) -> u64 {
    e.ts_ns
}

/// Merges the threads' events (each in program order) by recorded time;
/// ties, and events of one thread, keep the daemon's order.
fn merge(events: Vec<pb::Event>) -> Vec<pb::Event> {
    let mut queues: HashMap<u32, std::collections::VecDeque<pb::Event>> = HashMap::new();
    for e in events {
        queues.entry(e.tid).or_default().push_back(e);
    }
    let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64, u32)>> = queues
        .iter()
        .filter_map(|(&tid, q)| {
            q.front()
                .map(|e| std::cmp::Reverse((time_of(e), e.seq, tid)))
        })
        .collect();
    let mut out = Vec::with_capacity(queues.values().map(|q| q.len()).sum());
    while let Some(std::cmp::Reverse((_, _, tid))) = heap.pop() {
        let Some(q) = queues.get_mut(&tid) else {
            continue;
        };
        if let Some(e) = q.pop_front() {
            out.push(e);
        }
        if let Some(e) = q.front() {
            heap.push(std::cmp::Reverse((time_of(e), e.seq, tid)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, pid: u32, kind: pb::event::Kind) -> pb::Event {
        pb::Event {
            seq,
            pid,
            tid: pid,
            kind: Some(kind),
            ..Default::default()
        }
    }
    /// A bundle whose root is pid 7.
    fn bundle(events: Vec<pb::Event>, blobs: Vec<pb::Blob>) -> Bundle {
        Bundle {
            header: pb::BundleHeader {
                root: Some(pb::ProcessKey {
                    pid: 7,
                    start_ns: 1,
                }),
                ..Default::default()
            },
            events,
            blobs,
        }
    }

    fn sys(nr: i64, ret: i64) -> pb::event::Kind {
        pb::event::Kind::Syscall(pb::Syscall {
            nr,
            ret,
            args: vec![0; 6],
            ..Default::default()
        })
    }

    #[test]
    fn starts_after_the_exec_and_keeps_program_order() {
        let b = bundle(
            vec![
                ev(5, 7, sys(12, 100)),
                ev(1, 7, sys(39, 7)),
                ev(
                    2,
                    7,
                    pb::event::Kind::Exec(pb::Exec {
                        argv: vec![b"cat".to_vec()],
                        ..Default::default()
                    }),
                ),
                ev(3, 7, sys(NR_EXECVE, 0)),
                ev(4, 8, sys(0, 1)),
                ev(
                    6,
                    7,
                    pb::event::Kind::Exit(pb::Exit {
                        exit_code: 3,
                        group_dead: true,
                        ..Default::default()
                    }),
                ),
            ],
            vec![],
        );
        let r = Recording::from_bundle(b, None).expect("recording");
        assert_eq!(r.pid, 7);
        let seqs: Vec<u64> = r.events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            vec![5, 6],
            "pre-exec events and the execve itself are not replayed"
        );
        assert_eq!(r.exit.map(|x| x.exit_code), Some(3));
    }

    fn at(seq: u64, ts: u64, pid: u32, tid: u32, kind: pb::event::Kind) -> pb::Event {
        pb::Event {
            seq,
            ts_ns: ts,
            pid,
            tid,
            kind: Some(kind),
            ..Default::default()
        }
    }

    fn fork(child: u32, thread: bool) -> pb::event::Kind {
        pb::event::Kind::Fork(pb::Fork {
            parent_pid: 7,
            parent_tid: 7,
            child_pid: if thread { 7 } else { child },
            child_tid: child,
            thread,
            ..Default::default()
        })
    }

    #[test]
    fn threads_and_children_merge_by_time_each_in_its_own_order() {
        let exec = pb::event::Kind::Exec(pb::Exec {
            argv: vec![b"sh".to_vec()],
            ..Default::default()
        });
        let mut clone_return = pb::Syscall {
            nr: 56,
            ret: 0,
            no_enter: true,
            args: vec![0; 6],
            ..Default::default()
        };
        let b = bundle(
            vec![
                at(1, 10, 7, 7, exec),
                at(2, 20, 7, 7, fork(8, true)),
                at(3, 21, 7, 7, sys(56, 8)),
                at(4, 22, 7, 8, pb::event::Kind::Syscall(clone_return.clone())),
                // Thread 8's write ended before thread 7's read did.
                at(5, 40, 7, 7, sys(0, 5)),
                at(6, 30, 7, 8, sys(1, 5)),
                at(7, 50, 7, 7, fork(9, false)),
                at(8, 51, 7, 7, sys(56, 9)),
                at(9, 52, 9, 9, {
                    clone_return.nr = 56;
                    pb::event::Kind::Syscall(clone_return)
                }),
                at(10, 55, 9, 9, sys(39, 9)),
                // A process the bundle has no fork of is not replayed.
                at(11, 60, 12, 12, sys(39, 12)),
            ],
            vec![],
        );
        let r = Recording::from_bundle(b, None).expect("recording");
        let seqs: Vec<u64> = r.events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            vec![2, 3, 6, 5, 7, 8, 10],
            "merged by time, each thread in program order, clone returns dropped"
        );
        assert!(r.is_multi());
        assert_eq!(r.pids.iter().copied().collect::<Vec<_>>(), vec![7, 9]);
        assert_eq!(r.tids.iter().copied().collect::<Vec<_>>(), vec![7, 8, 9]);
    }

    #[test]
    fn no_exec_is_a_clear_error() {
        let b = bundle(vec![ev(1, 7, sys(0, 1))], vec![]);
        let e = Recording::from_bundle(b, None).expect_err("no exec");
        assert!(e.to_string().contains("no recorded exec"), "{e}");
    }

    #[test]
    fn a_tampered_copy_is_refused() {
        let b = bundle(
            vec![ev(1, 7, pb::event::Kind::Exec(pb::Exec::default()))],
            vec![pb::Blob {
                sha256: "00".into(),
                path: "/bin/x".into(),
                data: b"abc".to_vec(),
                ..Default::default()
            }],
        );
        let e = Recording::from_bundle(b, Some(7)).expect_err("a damaged copy");
        assert!(
            e.to_string().contains("/bin/x does not match its sha256"),
            "{e}"
        );
    }
}
