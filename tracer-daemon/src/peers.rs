//! Other tracer daemons on this host: registered, found, never recorded.
//!
//! Two host-wide daemons would record each other: every segment write of
//! one is a syscall of a process the other records, whose store write is a
//! syscall the first records, and so on, each multiplying the other's load
//! and filling both recordings with noise. Each daemon therefore writes a
//! file named by its pid into one host-wide registry directory, holding its
//! start time, and keeps the pids of the others, whose start times still
//! match, in the kernel programs' `PEERS` map. The start time makes a pid
//! reused after a daemon was killed (its file left behind) an ordinary
//! process again: such a file is removed at the next scan.
use std::{
    collections::BTreeSet,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use aya::maps::{Array, MapData};
use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::inotify::{AddWatchFlags, InitFlags, Inotify},
};
use tracer_common::wire::{MAX_PEERS, Peers};

/// Where daemons register; the same for every daemon of the host, whatever
/// its data directory.
pub const REGISTRY: &str = "/run/tracer/daemons";

/// A rescan this often even without a change notice: a daemon killed
/// without removing its file is found by its start time.
const RESCAN: Duration = Duration::from_secs(1);

/// The start time of process `pid` in clock ticks after boot (field 22 of
/// `/proc/PID/stat`), `None` when there is no such process.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_start_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of a `/proc/PID/stat` line. The command name may hold spaces
/// and parentheses: fields count from after its last ')'.
pub fn stat_start_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Writes this process's entry into `dir` (created 0700 when missing) and
/// returns its path. The entry stays after the daemon exits: removed at
/// exit, the others would record this daemon's last syscalls; left, their
/// next scan finds the process gone and removes it.
pub fn register(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let pid = std::process::id();
    let ticks = start_ticks(pid).context("reading this process's start time")?;
    let path = dir.join(pid.to_string());
    let tmp = dir.join(format!(".{pid}.tmp"));
    // Written whole, then renamed: a scanning peer never reads half.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    writeln!(f, "{ticks}").with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The live daemons registered in `dir` other than `own`, sorted; entries
/// of processes gone (or pids now held by another process) are removed.
pub fn scan(dir: &Path, own: u32) -> BTreeSet<u32> {
    let mut live = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return live;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == own || pid == 0 {
            continue;
        }
        let registered = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match (registered, start_ticks(pid)) {
            (Some(r), Some(now)) if r == now => {
                live.insert(pid);
            }
            // Unreadable content is a file being replaced: next scan.
            (None, _) => {}
            _ => {
                tracing::debug!("removing the registry entry of gone daemon {pid}");
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    live
}

/// The map value for a set of peers: the first `MAX_PEERS` of them.
pub fn to_map(live: &BTreeSet<u32>) -> Peers {
    let mut p = Peers::default();
    for (slot, pid) in p.tgids.iter_mut().zip(live.iter()) {
        *slot = *pid;
    }
    p
}

/// Keeps the kernel's `PEERS` map equal to the registry.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn spawn(
        dir: PathBuf,
        mut map: Array<MapData, Peers>,
        mut current: Peers,
    ) -> anyhow::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .context("inotify for the daemon registry")?;
        inotify
            .add_watch(
                &dir,
                AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_DELETE | AddWatchFlags::IN_CREATE,
            )
            .with_context(|| format!("watching {}", dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let own = std::process::id();
        let thread = std::thread::Builder::new()
            .name("peers".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !stopping.load(Ordering::Relaxed) {
                    let mut fds = [PollFd::new(
                        std::os::fd::AsFd::as_fd(&inotify),
                        PollFlags::POLLIN,
                    )];
                    let changed = matches!(poll(&mut fds, PollTimeout::from(200u16)), Ok(n) if n > 0);
                    if changed {
                        while inotify.read_events().is_ok_and(|e| !e.is_empty()) {}
                    } else if last.elapsed() < RESCAN {
                        continue;
                    }
                    last = Instant::now();
                    let live = scan(&dir, own);
                    let next = to_map(&live);
                    if next != current {
                        if live.len() > MAX_PEERS {
                            tracing::warn!(
                                "{} other tracer daemons on this host: only {MAX_PEERS} are excluded from recording",
                                live.len()
                            );
                        }
                        match map.set(0, next, 0) {
                            Ok(()) => {
                                tracing::info!(
                                    "other tracer daemons, not recorded: {:?}",
                                    next.tgids.iter().filter(|p| **p != 0).collect::<Vec<_>>()
                                );
                                current = next;
                            }
                            Err(e) => tracing::warn!("updating PEERS: {e}"),
                        }
                    }
                }
            })
            .context("starting the peers thread")?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_read_through_a_name_with_spaces_and_parens() {
        // This test binary's name has neither; the parser is checked on a
        // made-up line of the same layout.
        let own = start_ticks(std::process::id()).expect("own stat");
        assert!(own > 0);
        let line = "42 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19";
        assert_eq!(stat_start_ticks(line), Some(777));
    }

    #[test]
    fn entries_of_gone_or_reused_pids_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let own = std::process::id();
        // A live process (this one's parent) with its true start time, one
        // with a wrong start time (a pid reused), one gone, and junk.
        let parent = std::os::unix::process::parent_id();
        let ticks = start_ticks(parent).unwrap();
        std::fs::write(dir.path().join(parent.to_string()), format!("{ticks}\n")).unwrap();
        std::fs::write(dir.path().join("1"), "0\n").unwrap();
        std::fs::write(dir.path().join("4194304"), "5\n").unwrap();
        std::fs::write(dir.path().join(own.to_string()), "1\n").unwrap();
        std::fs::write(dir.path().join(".9.tmp"), "1\n").unwrap();
        let live = scan(dir.path(), own);
        assert_eq!(live.into_iter().collect::<Vec<_>>(), vec![parent]);
        assert!(!dir.path().join("1").exists(), "pid 1's start time differs");
        assert!(!dir.path().join("4194304").exists(), "no such process");
        assert!(
            dir.path().join(own.to_string()).exists(),
            "own entry untouched"
        );
    }

    #[test]
    fn a_registration_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let reg_dir = dir.path().join("daemons");
        let entry = register(&reg_dir).unwrap();
        assert_eq!(entry, reg_dir.join(std::process::id().to_string()));
        let text = std::fs::read_to_string(&entry).unwrap();
        assert_eq!(
            text.trim().parse::<u64>().ok(),
            start_ticks(std::process::id())
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&reg_dir), 0o700);
        assert_eq!(mode(&entry), 0o600);
    }

    #[test]
    fn more_peers_than_slots_fill_every_slot() {
        let live: BTreeSet<u32> = (100..100 + MAX_PEERS as u32 + 3).collect();
        let p = to_map(&live);
        assert!(p.tgids.iter().all(|t| *t != 0));
    }
}
