//! `--json`: one JSON object per line, fields named as in the protobuf
//! messages (stable: new fields may be added, none renamed or removed).
//! Buffer contents are hex strings.
use serde_json::{Value, json};
use tracer_proto as pb;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn event(e: &pb::Event) -> Value {
    let mut v = json!({
        "seq": e.seq, "ts_ns": e.ts_ns, "pid": e.pid, "tid": e.tid, "uid": e.uid, "gid": e.gid,
        "cgroup_id": e.cgroup_id, "comm": e.comm,
    });
    let kind = match &e.kind {
        Some(pb::event::Kind::Syscall(s)) => {
            json!({"type": "syscall", "nr": s.nr, "name": s.name, "args": s.args,
            "ret": s.ret, "enter_ns": s.enter_ns, "exit_ns": s.exit_ns, "effects_unknown": s.effects_unknown,
            "no_enter": s.no_enter, "buffers_lost": s.buffers_lost, "no_payload": s.no_payload,
            "buffers": s.buffers.iter().map(|b| json!({"arg": b.arg, "direction": b.direction, "item": b.item,
                "data": hex(&b.data), "total_len": b.total_len, "truncated": b.truncated, "fault": b.fault})).collect::<Vec<_>>()})
        }
        Some(pb::event::Kind::Fork(f)) => {
            json!({"type": "fork", "parent_pid": f.parent_pid, "parent_tid": f.parent_tid,
            "child_pid": f.child_pid, "child_tid": f.child_tid, "clone_flags": f.clone_flags, "thread": f.thread,
            "child_start_ns": f.child_start_ns})
        }
        Some(pb::event::Kind::Exec(x)) => json!({"type": "exec", "filename": x.filename,
            "argv": x.argv.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>(),
            "envp": x.envp.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>(),
            "auxv": x.auxv, "start_ns": x.start_ns, "truncated": x.truncated, "old_tid": x.old_tid}),
        Some(pb::event::Kind::Exit(x)) => {
            json!({"type": "exit", "status": x.status, "exit_code": x.exit_code,
            "signal": x.signal, "core_dumped": x.core_dumped, "group_dead": x.group_dead})
        }
        Some(pb::event::Kind::Signal(x)) => {
            json!({"type": "signal", "signo": x.signo, "code": x.code,
            "errno": x.errno, "sender_pid": x.sender_pid, "addr": x.addr})
        }
        Some(pb::event::Kind::Loss(x)) => {
            json!({"type": "loss", "records": x.records, "since_ns": x.since_ns})
        }
        Some(pb::event::Kind::Time(x)) => {
            json!({"type": "time", "exec_ns": x.exec_ns, "exact": x.exact, "missed": x.missed,
            "not_patched": x.not_patched})
        }
        None => json!({"type": "unknown"}),
    };
    v["event"] = kind;
    v
}

pub fn process(p: &pb::ProcessInfo) -> Value {
    let k = p.key.unwrap_or_default();
    json!({"pid": k.pid, "start_ns": k.start_ns, "ppid": p.ppid, "comm": p.comm, "exe": p.exe,
        "argv": p.argv.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>(),
        "exited": p.exited, "exit_code": p.exit_code, "signal": p.signal, "event_count": p.event_count,
        "lost": p.lost, "first_ns": p.first_ns, "last_ns": p.last_ns})
}

pub fn stat(s: &pb::SyscallStat) -> Value {
    json!({"nr": s.nr, "name": s.name, "count": s.count,
        "errors": s.errors.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "p50_ns": s.p50_ns, "p90_ns": s.p90_ns, "p99_ns": s.p99_ns})
}

pub fn status(s: &pb::StatusReply) -> Value {
    json!({"version": s.version, "uptime_s": s.uptime_s, "events_recorded": s.events_recorded, "lost": s.lost,
        "lost_total": s.lost_total, "ring_size": s.ring_size, "ring_used": s.ring_used, "store_bytes": s.store_bytes,
        "store_segments": s.store_segments, "unflushed_events": s.unflushed_events, "events_dropped": s.events_dropped,
        "writing_suspended": s.writing_suspended, "last_error": s.last_error, "filters": s.filters})
}
