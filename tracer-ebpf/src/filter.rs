//! The in-kernel filter: which tasks are recorded, and with payloads or not.
use core::ffi::c_void;

use aya_ebpf::helpers::{bpf_get_current_uid_gid, generated};
use tracer_common::wire::{
    MAX_RULES, RULE_INCLUDE, RULE_MATCH_CGROUP, RULE_MATCH_COMM, RULE_MATCH_PID, RULE_MATCH_UID,
};

use crate::maps::{PEERS, TRACKED, config};

/// `Some(payload)` when the task of `tgid` is recorded, `None` when not.
#[inline(always)]
pub fn decide(tgid: u32) -> Option<bool> {
    verdict(tgid).map(|v| v & VERDICT_PAYLOAD != 0)
}

/// Verdict bit: buffers are captured.
pub const VERDICT_PAYLOAD: u32 = 1;
/// Verdict bit: time reads are recorded exactly (the vDSO is patched).
pub const VERDICT_EXACT_TIME: u32 = 2;

/// `Some(VERDICT_* bits)` when the task of `tgid` is recorded, `None` when
/// not: the first rule that matches decides, else the defaults.
#[inline(always)]
pub fn verdict(tgid: u32) -> Option<u32> {
    let cfg = config()?;
    if tgid == cfg.self_pid || tgid == 0 {
        return None;
    }
    if let Some(peers) = PEERS.get(0) {
        // A fixed, unrolled scan: cheaper per syscall than a hash lookup.
        for &p in peers.tgids.iter() {
            if p == tgid {
                return None;
            }
        }
    }
    let count = cfg.rule_count as usize;
    if count > 0 {
        // SAFETY: the value is only read; a concurrent delete leaves stale but valid memory.
        let tracked = if cfg.track_descendants != 0 {
            unsafe { TRACKED.get(tgid) }.map(|t| t.rule)
        } else {
            None
        };
        let mut comm = core::mem::MaybeUninit::<[u64; 2]>::uninit();
        let mut have_comm = false;
        for i in 0..MAX_RULES {
            if i >= count {
                break;
            }
            let r = &cfg.rules[i];
            let hit = match r.matcher {
                RULE_MATCH_PID => r.value == tgid as u64 || tracked == Some(i as u32),
                RULE_MATCH_UID => (bpf_get_current_uid_gid() & 0xffff_ffff) == r.value,
                // SAFETY: helper without preconditions.
                RULE_MATCH_CGROUP => {
                    // SAFETY: helper without preconditions.
                    let cg = unsafe { generated::bpf_get_current_cgroup_id() };
                    cg == r.value
                }
                RULE_MATCH_COMM => {
                    if !have_comm {
                        // SAFETY: 16 writable bytes.
                        unsafe {
                            generated::bpf_get_current_comm(comm.as_mut_ptr() as *mut c_void, 16)
                        };
                        have_comm = true;
                    }
                    let want = &r.comm;
                    // Compared as two words: a byte-array compare becomes a memcmp call.
                    let w0 = u64::from_le_bytes([
                        want[0], want[1], want[2], want[3], want[4], want[5], want[6], want[7],
                    ]);
                    let w1 = u64::from_le_bytes([
                        want[8], want[9], want[10], want[11], want[12], want[13], want[14],
                        want[15],
                    ]);
                    // SAFETY: written by the helper above (zeroed by it on failure).
                    let comm = unsafe { comm.assume_init_ref() };
                    comm[0] == w0 && comm[1] == w1
                }
                _ => false,
            };
            if hit {
                return if r.action == RULE_INCLUDE {
                    Some(bits(r.payload, r.exact_time))
                } else {
                    None
                };
            }
        }
    }
    if cfg.default_action == RULE_INCLUDE {
        Some(bits(cfg.default_payload, cfg.default_exact_time))
    } else {
        None
    }
}

#[inline(always)]
fn bits(payload: u32, exact_time: u32) -> u32 {
    (if payload != 0 { VERDICT_PAYLOAD } else { 0 })
        | if exact_time != 0 {
            VERDICT_EXACT_TIME
        } else {
            0
        }
}
