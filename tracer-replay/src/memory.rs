//! Where a recorded buffer lives in the replayed process, per the shared
//! memory-effects table: comparing recorded inputs with what the program
//! passes now, and writing recorded outputs where the program expects them.
use tracer_common::effects::{self, Direction, Effects, MMSG_ITEM_STRIDE, SizeRule};
use tracer_proto as pb;

use crate::{ReplayError, tracee::Tracee};

/// Items of a msghdr capture (see the kernel program).
const MSG_ITEM_NAME: u32 = 1;
const MSG_ITEM_CONTROL: u32 = 2;
const MSG_ITEM_IOV: u32 = 16;

/// The table entry a recorded buffer came from.
fn entry_of(nr: i64, arg: u32, dir: i32) -> Option<&'static effects::Effect> {
    let Effects::Known(list) = effects::lookup(nr)?.effects else {
        return None;
    };
    let wanted = |d: Direction| {
        if dir == pb::Direction::Out as i32 {
            d.is_out()
        } else {
            d.is_in()
        }
    };
    list.iter().find(|e| e.arg as u32 == arg && wanted(e.dir))
}

/// The size rule of the table entry a recorded buffer came from.
pub fn rule_of(nr: i64, arg: u32, dir: i32) -> Option<SizeRule> {
    entry_of(nr, arg, dir).map(|e| e.rule)
}

/// What the command of a [`SizeRule::Cmd`] buffer does with its memory,
/// by the command argument the program passed.
fn cmd_of(nr: i64, args: &[u64; 6], b: &pb::Buffer) -> Option<effects::CmdMemory> {
    let e = entry_of(nr, b.arg, b.direction).filter(|e| e.rule == SizeRule::Cmd)?;
    Some(effects::cmd_memory(
        e.param,
        args[e.size_arg as usize % 6],
        e.arg,
    ))
}

/// The address in the tracee of a recorded buffer, given this syscall's
/// arguments as the replayed program passed them.
pub fn locate(
    t: &Tracee,
    nr: i64,
    args: &[u64; 6],
    b: &pb::Buffer,
) -> Result<Option<u64>, ReplayError> {
    let Some(&base) = args.get(b.arg as usize) else {
        return Ok(None);
    };
    if base == 0 {
        return Ok(None);
    }
    Ok(Some(match rule_of(nr, b.arg, b.direction) {
        Some(SizeRule::Iovec | SizeRule::SelfIovec) => t.read_u64(base + 16 * b.item as u64)?,
        // Where the command's struct (item 0) points: a struct iovec's
        // bytes (ptrace's regset), a struct sock_fprog's filter.
        Some(SizeRule::Cmd) if b.item == 1 => match cmd_of(nr, args, b) {
            Some(m) if m.iovec => t.read_u64(base)?,
            Some(m) if m.fprog => t.read_u64(base + 8)?,
            _ => return Ok(None),
        },
        Some(SizeRule::StringArray) => t.read_u64(base + 8 * b.item as u64)?,
        // A bpf command's log or query arrays: where its attr points.
        Some(SizeRule::Bpf) if b.item > 0 => match effects::bpf_item_pointer(args[0], b.item) {
            Some(off) => t.read_u64(base + off as u64)?,
            None => return Ok(None),
        },
        Some(SizeRule::Mmsghdr) if b.item > 0 => {
            // Message i's own items, at its header in the array.
            let i = (b.item / MMSG_ITEM_STRIDE - 1) as u64;
            let m = base + 64 * i;
            match b.item % MMSG_ITEM_STRIDE {
                MSG_ITEM_NAME => t.read_u64(m)?,
                MSG_ITEM_CONTROL => t.read_u64(m + 32)?,
                k if k >= MSG_ITEM_IOV => {
                    let iov = t.read_u64(m + 16)?;
                    t.read_u64(iov + 16 * (k - MSG_ITEM_IOV) as u64)?
                }
                _ => return Ok(None),
            }
        }
        Some(SizeRule::Msghdr) => match b.item {
            0 => base,
            MSG_ITEM_NAME => t.read_u64(base)?,
            MSG_ITEM_CONTROL => t.read_u64(base + 32)?,
            i if i >= MSG_ITEM_IOV => {
                let iov = t.read_u64(base + 16)?;
                t.read_u64(iov + 16 * (i - MSG_ITEM_IOV) as u64)?
            }
            _ => return Ok(None),
        },
        _ => base,
    }))
}

