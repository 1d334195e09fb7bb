//! Building a segment's index from its events: per process and per syscall
//! counts, so queries and statistics can skip or answer from whole segments.
use std::collections::BTreeMap;

// Looked up once per event stored; SipHash was a visible share of that.
use foldhash::HashMap;

use tracer_proto as pb;

/// Log2 latency buckets kept per syscall.
pub const LATENCY_BUCKETS: usize = 40;
/// Bytes of a process's argv kept in the index (for `ps`; the exec event
/// keeps all of it). The index is one uncompressed frame: argv as long as
/// the snapshot limit allows, for a few processes, would make it one that
/// its reader refuses.
pub const INDEX_ARGV_BYTES: usize = 16 << 10;

/// The first arguments of `argv`, at most `INDEX_ARGV_BYTES` of them, the
/// last one cut if need be.
fn bounded_argv(argv: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut left = INDEX_ARGV_BYTES;
    let mut out = Vec::new();
    for a in argv {
        if left == 0 {
            break;
        }
        let take = a.len().min(left);
        out.push(a[..take].to_vec());
        left -= take;
    }
    out
}

#[derive(Default)]
struct Counts {
    count: u64,
    errors: BTreeMap<i32, u64>,
    latency: Vec<u64>,
}

#[derive(Default)]
struct Proc {
    start_ns: u64,
    comm: String,
    exe: String,
    events: u64,
    lost: bool,
    first_ns: u64,
    last_ns: u64,
    syscalls: BTreeMap<i64, Counts>,
    frames: Vec<u64>,
    ppid: u32,
    argv: Vec<Vec<u8>>,
    exit: Option<(i32, u32)>,
}

/// Accumulates an index while batches are written (or re-read).
#[derive(Default)]
pub struct IndexBuilder {
    first_ns: u64,
    last_ns: u64,
    events: u64,
    batches: u64,
    /// The latest instance of each pid.
    procs: HashMap<u32, Proc>,
    /// Earlier instances of a pid this segment saw reused: each is its own
    /// process (pid and start time), never merged with the next.
    ended: Vec<(u32, Proc)>,
    syscalls: BTreeMap<i64, Counts>,
}

fn count(map: &mut BTreeMap<i64, Counts>, s: &pb::Syscall) {
    let c = map.entry(s.nr).or_default();
    c.count += 1;
    if (-4095..0).contains(&s.ret) {
        *c.errors.entry((-s.ret) as i32).or_default() += 1;
    }
    if s.enter_ns > 0 && s.exit_ns >= s.enter_ns {
        let ns = s.exit_ns - s.enter_ns;
        let bucket = (64 - ns.leading_zeros() as usize).min(LATENCY_BUCKETS - 1);
        if c.latency.len() < LATENCY_BUCKETS {
            c.latency.resize(LATENCY_BUCKETS, 0);
        }
        c.latency[bucket] += 1;
    }
}

fn counts_pb(map: &BTreeMap<i64, Counts>) -> Vec<pb::SyscallCount> {
    map.iter()
        .map(|(nr, c)| pb::SyscallCount {
            nr: *nr,
            count: c.count,
            errors: c.errors.iter().map(|(k, v)| (*k, *v)).collect(),
            latency_log2: c.latency.clone(),
        })
        .collect()
}

impl IndexBuilder {
    pub fn event_count(&self) -> u64 {
        self.events
    }

    /// Adds the events of the batch frame at byte `offset`.
    pub fn add_batch(&mut self, events: &[pb::Event], offset: u64) {
        self.batches += 1;
        for e in events {
            self.add(e, offset);
        }
    }

    fn add(&mut self, e: &pb::Event, offset: u64) {
        self.events += 1;
        if self.first_ns == 0 || e.ts_ns < self.first_ns {
            self.first_ns = e.ts_ns;
        }
        self.last_ns = self.last_ns.max(e.ts_ns);
        let p = self.procs.entry(e.pid).or_default();
        if p.frames.last() != Some(&offset) {
            p.frames.push(offset);
        }
        p.events += 1;
        if p.first_ns == 0 || e.ts_ns < p.first_ns {
            p.first_ns = e.ts_ns;
        }
        p.last_ns = p.last_ns.max(e.ts_ns);
        if !e.comm.is_empty() {
            p.comm.clone_from(&e.comm);
        }
        match &e.kind {
            Some(pb::event::Kind::Syscall(s)) => {
                p.lost |= s.buffers_lost;
                count(&mut p.syscalls, s);
                count(&mut self.syscalls, s);
            }
            Some(pb::event::Kind::Exec(x)) => {
                p.exe.clone_from(&x.filename);
                p.argv = bounded_argv(&x.argv);
                p.start_ns = x.start_ns;
            }
            Some(pb::event::Kind::Exit(x)) if x.group_dead => {
                p.exit = Some((x.exit_code, x.signal))
            }
            Some(pb::event::Kind::Loss(_)) => p.lost = true,
            Some(pb::event::Kind::Fork(f)) if !f.thread => {
                // A pid seen before belongs to another process now: the
                // one that had it exited (or its start time says so).
                if let Some(old) = self.procs.get(&f.child_pid)
                    && old.events > 0
                    && (old.exit.is_some()
                        || (old.start_ns != 0 && old.start_ns != f.child_start_ns))
                    && let Some(old) = self.procs.remove(&f.child_pid)
                {
                    self.ended.push((f.child_pid, old));
                }
                let child = self.procs.entry(f.child_pid).or_default();
                child.ppid = f.parent_pid;
                child.start_ns = f.child_start_ns;
            }
            _ => {}
        }
    }

