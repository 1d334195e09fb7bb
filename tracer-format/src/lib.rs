//! strace-like one-line rendering of recorded events, for
//! `tracer-daemon --print` and `tracectl`. Pure formatting: no I/O.
use std::fmt::Write as _;

use tracer_common::effects::{self, ArgFmt};
use tracer_proto as pb;

/// Longest buffer shown, in bytes, before `...`.
const SHOW_MAX: usize = 32;

pub fn quote(data: &[u8], max: usize) -> String {
    let mut s = String::from("\"");
    for &b in data.iter().take(max) {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    if data.len() > max {
        s.push_str("...");
    }
    s
}

fn open_flags(v: u64) -> String {
    const NAMES: &[(u64, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o40000, "O_DIRECT"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ];
    let mut parts = vec![
        match v & 3 {
            0 => "O_RDONLY",
            1 => "O_WRONLY",
            2 => "O_RDWR",
            _ => "O_ACCMODE",
        }
        .to_owned(),
    ];
    let mut rest = v & !3;
    for &(bit, name) in NAMES {
        if rest & bit == bit {
            parts.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#o}"));
    }
    parts.join("|")
}

fn arg_text(s: &pb::Syscall, i: usize, fmt: ArgFmt) -> String {
    let v = s.args.get(i).copied().unwrap_or(0);
    let buf = s
        .buffers
        .iter()
        .find(|b| b.arg == i as u32 && b.item == 0 && b.direction != pb::Direction::Out as i32)
        .or_else(|| s.buffers.iter().find(|b| b.arg == i as u32 && b.item == 0));
    match fmt {
        ArgFmt::Int | ArgFmt::Fd => (v as i64).to_string(),
        ArgFmt::AtFd => {
            if v as i32 == -100 {
                "AT_FDCWD".into()
            } else {
                (v as i32).to_string()
            }
        }
        ArgFmt::UInt => v.to_string(),
        ArgFmt::Hex => format!("{v:#x}"),
        ArgFmt::Octal => {
            if v == 0 {
                "0".into()
            } else {
                format!("0{v:o}")
            }
        }
        ArgFmt::OpenFlags => open_flags(v),
        ArgFmt::Signal => signal_name(v as u32),
        ArgFmt::Str | ArgFmt::Buf => match buf {
            // What could not be read is said, never shown as empty.
            Some(b) if b.fault && b.data.is_empty() => format!("{v:#x} <unreadable>"),
            Some(b) => {
                let data = if fmt == ArgFmt::Str {
                    b.data.strip_suffix(&[0]).unwrap_or(&b.data)
                } else {
                    &b.data
                };
                let mut q = quote(data, if fmt == ArgFmt::Str { 4096 } else { SHOW_MAX });
                if b.truncated && !q.ends_with("...") {
                    q.push_str("...");
                }
                q
            }
            None if v == 0 => "NULL".into(),
            None => format!("{v:#x}"),
        },
        ArgFmt::Ptr => {
            if v == 0 {
                "NULL".into()
            } else {
                format!("{v:#x}")
            }
        }
    }
}

pub fn signal_name(n: u32) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES
        .get(n as usize)
        .map(|s| (*s).to_owned())
        .unwrap_or_else(|| format!("SIGRT{n}"))
}

/// `ENOENT` for 2. Includes the kernel-internal restart codes a syscall
/// exit can show before signal handling turns them into EINTR or a restart.
pub fn errno_name(code: i32) -> String {
    match code {
        512 => "ERESTARTSYS".into(),
        513 => "ERESTARTNOINTR".into(),
        514 => "ERESTARTNOHAND".into(),
        515 => "ENOIOCTLCMD".into(),
        516 => "ERESTART_RESTARTBLOCK".into(),
        _ => format!("{:?}", nix::errno::Errno::from_raw(code)),
    }
}

fn errno_ret(e: i64) -> String {
    let code = (-e) as i32;
    let errno = nix::errno::Errno::from_raw(code);
    if (512..=516).contains(&code) {
        return format!("? {} (to be restarted)", errno_name(code));
    }
    format!("-1 {errno:?} ({})", errno.desc())
}

/// One line for one event.
pub fn line(ev: &pb::Event) -> String {
    let head = format!("[{} {}] {}", ev.pid, ev.tid, ev.comm);
    match &ev.kind {
        Some(pb::event::Kind::Syscall(s)) => {
            let mut text = String::new();
            let info = effects::lookup(s.nr);
            let name = info
                .map(|i| i.name.to_owned())
                .unwrap_or_else(|| format!("syscall_{}", s.nr));
            let fmts: Vec<ArgFmt> = match info {
                Some(i) => i.args.iter().map(|(_, f)| *f).collect(),
                None => vec![ArgFmt::Hex; 6],
            };
            let args: Vec<String> = fmts
                .iter()
                .enumerate()
                .map(|(i, f)| arg_text(s, i, *f))
                .collect();
            let _ = write!(text, "{head} {name}({})", args.join(", "));
            if s.ret < 0 && s.ret > -4096 {
                let _ = write!(text, " = {}", errno_ret(s.ret));
            } else if fmts.contains(&ArgFmt::Hex) && s.ret > 0xffff {
                let _ = write!(text, " = {:#x}", s.ret);
            } else {
                let _ = write!(text, " = {}", s.ret);
            }
            // Outputs not shown in an argument's place (struct out-params).
            let shown = |b: &pb::Buffer| {
                b.item == 0 && matches!(fmts.get(b.arg as usize), Some(ArgFmt::Buf | ArgFmt::Str))
            };
            for b in s
                .buffers
                .iter()
                .filter(|b| b.direction == pb::Direction::Out as i32 && !shown(b))
            {
                let _ = write!(
                    text,
                    " <out arg{}{}: {}>",
                    b.arg,
                    if b.item > 0 {
                        format!("[{}]", b.item)
                    } else {
                        String::new()
                    },
                    quote(&b.data, SHOW_MAX)
                );
            }
            if s.effects_unknown {
                text.push_str(" <effects unknown>");
            }
            if s.buffers_lost {
                text.push_str(" <buffers lost>");
            }
            text
        }
        Some(pb::event::Kind::Fork(f)) => format!(
            "{head} +++ {} {} (flags {:#x}) +++",
            if f.thread { "thread" } else { "process" },
            f.child_tid,
            f.clone_flags
        ),
        Some(pb::event::Kind::Exec(e)) => {
            let argv: Vec<String> = e.argv.iter().map(|a| quote(a, 256)).collect();
            format!(
                "{head} +++ exec {} [{}] +++",
                quote(e.filename.as_bytes(), 4096),
                argv.join(", ")
            )
        }
        Some(pb::event::Kind::Exit(x)) => {
            if x.signal != 0 {
                format!(
                    "{head} +++ killed by {}{} +++",
                    signal_name(x.signal),
                    if x.core_dumped { " (core dumped)" } else { "" }
                )
            } else {
                format!("{head} +++ exited with {} +++", x.exit_code)
            }
        }
        // strace's form: a fault by its address (a seccomp SIGSYS by its
        // syscall's), a signal sent (or a child's SIGCHLD) by its pid.
        Some(pb::event::Kind::Signal(s)) => {
            let detail = if tracer_common::wire::is_fault(s.signo, s.code) {
                format!(", si_addr={:#x}", s.addr)
            } else if tracer_common::wire::names_an_address(s.signo, s.code) {
                format!(", si_call_addr={:#x}", s.addr)
            } else if tracer_common::wire::names_a_pid(s.signo, s.code) {
                format!(", si_pid={}", s.sender_pid)
            } else {
                String::new()
            };
            format!(
                "{head} --- {} {{si_code={}{detail}}} ---",
                signal_name(s.signo),
                s.code
            )
        }
        Some(pb::event::Kind::Loss(l)) => format!(
            "[{}] !!! {} records of this process lost while recording (ring buffer or \
             backlog full), between {} and {} ns !!!",
            ev.pid, l.records, l.since_ns, ev.ts_ns
        ),
        Some(pb::event::Kind::Time(t)) => {
            let what = if t.missed {
                "+++ time read not recorded (the vDSO's clock was read before it was patched) +++"
                    .to_owned()
            } else if t.exact {
                "+++ exact time: the vDSO's time functions are syscalls from here +++".to_owned()
            } else {
                format!(
                    "+++ time reads not recorded: vDSO not patched ({}) +++",
                    t.not_patched
                )
            };
            format!("{head} {what}")
        }
        None => format!("{head} <empty event>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_strace() {
        let ev = pb::Event {
            pid: 5,
            tid: 5,
            comm: "cat".into(),
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                nr: 257,
                args: vec![(-100i64) as u64, 0x1000, 0o2000000, 0, 0, 0],
                ret: 3,
                buffers: vec![pb::Buffer {
                    arg: 1,
                    direction: 1,
                    data: b"/etc/hosts\0".to_vec(),
                    total_len: 11,
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            line(&ev),
            "[5 5] cat openat(AT_FDCWD, \"/etc/hosts\", O_RDONLY|O_CLOEXEC, 0) = 3"
        );
    }

    #[test]
    fn quotes_and_cuts_binary() {
        assert_eq!(quote(b"a\n\x01\"", 10), "\"a\\n\\x01\\\"\"");
        assert_eq!(quote(b"abcdef", 3), "\"abc\"...");
    }

    #[test]
    fn names_errors() {
        assert_eq!(errno_ret(-2), "-1 ENOENT (No such file or directory)");
        assert_eq!(errno_name(13), "EACCES");
    }

    #[test]
    fn signals_show_what_their_siginfo_holds() {
        let sig = |signo, code, sender_pid, addr| pb::Event {
            pid: 5,
            tid: 5,
            comm: "t".into(),
            kind: Some(pb::event::Kind::Signal(pb::Signal {
                signo,
                code,
                sender_pid,
                addr,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            line(&sig(11, 1, 0, 0x10)),
            "[5 5] t --- SIGSEGV {si_code=1, si_addr=0x10} ---"
        );
        assert_eq!(
            line(&sig(17, 1, 42, 0)),
            "[5 5] t --- SIGCHLD {si_code=1, si_pid=42} ---"
        );
        assert_eq!(
            line(&sig(14, 128, 0, 0)),
            "[5 5] t --- SIGALRM {si_code=128} ---"
        );
        assert_eq!(
            line(&sig(15, 0, 9, 0)),
            "[5 5] t --- SIGTERM {si_code=0, si_pid=9} ---"
        );
    }
}
