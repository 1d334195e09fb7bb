//! Loading, configuring and attaching the kernel programs.
use anyhow::{Context as _, anyhow};
use aya::{
    Btf, Ebpf, EbpfError, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, ProgramError, RawTracePoint, TracePoint},
};
use tracer_common::{
    effects,
    wire::{self, LOSS_KINDS, SYSCALL_TABLE_LEN, SyscallSpec},
};

use crate::kernel_btf::KernelBtf;

/// The eBPF object built by build.rs.
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// Which program set to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Full recording.
    Record,
    /// Empty programs on syscall entry and exit only (benchmark floor).
    Floor,
    /// Clock reads at entry and exit and a 1-byte user copy, nothing sent
    /// (benchmark lower bound of any recording).
    Bound,
}

/// Loaded and attached programs, and the maps the daemon reads.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    /// Exec notices for the vDSO patcher and the state it shares with the
    /// kernel programs, when exact time is on.
    pub exec_notify: Option<(RingBuf<MapData>, HashMap<MapData, u32, wire::TimeState>)>,
    pub loss: PerCpuArray<MapData, u64>,
    pub task_loss: HashMap<MapData, u32, u64>,
    pub ring_fill: Array<MapData, u64>,
    /// Per-CPU staged fast-path records (read once the programs are
    /// detached: what they had not sent yet).
    pub stage: PerCpuArray<MapData, wire::Stage>,
    /// The other tracer daemons, kept current by `peers::Watcher`.
    pub peers: Array<MapData, wire::Peers>,
}

/// Explains a load failure in one line: missing privilege, missing BTF, or
/// the verifier's last lines.
fn explain(e: &ProgramError, name: &str) -> anyhow::Error {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            if io_error.raw_os_error() == Some(libc::EPERM)
                && verifier_log.to_string().trim().is_empty()
            {
                return anyhow!(
                    "loading {name}: permission denied: tracer-daemon needs CAP_BPF and CAP_PERFMON (or root)"
                );
            }
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            anyhow!(
                "the kernel's verifier rejected {name}: {io_error}; its last lines: {}",
                tail.join(" | ")
            )
        }
        other => anyhow!("attaching {name}: {other}"),
    }
}

/// Fails early, with the capability named, when this process cannot load
/// BPF programs: CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN.
pub fn check_privileges() -> anyhow::Result<()> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| anyhow!("/proc/self/status has no CapEff line"))?;
    let has = |c: u32| eff & (1 << c) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .iter()
        .filter(|(c, _)| !has(*c))
        .map(|(_, n)| *n)
        .collect();
    Err(anyhow!(
        "insufficient privileges: tracer-daemon needs {} (or CAP_SYS_ADMIN); run it as root or grant them",
        missing.join(" and ")
    ))
}

fn privileges_hint(e: EbpfError) -> anyhow::Error {
    let mut text = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    if text.contains("Operation not permitted") || text.contains("EPERM") {
        anyhow!(
            "creating BPF maps: permission denied: tracer-daemon needs CAP_BPF and CAP_PERFMON (or root) ({text})"
        )
    } else {
        anyhow!("loading the eBPF object: {text}")
    }
}