    pub fn build(&self) -> pb::SegmentIndex {
        let mut processes: Vec<pb::ProcessSummary> = self
            .procs
            .iter()
            .chain(self.ended.iter().map(|(pid, p)| (pid, p)))
            .map(|(pid, p)| pb::ProcessSummary {
                key: Some(pb::ProcessKey {
                    pid: *pid,
                    start_ns: p.start_ns,
                }),
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                event_count: p.events,
                lost: p.lost,
                first_ns: p.first_ns,
                last_ns: p.last_ns,
                syscalls: counts_pb(&p.syscalls),
                frame_offsets: p.frames.clone(),
                ppid: p.ppid,
                argv: p.argv.clone(),
                exited: p.exit.is_some(),
                exit_code: p.exit.map(|e| e.0).unwrap_or(0),
                signal: p.exit.map(|e| e.1).unwrap_or(0),
            })
            .collect();
        processes.sort_by_key(|p| p.key.map(|k| (k.pid, k.start_ns)));
        pb::SegmentIndex {
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            event_count: self.events,
            batch_count: self.batches,
            processes,
            syscalls: counts_pb(&self.syscalls),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn ev(pid: u32, ts_ns: u64, kind: pb::event::Kind) -> pb::Event {
        pb::Event {
            pid,
            tid: pid,
            ts_ns,
            kind: Some(kind),
            ..Default::default()
        }
    }

    fn fork(parent: u32, child: u32, ts_ns: u64) -> pb::Event {
        ev(
            parent,
            ts_ns,
            pb::event::Kind::Fork(pb::Fork {
                parent_pid: parent,
                child_pid: child,
                child_start_ns: ts_ns,
                ..Default::default()
            }),
        )
    }

    fn sys(pid: u32, ts_ns: u64) -> pb::Event {
        ev(pid, ts_ns, pb::event::Kind::Syscall(pb::Syscall::default()))
    }

    #[test]
    fn a_reused_pid_is_two_processes_never_one() {
        let exit = |pid, ts| {
            ev(
                pid,
                ts,
                pb::event::Kind::Exit(pb::Exit {
                    group_dead: true,
                    exit_code: 7,
                    ..Default::default()
                }),
            )
        };
        let mut b = IndexBuilder::default();
        b.add_batch(
            &[
                fork(1, 10, 100),
                sys(10, 110),
                exit(10, 120),
                fork(2, 10, 200),
                sys(10, 210),
                sys(10, 220),
                ev(
                    10,
                    230,
                    pb::event::Kind::Loss(pb::Loss {
                        records: 1,
                        since_ns: 225,
                    }),
                ),
            ],
            0,
        );
        let idx = b.build();
        let tens: Vec<(u64, u32, u64, u64, u64, bool, bool)> = idx
            .processes
            .iter()
            .filter(|p| p.key.is_some_and(|k| k.pid == 10))
            .map(|p| {
                let k = p.key.unwrap_or_default();
                (
                    k.start_ns,
                    p.ppid,
                    p.event_count,
                    p.first_ns,
                    p.last_ns,
                    p.exited,
                    p.lost,
                )
            })
            .collect();
        assert_eq!(
            tens,
            vec![
                (100, 1, 2, 110, 120, true, false),
                (200, 2, 3, 210, 230, false, true),
            ]
        );
    }

    #[test]
    fn a_huge_argv_does_not_make_a_huge_index() {
        let mut b = IndexBuilder::default();
        for pid in 1..=8u32 {
            let exec = pb::Event {
                pid,
                kind: Some(pb::event::Kind::Exec(pb::Exec {
                    filename: "/bin/x".into(),
                    // 16 MiB of arguments, as a high snapshot limit keeps.
                    argv: vec![vec![b'a'; 1 << 20]; 16],
                    ..Default::default()
                })),
                ..Default::default()
            };
            b.add_batch(&[exec], 8);
        }
        let idx = b.build();
        assert!(
            idx.encoded_len() < 8 * (INDEX_ARGV_BYTES + 4096),
            "{}",
            idx.encoded_len()
        );
        let argv = &idx.processes[0].argv;
        assert_eq!(argv.len(), 1);
        assert_eq!(argv[0].len(), INDEX_ARGV_BYTES);
        let short = bounded_argv(&[b"ls".to_vec(), b"-l".to_vec()]);
        assert_eq!(
            short,
            [b"ls".to_vec(), b"-l".to_vec()],
            "short ones are kept whole"
        );
    }
}
