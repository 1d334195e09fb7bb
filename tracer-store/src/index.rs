//! Building a segment's index from its events: per process and per syscall
//! counts, so queries and statistics can skip or answer from whole segments.
use std::collections::{BTreeMap, HashMap};

use tracer_proto as pb;

#[derive(Default)]
struct Counts {
    count: u64,
    errors: BTreeMap<i32, u64>,
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
}

/// Accumulates an index while batches are written (or re-read).
#[derive(Default)]
pub struct IndexBuilder {
    first_ns: u64,
    last_ns: u64,
    events: u64,
    batches: u64,
    procs: HashMap<u32, Proc>,
    syscalls: BTreeMap<i64, Counts>,
}

fn count(map: &mut BTreeMap<i64, Counts>, nr: i64, ret: i64) {
    let c = map.entry(nr).or_default();
    c.count += 1;
    if (-4095..0).contains(&ret) {
        *c.errors.entry((-ret) as i32).or_default() += 1;
    }
}

fn counts_pb(map: &BTreeMap<i64, Counts>) -> Vec<pb::SyscallCount> {
    map.iter()
        .map(|(nr, c)| pb::SyscallCount {
            nr: *nr,
            count: c.count,
            errors: c.errors.iter().map(|(k, v)| (*k, *v)).collect(),
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
                count(&mut p.syscalls, s.nr, s.ret);
                count(&mut self.syscalls, s.nr, s.ret);
            }
            Some(pb::event::Kind::Exec(x)) => {
                p.exe.clone_from(&x.filename);
                p.start_ns = x.start_ns;
            }
            _ => {}
        }
    }

    pub fn build(&self) -> pb::SegmentIndex {
        let mut processes: Vec<pb::ProcessSummary> = self
            .procs
            .iter()
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
