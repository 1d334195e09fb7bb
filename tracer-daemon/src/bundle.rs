//! Building a bundle for `FetchBundle`: one process (or its tree) out of the
//! store, with content-addressed copies of the files it executed and
//! mapped, so that it replays on a machine that lacks them.
use std::{
    collections::BTreeMap,
    io::{Read, Seek},
    path::Path,
};

use sha2::{Digest, Sha256};
use tonic::Status;
use tracer_proto as pb;
use tracer_store::{
    bundle::{self, BUNDLE_VERSION},
    store::{self, Query},
};

use crate::api::merge_processes;

const NR_OPEN: i64 = 2;
const NR_OPENAT: i64 = 257;
const NR_MMAP: i64 = 9;
const NR_CHDIR: i64 = 80;
const NR_FCHDIR: i64 = 81;
/// Files larger than this are left out (and said so in the log).
const MAX_BLOB: u64 = 256 << 20;
/// Free space a bundle being built leaves on the store's disk at least (or
/// a tenth of the disk, when that is less).
const DISK_RESERVE: u64 = 4 << 30;

/// A file a bundle keeps: the path the recording names it by (what replay
/// looks it up by; relative when the program opened it so), and where it
/// is read from.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Kept {
    name: String,
    at: String,
}

fn path_in(s: &pb::Syscall, arg: u32) -> Option<String> {
    let b = s
        .buffers
        .iter()
        .find(|b| b.arg == arg && b.direction == pb::Direction::In as i32 && !b.fault)?;
    Some(String::from_utf8_lossy(b.data.strip_suffix(&[0]).unwrap_or(&b.data)).into_owned())
}

/// `rel` under `dir`, when `rel` is relative and `dir` is known.
fn under(dir: Option<&String>, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return Some(rel.to_owned());
    }
    let dir = dir?;
    Some(format!("{}/{rel}", dir.trim_end_matches('/')))
}

