//! gdb's file access (`vFile:` packets), read-only, to what the replayed
//! program sees: its `/proc` files (gdb names the process 1 and its
//! threads by their recorded ids; they are mapped to the real ones), the
//! bundle's copies of the files it read when recorded (its libraries, as
//! they were on the recording host: what is in its memory), and the files
//! it has mapped here (the dynamic loader, its program's copy). Any other
//! path is not there: the replayer runs as root, and gdb's connection must
//! not read the host's files through it.
use std::{
    collections::HashMap,
    fs::File,
    os::unix::fs::{FileExt, MetadataExt},
    path::PathBuf,
};

use gdbstub::target::ext::host_io::{
    FsKind, HostIo, HostIoCloseOps, HostIoErrno, HostIoError, HostIoFstatOps, HostIoOpenFlags,
    HostIoOpenMode, HostIoOpenOps, HostIoPreadOps, HostIoReadlinkOps, HostIoResult, HostIoSetfsOps,
    HostIoStat,
};

use super::ReplayTarget;

/// The files gdb has open.
#[derive(Default)]
pub(super) struct OpenFiles {
    files: HashMap<u32, Source>,
    next: u32,
}

/// Where an open file's bytes come from.
enum Source {
    Host(File),
    /// The bundle's copy (by its recorded path).
    Bundle(String),
}

fn missing<T>() -> HostIoResult<T, ReplayTarget<'static>> {
    Err(HostIoError::Errno(HostIoErrno::ENOENT))
}

impl ReplayTarget<'_> {
    /// Where gdb's `path` is on this host, if gdb may read it.
    fn host_path(&self, path: &[u8]) -> Option<PathBuf> {
        let path = std::str::from_utf8(path).ok()?;
        let program = self.program().ok()?;
        let tgid = program.tgid.as_raw();
        if let Some(rest) = path.strip_prefix("/proc/") {
            let (pid, rest) = rest.split_once('/').unwrap_or((rest, ""));
            if pid != "1" && pid != self.rec.pid.to_string() && pid != "self" {
                return None;
            }
            let rest = match rest.strip_prefix("task/") {
                Some(task) => {
                    let (tid, more) = task.split_once('/').unwrap_or((task, ""));
                    let tid: u32 = tid.parse().ok()?;
                    let real = if tid == 1 {
                        tgid
                    } else {
                        self.engine.thread(tid)?.pid.as_raw()
                    };
                    format!("task/{real}/{more}")
                }
                None => rest.to_owned(),
            };
            if rest.contains("..") {
                return None;
            }
            return Some(PathBuf::from(format!("/proc/{tgid}/{rest}")));
        }
        // A file the program has mapped: its contents are in its memory
        // already. (Its own copy, for one run, is gdb's exec file.)
        let real = std::fs::canonicalize(path).ok()?;
        let maps = std::fs::read_to_string(format!("/proc/{tgid}/maps")).ok()?;
        let mapped = real == self.exe
            || maps
                .lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .any(|p| std::path::Path::new(p) == real);
        mapped.then_some(real)
    }

    /// What gdb's `path` opens, if anything.
    fn source(&self, path: &[u8]) -> Option<Source> {
        let name = std::str::from_utf8(path).ok()?;
        if !name.starts_with("/proc/") && matches!(self.rec.file(name), Ok(Some(_))) {
            return Some(Source::Bundle(name.to_owned()));
        }
        File::open(self.host_path(path)?).ok().map(Source::Host)
    }

    fn bundle_bytes(&self, name: &str) -> &[u8] {
        self.rec.file(name).ok().flatten().unwrap_or_default()
    }
}

impl HostIo for ReplayTarget<'_> {
    fn support_open(&mut self) -> Option<HostIoOpenOps<'_, Self>> {
        Some(self)
    }
    fn support_close(&mut self) -> Option<HostIoCloseOps<'_, Self>> {
        Some(self)
    }
    fn support_pread(&mut self) -> Option<HostIoPreadOps<'_, Self>> {
        Some(self)
    }
    fn support_fstat(&mut self) -> Option<HostIoFstatOps<'_, Self>> {
        Some(self)
    }
    fn support_readlink(&mut self) -> Option<HostIoReadlinkOps<'_, Self>> {
        Some(self)
    }
    fn support_setfs(&mut self) -> Option<HostIoSetfsOps<'_, Self>> {
        Some(self)
    }
}

