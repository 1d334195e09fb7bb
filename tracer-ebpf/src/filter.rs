//! The in-kernel filter: which tasks are recorded, and with payloads or not.
use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_uid_gid, generated};
use tracer_common::wire::{
    MAX_RULES, RULE_INCLUDE, RULE_MATCH_CGROUP, RULE_MATCH_COMM, RULE_MATCH_PID, RULE_MATCH_UID,
};

use crate::maps::{TRACKED, config};

/// `Some(payload)` when the task of `tgid` is recorded, `None` when not.
#[inline(always)]
pub fn decide(tgid: u32) -> Option<bool> {
    let cfg = config()?;
    if tgid == cfg.self_pid || tgid == 0 {
        return None;
    }
    let count = cfg.rule_count as usize;
    if count > 0 {
        // SAFETY: the value is only read; a concurrent delete leaves stale but valid memory.
        let tracked = if cfg.track_descendants != 0 {
            unsafe { TRACKED.get(tgid) }.map(|t| t.rule)
        } else {
            None
        };
        let mut comm = [0u8; 16];
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
                        comm = bpf_get_current_comm().unwrap_or([0u8; 16]);
                        have_comm = true;
                    }
                    comm == r.comm
                }
                _ => false,
            };
            if hit {
                return if r.action == RULE_INCLUDE {
                    Some(r.payload != 0)
                } else {
                    None
                };
            }
        }
    }
    if cfg.default_action == RULE_INCLUDE {
        Some(cfg.default_payload != 0)
    } else {
        None
    }
}
