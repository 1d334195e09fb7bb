//! The replayed program's file descriptors as the recording saw them: which
//! are its stdout and stderr (what it writes there is shown), and which
//! file each one opened (a mapped file's contents come from the bundle).
use std::collections::HashMap;

use tracer_proto as pb;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fd {
    Stdout,
    Stderr,
    File(String),
    Other,
}

#[derive(Debug, Clone)]
pub struct FdTable(HashMap<i64, Fd>);

const F_DUPFD: u64 = 0;
const F_DUPFD_CLOEXEC: u64 = 1030;

impl Default for FdTable {
    fn default() -> Self {
        Self(HashMap::from([(1, Fd::Stdout), (2, Fd::Stderr)]))
    }
}

fn path_arg(s: &pb::Syscall, arg: u32) -> Option<String> {
    let b = s
        .buffers
        .iter()
        .find(|b| b.arg == arg && b.direction == pb::Direction::In as i32)?;
    Some(String::from_utf8_lossy(b.data.strip_suffix(&[0]).unwrap_or(&b.data)).into_owned())
}

impl FdTable {
    pub fn get(&self, fd: i64) -> Fd {
        self.0.get(&fd).cloned().unwrap_or(Fd::Other)
    }

    /// Follows a replayed (recorded) syscall's effect on the table.
    pub fn apply(&mut self, name: &str, args: &[u64; 6], s: &pb::Syscall) {
        let ret = s.ret;
        let copy = |t: &mut Self, from: i64, to: i64| {
            let f = t.get(from);
            t.0.insert(to, f);
        };
        match name {
            "open" | "creat" if ret >= 0 => {
                let p = path_arg(s, 0).unwrap_or_default();
                self.0.insert(ret, Fd::File(p));
            }
            "openat" | "openat2" if ret >= 0 => {
                let p = path_arg(s, 1).unwrap_or_default();
                // Relative to a directory fd: keep the name; mapping such a
                // file falls back to its recorded path if the bundle has it.
                self.0.insert(ret, Fd::File(p));
            }
            // A file of its own, empty at birth, that no other name
            // reaches: named apart from every other memfd (of any name).
            "memfd_create" if ret >= 0 => {
                let n = path_arg(s, 0).unwrap_or_default();
                self.0.insert(ret, Fd::File(memfd_name(&n, s.enter_ns)));
            }
            "dup" if ret >= 0 => copy(self, args[0] as i64, ret),
            "dup2" | "dup3" if ret >= 0 => copy(self, args[0] as i64, args[1] as i64),
            "fcntl" if ret >= 0 && (args[1] == F_DUPFD || args[1] == F_DUPFD_CLOEXEC) => {
                copy(self, args[0] as i64, ret)
            }
            "close" => {
                self.0.remove(&(args[0] as i64));
            }
            _ if ret >= 0 && returns_fd(name) => {
                self.0.insert(ret, Fd::Other);
            }
            _ => {}
        }
    }
}

/// What a memfd is called here: `/proc` shows it as `/memfd:NAME`, and the
/// time of its creation tells two of one name apart.
pub fn memfd_name(name: &str, created_ns: u64) -> String {
    format!("/memfd:{name} (made at {created_ns})")
}

/// Whether `path` names a memfd (never a file of this machine or a bundle).
pub fn is_memfd(path: &str) -> bool {
    path.starts_with("/memfd:") && path.ends_with(')')
}

fn returns_fd(name: &str) -> bool {
    matches!(
        name,
        "socket"
            | "accept"
            | "accept4"
            | "epoll_create"
            | "epoll_create1"
            | "eventfd"
            | "eventfd2"
            | "timerfd_create"
            | "signalfd"
            | "signalfd4"
            | "inotify_init"
            | "inotify_init1"
            | "memfd_create"
            | "pidfd_open"
            | "open_by_handle_at"
            | "fanotify_init"
            | "userfaultfd"
            | "perf_event_open"
            | "bpf"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &str, ret: i64) -> pb::Syscall {
        pb::Syscall {
            ret,
            buffers: vec![pb::Buffer {
                arg: 1,
                direction: pb::Direction::In as i32,
                data: format!("{path}\0").into_bytes(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn follows_opens_dups_and_closes() {
        let mut t = FdTable::default();
        t.apply("openat", &[0; 6], &open("/lib/libc.so.6", 3));
        assert_eq!(t.get(3), Fd::File("/lib/libc.so.6".into()));
        let dup2 = pb::Syscall {
            ret: 7,
            ..Default::default()
        };
        t.apply("dup2", &[1, 7, 0, 0, 0, 0], &dup2);
        assert_eq!(t.get(7), Fd::Stdout, "a dup of stdout is stdout");
        t.apply("close", &[1, 0, 0, 0, 0, 0], &pb::Syscall::default());
        assert_eq!(t.get(1), Fd::Other);
        assert_eq!(t.get(7), Fd::Stdout);
    }
}
