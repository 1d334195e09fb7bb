//! Turns ring-buffer records into complete protobuf events.
//!
//! Buffers arrive before the syscall (or exec) record they belong to and
//! name it by `(tid, enter_ns)`; they are held per thread until that record
//! comes. Buffers whose record never comes (it was lost) are dropped and
//! counted, never attached to another syscall.
use std::collections::HashMap;

use tracer_common::{
    effects,
    wire::{
        self, ARG_EXEC_ARGV, ARG_EXEC_AUXV, ARG_EXEC_CWD, ARG_EXEC_ENVP, ARG_EXEC_FILENAME,
        BUFFER_AT_EXIT, BUFFER_FAULT, BUFFER_TRUNCATED, BatchHeader, BufferHeader, EXIT_GROUP_DEAD,
        ExecRecord, ExitRecord, FORK_THREAD, ForkRecord, INLINE_MAX, InlineHeader, LossRecord,
        RecordKind, STAGE_MAX, SYSCALL_BUFFER_LOST, SYSCALL_EFFECTS_UNKNOWN, SYSCALL_NO_ENTER,
        SYSCALL_NO_PAYLOAD, SignalRecord, SysRecord, SyscallRecord, TaskRecord, TimeRecord,
    },
};
use tracer_proto as pb;

/// Most threads with buffers waiting for their syscall record.
const MAX_PENDING_THREADS: usize = 65536;
/// Most bytes held for one thread's pending syscall.
const MAX_PENDING_BYTES: usize = 64 << 20;

#[derive(Default)]
struct Pending {
    enter_ns: u64,
    chunks: u32,
    bytes: usize,
    buffers: Vec<pb::Buffer>,
}

/// Counters of what the assembler saw.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct AssembleStats {
    pub records: u64,
    pub events: u64,
    pub syscalls: u64,
    pub process_events: u64,
    /// Buffer chunks dropped because their syscall record was lost.
    pub orphan_buffers: u64,
    /// Records that could not be decoded (short or unknown kind).
    pub malformed: u64,
    /// Processes whose vDSO was patched for exact time.
    pub time_exact: u64,
    /// Processes that read time the recording does not have (before the
    /// patch, or through an unpatched vDSO function).
    pub time_missed: u64,
    /// Processes whose vDSO could not be patched.
    pub time_not_patched: u64,
}

#[derive(Default)]
pub struct Assembler {
    pending: HashMap<u32, Pending>,
    seq: u64,
    pub stats: AssembleStats,
}

fn comm_str(c: &[u8; wire::COMM_LEN]) -> String {
    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
    String::from_utf8_lossy(&c[..end]).into_owned()
}

fn direction(d: u8) -> i32 {
    match d {
        1 => pb::Direction::In as i32,
        2 => pb::Direction::Out as i32,
        3 => pb::Direction::InOut as i32,
        _ => pb::Direction::Unspecified as i32,
    }
}

/// The inline buffers of a `SyscallInline` record: `len` bytes of
/// [`InlineHeader`]s, each followed by its data padded to 8 bytes. `None`
/// when they do not parse (a length past the end, a short header).
fn decode_inline(rest: &[u8], len: u32) -> Option<Vec<pb::Buffer>> {
    let len = len as usize;
    if len > INLINE_MAX || len > rest.len() {
        return None;
    }
    let mut area = &rest[..len];
    let mut out = Vec::new();
    while !area.is_empty() {
        // SAFETY: plain data; length is checked.
        let h = unsafe { wire::read_record::<InlineHeader>(area) }?;
        let n = h.len as usize;
        let data = area.get(size_of::<InlineHeader>()..size_of::<InlineHeader>() + n)?;
        out.push(pb::Buffer {
            arg: h.arg as u32,
            direction: direction(h.dir),
            item: 0,
            data: data.to_vec(),
            total_len: h.total_len,
            truncated: h.flags & BUFFER_TRUNCATED != 0,
            fault: h.flags & BUFFER_FAULT != 0,
            read_at_exit: h.flags & BUFFER_AT_EXIT != 0,
        });
        let step = (size_of::<InlineHeader>() + n).next_multiple_of(8);
        area = area.get(step..).unwrap_or_default();
    }
    Some(out)
}

/// Inputs read again at exit (`BUFFER_AT_EXIT`, sent because some input
/// faulted at entry) replace the entry copy where that one faulted or is
/// missing; where the entry copy is whole, it is what the kernel read and
/// stays, and the exit copy is dropped.
fn take_exit_reads(mut buffers: Vec<pb::Buffer>) -> Vec<pb::Buffer> {
    if !buffers.iter().any(|b| b.read_at_exit) {
        return buffers;
    }
    let key = |b: &pb::Buffer| (b.arg, b.direction, b.item);
    let (again, mut out): (Vec<_>, Vec<_>) = buffers.drain(..).partition(|b| b.read_at_exit);
    for b in again {
        match out.iter_mut().find(|e| key(e) == key(&b)) {
            Some(entry) if entry.fault => *entry = b,
            Some(_) => {}
            None => out.push(b),
        }
    }
    out
}