impl gdbstub::target::ext::host_io::HostIoOpen for ReplayTarget<'_> {
    fn open(
        &mut self,
        filename: &[u8],
        flags: HostIoOpenFlags,
        _mode: HostIoOpenMode,
    ) -> HostIoResult<u32, Self> {
        // Read-only: O_RDONLY is 0, and nothing else may be asked.
        if flags != HostIoOpenFlags::O_RDONLY {
            return Err(HostIoError::Errno(HostIoErrno::EACCES));
        }
        let Some(file) = self.source(filename) else {
            return missing();
        };
        let fd = self.open_files.next;
        self.open_files.next += 1;
        self.open_files.files.insert(fd, file);
        Ok(fd)
    }
}

impl gdbstub::target::ext::host_io::HostIoClose for ReplayTarget<'_> {
    fn close(&mut self, fd: u32) -> HostIoResult<(), Self> {
        match self.open_files.files.remove(&fd) {
            Some(_) => Ok(()),
            None => Err(HostIoError::Errno(HostIoErrno::EBADF)),
        }
    }
}

impl gdbstub::target::ext::host_io::HostIoPread for ReplayTarget<'_> {
    fn pread(
        &mut self,
        fd: u32,
        count: usize,
        offset: u64,
        buf: &mut [u8],
    ) -> HostIoResult<usize, Self> {
        let n = count.min(buf.len());
        match self.open_files.files.get(&fd) {
            Some(Source::Host(f)) => Ok(f.read_at(&mut buf[..n], offset)?),
            Some(Source::Bundle(name)) => {
                let bytes = self.bundle_bytes(name);
                let from = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let to = from.saturating_add(n).min(bytes.len());
                buf[..to - from].copy_from_slice(&bytes[from..to]);
                Ok(to - from)
            }
            None => Err(HostIoError::Errno(HostIoErrno::EBADF)),
        }
    }
}

impl gdbstub::target::ext::host_io::HostIoFstat for ReplayTarget<'_> {
    fn fstat(&mut self, fd: u32) -> HostIoResult<HostIoStat, Self> {
        let m = match self.open_files.files.get(&fd) {
            Some(Source::Host(f)) => f.metadata()?,
            Some(Source::Bundle(name)) => {
                let size = self.bundle_bytes(name).len() as u64;
                return Ok(HostIoStat {
                    st_dev: 0,
                    st_ino: 0,
                    st_mode: HostIoOpenMode::from_bits_truncate(0o100_444),
                    st_nlink: 1,
                    st_uid: 0,
                    st_gid: 0,
                    st_rdev: 0,
                    st_size: size,
                    st_blksize: 4096,
                    st_blocks: size.div_ceil(512),
                    st_atime: 0,
                    st_mtime: 0,
                    st_ctime: 0,
                });
            }
            None => return Err(HostIoError::Errno(HostIoErrno::EBADF)),
        };
        Ok(HostIoStat {
            st_dev: m.dev() as u32,
            st_ino: m.ino() as u32,
            st_mode: HostIoOpenMode::from_bits_truncate(m.mode()),
            st_nlink: m.nlink() as u32,
            st_uid: m.uid(),
            st_gid: m.gid(),
            st_rdev: m.rdev() as u32,
            st_size: m.size(),
            st_blksize: m.blksize(),
            st_blocks: m.blocks(),
            st_atime: m.atime() as u32,
            st_mtime: m.mtime() as u32,
            st_ctime: m.ctime() as u32,
        })
    }
}

impl gdbstub::target::ext::host_io::HostIoReadlink for ReplayTarget<'_> {
    fn readlink(&mut self, filename: &[u8], buf: &mut [u8]) -> HostIoResult<usize, Self> {
        let Some(path) = self.host_path(filename) else {
            return missing();
        };
        let target = std::fs::read_link(path)?;
        let bytes = target.as_os_str().as_encoded_bytes();
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }
}

impl gdbstub::target::ext::host_io::HostIoSetfs for ReplayTarget<'_> {
    /// Every file system view gdb asks for is the program's own.
    fn setfs(&mut self, _fs: FsKind) -> HostIoResult<(), Self> {
        Ok(())
    }
}
