//! Files the replayed program made itself, as the recording shows them.
//! A program that creates a file, sizes and writes it, maps it shared and
//! deletes it (sqlite's `-shm`, the JVM's hsperfdata) leaves nothing for a
//! bundle to copy; but when the recording shows the file empty at its
//! creation (`O_TRUNC`, `O_EXCL`, or an fstat of size 0 right after) and
//! every change after it (`ftruncate`, `pwrite64`, and `write` at the file
//! offset, followed from the open through `write`, `read` and `lseek`), its
//! contents at the `mmap` are known exactly. Any change this does not
//! follow (a write through an fd whose offset it does not know, such as a
//! dup, `fallocate`, vectored writes) makes the file unknown again: then
//! there is no model, never a guess.
use std::collections::HashMap;

use tracer_proto as pb;

use crate::fds::{Fd, FdTable};

const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
/// `st_size` in the x86_64 `struct stat`.
const ST_SIZE: usize = 48;
/// Largest file modelled (a mapping this big is not a shared scratch file).
const MAX_MODEL: u64 = 256 << 20;

#[derive(Debug, Clone)]
enum State {
    /// Created without `O_TRUNC`/`O_EXCL`: empty only if an fstat says so.
    Unsure,
    Known(Vec<u8>),
}

/// The files of one process that it made, by path.
/// Where the next `write` through an fd goes: its offset, or the end.
#[derive(Debug, Clone, Copy)]
enum Offset {
    At(u64),
    Append,
}

#[derive(Debug, Clone, Default)]
pub struct MadeFiles {
    files: HashMap<String, State>,
    /// File offsets of the fds opened on modelled files, by fd (the path
    /// the open gave the fd; an unreadable one is "", never modelled).
    offsets: HashMap<u64, Offset>,
}

fn in_buffer(s: &pb::Syscall, arg: u32) -> Option<&[u8]> {
    s.buffers
        .iter()
        .find(|b| {
            b.arg == arg && b.direction == pb::Direction::In as i32 && !b.fault && !b.truncated
        })
        .map(|b| b.data.as_slice())
}

fn out_buffer(s: &pb::Syscall, arg: u32) -> Option<&[u8]> {
    s.buffers
        .iter()
        .find(|b| b.arg == arg && b.direction == pb::Direction::Out as i32)
        .map(|b| b.data.as_slice())
}

impl MadeFiles {
    /// The contents of `path` as the program made them, when known.
    pub fn contents(&self, path: &str) -> Option<&[u8]> {
        match self.files.get(path) {
            Some(State::Known(d)) => Some(d),
            _ => None,
        }
    }

