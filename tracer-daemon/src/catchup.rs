//! Queries see everything recorded before they were asked.
//!
//! Between a syscall and the store lie the ring (read every 10 ms), the
//! assembler's queue (at the lowest priority, so it may lag on a busy
//! host) and the store's per-process batches (written at each 200 ms
//! tick). A `tracectl fetch` right after a process exits would otherwise
//! miss its last events, or its children, or say there is no such process.
//! Before a query reads the store, [`Catchup::wait`] makes sure that the
//! drain thread has passed over the ring since the query came, and that the
//! assembler has stored everything queued by then. The assembler runs at
//! the lowest priority, so that on a busy host it gives way to what it
//! records; while a query waits for it, it runs at the default priority
//! (on a host whose cores a build keeps busy it would otherwise not catch
//! up in time). Bounded: on a host too busy even so, the query answers
//! with what is stored, says so in the log, and a process it cannot find
//! is reported as not stored yet.
use std::{
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::drain;

/// Longest a query waits for the recorder to catch up.
pub const CATCHUP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Catchup {
    drained: Arc<drain::Shared>,
    /// Catch-ups asked for (a generation number).
    requested: AtomicU64,
    /// The last generation the assembler stored everything for.
    stored: Mutex<u64>,
    stored_cv: Condvar,
    /// The assembler thread and its configured niceness, and how many
    /// queries wait (it runs at niceness 0 while any does).
    assembler: std::sync::OnceLock<(libc::id_t, i32)>,
    waiting: Mutex<usize>,
}

impl Catchup {
    pub fn new(drained: Arc<drain::Shared>) -> Arc<Self> {
        Arc::new(Self {
            drained,
            requested: AtomicU64::new(0),
            stored: Mutex::new(0),
            stored_cv: Condvar::new(),
            assembler: std::sync::OnceLock::new(),
            waiting: Mutex::new(0),
        })
    }

    /// For the assembler thread: its tid and niceness.
    pub fn set_assembler(&self, tid: libc::id_t, nice: i32) {
        let _ = self.assembler.set((tid, nice));
    }

    /// A query starts (`true`) or stops waiting: the first raises the
    /// assembler to niceness 0, the last puts it back.
    fn boost(&self, on: bool) {
        let Ok(mut n) = self.waiting.lock() else {
            return;
        };
        let before = *n;
        *n = if on {
            before + 1
        } else {
            before.saturating_sub(1)
        };
        let change = if on {
            before == 0
        } else {
            *n == 0 && before > 0
        };
        if let (true, Some(&(tid, nice))) = (change, self.assembler.get())
            && nice > 0
        {
            crate::assembly::set_nice(tid, if on { 0 } else { nice });
        }
    }

    /// Blocks until what was recorded before the call is in the store, or
    /// `timeout` passed. Returns whether it caught up.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.boost(true);
        let caught_up = self.wait_boosted(timeout);
        self.boost(false);
        caught_up
    }

    fn wait_boosted(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // Two finished passes: at least one began after this call, and read
        // every record committed before it.
        let passes = self.drained.passes.load(Ordering::SeqCst);
        while self.drained.passes.load(Ordering::SeqCst) < passes + 2 {
            if Instant::now() >= deadline {
                return self.gave_up();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let generation = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let Ok(mut stored) = self.stored.lock() else {
            return false;
        };
        while *stored < generation {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.gave_up();
            }
            stored = match self.stored_cv.wait_timeout(stored, left) {
                Ok((g, _)) => g,
                Err(_) => return false,
            };
        }
        true
    }

    fn gave_up(&self) -> bool {
        tracing::warn!(
            "a query waited {CATCHUP_TIMEOUT:?} for the recorder to store what it had recorded \
             (backlog {} bytes); it answers with what is stored so far",
            self.drained.backlog.load(Ordering::Relaxed)
        );
        false
    }

    /// For the assembler: the generation to store everything for, when a
    /// query waits for one it has not stored yet. Everything queued after
    /// this call returns must be assembled and stored before [`stored`].
    pub fn wanted(&self) -> Option<u64> {
        let r = self.requested.load(Ordering::SeqCst);
        let s = self.stored.lock().map(|g| *g).unwrap_or(r);
        (r > s).then_some(r)
    }

    /// For the assembler: everything queued before generation `g` was
    /// wanted is stored.
    pub fn stored(&self, g: u64) {
        if let Ok(mut s) = self.stored.lock() {
            *s = (*s).max(g);
        }
        self.stored_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_once_the_drain_passed_and_the_assembler_stored() {
        let drained = Arc::new(drain::Shared::default());
        let c = Catchup::new(Arc::clone(&drained));
        let waiter = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || c.wait(Duration::from_secs(10)))
        };
        // Nothing is wanted before the drain has passed twice.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.wanted(), None);
        drained.passes.fetch_add(2, Ordering::SeqCst);
        let g = loop {
            if let Some(g) = c.wanted() {
                break g;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(!waiter.is_finished(), "not before the assembler stored");
        c.stored(g);
        assert!(waiter.join().expect("waiter"));
        assert_eq!(c.wanted(), None);
    }

    #[test]
    fn a_stalled_recorder_bounds_the_wait() {
        let c = Catchup::new(Arc::new(drain::Shared::default()));
        let t = Instant::now();
        assert!(!c.wait(Duration::from_millis(100)));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
