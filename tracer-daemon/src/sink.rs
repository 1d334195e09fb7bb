//! Where events go: the segment store in the data directory and, with
//! `--print`, strace-like lines on stdout.
use std::{
    io::{BufWriter, Write},
    sync::Arc,
};

use tokio::sync::broadcast;

use tracer_format as print;
use tracer_proto as pb;

use crate::persist::Persist;

pub struct Sink {
    pub persist: Persist,
    print: Option<BufWriter<std::io::Stdout>>,
    /// Live events for `Follow` clients (cloned only while one listens).
    live: broadcast::Sender<Arc<pb::Event>>,
}

impl Sink {
    pub fn new(persist: Persist, print: bool, live: broadcast::Sender<Arc<pb::Event>>) -> Self {
        Self {
            persist,
            print: print.then(|| BufWriter::with_capacity(1 << 16, std::io::stdout())),
            live,
        }
    }

    pub fn write(&mut self, ev: pb::Event) {
        if let Some(out) = &mut self.print {
            let _ = writeln!(out, "{}", print::line(&ev));
        }
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::new(ev.clone()));
        }
        self.persist.push(ev);
    }

    /// Periodic work: a frame for what is waiting, rotation, retention.
    pub fn tick(&mut self) {
        self.persist.tick();
        if let Some(out) = &mut self.print {
            let _ = out.flush();
        }
    }

    /// Writes what waits now (a query wants it readable).
    pub fn flush(&mut self) {
        self.persist.flush();
    }

    pub fn close(&mut self) {
        self.persist.close();
        if let Some(out) = &mut self.print {
            let _ = out.flush();
        }
    }
}