/// `peers`: the other tracer daemons, excluded before any program runs.
pub fn load(
    cfg: &wire::Config,
    peers: &wire::Peers,
    ring_size: u32,
    mode: Mode,
) -> anyhow::Result<Loaded> {
    // Memory is charged to the cgroup on current kernels; a failed rlimit
    // bump (no CAP_SYS_RESOURCE) is not an error.
    let rl = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rl) } != 0 {
        tracing::debug!("could not raise RLIMIT_MEMLOCK; relying on cgroup memory accounting");
    }
    let kbtf = KernelBtf::from_sys_fs()?;
    let offsets = kbtf
        .kernel_offsets()
        .context("reading task_struct/mm_struct layout from the kernel's BTF")?;
    let btf = Btf::from_sys_fs()
        .map_err(|e| anyhow!("/sys/kernel/btf/vmlinux: {e}: tracer needs a kernel with BTF"))?;

    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .map_max_entries("EVENTS", ring_size)
        .load(PROGRAMS)
        .map_err(privileges_hint)?;

    {
        let mut specs: Array<_, SyscallSpec> =
            Array::try_from(ebpf.map_mut("SYSCALLS").context("map SYSCALLS")?)?;
        for info in effects::x86_64::TABLE {
            if info.nr < SYSCALL_TABLE_LEN {
                specs
                    .set(info.nr, effects::encode(info), 0)
                    .context("filling SYSCALLS")?;
            }
        }
        let mut conf: Array<_, wire::Config> =
            Array::try_from(ebpf.map_mut("CONFIG").context("map CONFIG")?)?;
        conf.set(0, *cfg, 0).context("writing CONFIG")?;
        let mut offs: Array<_, wire::KernelOffsets> =
            Array::try_from(ebpf.map_mut("OFFSETS").context("map OFFSETS")?)?;
        offs.set(0, offsets, 0).context("writing OFFSETS")?;
        let mut peer_map: Array<_, wire::Peers> =
            Array::try_from(ebpf.map_mut("PEERS").context("map PEERS")?)?;
        peer_map.set(0, *peers, 0).context("writing PEERS")?;
    }

    let raw: &[(&str, &str)] = match mode {
        Mode::Floor => &[("floor_enter", "sys_enter"), ("floor_exit", "sys_exit")],
        Mode::Record | Mode::Bound => &[],
    };
    for &(name, tp) in raw {
        let prog: &mut RawTracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| anyhow!("program {name} missing from the object"))?
            .try_into()?;
        prog.load().map_err(|e| explain(&e, name))?;
        prog.attach(tp).map_err(|e| explain(&e, name))?;
    }
    // (program, tracepoint)
    let btf_progs: &[(&str, &str)] = match mode {
        Mode::Record => &[
            // First: it must be in place before entries can live in the slot.
            ("sched_switch", "sched_switch"),
            ("sys_enter", "sys_enter"),
            ("sys_exit", "sys_exit"),
            ("sched_process_fork", "sched_process_fork"),
            ("sched_process_exit", "sched_process_exit"),
            ("signal_deliver", "signal_deliver"),
        ],
        Mode::Floor => &[],
        Mode::Bound => &[("bound_enter", "sys_enter"), ("bound_exit", "sys_exit")],
    };
    for &(name, tp) in btf_progs {
        let prog: &mut BtfTracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| anyhow!("program {name} missing from the object"))?
            .try_into()?;
        prog.load(tp, &btf).map_err(|e| explain(&e, name))?;
        prog.attach().map_err(|e| explain(&e, name))?;
    }

    if mode == Mode::Record {
        attach_exec_hook(&mut ebpf)?;
    }
    // Exact time needs to know of the time reads the patch came too late
    // for: without that hook no recording may claim exact time.
    let mut exec_notify = None;
    if mode == Mode::Record && exact_time_anywhere(cfg) {
        let name = "vvar_read";
        let attached = (|| -> anyhow::Result<()> {
            let below = crate::timepatch::vvar_below()?;
            let mut with = *cfg;
            with.vvar_below = below;
            let mut conf: Array<_, wire::Config> =
                Array::try_from(ebpf.map_mut("CONFIG").context("map CONFIG")?)?;
            conf.set(0, with, 0).context("writing CONFIG")?;
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(name)
                .ok_or_else(|| anyhow!("program {name} missing from the object"))?
                .try_into()?;
            prog.load("page_fault_user", &btf)
                .map_err(|e| explain(&e, name))?;
            prog.attach().map_err(|e| explain(&e, name))?;
            Ok(())
        })();
        match attached {
            Ok(()) => {
                let ring =
                    RingBuf::try_from(ebpf.take_map("EXEC_NOTIFY").context("map EXEC_NOTIFY")?)?;
                let state =
                    HashMap::try_from(ebpf.take_map("TIME_STATE").context("map TIME_STATE")?)?;
                exec_notify = Some((ring, state));
            }
            Err(e) => {
                tracing::warn!(
                    "exact time is off: {e:#} (time reads are answered from the timeline in replay)"
                );
                let mut off = *cfg;
                off.default_exact_time = 0;
                for r in off.rules.iter_mut() {
                    r.exact_time = 0;
                }
                let mut conf: Array<_, wire::Config> =
                    Array::try_from(ebpf.map_mut("CONFIG").context("map CONFIG")?)?;
                conf.set(0, off, 0).context("writing CONFIG")?;
            }
        }
    }

    let ring = RingBuf::try_from(ebpf.take_map("EVENTS").context("map EVENTS")?)?;
    let loss = PerCpuArray::try_from(ebpf.take_map("LOSS").context("map LOSS")?)?;
    let task_loss = HashMap::try_from(ebpf.take_map("TASK_LOSS").context("map TASK_LOSS")?)?;
    let ring_fill = Array::try_from(ebpf.take_map("RING_FILL").context("map RING_FILL")?)?;
    let stage = PerCpuArray::try_from(ebpf.take_map("STAGE").context("map STAGE")?)?;
    let peers = Array::try_from(ebpf.take_map("PEERS").context("map PEERS")?)?;
    Ok(Loaded {
        peers,
        ebpf,
        ring,
        exec_notify,
        loss,
        task_loss,
        ring_fill,
        stage,
    })
}

