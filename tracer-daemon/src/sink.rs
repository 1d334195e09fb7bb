//! Where events go: the segment store in the data directory and, with
//! `--print`, strace-like lines on stdout.
use std::io::{BufWriter, Write};

use tracer_format as print;
use tracer_proto as pb;

use crate::persist::Persist;

pub struct Sink {
    pub persist: Persist,
    print: Option<BufWriter<std::io::Stdout>>,
}

impl Sink {
    pub fn new(persist: Persist, print: bool) -> Self {
        Self {
            persist,
            print: print.then(|| BufWriter::with_capacity(1 << 16, std::io::stdout())),
        }
    }

    pub fn write(&mut self, ev: pb::Event) {
        if let Some(out) = &mut self.print {
            let _ = writeln!(out, "{}", print::line(&ev));
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

    pub fn close(&mut self) {
        self.persist.close();
        if let Some(out) = &mut self.print {
            let _ = out.flush();
        }
    }
}