/// Splits a NUL-separated block (argv, envp) into its strings.
pub fn split_nul(block: &[u8]) -> Vec<Vec<u8>> {
    let block = block.strip_suffix(&[0]).unwrap_or(block);
    if block.is_empty() {
        return vec![];
    }
    block.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// `(type, value)` words of an auxv, up to and excluding AT_NULL.
/// The working directory an `ARG_EXEC_CWD` buffer holds (see its doc),
/// when the kernel's walk reached the root.
fn cwd_of(block: &[u8]) -> Option<String> {
    let (&complete, names) = block.split_first()?;
    if complete != 1 {
        return None;
    }
    let mut parts: Vec<&[u8]> = names.split(|b| *b == 0).filter(|p| !p.is_empty()).collect();
    parts.reverse();
    let mut dir = String::from("/");
    dir.push_str(
        &parts
            .iter()
            .map(|p| String::from_utf8_lossy(p))
            .collect::<Vec<_>>()
            .join("/"),
    );
    Some(dir)
}

/// `rel` resolved from `dir`, without its `.` components (`..` stays: the
/// kernel resolves it through whatever `rel` names).
fn join_relative(dir: &str, rel: &str) -> String {
    let mut out = dir.trim_end_matches('/').to_owned();
    for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() { "/".into() } else { out }
}

fn auxv_words(block: &[u8]) -> Vec<u64> {
    let mut out = vec![];
    for pair in block.chunks_exact(16) {
        let t = u64::from_le_bytes(pair[0..8].try_into().unwrap_or_default());
        let v = u64::from_le_bytes(pair[8..16].try_into().unwrap_or_default());
        if t == 0 {
            break;
        }
        out.push(t);
        out.push(v);
    }
    out
}

impl Assembler {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Feeds one ring-buffer record; complete events go to `out`.
    pub fn push(&mut self, rec: &[u8], out: &mut impl FnMut(pb::Event)) {
        self.stats.records += 1;
        let Some(kind) = rec
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        else {
            self.stats.malformed += 1;
            return;
        };
        // SAFETY (all read_record calls): the types are plain data; length is checked.
        let ok = match RecordKind::from_u32(kind) {
            Some(RecordKind::Buffer) => unsafe { wire::read_record::<BufferHeader>(rec) }
                .map(|h| self.buffer(&h, &rec[size_of::<BufferHeader>()..]))
                .is_some(),
            Some(RecordKind::Syscall) => unsafe { wire::read_record::<SyscallRecord>(rec) }
                .map(|r| self.syscall(&r, vec![], out))
                .is_some(),
            Some(RecordKind::SyscallInline) => self.syscall_inline(rec, out),
            Some(RecordKind::Batch) => self.batch(rec, out),
            // Only inside a batch, whose Task records say who they are.
            Some(RecordKind::Sys | RecordKind::Task) => false,
            Some(RecordKind::Fork) => unsafe { wire::read_record::<ForkRecord>(rec) }
                .map(|r| self.fork(&r, out))
                .is_some(),
            Some(RecordKind::Exec) => unsafe { wire::read_record::<ExecRecord>(rec) }
                .map(|r| self.exec(&r, out))
                .is_some(),
            Some(RecordKind::Exit) => unsafe { wire::read_record::<ExitRecord>(rec) }
                .map(|r| self.exit(&r, out))
                .is_some(),
            Some(RecordKind::Signal) => unsafe { wire::read_record::<SignalRecord>(rec) }
                .map(|r| self.signal(&r, out))
                .is_some(),
            Some(RecordKind::Loss) => unsafe { wire::read_record::<LossRecord>(rec) }
                .map(|r| self.loss(&r, out))
                .is_some(),
            Some(RecordKind::Time) => unsafe { wire::read_record::<TimeRecord>(rec) }
                .map(|r| {
                    // The patcher's records carry the executable's path
                    // after the fixed part.
                    let exe = rec
                        .get(std::mem::size_of::<TimeRecord>()..)
                        .unwrap_or_default();
                    self.time(&r, exe, out)
                })
                .is_some(),
            None => false,
        };
        if !ok {
            self.stats.malformed += 1;
        }
    }

    fn buffer(&mut self, h: &BufferHeader, data: &[u8]) {
        let data = &data[..(h.len as usize).min(data.len())];
        if !self.pending.contains_key(&h.tid) && self.pending.len() >= MAX_PENDING_THREADS {
            self.stats.orphan_buffers += 1;
            return;
        }
        let p = self.pending.entry(h.tid).or_default();
        if p.enter_ns != h.enter_ns || (p.chunks == 0 && p.buffers.is_empty()) {
            self.stats.orphan_buffers += p.chunks as u64;
            *p = Pending {
                enter_ns: h.enter_ns,
                ..Default::default()
            };
        }
        p.chunks += 1;
        if p.bytes + data.len() > MAX_PENDING_BYTES {
            self.stats.orphan_buffers += 1;
            return;
        }
        p.bytes += data.len();
        let dir = direction(h.dir);
        let truncated = h.flags & BUFFER_TRUNCATED != 0;
        let fault = h.flags & BUFFER_FAULT != 0;
        let again = h.flags & BUFFER_AT_EXIT != 0;
        if let Some(b) = p.buffers.iter_mut().find(|b| {
            b.arg == h.arg as u32
                && b.direction == dir
                && b.item == h.item
                && b.read_at_exit == again
        }) {
            if h.offset as usize == b.data.len() {
                b.data.extend_from_slice(data);
            } else {
                // A chunk in between was lost.
                b.truncated = true;
            }
            b.truncated |= truncated;
            b.fault |= fault;
            return;
        }
        p.buffers.push(pb::Buffer {
            arg: h.arg as u32,
            direction: dir,
            item: h.item,
            data: data.to_vec(),
            total_len: h.total_len,
            truncated: truncated || h.offset != 0,
            fault,
            read_at_exit: again,
        });
    }

    fn take_pending(&mut self, tid: u32, enter_ns: u64) -> Option<Pending> {
        // Most syscalls have no buffer records: no hashing then.
        if self.pending.is_empty() {
            return None;
        }
        match self.pending.remove(&tid) {
            Some(p) if p.enter_ns == enter_ns => Some(p),
            Some(p) => {
                self.stats.orphan_buffers += p.chunks as u64;
                None
            }
            None => None,
        }
    }

    /// A batch of records from one CPU, in order: `Sys` records, each after
    /// a `Task` record of its thread. A record that does not parse ends the
    /// batch (what follows cannot be found): it is counted as malformed, the
    /// records before it are kept. A `Sys` record whose thread no `Task`
    /// record named is counted and dropped (its identity is unknown).
    fn batch(&mut self, rec: &[u8], out: &mut impl FnMut(pb::Event)) -> bool {
        // SAFETY: plain data; length is checked.
        let Some(h) = (unsafe { wire::read_record::<BatchHeader>(rec) }) else {
            return false;
        };
        let Some(mut data) = rec
            .get(size_of::<BatchHeader>()..size_of::<BatchHeader>() + h.len as usize)
            .filter(|_| h.len as usize <= STAGE_MAX)
        else {
            return false;
        };
        let mut who: Option<TaskRecord> = None;
        while !data.is_empty() {
            let kind = data.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
            let size = match kind.map(u32::from).and_then(RecordKind::from_u32) {
                Some(RecordKind::Task) => {
                    // SAFETY: plain data; length is checked.
                    let Some(t) = (unsafe { wire::read_record::<TaskRecord>(data) }) else {
                        return false;
                    };
                    who = Some(t);
                    size_of::<TaskRecord>()
                }
                Some(RecordKind::Sys) => {
                    // SAFETY: plain data; length is checked.
                    let Some(r) = (unsafe { wire::read_record::<SysRecord>(data) }) else {
                        return false;
                    };
                    let size = size_of::<SysRecord>() + r.inline_len as usize;
                    if r.inline_len as usize > INLINE_MAX || size > data.len() {
                        return false;
                    }
                    self.stats.records += 1;
                    match who.filter(|t| t.tid == r.tid) {
                        Some(t) => self.sys(&r, &t, &data[size_of::<SysRecord>()..size], out),
                        None => self.stats.malformed += 1,
                    }
                    size
                }
                _ => return false,
            };
            data = &data[size..];
        }
        true
    }

    /// A compact syscall record of a batch, with who made it.
    fn sys(
        &mut self,
        r: &SysRecord,
        who: &TaskRecord,
        inline: &[u8],
        out: &mut impl FnMut(pb::Event),
    ) {
        let full = SyscallRecord {
            kind: RecordKind::SyscallInline as u32,
            flags: r.flags,
            enter_ns: r.enter_ns,
            exit_ns: r.exit_ns,
            cgroup_id: who.cgroup_id,
            nr: r.nr as i64,
            args: r.args,
            ret: r.ret,
            pid: who.pid,
            tid: r.tid,
            uid: who.uid,
            gid: who.gid,
            comm: who.comm,
            buffers: r.buffers as u32,
            inline_len: r.inline_len as u32,
        };
        let Some(bufs) = decode_inline(inline, full.inline_len) else {
            if let Some(p) = self.pending.remove(&r.tid) {
                self.stats.orphan_buffers += p.chunks as u64;
            }
            self.stats.malformed += 1;
            return;
        };
        self.syscall(&full, bufs, out);
    }

    /// A syscall record with its small buffers inline. A record whose inline
    /// part does not parse is counted as malformed and dropped whole (with
    /// any buffers waiting for it), never half-decoded.
    fn syscall_inline(&mut self, rec: &[u8], out: &mut impl FnMut(pb::Event)) -> bool {
        // SAFETY: plain data; length is checked.
        let Some(r) = (unsafe { wire::read_record::<SyscallRecord>(rec) }) else {
            return false;
        };
        let Some(inline) = decode_inline(&rec[size_of::<SyscallRecord>()..], r.inline_len) else {
            if let Some(p) = self.pending.remove(&r.tid) {
                self.stats.orphan_buffers += p.chunks as u64;
            }
            return false;
        };
        self.syscall(&r, inline, out);
        true
    }

    fn syscall(
        &mut self,
        r: &SyscallRecord,
        inline: Vec<pb::Buffer>,
        out: &mut impl FnMut(pb::Event),
    ) {
        let p = self.take_pending(r.tid, r.enter_ns).unwrap_or_default();
        // Buffer records come before inline ones; most syscalls have only
        // the latter, which are then taken as they are (no copy).
        let mut buffers = if p.buffers.is_empty() {
            inline
        } else {
            let mut b = p.buffers;
            b.extend(inline);
            take_exit_reads(b)
        };
        for b in &mut buffers {
            if b.data.len() as u64 > b.total_len {
                b.total_len = b.data.len() as u64;
            }
            if (b.data.len() as u64) < b.total_len {
                b.truncated = true;
            }
        }
        let lost = r.flags & SYSCALL_BUFFER_LOST != 0 || p.chunks < r.buffers;
        self.stats.syscalls += 1;
        let ev = pb::Event {
            ts_ns: r.exit_ns,
            pid: r.pid,
            tid: r.tid,
            uid: r.uid,
            gid: r.gid,
            cgroup_id: r.cgroup_id,
            comm: comm_str(&r.comm),
            seq: self.next_seq(),
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                nr: r.nr,
                name: effects::name(r.nr).unwrap_or("").to_owned(),
                args: r.args.to_vec(),
                ret: r.ret,
                enter_ns: r.enter_ns,
                exit_ns: r.exit_ns,
                buffers,
                // A successful call whose command's memory nobody here
                // knows (an ioctl request, a semctl GETALL) says so,
                // rather than pass for one that touched none.
                effects_unknown: r.flags & SYSCALL_EFFECTS_UNKNOWN != 0
                    || effects::op_unknown(r.nr, &r.args, r.ret).is_some(),
                no_enter: r.flags & SYSCALL_NO_ENTER != 0,
                buffers_lost: lost,
                no_payload: r.flags & SYSCALL_NO_PAYLOAD != 0,
                vdso: false,
            })),
        };
        self.emit(ev, out);
    }

    fn emit(&mut self, ev: pb::Event, out: &mut impl FnMut(pb::Event)) {
        self.stats.events += 1;
        out(ev);
    }

    fn fork(&mut self, r: &ForkRecord, out: &mut impl FnMut(pb::Event)) {
        self.stats.process_events += 1;
        let ev = pb::Event {
            ts_ns: r.ts_ns,
            pid: r.parent_pid,
            tid: r.parent_tid,
            uid: r.uid,
            comm: comm_str(&r.comm),
            seq: self.next_seq(),
            kind: Some(pb::event::Kind::Fork(pb::Fork {
                parent_pid: r.parent_pid,
                parent_tid: r.parent_tid,
                child_pid: r.child_pid,
                child_tid: r.child_tid,
                clone_flags: r.clone_flags,
                thread: r.flags & FORK_THREAD != 0,
                child_start_ns: r.child_start_ns,
            })),
            ..Default::default()
        };
        self.emit(ev, out);
    }

    fn exec(&mut self, r: &ExecRecord, out: &mut impl FnMut(pb::Event)) {
        self.stats.process_events += 1;
        let mut exec = pb::Exec {
            old_tid: r.old_tid,
            start_ns: r.start_ns,
            arg_start: r.arg_start,
            env_start: r.env_start,
            ..Default::default()
        };
        let mut cwd: Option<String> = None;
        let mut by_execveat = false;
        // The exec's buffers came with its syscall's, under the thread that
        // called it (another than the leader it now is, when a non-leader
        // thread exec'd).
        if let Some(p) = self
            .pending
            .get_mut(&r.old_tid)
            .filter(|p| p.enter_ns == r.enter_ns)
        {
            let mut rest = Vec::with_capacity(p.buffers.len());
            for b in p.buffers.drain(..) {
                match b.arg as u8 {
                    ARG_EXEC_ARGV => {
                        exec.truncated |= b.truncated;
                        exec.argv = split_nul(&b.data);
                    }
                    ARG_EXEC_ENVP => {
                        exec.truncated |= b.truncated;
                        exec.envp = split_nul(&b.data);
                    }
                    ARG_EXEC_AUXV => exec.auxv = auxv_words(&b.data),
                    ARG_EXEC_CWD => cwd = cwd_of(&b.data),
                    ARG_EXEC_FILENAME => {
                        exec.filename =
                            String::from_utf8_lossy(b.data.strip_suffix(&[0]).unwrap_or(&b.data))
                                .into_owned()
                    }
                    _ => rest.push(b),
                }
            }
            // execve's path is argument 0, execveat's argument 1.
            if let Some(path) = rest
                .iter()
                .find(|b| b.arg <= 1 && b.item == 0 && !b.data.is_empty())
            {
                by_execveat = path.arg == 1;
                exec.filename =
                    String::from_utf8_lossy(path.data.strip_suffix(&[0]).unwrap_or(&path.data))
                        .into_owned();
            }
            p.buffers = rest;
        }
        if !exec.filename.is_empty()
            && !exec.filename.starts_with('/')
            && !by_execveat
            && let Some(dir) = cwd
        {
            // Run by a relative path: resolved from the working directory
            // the kernel walked at the exec (a script itself, not its
            // interpreter; the process may be gone by now).
            exec.filename = join_relative(&dir, &exec.filename);
        } else if !exec.filename.is_empty() && !exec.filename.starts_with('/') {
            // Run by a relative path: the kernel's view of the program, while
            // it still runs, so that a bundle can carry it.
            let base = exec
                .filename
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            if let Ok(p) = std::fs::read_link(format!("/proc/{}/exe", r.pid))
                && p.file_name().is_some_and(|n| n.to_string_lossy() == base)
            {
                exec.filename = p.to_string_lossy().into_owned();
            }
        }
        let ev = pb::Event {
            ts_ns: r.ts_ns,
            pid: r.pid,
            tid: r.tid,
            uid: r.uid,
            cgroup_id: r.cgroup_id,
            comm: comm_str(&r.comm),
            seq: self.next_seq(),
            kind: Some(pb::event::Kind::Exec(exec)),
            ..Default::default()
        };
        self.emit(ev, out);
    }

    fn exit(&mut self, r: &ExitRecord, out: &mut impl FnMut(pb::Event)) {
        self.stats.process_events += 1;
        if let Some(p) = self.pending.remove(&r.tid) {
            self.stats.orphan_buffers += p.chunks as u64;
        }
        let status = r.exit_code;
        let signal = status & 0x7f;
        let ev = pb::Event {
            ts_ns: r.ts_ns,
            pid: r.pid,
            tid: r.tid,
            comm: comm_str(&r.comm),
            seq: self.next_seq(),
            kind: Some(pb::event::Kind::Exit(pb::Exit {
                status,
                exit_code: if signal == 0 {
                    ((status >> 8) & 0xff) as i32
                } else {
                    0
                },
                signal,
                core_dumped: status & 0x80 != 0,
                group_dead: r.flags & EXIT_GROUP_DEAD != 0,
            })),
            ..Default::default()
        };
        self.emit(ev, out);
    }

    /// The daemon saw that a process lost records: an event of that
    /// process, so that its index, its bundle and its replay say so.
    fn loss(&mut self, r: &LossRecord, out: &mut impl FnMut(pb::Event)) {
        self.stats.process_events += 1;
        let ev = pb::Event {
            ts_ns: r.until_ns,
            pid: r.pid,
            tid: r.pid,
            seq: self.next_seq(),
            kind: Some(pb::event::Kind::Loss(pb::Loss {
                records: r.records,
                since_ns: r.since_ns,
            })),
            ..Default::default()
        };
        self.emit(ev, out);
    }

    /// How a process's time reads are recorded (the patcher's outcome, or
    /// a read of the vDSO's clock data the kernel programs saw).
    fn time(&mut self, r: &TimeRecord, exe: &[u8], out: &mut impl FnMut(pb::Event)) {
        self.stats.process_events += 1;
        let missed = r.flags & wire::TIME_MISSED != 0;
        let exact = r.flags & wire::TIME_EXACT != 0;
        let not_patched = if r.flags & wire::TIME_NOT_PATCHED != 0 {
            time_reason(r.reason).to_owned()
        } else {
            String::new()
        };
        if missed {
            self.stats.time_missed += 1;
        }
        if exact {
            self.stats.time_exact += 1;
        }
        if !not_patched.is_empty() {
            self.stats.time_not_patched += 1;
        }
        let ev = pb::Event {
            ts_ns: r.ts_ns,
            pid: r.pid,
            tid: r.tid,
            seq: self.next_seq(),
            kind: Some(pb::event::Kind::Time(pb::TimeReads {
                exec_ns: r.exec_ns,
                exact,
                missed,
                not_patched,
                exe: match exe.split(|&b| b == 0).next() {
                    Some(p) if p.starts_with(b"/") => String::from_utf8_lossy(p).into_owned(),
                    _ => String::new(),
                },
            })),
            ..Default::default()
        };
        self.emit(ev, out);
    }

    fn signal(&mut self, r: &SignalRecord, out: &mut impl FnMut(pb::Event)) {
        self.stats.process_events += 1;
        let ev = pb::Event {
            ts_ns: r.ts_ns,
            pid: r.pid,
            tid: r.tid,
            seq: self.next_seq(),
            kind: Some(pb::event::Kind::Signal(pb::Signal {
                signo: r.signo,
                code: r.code,
                errno: r.errno,
                sender_pid: if wire::names_a_pid(r.signo, r.code) {
                    r.field as u32
                } else {
                    0
                },
                addr: if wire::names_an_address(r.signo, r.code) {
                    r.field
                } else {
                    0
                },
            })),
            ..Default::default()
        };
        self.emit(ev, out);
    }
}