/// The exec tracepoint (a classic one: its record has the old tid).
fn attach_exec_hook(ebpf: &mut aya::Ebpf) -> anyhow::Result<()> {
    let name = "sched_process_exec";
    let tp: &mut TracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing from the object"))?
        .try_into()?;
    tp.load().map_err(|e| explain(&e, name))?;
    tp.attach("sched", name).map_err(|e| explain(&e, name))?;
    Ok(())
}

/// Some process may get exact time (the default or a rule says so).
fn exact_time_anywhere(cfg: &wire::Config) -> bool {
    let rules = &cfg.rules[..(cfg.rule_count as usize).min(cfg.rules.len())];
    cfg.default_exact_time != 0 || rules.iter().any(|r| r.exact_time != 0)
}

/// Records lost so far, per kind, summed over CPUs.
pub fn loss_totals(loss: &PerCpuArray<MapData, u64>) -> [u64; LOSS_KINDS as usize] {
    let mut out = [0u64; LOSS_KINDS as usize];
    for (k, slot) in out.iter_mut().enumerate() {
        if let Ok(v) = loss.get(&(k as u32), 0) {
            *slot = v.iter().sum();
        }
    }
    out
}

/// Processes (tgids) that lost at least one record, with the count.
pub fn task_losses(m: &HashMap<MapData, u32, u64>) -> Vec<(u32, u64)> {
    let mut v: Vec<(u32, u64)> = m.iter().filter_map(Result::ok).collect();
    v.sort_unstable();
    v
}

/// Applies new filters to running programs (SIGHUP). Descendant tracking
/// restarts from the new pid rules: the tracked set is cleared.
pub fn update_config(ebpf: &mut Ebpf, cfg: &wire::Config) -> anyhow::Result<()> {
    let mut conf: Array<_, wire::Config> =
        Array::try_from(ebpf.map_mut("CONFIG").context("map CONFIG")?)?;
    conf.set(0, *cfg, 0).context("writing CONFIG")?;
    let mut tracked: HashMap<_, u32, wire::Tracked> =
        HashMap::try_from(ebpf.map_mut("TRACKED").context("map TRACKED")?)?;
    let keys: Vec<u32> = tracked.keys().filter_map(Result::ok).collect();
    for k in keys {
        let _ = tracked.remove(&k);
    }
    Ok(())
}
