//! The host's time-stamp counter as a function of its monotonic clock.
//!
//! A program that executes `rdtsc` itself reads a clock no syscall and no
//! kernel program sees, so its values cannot be recorded. What can be is
//! how the counter relates to the monotonic clock every event is stamped
//! with (an invariant TSC runs at one rate on every CPU): the replayer then
//! answers each trapped `rdtsc` with the counter's value at that point of
//! the recorded timeline, close to what the program read and the same in
//! every replay.
use std::sync::OnceLock;
use std::time::Duration;

/// `tsc = at_zero + monotonic_ns * khz / 1e6`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TscRelation {
    pub khz: u64,
    pub at_zero: i64,
}

/// Measured once per daemon (20 ms at its first use); all zero where the
/// counter is not usable as a clock (no invariant TSC, another
/// architecture), which tells replay that it is not known.
pub fn relation() -> TscRelation {
    static REL: OnceLock<TscRelation> = OnceLock::new();
    *REL.get_or_init(measure)
}

#[cfg(target_arch = "x86_64")]
fn measure() -> TscRelation {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    if !(has("constant_tsc") && has("nonstop_tsc")) {
        tracing::info!("no invariant TSC: a replay answers rdtsc without the host's rate");
        return TscRelation::default();
    }
    // Each sample brackets one counter read between two clock reads and
    // keeps the tightest bracket of a few, so that an interrupt between
    // the reads does not skew the pair.
    let sample = || {
        let mut best = (u64::MAX, 0u64, 0u64);
        for _ in 0..16 {
            let a = crate::persist::monotonic_ns();
            // SAFETY: rdtsc reads a register; every x86_64 CPU has it.
            let c = unsafe { core::arch::x86_64::_rdtsc() };
            let b = crate::persist::monotonic_ns();
            if b - a < best.0 {
                best = (b - a, a + (b - a) / 2, c);
            }
        }
        (best.1, best.2)
    };
    let (m0, c0) = sample();
    std::thread::sleep(Duration::from_millis(20));
    let (m1, c1) = sample();
    if m1 <= m0 || c1 <= c0 {
        return TscRelation::default();
    }
    let khz = ((c1 - c0) as u128 * 1_000_000 / (m1 - m0) as u128) as u64;
    let at_zero = c1 as i128 - (m1 as i128 * khz as i128 / 1_000_000);
    TscRelation {
        khz,
        at_zero: at_zero as i64,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn measure() -> TscRelation {
    TscRelation::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_relation_predicts_the_counter() {
        let r = relation();
        if r.khz == 0 {
            return; // a host without an invariant TSC: nothing to predict
        }
        // A rate between 100 MHz and 10 GHz, and a prediction of a fresh
        // read within 50 µs of it.
        assert!((100_000..10_000_000).contains(&r.khz), "{r:?}");
        let m = crate::persist::monotonic_ns();
        // SAFETY: as above.
        let c = unsafe { core::arch::x86_64::_rdtsc() } as i128;
        let predicted = r.at_zero as i128 + m as i128 * r.khz as i128 / 1_000_000;
        let off_ns = (c - predicted).abs() * 1_000_000 / r.khz as i128;
        assert!(off_ns < 50_000, "off by {off_ns} ns: {r:?}");
    }
}