/// Why the patcher left a process's vDSO alone (`TIME_REASON_*`).
pub fn time_reason(code: u32) -> &'static str {
    match code {
        wire::TIME_REASON_GONE => "the process was gone",
        wire::TIME_REASON_DENIED => "permission denied writing its memory",
        wire::TIME_REASON_NO_VDSO => "it has no vDSO",
        wire::TIME_REASON_UNKNOWN_VDSO => "its vDSO is not one the daemon can read",
        wire::TIME_REASON_BUSY => "the patcher was behind",
        _ => "unknown reason",
    }
}

/// The bytes of a plain-data wire record, as the kernel sends it (the
/// daemon's own `Loss` records, and its tests).
pub(crate) fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: plain-data record types.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walked_working_directory_joins_a_relative_exec_path() {
        let block = b"\x01work\0.tmpAB\0tmp\0";
        let dir = cwd_of(block).expect("complete");
        assert_eq!(dir, "/tmp/.tmpAB/work");
        assert_eq!(join_relative(&dir, "./quick"), "/tmp/.tmpAB/work/quick");
        assert_eq!(join_relative(&dir, "../x/./y"), "/tmp/.tmpAB/work/../x/y");
        assert_eq!(cwd_of(b"\x01"), Some("/".into()));
        assert_eq!(join_relative("/", "./a"), "/a");
        assert_eq!(
            cwd_of(b"\x00deep\0"),
            None,
            "an incomplete walk is not a path"
        );
        assert_eq!(cwd_of(b""), None);
    }

    fn buffer(tid: u32, enter_ns: u64, arg: u8, offset: u32, data: &[u8], total: u64) -> Vec<u8> {
        let h = BufferHeader {
            kind: RecordKind::Buffer as u32,
            tid,
            enter_ns,
            total_len: total,
            offset,
            len: data.len() as u32,
            arg,
            dir: 2,
            flags: 0,
            item: 0,
        };
        let mut v = bytes_of(&h);
        v.extend_from_slice(data);
        v
    }

    fn syscall(tid: u32, enter_ns: u64, nr: i64, ret: i64, buffers: u32) -> Vec<u8> {
        bytes_of(&SyscallRecord {
            kind: RecordKind::Syscall as u32,
            flags: 0,
            enter_ns,
            exit_ns: enter_ns + 5,
            cgroup_id: 1,
            nr,
            args: [3, 0x1000, 10, 0, 0, 0],
            ret,
            pid: tid,
            tid,
            uid: 0,
            gid: 0,
            comm: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
            buffers,
            inline_len: 0,
        })
    }

    fn run(records: &[Vec<u8>]) -> (Vec<pb::Event>, AssembleStats) {
        let mut a = Assembler::default();
        let mut out = vec![];
        for r in records {
            a.push(r, &mut |e| out.push(e));
        }
        (out, a.stats)
    }

    fn sys(e: &pb::Event) -> &pb::Syscall {
        match &e.kind {
            Some(pb::event::Kind::Syscall(s)) => s,
            k => panic!("not a syscall: {k:?}"),
        }
    }

    #[test]
    fn joins_chunks_to_their_syscall() {
        let (ev, st) = run(&[
            buffer(7, 100, 1, 0, b"hello ", 11),
            buffer(7, 100, 1, 6, b"world", 11),
            syscall(7, 100, 0, 11, 2),
        ]);
        assert_eq!(ev.len(), 1);
        let s = sys(&ev[0]);
        assert_eq!(s.name, "read");
        assert_eq!(s.buffers.len(), 1);
        assert_eq!(s.buffers[0].data, b"hello world");
        assert!(!s.buffers[0].truncated && !s.buffers_lost);
        assert_eq!(ev[0].comm, "cat");
        assert_eq!(st.orphan_buffers, 0);
    }

    #[test]
    fn never_attaches_buffers_to_the_wrong_syscall() {
        // The syscall record for enter_ns 100 was lost; its buffer must not
        // end up on the next syscall of the thread.
        let (ev, st) = run(&[
            buffer(7, 100, 1, 0, b"old", 3),
            buffer(7, 200, 1, 0, b"new", 3),
            syscall(7, 200, 0, 3, 1),
        ]);
        assert_eq!(sys(&ev[0]).buffers[0].data, b"new");
        assert_eq!(st.orphan_buffers, 1);
    }

    #[test]
    fn a_missing_chunk_is_reported_not_hidden() {
        let (ev, _) = run(&[
            buffer(7, 100, 1, 0, b"abc", 9),
            buffer(7, 100, 1, 6, b"ghi", 9),
            syscall(7, 100, 0, 9, 3),
        ]);
        let s = sys(&ev[0]);
        assert!(s.buffers[0].truncated);
        assert!(s.buffers_lost, "the record said 3 chunks, 2 arrived");
    }

    #[test]
    fn short_or_unknown_records_are_counted() {
        let (ev, st) = run(&[vec![1, 0], vec![99, 0, 0, 0, 1, 2, 3], vec![1, 0, 0, 0]]);
        assert!(ev.is_empty());
        assert_eq!(st.malformed, 3);
    }

    /// A `SyscallInline` record: the syscall record, then each buffer as an
    /// inline header and its data padded to 8 bytes.
    fn inline(
        tid: u32,
        enter_ns: u64,
        nr: i64,
        ret: i64,
        bufs: &[(u8, u8, u16, &[u8], u64)],
    ) -> Vec<u8> {
        let mut area = vec![];
        for (arg, dir, flags, data, total) in bufs {
            let h = InlineHeader {
                arg: *arg,
                dir: *dir,
                flags: *flags,
                len: data.len() as u32,
                total_len: *total,
            };
            area.extend_from_slice(&bytes_of(&h));
            area.extend_from_slice(data);
            area.resize(area.len().next_multiple_of(8), 0);
        }
        let mut v = syscall(tid, enter_ns, nr, ret, 0);
        v[..4].copy_from_slice(&(RecordKind::SyscallInline as u32).to_le_bytes());
        let at = std::mem::offset_of!(SyscallRecord, inline_len);
        v[at..at + 4].copy_from_slice(&(area.len() as u32).to_le_bytes());
        v.extend_from_slice(&area);
        v
    }

    #[test]
    fn inline_buffers_make_the_same_event_as_buffer_records() {
        let (classic, _) = run(&[
            buffer(7, 100, 1, 0, b"path\0", 5),
            buffer(7, 100, 2, 0, b"x", 1),
            syscall(7, 100, 0, 1, 2),
        ]);
        let (fast, st) = run(&[inline(
            7,
            100,
            0,
            1,
            &[(1, 2, 0, b"path\0", 5), (2, 2, 0, b"x", 1)],
        )]);
        assert_eq!(st.malformed, 0);
        assert_eq!(fast.len(), 1);
        assert_eq!(sys(&fast[0]), sys(&classic[0]));
        assert_eq!(fast[0].comm, classic[0].comm);
    }

    #[test]
    fn an_input_read_again_at_exit_replaces_only_a_faulted_entry_copy() {
        let rec = |arg: u8, flags: u16, data: &[u8], total: u64| {
            let mut b = buffer(7, 100, arg, 0, data, total);
            b[std::mem::offset_of!(BufferHeader, dir)] = 1;
            b[std::mem::offset_of!(BufferHeader, flags)..][..2]
                .copy_from_slice(&flags.to_le_bytes());
            b
        };
        let (ev, st) = run(&[
            // arg 1 faulted at entry, arg 2 did not; both read again.
            rec(1, BUFFER_FAULT | wire::BUFFER_STRING, b"", 0),
            rec(2, 0, b"entry", 5),
            rec(1, BUFFER_AT_EXIT | wire::BUFFER_STRING, b"/dev/zero\0", 10),
            rec(2, BUFFER_AT_EXIT, b"later", 5),
            syscall(7, 100, 1, 5, 4),
        ]);
        assert_eq!(st.malformed, 0);
        let s = sys(&ev[0]);
        let got: Vec<(u32, &[u8], bool, bool)> = s
            .buffers
            .iter()
            .map(|b| (b.arg, b.data.as_slice(), b.fault, b.read_at_exit))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, &b"/dev/zero\0"[..], false, true),
                (2, &b"entry"[..], false, false)
            ]
        );
        assert!(!s.buffers_lost);
    }

    #[test]
    fn inline_buffers_keep_flags_and_follow_demoted_ones() {
        // An input sent as a buffer record (the task was switched out), the
        // output inline: inputs first, as the kernel sent them.
        let (ev, st) = run(&[
            {
                let mut b = buffer(7, 100, 1, 0, b"in", 2);
                b[std::mem::offset_of!(BufferHeader, dir)] = 1;
                b
            },
            inline(
                7,
                100,
                0,
                0,
                &[
                    (2, 2, BUFFER_FAULT, b"", 8),
                    (3, 1, wire::BUFFER_STRING, b"s\0", 2),
                ],
            ),
        ]);
        assert_eq!(st.malformed, 0);
        let s = sys(&ev[0]);
        assert_eq!(s.buffers.len(), 3);
        assert_eq!(s.buffers[0].data, b"in");
        assert!(s.buffers[1].fault && s.buffers[1].truncated && s.buffers[1].data.is_empty());
        assert_eq!(s.buffers[1].total_len, 8);
        assert_eq!(s.buffers[2].data, b"s\0");
        assert!(!s.buffers[2].truncated);
    }

    #[test]
    fn malformed_inline_records_are_counted_never_half_decoded() {
        let good = inline(7, 100, 0, 3, &[(1, 2, 0, b"abc", 3)]);
        let len_at = std::mem::offset_of!(SyscallRecord, inline_len);
        // Cut short: the record says more inline bytes than it has.
        let short = good[..good.len() - 8].to_vec();
        // A buffer header claiming more data than the inline area holds.
        let mut overlong = good.clone();
        let hdr = size_of::<SyscallRecord>();
        overlong[hdr + 4..hdr + 8].copy_from_slice(&100u32.to_le_bytes());
        // An inline length past the most a record can carry.
        let mut huge = good.clone();
        huge[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        // Shorter than the syscall record itself.
        let tiny = good[..40].to_vec();
        // An inline area too short for one header.
        let mut torn = syscall(7, 100, 0, 3, 0);
        torn[..4].copy_from_slice(&(RecordKind::SyscallInline as u32).to_le_bytes());
        torn[len_at..len_at + 4].copy_from_slice(&8u32.to_le_bytes());
        torn.extend_from_slice(&[0; 8]);
        let (ev, st) = run(&[short, overlong, huge, tiny, torn]);
        assert!(ev.is_empty());
        assert_eq!(st.malformed, 5);
        assert_eq!(st.syscalls, 0);
        // A good one after them still decodes.
        let (ev, st) = run(&[good]);
        assert_eq!(st.malformed, 0);
        assert_eq!(sys(&ev[0]).buffers[0].data, b"abc");
    }

    fn batch(records: &[Vec<u8>]) -> Vec<u8> {
        let data: Vec<u8> = records.concat();
        let mut v = bytes_of(&BatchHeader {
            kind: RecordKind::Batch as u32,
            len: data.len() as u32,
        });
        v.extend_from_slice(&data);
        v
    }

    /// The `Task` record the kernel puts before a thread's `Sys` records,
    /// saying what `syscall` and `inline` records carry.
    fn task(tid: u32) -> Vec<u8> {
        bytes_of(&TaskRecord {
            kind: RecordKind::Task as u16,
            tid,
            pid: tid,
            uid: 0,
            gid: 0,
            cgroup_id: 1,
            comm: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..Default::default()
        })
    }

    /// A compact `Sys` record: what `inline` makes, as the fast path sends
    /// it.
    fn sys_rec(
        tid: u32,
        enter_ns: u64,
        nr: i64,
        ret: i64,
        bufs: &[(u8, u8, u16, &[u8], u64)],
    ) -> Vec<u8> {
        let full = inline(tid, enter_ns, nr, ret, bufs);
        let area = full[size_of::<SyscallRecord>()..].to_vec();
        let mut v = bytes_of(&SysRecord {
            kind: RecordKind::Sys as u16,
            nr: nr as u16,
            tid,
            flags: 0,
            buffers: 0,
            inline_len: area.len() as u16,
            enter_ns,
            exit_ns: enter_ns + 5,
            ret,
            args: [3, 0x1000, 10, 0, 0, 0],
        });
        v.extend_from_slice(&area);
        v
    }

    #[test]
    fn a_batch_is_its_records_in_order() {
        let (one_by_one, _) = run(&[
            syscall(7, 100, 3, 0, 0),
            inline(8, 110, 0, 1, &[(1, 2, 0, b"z", 1)]),
            syscall(7, 120, 3, 0, 0),
        ]);
        let (batched, st) = run(&[batch(&[
            task(7),
            sys_rec(7, 100, 3, 0, &[]),
            task(8),
            sys_rec(8, 110, 0, 1, &[(1, 2, 0, b"z", 1)]),
            task(7),
            sys_rec(7, 120, 3, 0, &[]),
        ])]);
        assert_eq!(st.malformed, 0);
        assert_eq!(st.syscalls, 3);
        let k = |e: &[pb::Event]| e.iter().map(|e| sys(e).clone()).collect::<Vec<_>>();
        assert_eq!(k(&batched), k(&one_by_one));
        // Who made each: the same as the full records say.
        for (b, o) in batched.iter().zip(&one_by_one) {
            assert_eq!(
                (b.pid, b.tid, b.uid, b.gid, b.cgroup_id, &b.comm),
                (o.pid, o.tid, o.uid, o.gid, o.cgroup_id, &o.comm)
            );
        }
    }

    #[test]
    fn a_batch_record_without_its_task_is_counted_not_guessed() {
        // No Task record at all, then one of another thread.
        let (ev, st) = run(&[batch(&[
            sys_rec(7, 100, 3, 0, &[]),
            task(8),
            sys_rec(7, 110, 3, 0, &[]),
            sys_rec(8, 120, 3, 0, &[]),
        ])]);
        assert_eq!(st.malformed, 2);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].tid, sys(&ev[0]).enter_ns), (8, 120));
        // Not a thing outside a batch.
        let (ev, st) = run(&[task(7), sys_rec(7, 100, 3, 0, &[])]);
        assert!(ev.is_empty());
        assert_eq!(st.malformed, 2);
    }

    #[test]
    fn a_torn_batch_keeps_what_came_before_and_is_counted() {
        let mut b = batch(&[
            task(7),
            sys_rec(7, 100, 3, 0, &[]),
            sys_rec(7, 120, 3, 0, &[]),
        ]);
        // The second syscall record's kind is garbage.
        b[size_of::<BatchHeader>() + size_of::<TaskRecord>() + size_of::<SysRecord>()] = 99;
        let long = {
            // A length past the data.
            let mut l = batch(&[task(7), sys_rec(7, 130, 3, 0, &[])]);
            l[4..8].copy_from_slice(&4000u32.to_le_bytes());
            l
        };
        // The last record cut short, the batch length saying so.
        let cut_short = |whole: Vec<u8>| {
            let mut c = whole[..whole.len() - 8].to_vec();
            let n = (c.len() - size_of::<BatchHeader>()) as u32;
            c[4..8].copy_from_slice(&n.to_le_bytes());
            c
        };
        let cut = cut_short(batch(&[task(7), sys_rec(7, 140, 3, 0, &[])]));
        let torn_task = cut_short(batch(&[task(7)]));
        let inline_past_end = {
            // A record whose inline length runs past the batch.
            let mut r = sys_rec(7, 150, 0, 1, &[(1, 2, 0, b"z", 1)]);
            let at = std::mem::offset_of!(SysRecord, inline_len);
            r[at..at + 2].copy_from_slice(&200u16.to_le_bytes());
            batch(&[task(7), r])
        };
        let inline_too_long = {
            let mut r = sys_rec(7, 160, 0, 1, &[(1, 2, 0, b"z", 1)]);
            let at = std::mem::offset_of!(SysRecord, inline_len);
            r[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
            r.resize(r.len() + u16::MAX as usize, 0);
            batch(&[task(7), r])
        };
        let bad_inline = {
            // Inline headers that do not parse: the record is dropped.
            let mut r = sys_rec(7, 170, 0, 1, &[(1, 2, 0, b"z", 1)]);
            let h = size_of::<SysRecord>();
            r[h + 4..h + 8].copy_from_slice(&100u32.to_le_bytes());
            batch(&[task(7), r])
        };
        let nested = batch(&[batch(&[task(7), sys_rec(7, 180, 3, 0, &[])])]);
        let (ev, st) = run(&[
            b,
            long,
            cut,
            torn_task,
            inline_past_end,
            inline_too_long,
            bad_inline,
            nested,
            vec![4, 0, 0, 0],
        ]);
        assert_eq!(ev.len(), 1, "the record before the torn one");
        assert_eq!(sys(&ev[0]).enter_ns, 100);
        assert_eq!(st.malformed, 9);
    }

    /// Whatever the ring holds, the assembler counts and goes on: every cut
    /// and every flipped byte of a batch of each record kind, and random
    /// bytes behind every kind, never panic.
    #[test]
    fn no_damage_to_a_batch_makes_it_panic() {
        let good = batch(&[
            task(7),
            sys_rec(7, 100, 0, 1, &[(1, 2, 0, b"z", 1)]),
            sys_rec(7, 110, 3, 0, &[]),
            task(8),
            sys_rec(8, 120, 1, 3, &[(1, 1, 0, b"abc", 3), (2, 2, 0, b"", 9)]),
        ]);
        let mut a = Assembler::default();
        let mut n = 0u64;
        for cut in 0..good.len() {
            a.push(&good[..cut], &mut |_| n += 1);
        }
        for at in 0..good.len() {
            for bit in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[at] ^= bit;
                a.push(&b, &mut |_| n += 1);
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for kind in 0..16u32 {
            for len in [0usize, 3, 8, 40, 200, 9000] {
                let mut r: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if r.len() >= 4 {
                    r[..4].copy_from_slice(&kind.to_le_bytes());
                }
                a.push(&r, &mut |_| n += 1);
            }
        }
        assert!(a.stats.malformed > 0);
        // The undamaged batch still decodes whole afterwards.
        let before = a.stats.syscalls;
        a.push(&good, &mut |_| {});
        assert_eq!(a.stats.syscalls - before, 3);
    }

    #[test]
    fn splits_argv_blocks() {
        assert_eq!(
            split_nul(b"ls\0-la\0"),
            vec![b"ls".to_vec(), b"-la".to_vec()]
        );
        assert_eq!(split_nul(b""), Vec::<Vec<u8>>::new());
        assert_eq!(
            split_nul(b"a\0\0b\0"),
            vec![b"a".to_vec(), vec![], b"b".to_vec()]
        );
    }
}
