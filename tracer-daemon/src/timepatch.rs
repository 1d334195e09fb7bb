//! Exact time: the vDSO patcher.
//!
//! The vDSO answers `clock_gettime`, `gettimeofday`, `time`, `getcpu` and
//! `clock_getres` in user space, where no syscall tracepoint sees them, and
//! this kernel's lockdown refuses `bpf_probe_write_user`, so the kernel
//! programs cannot hide the vDSO themselves. This thread does it from user
//! space: the exec hook sends a notice for every new image (and every fork
//! of one) to a small ring of its own, woken at once, and the thread
//! overwrites the image's vDSO time functions through `/proc/PID/mem` with
//! `mov $nr, %eax; syscall; ret` (`tracer_common::vdso`). From then on every
//! time read of the process is a syscall the tracepoints record, at the
//! cost of a syscall and its record (well under a microsecond here, where a
//! uprobe on libc's `clock_gettime` costs about ten), for libc, Go and
//! static programs alike.
//!
//! The patch races the program's first time read: the kernel programs see
//! a read of the vDSO's clock data that came first (`vdso::vvar_read` in
//! the eBPF crate), and the process's recording then says so. For each
//! notice this thread queues a `Time` record of the outcome: exact, or not
//! patched and why.
use std::{
    fs::File,
    io::Read as _,
    os::{
        fd::{AsRawFd, FromRawFd as _, OwnedFd},
        unix::fs::FileExt as _,
    },
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
};

use anyhow::{Context as _, anyhow};
use aya::maps::{HashMap, MapData, RingBuf};
use serde::Serialize;
use tracer_common::{
    vdso,
    wire::{self, RecordKind, TimeRecord, TimeState},
};

use crate::drain::Injector;

/// `AT_SYSINFO_EHDR`: the auxv entry with the vDSO's address.
const AT_SYSINFO_EHDR: u64 = 33;

/// What the patcher did so far (in `stats.json`).
#[derive(Debug, Default, Serialize, Clone)]
pub struct PatchStats {
    /// Processes whose vDSO was patched.
    pub patched: u64,
    /// Processes that had the patch already (forked after it).
    pub inherited: u64,
    /// Processes gone before they could be patched.
    pub gone: u64,
    /// Processes that could not be patched for another reason.
    pub failed: u64,
    /// From the exec to the end of the patch, in microseconds: the window
    /// in which a time read escapes the recording (and is flagged).
    pub latency_us_p50: u64,
    pub latency_us_max: u64,
}

#[derive(Default)]
struct Counters {
    patched: AtomicU64,
    inherited: AtomicU64,
    gone: AtomicU64,
    failed: AtomicU64,
    /// Latencies of the last patches, microseconds (a bounded window).
    latencies: Mutex<Vec<u64>>,
}

const LATENCY_WINDOW: usize = 4096;

pub struct Patcher {
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// This host's 64-bit vDSO, as the daemon itself maps it: the image most
/// processes have, and the same image patched.
struct Image {
    plain: Vec<u8>,
    patched: Vec<u8>,
    patches: Vec<vdso::Patch>,
    /// The bytes the patches change, first to last.
    span: std::ops::Range<usize>,
}

impl Image {
    fn own() -> anyhow::Result<Self> {
        // SAFETY: plain libc call.
        let base = unsafe { libc::getauxval(AT_SYSINFO_EHDR) };
        if base == 0 {
            return Err(anyhow!("this daemon has no vDSO"));
        }
        let maps = std::fs::read_to_string("/proc/self/maps").context("/proc/self/maps")?;
        let len = maps
            .lines()
            .filter(|l| l.ends_with("[vdso]"))
            .filter_map(|l| l.split_whitespace().next()?.split_once('-'))
            .filter_map(|(a, b)| {
                let a = u64::from_str_radix(a, 16).ok()?;
                let b = u64::from_str_radix(b, 16).ok()?;
                (a == base).then_some(b - a)
            })
            .next()
            .ok_or_else(|| anyhow!("the vDSO is not in /proc/self/maps"))?;
        // SAFETY: the vDSO is mapped readable, `len` bytes from `base`, for
        // the life of the process.
        let plain = unsafe { std::slice::from_raw_parts(base as *const u8, len as usize) }.to_vec();
        let patches = vdso::patches(&plain).map_err(|e| anyhow!(e))?;
        if patches.is_empty() {
            return Err(anyhow!("the vDSO has no time functions to patch"));
        }
        let patched = vdso::apply(&plain, &patches);
        let start = patches.iter().map(|p| p.offset).min().unwrap_or(0) as usize;
        let end = patches.iter().map(|p| p.offset + 8).max().unwrap_or(0) as usize;
        Ok(Self {
            plain,
            patched,
            patches,
            span: start..end,
        })
    }
}

/// The address ranges of this process's special mappings, by name.
fn own_mappings() -> anyhow::Result<Vec<(u64, u64, String)>> {
    let maps = std::fs::read_to_string("/proc/self/maps").context("/proc/self/maps")?;
    Ok(maps
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let name = f.nth(4).unwrap_or_default();
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
                name.to_owned(),
            ))
        })
        .collect())
}