/// What the processes executed, and every file they mapped (followed from
/// `open`/`openat` results to `mmap` fds). Relative paths are found from
/// the directory they were opened in: the recorded `chdir`s, and the
/// directory fds they were opened at.
fn mapped_files(events: &[pb::Event]) -> Vec<Kept> {
    const AT_FDCWD: i64 = -100;
    let mut out = Vec::new();
    let mut fds: BTreeMap<(u32, i64), (String, Option<String>)> = BTreeMap::new();
    let mut cwd: BTreeMap<u32, String> = BTreeMap::new();
    // What each process runs: its `/proc/self/exe` (read here, that path
    // would be the daemon's own).
    let mut exe: BTreeMap<u32, String> = BTreeMap::new();
    let keep = |out: &mut Vec<Kept>, name: &str, at: Option<String>| {
        if let Some(at) = at {
            out.push(Kept {
                name: name.to_owned(),
                at,
            });
        }
    };
    // The executables the patcher saw, by process and image (exec_ns): an
    // exec by a relative path names a directory no event holds.
    let images: BTreeMap<(u32, u64), String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Time(t)) if t.exec_ns != 0 && !t.exe.is_empty() => {
                Some(((e.pid, t.exec_ns), t.exe.clone()))
            }
            _ => None,
        })
        .collect();
    let image_of = |pid: u32, ts: u64| -> Option<String> {
        // The image's exec_ns is its exec's time, taken in the same hook
        // as the exec event's: the nearest within a second is this exec's.
        images
            .range((pid, ts.saturating_sub(1_000_000_000))..=(pid, ts + 1_000_000_000))
            .min_by_key(|((_, at), _)| at.abs_diff(ts))
            .map(|(_, p)| p.clone())
    };
    for e in events {
        match &e.kind {
            // Not a `#!` script (the kernel put its path after the
            // interpreter's in the argv it built): its image is the
            // interpreter, not the file it named.
            Some(pb::event::Kind::Exec(x))
                if !x.filename.starts_with('/')
                    && !x
                        .argv
                        .iter()
                        .skip(1)
                        .take(2)
                        .any(|a| a.as_slice() == x.filename.as_bytes())
                    && let Some(at) = image_of(e.pid, e.ts_ns) =>
            {
                keep(&mut out, &x.filename, Some(at.clone()));
                exe.insert(e.pid, at);
            }
            Some(pb::event::Kind::Exec(x)) if x.filename.starts_with('/') => {
                keep(&mut out, &x.filename, Some(x.filename.clone()));
                exe.insert(e.pid, x.filename.clone());
                // A `#!` script: the kernel ran (and mapped) its
                // interpreter, first in the argv it built.
                if is_script(&x.filename)
                    && let Some(i) = x.argv.first().map(|a| String::from_utf8_lossy(a))
                    && i.starts_with('/')
                {
                    keep(&mut out, &i, Some(i.to_string()));
                }
            }
            Some(pb::event::Kind::Fork(f)) if !f.thread => {
                if let Some(d) = cwd.get(&f.parent_pid).cloned() {
                    cwd.insert(f.child_pid, d);
                }
            }
            Some(pb::event::Kind::Syscall(s)) if s.ret >= 0 => {
                let dir_of = |fd: i64| -> Option<String> {
                    if fd as i32 as i64 == AT_FDCWD {
                        cwd.get(&e.pid).cloned()
                    } else {
                        fds.get(&(e.pid, fd)).and_then(|(_, at)| at.clone())
                    }
                };
                let arg = |i: usize| s.args.get(i).copied().unwrap_or(0) as i64;
                match s.nr {
                    NR_OPEN => {
                        if let Some(p) = path_in(s, 0) {
                            let at = under(cwd.get(&e.pid), &p);
                            fds.insert((e.pid, s.ret), (p, at));
                        }
                    }
                    NR_OPENAT => {
                        if let Some(p) = path_in(s, 1) {
                            let at = if p == "/proc/self/exe" || p == format!("/proc/{}/exe", e.pid)
                            {
                                exe.get(&e.pid).cloned()
                            } else {
                                under(dir_of(arg(0)).as_ref(), &p)
                            };
                            fds.insert((e.pid, s.ret), (p, at));
                        }
                    }
                    NR_CHDIR => {
                        if let Some(p) = path_in(s, 0)
                            && let Some(at) = under(cwd.get(&e.pid), &p)
                        {
                            cwd.insert(e.pid, at);
                        }
                    }
                    NR_FCHDIR => {
                        if let Some(at) = dir_of(arg(0)) {
                            cwd.insert(e.pid, at);
                        }
                    }
                    NR_MMAP if s.args.len() == 6 => {
                        // Every file-backed mapping: replay maps the same
                        // contents.
                        if let Some((name, at)) = fds.get(&(e.pid, arg(4))) {
                            keep(&mut out, name, at.clone());
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

fn is_script(path: &str) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"#!"
}

/// A copy of what the recorded process saw at `k`, if it can be had here.
/// Only regular files: a device (`/dev/zero` mapped shared) never ends, and
/// `/proc` paths name the process that reads them (`/proc/self/exe` read by
/// the daemon is the daemon), not the recorded one.
fn blob(k: &Kept) -> Option<pb::Blob> {
    let (path, at) = (&k.name, &k.at);
    if at.starts_with("/proc/") {
        return None;
    }
    let f = std::fs::File::open(at).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let len = meta.len();
    if len > MAX_BLOB {
        tracing::warn!("bundle: {at} is {len} bytes; left out");
        return None;
    }
    let mut data = Vec::with_capacity(len as usize);
    // Bounded: a file growing while it is read is cut, never followed.
    f.take(MAX_BLOB).read_to_end(&mut data).ok()?;
    let sha256 = format!("{:x}", Sha256::digest(&data));
    Some(pb::Blob {
        sha256,
        path: path.to_owned(),
        data,
        ..Default::default()
    })
}

/// The bundle of the process (or tree) `r` asks for.
pub fn build(dir: &Path, r: &pb::FetchBundleRequest) -> Result<Built, Status> {
    let internal = |e: &dyn std::fmt::Display| Status::internal(e.to_string());
    let all = merge_processes(store::processes(dir).map_err(|e| internal(&e))?);
    let mut same_pid: Vec<&pb::ProcessInfo> = all
        .iter()
        .filter(|p| p.key.is_some_and(|k| k.pid == r.pid))
        .collect();
    same_pid.sort_by_key(|p| p.key.map(|k| (k.start_ns, p.last_ns)));
    let chosen = if r.start_ns != 0 {
        same_pid
            .iter()
            .find(|p| p.key.is_some_and(|k| k.start_ns == r.start_ns))
            .copied()
    } else {
        same_pid.last().copied()
    };
    let Some(root) = chosen else {
        return Err(Status::not_found(format!(
            "no recorded process with pid {} (start time {})",
            r.pid, r.start_ns
        )));
    };
    let root_key = root.key.unwrap_or_default();
    let others: Vec<pb::ProcessKey> = same_pid
        .iter()
        .filter_map(|p| p.key)
        .filter(|k| *k != root_key)
        .collect();
    // The tree by recorded forks and lifetimes: a reused pid's other
    // processes (before or after) are never in it.
    let members = crate::tree::members(&all, root, r.children);
    let mut pids: Vec<u32> = members.iter().map(|m| m.key.0).collect();
    pids.sort_unstable();
    pids.dedup();
    let q = Query {
        pids,
        since_ns: members.iter().map(|m| m.since_ns).min(),
        until_ns: members
            .iter()
            .map(|m| m.until_ns)
            .max()
            .filter(|&t| t != u64::MAX),
        ..Default::default()
    };
    // The events go to an unnamed file in the data directory (private like
    // the segments, gone when dropped) as they are read: a bundle of any
    // size is built and sent in bounded memory. What names the files the
    // processes mapped is kept aside (small: no read or write buffers).
    let mut body = bundle::Body::new(std::io::BufWriter::new(
        tempfile::tempfile_in(dir).map_err(|e| {
            Status::internal(format!("creating a bundle file in {}: {e}", dir.display()))
        })?,
    ));
    let mut naming = Vec::new();
    let (mut count, mut first_ns, mut last_ns) = (0u64, None, 0u64);
    let mut failed = None;
    let mut checked_at = 0u64;
    let result = store::query_each(dir, &q, |batch| {
        let mine: Vec<pb::Event> = batch
            .into_iter()
            .filter(|e| members.iter().any(|m| m.holds(e)))
            .collect();
        let (Some(f), Some(l)) = (mine.first(), mine.last()) else {
            return true;
        };
        first_ns.get_or_insert(f.ts_ns);
        last_ns = l.ts_ns;
        count += mine.len() as u64;
        naming.extend(mine.iter().filter(|e| names_files(e)).cloned());
        if let Err(e) = body.events(&mine) {
            failed = Some(Status::internal(e.to_string()));
            return false;
        }
        // The bundle must never take the disk the recording writes to.
        if body.written() >= checked_at + (64 << 20) {
            checked_at = body.written();
            if let Err(s) = disk_left(dir, body.written(), count) {
                failed = Some(s);
                return false;
            }
        }
        true
    })
    .map_err(|e| internal(&e))?;
    if let Some(s) = failed {
        return Err(s);
    }
    let processes: Vec<pb::ProcessInfo> = all
        .iter()
        .filter(|p| {
            p.key
                .is_some_and(|k| members.iter().any(|m| m.key == (k.pid, k.start_ns)))
        })
        .cloned()
        .collect();
    let mut blobs = Vec::new();
    if !r.no_binaries {
        for k in mapped_files(&naming) {
            let Some(b) = blob(&k) else { continue };
            body.blob(&b).map_err(|e| internal(&e))?;
            blobs.push((b.sha256, b.path));
        }
    }
    let body_len = body.written();
    let mut file = body
        .into_inner()
        .into_inner()
        .map_err(|e| Status::internal(format!("writing the bundle: {}", e.error())))?;
    file.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| internal(&e))?;
    let host = crate::persist::host_header();
    let header = pb::BundleHeader {
        format_version: BUNDLE_VERSION,
        source_host: host.host_name,
        boot_id: host.boot_id,
        kernel_release: host.kernel_release,
        arch: host.arch,
        realtime_offset_ns: host.realtime_offset_ns,
        tsc_khz: host.tsc_khz,
        tsc_at_zero: host.tsc_at_zero,
        first_ns: first_ns.unwrap_or(0),
        last_ns,
        events_lost: processes.iter().any(|p| p.lost) || !result.damage.is_empty(),
        root: Some(root_key),
        processes,
        event_count: count,
        blobs: blobs.into_iter().collect(),
    };
    Ok(Built {
        head: bundle::head(&header),
        body: file,
        body_len,
        others,
    })
}

/// A bundle ready to send: `head` then `body_len` bytes of `body`.
pub struct Built {
    pub head: Vec<u8>,
    pub body: std::fs::File,
    pub body_len: u64,
    /// The other recorded processes that had this pid.
    pub others: Vec<pb::ProcessKey>,
}

impl Built {
    /// Its size in bytes (never 0: there is a header).
    pub fn size(&self) -> u64 {
        self.head.len() as u64 + self.body_len
    }
}

/// The events [`mapped_files`] looks at: execs, forks, the patcher's
/// images, and the syscalls that open, map and change directory.
fn names_files(e: &pb::Event) -> bool {
    match &e.kind {
        Some(pb::event::Kind::Exec(_) | pb::event::Kind::Fork(_)) => true,
        Some(pb::event::Kind::Time(t)) => !t.exe.is_empty(),
        Some(pb::event::Kind::Syscall(s)) => {
            s.ret >= 0 && matches!(s.nr, NR_OPEN | NR_OPENAT | NR_MMAP | NR_CHDIR | NR_FCHDIR)
        }
        _ => false,
    }
}

/// Refuses to write more of a bundle when the disk under the store is
/// nearly full: the recording needs it more.
fn disk_left(dir: &Path, written: u64, events: u64) -> Result<(), Status> {
    let Ok(st) = nix::sys::statvfs::statvfs(dir) else {
        return Ok(());
    };
    let block = st.fragment_size();
    let free = st.blocks_available() * block;
    let reserve = (st.blocks() * block / 10).min(DISK_RESERVE);
    if free < reserve {
        return Err(Status::resource_exhausted(format!(
            "building the bundle would leave less than {} MiB free on the store's disk \
             ({} MiB of the bundle written, {events} events): free space first",
            reserve >> 20,
            written >> 20
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(pid: u32, nr: i64, args: Vec<u64>, ret: i64, path: Option<&str>) -> pb::Event {
        pb::Event {
            pid,
            kind: Some(pb::event::Kind::Syscall(pb::Syscall {
                nr,
                args,
                ret,
                buffers: path
                    .map(|p| {
                        vec![pb::Buffer {
                            arg: 1,
                            direction: 1,
                            data: format!("{p}\0").into_bytes(),
                            ..Default::default()
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn follows_open_fds_to_executable_mappings() {
        let ev = vec![
            sys(
                1,
                NR_OPENAT,
                vec![0, 0, 0, 0, 0, 0],
                3,
                Some("/lib/libc.so.6"),
            ),
            sys(1, NR_OPENAT, vec![0, 0, 0, 0, 0, 0], 4, Some("/etc/hosts")),
            sys(1, NR_MMAP, vec![0, 4096, 5, 2, 3, 0], 0x1000, None),
            sys(1, NR_MMAP, vec![0, 4096, 1, 2, 4, 0], 0x2000, None),
        ];
        let names: Vec<String> = mapped_files(&ev).into_iter().map(|k| k.name).collect();
        assert_eq!(
            names,
            vec!["/etc/hosts".to_owned(), "/lib/libc.so.6".to_owned()]
        );
    }

    #[test]
    fn devices_and_proc_files_are_never_copied() {
        let k = |p: &str| Kept {
            name: p.to_owned(),
            at: p.to_owned(),
        };
        // /dev/zero never ends; /proc/self/exe here is the daemon.
        assert!(blob(&k("/dev/zero")).is_none());
        assert!(blob(&k("/proc/self/exe")).is_none());
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), b"mapped").expect("write");
        let p = f.path().to_str().expect("path");
        assert_eq!(blob(&k(p)).map(|b| b.data), Some(b"mapped".to_vec()));
    }

    #[test]
    fn relative_paths_are_found_from_the_recorded_chdir_and_directory_fds() {
        let mut chdir = sys(1, NR_CHDIR, vec![0; 6], 0, Some("/repo"));
        if let Some(pb::event::Kind::Syscall(s)) = &mut chdir.kind {
            s.buffers[0].arg = 0;
        }
        let at_fdcwd = (-100i64) as u64;
        let ev = vec![
            chdir,
            sys(
                1,
                NR_OPENAT,
                vec![at_fdcwd, 0, 0, 0, 0, 0],
                3,
                Some(".git/index"),
            ),
            sys(1, NR_MMAP, vec![0, 4096, 1, 2, 3, 0], 0x1000, None),
            sys(1, NR_OPENAT, vec![0, 0, 0, 0, 0, 0], 4, Some("/tmp/hs")),
            sys(1, NR_OPENAT, vec![4, 0, 0, 0, 0, 0], 5, Some("42")),
            sys(1, NR_MMAP, vec![0, 4096, 3, 1, 5, 0], 0x2000, None),
            // Relative to a directory this recording never saw: left out.
            sys(1, NR_OPENAT, vec![9, 0, 0, 0, 0, 0], 6, Some("lost")),
            sys(1, NR_MMAP, vec![0, 4096, 1, 2, 6, 0], 0x3000, None),
        ];
        let got: Vec<(String, String)> = mapped_files(&ev)
            .into_iter()
            .map(|k| (k.name, k.at))
            .collect();
        assert_eq!(
            got,
            vec![
                (".git/index".to_owned(), "/repo/.git/index".to_owned()),
                ("42".to_owned(), "/tmp/hs/42".to_owned()),
            ]
        );
    }
}
