//! Which recorded processes make up a process tree. Identity is the pid and
//! the start time, never the pid alone: with pids reused, a child is a
//! process whose recorded parent is the tree's process *while that process
//! lived*, and an event belongs to a member only within its lifetime.
use std::collections::HashSet;

use tracer_proto as pb;

/// One process of a tree and the time its events are in (inclusive,
/// monotonic ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub key: (u32, u64),
    pub since_ns: u64,
    pub until_ns: u64,
}

impl Member {
    fn of(p: &pb::ProcessInfo) -> Option<Self> {
        let k = p.key?;
        // Events start at the fork (start time) or, for a process that was
        // running when recording began, at its first recorded event.
        let since = match (k.start_ns, p.first_ns) {
            (0, f) => f,
            (s, 0) => s,
            (s, f) => s.min(f),
        };
        Some(Self {
            key: (k.pid, k.start_ns),
            since_ns: since,
            until_ns: if p.exited { p.last_ns } else { u64::MAX },
        })
    }

    /// Whether `e` is an event of this process.
    pub fn holds(&self, e: &pb::Event) -> bool {
        e.pid == self.key.0 && (self.since_ns..=self.until_ns).contains(&e.ts_ns)
    }
}

/// The process `root` and, with `children`, every process it forked, and
/// theirs, as recorded: root first, then breadth first.
pub fn members(all: &[pb::ProcessInfo], root: &pb::ProcessInfo, children: bool) -> Vec<Member> {
    let Some(first) = Member::of(root) else {
        return vec![];
    };
    let mut out = vec![first];
    if !children {
        return out;
    }
    let mut seen: HashSet<(u32, u64)> = HashSet::from([first.key]);
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for m in all
            .iter()
            .filter(|p| p.ppid == parent.key.0)
            .filter_map(Member::of)
        {
            // Forked by this parent: it started while the parent lived.
            let start = if m.key.1 != 0 { m.key.1 } else { m.since_ns };
            if (parent.since_ns..=parent.until_ns).contains(&start) && seen.insert(m.key) {
                out.push(m);
            }
        }
        i += 1;
    }
    out
}

/// The pids of the tree of the newest recorded process with pid `root`.
pub fn descendants(all: &[pb::ProcessInfo], root: u32) -> Vec<u32> {
    let newest = all
        .iter()
        .filter(|p| p.key.is_some_and(|k| k.pid == root))
        .max_by_key(|p| p.key.map(|k| (k.start_ns, p.last_ns)));
    let Some(newest) = newest else {
        return vec![root];
    };
    let mut pids: Vec<u32> = members(all, newest, true).iter().map(|m| m.key.0).collect();
    let mut seen = HashSet::new();
    pids.retain(|p| seen.insert(*p));
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(
        pid: u32,
        start: u64,
        ppid: u32,
        first: u64,
        last: u64,
        exited: bool,
    ) -> pb::ProcessInfo {
        pb::ProcessInfo {
            key: Some(pb::ProcessKey {
                pid,
                start_ns: start,
            }),
            ppid,
            first_ns: first,
            last_ns: last,
            exited,
            ..Default::default()
        }
    }

    #[test]
    fn a_tree_follows_forks_by_lifetime_never_by_pid_alone() {
        let all = vec![
            // Pid 10 twice: the root (started at 100, running), and an
            // older, unrelated process that exited at 50.
            proc(10, 5, 1, 6, 50, true),
            proc(10, 100, 1, 101, 900, false),
            // 11 twice: a child of the old 10 (started at 20) and of the
            // root (started at 200).
            proc(11, 20, 10, 21, 40, true),
            proc(11, 200, 10, 201, 300, true),
            // 12: a grandchild through the root's 11.
            proc(12, 250, 11, 251, 260, true),
            // 13: child of another 11 that lived later, not in the tree.
            proc(13, 400, 11, 401, 410, true),
        ];
        let root = &all[1];
        let keys: Vec<(u32, u64)> = members(&all, root, true).iter().map(|m| m.key).collect();
        assert_eq!(keys, vec![(10, 100), (11, 200), (12, 250)]);
        let m = members(&all, root, false);
        assert_eq!(m.len(), 1);
        let ev = |pid, ts_ns| pb::Event {
            pid,
            ts_ns,
            ..Default::default()
        };
        assert!(m[0].holds(&ev(10, 500)));
        assert!(!m[0].holds(&ev(10, 30)), "the old process's event");
        assert_eq!(descendants(&all, 10), vec![10, 11, 12]);
    }
}