/// How many bytes of vDSO data pages (`[vvar]`, `[vvar_vclock]`) lie
/// right below the vDSO, as the kernel lays out every process: the kernel
/// programs take a fault there for a read of the clock data.
pub fn vvar_below() -> anyhow::Result<u32> {
    let maps = own_mappings()?;
    let (vdso, _, _) = maps
        .iter()
        .find(|m| m.2 == "[vdso]")
        .ok_or_else(|| anyhow!("this daemon has no vDSO"))?;
    let mut low = *vdso;
    while let Some(m) = maps.iter().find(|m| m.1 == low && m.2.starts_with("[vvar")) {
        low = m.0;
    }
    if low == *vdso {
        return Err(anyhow!("the vDSO's data pages are not right below it"));
    }
    u32::try_from(vdso - low).context("vDSO data pages")
}

/// How one patch ended.
enum Outcome {
    Patched,
    Inherited,
    NotPatched(u32),
}

/// Process `pid`'s /proc directory, if it is still the process that
/// started at `start_ns` (`task_struct::start_time`, monotonic): a pid
/// reused between the notice and the patch is another program, whose
/// memory is not this one's to write. Everything after is opened through
/// this directory, which stays the process it was opened on.
fn proc_dir(pid: u32, start_ns: u64) -> std::io::Result<File> {
    let gone = || std::io::Error::from_raw_os_error(libc::ESRCH);
    let dir = File::open(format!("/proc/{pid}"))?;
    let mut stat = String::with_capacity(512);
    File::from(open_in(&dir, c"stat", libc::O_RDONLY)?).read_to_string(&mut stat)?;
    let ticks = crate::peers::stat_start_ticks(&stat).ok_or_else(gone)?;
    if start_ns != 0 && !same_start(ticks, start_ns) {
        return Err(gone());
    }
    Ok(dir)
}

/// /proc's start time (clock ticks of boot time) is the one the kernel
/// programs read (ns of monotonic time): boot time runs ahead of
/// monotonic by the time suspended, at most what it is now.
fn same_start(ticks: u64, start_ns: u64) -> bool {
    // SAFETY: sysconf reads a constant.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as u64,
        _ => 100,
    };
    let tick_ns = 1_000_000_000 / hz;
    let suspended = boottime_ns().saturating_sub(crate::persist::monotonic_ns());
    let stat_ns = ticks.saturating_mul(tick_ns);
    stat_ns + tick_ns >= start_ns && stat_ns <= start_ns + suspended + tick_ns
}

fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn open_in(dir: &File, name: &std::ffi::CStr, flags: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: a valid directory fd and a NUL-terminated name; the fd
    // returned is owned here.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The vDSO's address in the process of `dir`, from its auxv.
fn vdso_base(dir: &File) -> std::io::Result<Option<u64>> {
    let mut raw = Vec::with_capacity(512);
    File::from(open_in(dir, c"auxv", libc::O_RDONLY)?).read_to_end(&mut raw)?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            let w = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or([0; 8]));
            (w(0), w(8))
        })
        .find(|&(k, _)| k == AT_SYSINFO_EHDR)
        .map(|(_, v)| v))
}

fn reason_of(e: &std::io::Error) -> u32 {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => wire::TIME_REASON_DENIED,
        _ => wire::TIME_REASON_GONE,
    }
}

