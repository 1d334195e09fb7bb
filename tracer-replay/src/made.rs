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
    /// Its bytes up to the last one written, and its size (larger when it
    /// was sized past them: the rest reads as zeros, as a hole does; a
    /// memfd of a TiB is sized so and written a little).
    Known { data: Vec<u8>, len: u64 },
}

impl State {
    fn empty() -> Self {
        State::Known {
            data: Vec::new(),
            len: 0,
        }
    }
}

/// A change to a known file that a copy of it made for a mapping must
/// get too (the mapping shares the file's pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Wrote { path: String, at: u64, len: u64 },
    Sized { path: String, len: u64 },
}

/// Writes `data` at `at` into a known file, or says it is too large to model.
fn write_at(data: &mut Vec<u8>, len: &mut u64, at: u64, bytes: &[u8]) -> bool {
    let end = at.saturating_add(bytes.len() as u64);
    if end > MAX_MODEL {
        return false;
    }
    let (at, end) = (at as usize, end as usize);
    if data.len() < end {
        data.resize(end, 0);
    }
    data[at..end].copy_from_slice(bytes);
    *len = (*len).max(end as u64);
    true
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
    /// The contents of `path` as the program made them, when known: its
    /// bytes up to the last one written, and its size.
    pub fn contents(&self, path: &str) -> Option<(&[u8], u64)> {
        match self.files.get(path) {
            Some(State::Known { data, len }) => Some((data, *len)),
            _ => None,
        }
    }

    /// Follows a replayed (recorded) syscall, with the fd table as that
    /// syscall left it (`fds`) for the files its fds name; says what it
    /// changed in a known file.
    pub fn apply(
        &mut self,
        name: &str,
        args: &[u64; 6],
        s: &pb::Syscall,
        fds: &FdTable,
    ) -> Option<Change> {
        let path_of = |fd: u64| match fds.get(fd as i64) {
            Fd::File(p) => Some(p),
            _ => None,
        };
        match name {
            "openat" | "open" if s.ret >= 0 => {
                let flags = if name == "openat" { args[2] } else { args[1] };
                self.offsets.remove(&(s.ret as u64));
                let path = path_of(s.ret as u64).filter(|p| !p.is_empty())?;
                if flags & O_CREAT != 0 && flags & (O_TRUNC | O_EXCL) != 0 {
                    self.files.insert(path.clone(), State::empty());
                } else if flags & O_CREAT != 0 {
                    self.files.entry(path.clone()).or_insert(State::Unsure);
                } else if flags & O_TRUNC != 0 {
                    self.files.insert(path.clone(), State::empty());
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
            // Empty at birth, always; no other name reaches it.
            "memfd_create" if s.ret >= 0 => {
                let path = path_of(s.ret as u64)?;
                self.files.insert(path, State::empty());
                self.offsets.insert(s.ret as u64, Offset::At(0));
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
                let path = path_of(args[0])?;
                let bytes = in_buffer(s, 1).map(|d| &d[..(s.ret as usize).min(d.len())]);
                let offset = self.offsets.get(&args[0]).copied();
                match (self.files.get_mut(&path), bytes, offset) {
                    (Some(State::Known { data, len }), Some(bytes), Some(o)) => {
                        let at = match o {
                            Offset::At(at) => at,
                            Offset::Append => *len,
                        };
                        if !write_at(data, len, at, bytes) {
                            self.files.remove(&path);
                            return None;
                        }
                        if let Some(Offset::At(o)) = self.offsets.get_mut(&args[0]) {
                            *o += bytes.len() as u64;
                        }
                        return Some(Change::Wrote {
                            path,
                            at,
                            len: bytes.len() as u64,
                        });
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
                    return None;
                }
                let path = path_of(fd)?;
                let size = out_buffer(s, out)
                    .and_then(|b| b.get(ST_SIZE..ST_SIZE + 8))
                    .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))?;
                match self.files.get_mut(&path) {
                    Some(st @ State::Unsure) if size == 0 => *st = State::empty(),
                    Some(State::Known { len, .. }) if *len != size => {
                        // Someone else changed it: no longer known.
                        self.files.remove(&path);
                    }
                    _ => {}
                }
            }
            // Any size: past the bytes written it is a hole.
            "ftruncate" if s.ret == 0 => {
                let path = path_of(args[0])?;
                if let Some(State::Known { data, len }) = self.files.get_mut(&path) {
                    *len = args[1];
                    data.truncate(usize::try_from(args[1]).unwrap_or(usize::MAX));
                    return Some(Change::Sized { path, len: args[1] });
                }
            }
            "pwrite64" if s.ret >= 0 => {
                let path = path_of(args[0])?;
                let bytes = in_buffer(s, 1).map(|d| &d[..(s.ret as usize).min(d.len())]);
                match (self.files.get_mut(&path), bytes) {
                    (Some(State::Known { data, len }), Some(bytes)) => {
                        if write_at(data, len, args[3], bytes) {
                            return Some(Change::Wrote {
                                path,
                                at: args[3],
                                len: bytes.len() as u64,
                            });
                        }
                        self.files.remove(&path);
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
        None
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
        assert_eq!(m.contents("/db-shm"), Some((&[][..], 0)));
        m.apply("ftruncate", &[5, 3, 0, 0, 0, 0], &sys(0, vec![]), &fds);
        m.apply(
            "pwrite64",
            &[5, 0, 1, 8191, 0, 0],
            &sys(1, vec![(1, IN, b"x".to_vec())]),
            &fds,
        );
        let c = m.contents("/db-shm").expect("known").0;
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
        let c = m.contents("/db-shm").expect("known").0;
        assert_eq!(&c[..3], b"yy\0");
        m.apply("lseek", &[5, 100, 0, 0, 0, 0], &sys(100, vec![]), &fds);
        m.apply(
            "write",
            &[5, 0, 1, 0, 0, 0],
            &sys(1, vec![(1, IN, b"z".to_vec())]),
            &fds,
        );
        assert_eq!(m.contents("/db-shm").expect("known").0[100], b'z');
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

    /// A memfd is empty at birth, may be sized far past what is written
    /// (a hole), and two of one name are two files.
    #[test]
    fn a_memfd_is_known_from_its_creation() {
        let mut fds = FdTable::default();
        let mut m = MadeFiles::default();
        let mk = |fd: i64, at: u64| pb::Syscall {
            enter_ns: at,
            ..sys(fd, vec![(0, IN, b"jit\0".to_vec())])
        };
        for (fd, at) in [(3, 100), (4, 200)] {
            let s = mk(fd, at);
            fds.apply("memfd_create", &[0; 6], &s);
            m.apply("memfd_create", &[0; 6], &s, &fds);
        }
        let (a, b) = (
            crate::fds::memfd_name("jit", 100),
            crate::fds::memfd_name("jit", 200),
        );
        assert_ne!(a, b);
        assert_eq!(m.contents(&a), Some((&[][..], 0)));
        let c = m.apply(
            "ftruncate",
            &[3, 1 << 40, 0, 0, 0, 0],
            &sys(0, vec![]),
            &fds,
        );
        assert_eq!(
            c,
            Some(Change::Sized {
                path: a.clone(),
                len: 1 << 40
            })
        );
        let c = m.apply(
            "write",
            &[3, 0, 1, 0, 0, 0],
            &sys(1, vec![(1, IN, b"x".to_vec())]),
            &fds,
        );
        assert_eq!(
            c,
            Some(Change::Wrote {
                path: a.clone(),
                at: 0,
                len: 1
            })
        );
        assert_eq!(m.contents(&a), Some((&b"x"[..], 1 << 40)));
        assert_eq!(
            m.contents(&b),
            Some((&[][..], 0)),
            "the other one is untouched"
        );
        // Too far to model: unknown, never a guess.
        m.apply(
            "pwrite64",
            &[4, 0, 1, 1 << 40, 0, 0],
            &sys(1, vec![(1, IN, b"y".to_vec())]),
            &fds,
        );
        assert!(m.contents(&b).is_none());
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
