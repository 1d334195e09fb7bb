//! Per-process loss as events: the kernel's per-process loss counters and
//! the drain thread's backlog drops, compared at each check with the last
//! one, become one `Loss` record per process that lost since, queued behind
//! what was drained so far. So a process's loss reaches its index, `ps`,
//! its bundle and its replay, which stops at the first event that may
//! follow the gap instead of replaying past it.
use std::collections::HashMap;

use tracer_common::wire::{LossRecord, RecordKind};

/// What was counted at the last check.
pub struct LossWatch {
    seen: HashMap<u32, u64>,
    since_ns: u64,
}

impl LossWatch {
    /// Starts watching at `now_ns` (nothing lost before it is known).
    pub fn new(now_ns: u64) -> Self {
        Self {
            seen: HashMap::new(),
            since_ns: now_ns,
        }
    }

    /// `Loss` records (framed as in a chunk) for each process whose count
    /// in `by_process` grew since the last check; empty when none did.
    pub fn check(&mut self, by_process: &[(u32, u64)], now_ns: u64) -> Vec<u8> {
        let mut chunk = Vec::new();
        for &(pid, total) in by_process {
            let before = self.seen.insert(pid, total).unwrap_or(0);
            // A counter that went down was reset (the pid's entry was
            // dropped from a full map): all of it is new.
            let new = if total >= before {
                total - before
            } else {
                total
            };
            if new == 0 || pid == 0 {
                continue;
            }
            let r = LossRecord {
                kind: RecordKind::Loss as u32,
                pid,
                records: new,
                since_ns: self.since_ns,
                until_ns: now_ns,
            };
            crate::drain::frame(&mut chunk, &[&crate::assemble::bytes_of(&r)]);
        }
        self.since_ns = now_ns;
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::Assembler;
    use tracer_proto as pb;

    fn losses(chunk: &[u8]) -> Vec<pb::Event> {
        let mut asm = Assembler::default();
        let mut out = vec![];
        for rec in crate::drain::records(chunk) {
            asm.push(rec, &mut |e| out.push(e));
        }
        assert_eq!(asm.stats.malformed, 0);
        out
    }

    #[test]
    fn each_new_loss_is_one_event_of_its_process_with_its_window() {
        let mut w = LossWatch::new(100);
        assert!(w.check(&[], 200).is_empty());
        let ev = losses(&w.check(&[(7, 3), (9, 0)], 300));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].pid, 7);
        assert_eq!(ev[0].ts_ns, 300);
        assert_eq!(
            ev[0].kind,
            Some(pb::event::Kind::Loss(pb::Loss {
                records: 3,
                since_ns: 200
            }))
        );
        // Unchanged counts say nothing; only what grew, by how much.
        assert!(w.check(&[(7, 3)], 400).is_empty());
        let ev = losses(&w.check(&[(7, 5), (9, 1)], 500));
        let got: Vec<(u32, u64)> = ev
            .iter()
            .map(|e| match &e.kind {
                Some(pb::event::Kind::Loss(l)) => (e.pid, l.records),
                _ => panic!("not a loss"),
            })
            .collect();
        assert_eq!(got, vec![(7, 2), (9, 1)]);
    }
}