/// Patches process `pid`'s vDSO time functions (at `known`, when the
/// kernel programs could tell).
fn patch(dir: &File, known: u64, image: &Image) -> Outcome {
    let base = match known {
        0 => match vdso_base(dir) {
            Ok(Some(b)) => b,
            Ok(None) => return Outcome::NotPatched(wire::TIME_REASON_NO_VDSO),
            Err(e) => return Outcome::NotPatched(reason_of(&e)),
        },
        b => b,
    };
    let mem = match open_in(dir, c"mem", libc::O_RDWR) {
        Ok(f) => File::from(f),
        Err(e) => return Outcome::NotPatched(reason_of(&e)),
    };
    // The common case in one read and one write of the few bytes that
    // change: each access of another process's memory takes its mm lock,
    // which a starting program holds often (its mmap calls).
    let span = image.span.clone();
    let mut here = vec![0u8; span.len()];
    if let Err(e) = mem.read_exact_at(&mut here, base + span.start as u64) {
        return Outcome::NotPatched(reason_of(&e));
    }
    if here == image.patched[span.clone()] {
        return Outcome::Inherited;
    }
    if here == image.plain[span.clone()] {
        return match mem.write_all_at(&image.patched[span.clone()], base + span.start as u64) {
            Ok(()) => Outcome::Patched,
            Err(e) => Outcome::NotPatched(reason_of(&e)),
        };
    }
    let mut now = vec![0u8; image.plain.len()];
    if let Err(e) = mem.read_exact_at(&mut now, base) {
        return Outcome::NotPatched(reason_of(&e));
    }
    if now == image.patched {
        return Outcome::Inherited;
    }
    let own;
    let patches = if now == image.plain {
        &image.patches
    } else {
        // Another image (a process that moved or replaced its vDSO):
        // patched by its own symbols, when it has them.
        match vdso::patches(&now) {
            Ok(p) if !p.is_empty() => {
                own = p;
                &own
            }
            _ => return Outcome::NotPatched(wire::TIME_REASON_UNKNOWN_VDSO),
        }
    };
    for p in patches {
        if let Err(e) = mem.write_all_at(&p.bytes, base + p.offset) {
            return Outcome::NotPatched(reason_of(&e));
        }
    }
    Outcome::Patched
}

impl Patcher {
    /// Starts the thread on the exec ring; its `Time` records go out
    /// through `out`.
    pub fn spawn(
        ring: RingBuf<MapData>,
        state: HashMap<MapData, u32, TimeState>,
        out: Injector,
    ) -> anyhow::Result<Self> {
        let image = Image::own().context("exact time: reading this host's vDSO")?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let counters = Arc::clone(&counters);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("vdso-patch".into())
                .spawn(move || run(ring, state, &image, &out, &counters, &stop))?
        };
        Ok(Self {
            counters,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn stats(&self) -> PatchStats {
        let c = &self.counters;
        let (p50, max) = c
            .latencies
            .lock()
            .map(|l| {
                let mut v = l.clone();
                v.sort_unstable();
                (
                    v.get(v.len() / 2).copied().unwrap_or(0),
                    v.last().copied().unwrap_or(0),
                )
            })
            .unwrap_or_default();
        PatchStats {
            patched: c.patched.load(Ordering::Relaxed),
            inherited: c.inherited.load(Ordering::Relaxed),
            gone: c.gone.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            latency_us_p50: p50,
            latency_us_max: max,
        }
    }

    /// Stops the thread (its injector goes with it, so that the drain
    /// channel can close).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }
}

/// The patch races the program's first time read: this thread must run
/// the moment a notice comes, ahead of the busy host's other work. Its
/// work per notice is bounded (a few reads and writes of /proc), so a
/// real-time priority costs the host nothing it would notice.
fn hurry() {
    let p = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain syscalls on this thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) } != 0 {
        // SAFETY: as above.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -20) };
        tracing::debug!(
            "exact time: no real-time priority for the patcher ({})",
            std::io::Error::last_os_error()
        );
    }
}

/// The kernel programs' entry of process `pid` says it is patched, so
/// that its forks need no notice.
fn mark_patched(state: &mut HashMap<MapData, u32, TimeState>, pid: u32) {
    if let Ok(mut s) = state.get(&pid, 0)
        && s.patched == 0
    {
        s.patched = 1;
        let _ = state.insert(pid, s, 0);
    }
}