/// Byte ranges of an input buffer that hold no addresses (addresses differ
/// between recording and replay and are not compared). `None`: all of it.
fn comparable(nr: i64, b: &pb::Buffer, rule: Option<SizeRule>) -> Option<Vec<(usize, usize)>> {
    let name = effects::name(nr).unwrap_or("");
    Some(match (name, rule) {
        // struct msghdr: namelen, iovlen, controllen.
        (_, Some(SizeRule::Msghdr)) if b.item == 0 => vec![(8, 12), (24, 32), (40, 48)],
        // struct sigaction: flags and mask (not the handler, restorer).
        ("rt_sigaction", _) => vec![(8, 16), (24, 32)],
        // stack_t: flags and size.
        ("sigaltstack", _) => vec![(8, 12), (16, 24)],
        // struct epoll_event: the events mask (data is often a pointer).
        ("epoll_ctl", _) => vec![(0, 4)],
        // struct clone_args: flags, exit_signal, stack_size.
        ("clone3", _) => vec![(0, 8), (32, 40), (48, 56)],
        // struct sigevent: signo and notify (not sigev_value).
        ("timer_create", _) | ("mq_notify", _) => vec![(8, 16)],
        // A unix socket address: its path up to the NUL (what follows is
        // whatever was in the buffer).
        ("connect" | "bind" | "sendto", _) if b.data.len() > 2 && b.data[..2] == [1, 0] => {
            let end = b.data[2..]
                .iter()
                .position(|&c| c == 0)
                .map_or(b.data.len(), |z| z + 3);
            vec![(0, end)]
        }
        // struct flock: type, whence, start, len (not l_pid, which the
        // lock commands ignore on input, nor the padding).
        ("fcntl", _) if b.data.len() == 32 => vec![(0, 4), (8, 24)],
        // struct f_owner_ex or a hint: not compared (the GET commands'
        // input is whatever the buffer held; the buffer alone does not say
        // which command it was).
        ("fcntl", _) => vec![],
        // struct sock_fprog: the instruction count (then padding and the
        // filter's address).
        ("seccomp", _) if b.item == 0 && b.data.len() == 16 => vec![(0, 2)],
        // struct mq_attr: mq_open reads maxmsg and msgsize, mq_getsetattr
        // the flags; the rest is whatever the buffer held.
        ("mq_open", _) => vec![(8, 24)],
        ("mq_getsetattr", _) => vec![(0, 8)],
        // struct mmsghdr: each header's lengths and flags, not its pointers.
        ("sendmmsg", _) => (0..b.data.len() / 64)
            .flat_map(|i| [(8, 12), (24, 32), (40, 52)].map(|(a, z)| (i * 64 + a, i * 64 + z)))
            .collect(),
        // struct pollfd: fd and events; revents is not an input.
        ("poll" | "ppoll", _) => (0..b.data.len() / 8).map(|i| (i * 8, i * 8 + 6)).collect(),
        // struct ifreq: the interface name (a get request reads no more;
        // the union is whatever the buffer held).
        ("ioctl", _) if b.data.len() == 40 => vec![(0, 16)],
        // The futex word is memory the threads change in user space at any
        // time; what the kernel made of it is the recorded result.
        ("futex", _) => vec![],
        (
            "rseq" | "set_robust_list" | "io_uring_setup" | "io_uring_enter" | "bpf"
            | "perf_event_open" | "keyctl" | "ptrace",
            _,
        ) => vec![],
        _ => return None,
    })
}

/// An input that differs from the recording: which buffer, and both
/// versions.
#[derive(Debug)]
pub struct InputMismatch {
    pub arg: u32,
    pub item: u32,
    pub expected: Vec<u8>,
    pub actual: Vec<u8>,
}

/// Compares the recorded inputs of a syscall with the replayed program's
/// memory. Buffers the recorder could not read are not compared.
pub fn compare_inputs(
    t: &Tracee,
    nr: i64,
    args: &[u64; 6],
    rec: &pb::Syscall,
) -> Result<Option<InputMismatch>, ReplayError> {
    for b in rec
        .buffers
        .iter()
        .filter(|b| b.direction == pb::Direction::In as i32 && !b.fault && b.arg < 6)
    {
        let mismatch = |actual: Vec<u8>| InputMismatch {
            arg: b.arg,
            item: b.item,
            expected: b.data.clone(),
            actual,
        };
        let Some(addr) = locate(t, nr, args, b)? else {
            if b.data.is_empty() {
                continue;
            }
            return Ok(Some(mismatch(Vec::new())));
        };
        let actual = match t.read(addr, b.data.len()) {
            Ok(a) => a,
            Err(_) => return Ok(Some(mismatch(Vec::new()))),
        };
        let rule = rule_of(nr, b.arg, b.direction);
        let same = match comparable(nr, b, rule) {
            None => actual == b.data,
            Some(ranges) => ranges.iter().all(|&(from, to)| {
                let to = to.min(b.data.len());
                from >= to || actual[from..to] == b.data[from..to]
            }),
        };
        if !same {
            return Ok(Some(mismatch(actual)));
        }
    }
    Ok(None)
}

