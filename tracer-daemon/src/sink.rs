//! Where events go: a length-delimited protobuf file in the data directory
//! (until the segment store lands) and, with `--print`, strace-like lines on
//! stdout.
use std::{
    fs::{File, OpenOptions},
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use prost::Message as _;
use tracer_proto as pb;

use tracer_format as print;

pub const EVENTS_FILE: &str = "events.pb";

pub struct Sink {
    file: BufWriter<File>,
    path: PathBuf,
    scratch: Vec<u8>,
    print: Option<BufWriter<std::io::Stdout>>,
    pub bytes: u64,
    pub write_errors: u64,
    pub dropped: u64,
}

impl Sink {
    pub fn open(data_dir: &Path, print: bool) -> anyhow::Result<Self> {
        let path = data_dir.join(EVENTS_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            file: BufWriter::with_capacity(1 << 20, file),
            path,
            scratch: Vec::with_capacity(4096),
            print: print.then(|| BufWriter::with_capacity(1 << 16, std::io::stdout())),
            bytes: 0,
            write_errors: 0,
            dropped: 0,
        })
    }

    pub fn write(&mut self, ev: pb::Event) {
        if let Some(out) = &mut self.print {
            let _ = writeln!(out, "{}", print::line(&ev));
        }
        self.scratch.clear();
        if ev.encode_length_delimited(&mut self.scratch).is_err() {
            self.dropped += 1;
            return;
        }
        match self.file.write_all(&self.scratch) {
            Ok(()) => self.bytes += self.scratch.len() as u64,
            Err(e) => {
                // Disk full or gone: keep running, count what is dropped.
                if self.write_errors == 0 {
                    tracing::error!(
                        "writing {}: {e}; dropping events until writes succeed",
                        self.path.display()
                    );
                }
                self.write_errors += 1;
                self.dropped += 1;
            }
        }
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.file.flush() {
            self.write_errors += 1;
            tracing::error!("flushing {}: {e}", self.path.display());
        }
        if let Some(out) = &mut self.print {
            let _ = out.flush();
        }
    }
}