fn run(
    mut ring: RingBuf<MapData>,
    mut state: HashMap<MapData, u32, TimeState>,
    image: &Image,
    out: &Injector,
    counters: &Counters,
    stop: &AtomicBool,
) {
    hurry();
    let fd = ring.as_raw_fd();
    let mut queue: Vec<TimeRecord> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        while let Some(item) = ring.next() {
            // SAFETY: TimeRecord is plain data; length checked by read_record.
            if let Some(n) = unsafe { wire::read_record::<TimeRecord>(&item) } {
                queue.push(n);
            }
        }
        // Execs first: they race their program's first time read, where a
        // fork runs on its parent's (patched) code until it execs.
        queue.sort_by_key(|n| (n.exec_ns == 0, n.ts_ns));
        for n in queue.drain(..) {
            let woke = crate::persist::monotonic_ns();
            let dir = proc_dir(n.pid, n.start_ns);
            let outcome = match &dir {
                Ok(d) => patch(d, n.vdso, image),
                Err(e) => Outcome::NotPatched(reason_of(e)),
            };
            let done = crate::persist::monotonic_ns();
            tracing::debug!(
                "exact time: pid {}: notice after {} µs, patch took {} µs",
                n.pid,
                woke.saturating_sub(n.ts_ns) / 1000,
                done.saturating_sub(woke) / 1000
            );
            let gone = matches!(outcome, Outcome::NotPatched(wire::TIME_REASON_GONE));
            let (flags, reason) = match outcome {
                Outcome::Patched => {
                    counters.patched.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = counters.latencies.lock() {
                        if l.len() >= LATENCY_WINDOW {
                            l.remove(0);
                        }
                        l.push(done.saturating_sub(n.ts_ns) / 1000);
                    }
                    (wire::TIME_EXACT, 0)
                }
                Outcome::Inherited => {
                    counters.inherited.fetch_add(1, Ordering::Relaxed);
                    (wire::TIME_EXACT, 0)
                }
                Outcome::NotPatched(wire::TIME_REASON_GONE) => {
                    // It ended (or exec'd again) first. Every read of the
                    // vDSO's clock it made faulted its clock page in, which
                    // the kernel programs flag: without that flag it read
                    // no time the recording lacks, and says so (the image is
                    // named by exec_ns, whatever became of the pid).
                    counters.gone.fetch_add(1, Ordering::Relaxed);
                    (wire::TIME_EXACT, 0)
                }
                Outcome::NotPatched(r) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        "exact time: pid {}: {}",
                        n.pid,
                        crate::assemble::time_reason(r)
                    );
                    (wire::TIME_NOT_PATCHED, r)
                }
            };
            if flags == wire::TIME_EXACT && !gone {
                mark_patched(&mut state, n.pid);
            }
            let rec = TimeRecord {
                kind: RecordKind::Time as u32,
                flags,
                ts_ns: done,
                reason,
                ..n
            };
            // What the image is, for an exec by a relative path (the
            // recording does not know the directory it was made in).
            let exe = if n.exec_ns != 0 && !gone {
                dir.as_ref()
                    .ok()
                    .and_then(|d| nix::fcntl::readlinkat(d, "exe").ok())
                    .map(|p| p.into_encoded_bytes())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            let mut chunk = Vec::with_capacity(64 + exe.len());
            crate::drain::frame(&mut chunk, &[&crate::assemble::bytes_of(&rec), &exe]);
            out.inject(chunk);
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; the timeout bounds how late the stop
        // flag is seen.
        unsafe { libc::poll(&mut p, 1, 100) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's start in ns of monotonic time, from /proc (to a
    /// tick).
    fn own_start_ns() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
        let ticks: u64 = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(19))
            .and_then(|t| t.parse().ok())
            .expect("field 22");
        // SAFETY: sysconf reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        ticks * (1_000_000_000 / hz)
    }

    #[test]
    fn a_pid_whose_start_time_differs_is_another_process() {
        let pid = std::process::id();
        let start = own_start_ns();
        assert!(proc_dir(pid, start).is_ok(), "the process itself");
        for other in [start + 1_000_000_000, start.saturating_sub(1_000_000_000)] {
            let e = proc_dir(pid, other).expect_err("a reused pid");
            assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "{e}");
        }
        // The directory opened stays that process: what is read through
        // it is its own.
        let dir = proc_dir(pid, start).expect("dir");
        let exe = nix::fcntl::readlinkat(&dir, "exe").expect("exe");
        assert_eq!(exe, std::env::current_exe().expect("exe").into_os_string());
        assert!(vdso_base(&dir).expect("auxv").is_some());
    }
}