/// Reads the inputs the replayed program passes, shaped like the recorded
/// ones, for a divergence report.
pub fn actual_inputs(
    t: &Tracee,
    nr: i64,
    args: &[u64; 6],
    rec: Option<&pb::Syscall>,
) -> Vec<pb::Buffer> {
    let Some(Effects::Known(list)) = effects::lookup(nr).map(|i| i.effects) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in list.iter().filter(|e| e.dir.is_in()) {
        let ptr = args[e.arg as usize % 6];
        if ptr == 0 {
            continue;
        }
        let len = match e.rule {
            SizeRule::CString => {
                // Up to the NUL, read a page at most.
                let mut s = Vec::new();
                let mut at = ptr;
                while s.len() < 4096 {
                    let Ok(chunk) = t.read(at, 64) else { break };
                    if let Some(z) = chunk.iter().position(|&c| c == 0) {
                        s.extend_from_slice(&chunk[..=z]);
                        break;
                    }
                    s.extend_from_slice(&chunk);
                    at += 64;
                }
                out.push(pb::Buffer {
                    arg: e.arg as u32,
                    direction: pb::Direction::In as i32,
                    total_len: s.len() as u64,
                    data: s,
                    ..Default::default()
                });
                continue;
            }
            SizeRule::Const => e.param as usize,
            SizeRule::Arg => args[e.size_arg as usize % 6].min(1 << 16) as usize,
            _ => {
                // Other shapes: the recorded buffer's length at the same place.
                match rec.and_then(|r| {
                    r.buffers
                        .iter()
                        .find(|b| b.arg == e.arg as u32 && b.item == 0)
                }) {
                    Some(b) => b.data.len(),
                    None => continue,
                }
            }
        };
        if let Ok(data) = t.read(ptr, len) {
            out.push(pb::Buffer {
                arg: e.arg as u32,
                direction: pb::Direction::In as i32,
                total_len: data.len() as u64,
                data,
                ..Default::default()
            });
        }
    }
    out
}

/// Writes a syscall's recorded outputs into the replayed program.
pub fn write_outputs(
    t: &Tracee,
    nr: i64,
    args: &[u64; 6],
    rec: &pb::Syscall,
) -> Result<(), ReplayError> {
    for b in rec
        .buffers
        .iter()
        .filter(|b| b.direction == pb::Direction::Out as i32 && b.arg < 6)
    {
        let Some(addr) = locate(t, nr, args, b)? else {
            continue;
        };
        if rule_of(nr, b.arg, b.direction) == Some(SizeRule::Mmsghdr) && b.item == 0 {
            // Each struct mmsghdr: what the kernel sets (namelen,
            // controllen, flags, msg_len), not the program's pointers.
            for (i, h) in b.data.chunks_exact(64).enumerate() {
                let at = addr + 64 * i as u64;
                t.write(at + 8, &h[8..12])?;
                t.write(at + 40, &h[40..52])?;
                t.write(at + 56, &h[56..60])?;
            }
            continue;
        }
        if rule_of(nr, b.arg, b.direction) == Some(SizeRule::Msghdr) && b.item == 0 {
            // The header: only what the kernel sets (namelen, controllen,
            // flags); its pointers are the program's own.
            if b.data.len() >= 52 {
                t.write(addr + 8, &b.data[8..12])?;
                t.write(addr + 40, &b.data[40..52])?;
            }
            continue;
        }
        if b.item == 0 && b.data.len() == 16 && cmd_of(nr, args, b).is_some_and(|m| m.iovec) {
            // A command's struct iovec: the length the kernel set, not the
            // program's pointer.
            t.write(addr + 8, &b.data[8..16])?;
            continue;
        }
        t.write(addr, &b.data)?;
    }
    Ok(())
}