    /// Follows a replayed (recorded) syscall, with the fd table as that
    /// syscall left it (`fds`) for the files its fds name.
    pub fn apply(&mut self, name: &str, args: &[u64; 6], s: &pb::Syscall, fds: &FdTable) {
        let path_of = |fd: u64| match fds.get(fd as i64) {
            Fd::File(p) => Some(p),
            _ => None,
        };
        match name {
            "openat" | "open" if s.ret >= 0 => {
                let flags = if name == "openat" { args[2] } else { args[1] };
                self.offsets.remove(&(s.ret as u64));
                let Some(path) = path_of(s.ret as u64).filter(|p| !p.is_empty()) else {
                    return;
                };
                if flags & O_CREAT != 0 && flags & (O_TRUNC | O_EXCL) != 0 {
                    self.files.insert(path.clone(), State::Known(Vec::new()));
                } else if flags & O_CREAT != 0 {
                    self.files.entry(path.clone()).or_insert(State::Unsure);
                } else if flags & O_TRUNC != 0 {
                    self.files.insert(path.clone(), State::Known(Vec::new()));
                }
                if self.files.contains_key(&path) {
                    let at = if flags & O_APPEND != 0 {
                        Offset::Append
                    } else {
                        Offset::At(0)
                    };
                    self.offsets.insert(s.ret as u64, at);
                }
            }
            "close" => {
                self.offsets.remove(&args[0]);
            }
            "lseek" if s.ret >= 0 => {
                if let Some(o @ Offset::At(_)) = self.offsets.get_mut(&args[0]) {
                    *o = Offset::At(s.ret as u64);
                }
            }
            "read" | "readv" if s.ret >= 0 => {
                if let Some(Offset::At(o)) = self.offsets.get_mut(&args[0]) {
                    *o += s.ret as u64;
                }
            }
            "write" if s.ret >= 0 => {
                let Some(path) = path_of(args[0]) else { return };
                let data = in_buffer(s, 1).map(|d| &d[..(s.ret as usize).min(d.len())]);
                let offset = self.offsets.get(&args[0]).copied();
                match (self.files.get_mut(&path), data, offset) {
                    (Some(State::Known(d)), Some(data), Some(o)) => {
                        let at = match o {
                            Offset::At(at) => at as usize,
                            Offset::Append => d.len(),
                        };
                        if (at + data.len()) as u64 > MAX_MODEL {
                            self.files.remove(&path);
                            return;
                        }
                        if d.len() < at + data.len() {
                            d.resize(at + data.len(), 0);
                        }
                        d[at..at + data.len()].copy_from_slice(data);
                        if let Some(Offset::At(o)) = self.offsets.get_mut(&args[0]) {
                            *o += data.len() as u64;
                        }
                    }
                    (Some(_), _, _) => {
                        self.files.remove(&path);
                    }
                    _ => {}
                }
            }
            "fstat" | "newfstatat" if s.ret == 0 => {
                // newfstatat(fd, "", AT_EMPTY_PATH) is fstat.
                let (fd, out) = if name == "fstat" {
                    (args[0], 1)
                } else {
                    (args[0], 2)
                };
                if name == "newfstatat"
                    && in_buffer(s, 1).is_some_and(|p| p != b"\0" && !p.is_empty())
                {
                    return;
                }
                let Some(path) = path_of(fd) else { return };
                let Some(size) = out_buffer(s, out)
                    .and_then(|b| b.get(ST_SIZE..ST_SIZE + 8))
                    .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
                else {
                    return;
                };
                match self.files.get_mut(&path) {
                    Some(st @ State::Unsure) if size == 0 => *st = State::Known(Vec::new()),
                    Some(State::Known(d)) if d.len() as u64 != size => {
                        // Someone else changed it: no longer known.
                        self.files.remove(&path);
                    }
                    _ => {}
                }
            }
            "ftruncate" if s.ret == 0 => {
                if let Some(path) = path_of(args[0])
                    && let Some(State::Known(d)) = self.files.get_mut(&path)
                {
                    if args[1] > MAX_MODEL {
                        self.files.remove(&path);
                    } else {
                        d.resize(args[1] as usize, 0);
                    }
                }
            }
            "pwrite64" if s.ret >= 0 => {
                let Some(path) = path_of(args[0]) else { return };
                let data = in_buffer(s, 1).map(|d| &d[..(s.ret as usize).min(d.len())]);
                match (self.files.get_mut(&path), data) {
                    (Some(State::Known(d)), Some(data))
                        if args[3] + data.len() as u64 <= MAX_MODEL =>
                    {
                        let at = args[3] as usize;
                        if d.len() < at + data.len() {
                            d.resize(at + data.len(), 0);
                        }
                        d[at..at + data.len()].copy_from_slice(data);
                    }
                    (Some(_), _) => {
                        self.files.remove(&path);
                    }
                    _ => {}
                }
            }
            // Changes this does not follow: the file is unknown from here.
            "writev" | "pwritev" | "pwritev2" | "fallocate" | "truncate" | "copy_file_range"
            | "splice" | "sendfile"
                if s.ret >= 0 =>
            {
                let fd = if matches!(name, "copy_file_range" | "splice") {
                    args[2]
                } else {
                    args[0]
                };
                if let Some(path) = path_of(fd) {
                    self.files.remove(&path);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(ret: i64, bufs: Vec<(u32, i32, Vec<u8>)>) -> pb::Syscall {
        pb::Syscall {
            ret,
            buffers: bufs
                .into_iter()
                .map(|(arg, direction, data)| pb::Buffer {
                    arg,
                    direction,
                    data,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    const IN: i32 = pb::Direction::In as i32;
    const OUT: i32 = pb::Direction::Out as i32;

    fn stat(size: u64) -> Vec<u8> {
        let mut st = vec![0u8; 144];
        st[ST_SIZE..ST_SIZE + 8].copy_from_slice(&size.to_le_bytes());
        st
    }

    /// sqlite's `-shm`: created, found empty, sized, touched page by page,
    /// mapped shared.
    #[test]
    fn a_file_made_empty_then_sized_and_written_is_known() {
        let mut fds = FdTable::default();
        let mut m = MadeFiles::default();
        let open = sys(5, vec![(1, IN, b"/db-shm\0".to_vec())]);
        let args = [0, 0, O_CREAT | 2, 0o644, 0, 0];
        fds.apply("openat", &args, &open);
        m.apply("openat", &args, &open, &fds);
        assert!(m.contents("/db-shm").is_none(), "unsure until an fstat");
        m.apply(
            "newfstatat",
            &[5, 0, 0, 0x1000, 0, 0],
            &sys(0, vec![(1, IN, b"\0".to_vec()), (2, OUT, stat(0))]),
            &fds,
        );
        assert_eq!(m.contents("/db-shm"), Some(&[][..]));
        m.apply("ftruncate", &[5, 3, 0, 0, 0, 0], &sys(0, vec![]), &fds);
        m.apply(
            "pwrite64",
            &[5, 0, 1, 8191, 0, 0],
            &sys(1, vec![(1, IN, b"x".to_vec())]),
            &fds,
        );
        let c = m.contents("/db-shm").expect("known");
        assert_eq!(c.len(), 8192);
        assert_eq!(c[8191], b'x');
        assert!(c[..8191].iter().all(|&b| b == 0));
        // A write at the file offset (0 since the open, then 1).
        for _ in 0..2 {
            m.apply(
                "write",
                &[5, 0, 1, 0, 0, 0],
                &sys(1, vec![(1, IN, b"y".to_vec())]),
                &fds,
            );
        }
        let c = m.contents("/db-shm").expect("known");
        assert_eq!(&c[..3], b"yy\0");
        m.apply("lseek", &[5, 100, 0, 0, 0, 0], &sys(100, vec![]), &fds);
        m.apply(
            "write",
            &[5, 0, 1, 0, 0, 0],
            &sys(1, vec![(1, IN, b"z".to_vec())]),
            &fds,
        );
        assert_eq!(m.contents("/db-shm").expect("known")[100], b'z');
        // Through an fd whose offset is not followed: unknown, no guess.
        m.apply("close", &[5, 0, 0, 0, 0, 0], &sys(0, vec![]), &fds);
        m.apply(
            "write",
            &[5, 0, 1, 0, 0, 0],
            &sys(1, vec![(1, IN, b"y".to_vec())]),
            &fds,
        );
        assert!(m.contents("/db-shm").is_none());
    }

    #[test]
    fn a_file_that_was_not_empty_is_never_modelled() {
        let mut fds = FdTable::default();
        let mut m = MadeFiles::default();
        let open = sys(5, vec![(1, IN, b"/old\0".to_vec())]);
        let args = [0, 0, O_CREAT | 2, 0o644, 0, 0];
        fds.apply("openat", &args, &open);
        m.apply("openat", &args, &open, &fds);
        m.apply(
            "newfstatat",
            &[5, 0, 0, 0x1000, 0, 0],
            &sys(0, vec![(1, IN, b"\0".to_vec()), (2, OUT, stat(4096))]),
            &fds,
        );
        assert!(m.contents("/old").is_none());
        // Opened without O_CREAT: not made here.
        m.apply(
            "openat",
            &[0, 0, 2, 0, 0, 0],
            &sys(6, vec![(1, IN, b"/other\0".to_vec())]),
            &fds,
        );
        assert!(m.contents("/other").is_none());
    }
}
