//! Small programs for the replay tests, one per subcommand:
//! - `time`: prints `Instant` and `SystemTime` values (vDSO time calls);
//! - `diverge`: prints a line; when `TRACER_DIVERGE` is set it first looks
//!   for a file, which changes its path through syscalls;
//! - `files DIR`: creates, writes, renames and unlinks files in DIR.
use std::{
    io::Write,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout().lock();
    match args.get(1).map(String::as_str) {
        Some("time") => {
            let a = Instant::now();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970");
            let b = Instant::now();
            writeln!(out, "instant {a:?}").expect("stdout");
            writeln!(out, "system {}.{:09}", now.as_secs(), now.subsec_nanos()).expect("stdout");
            writeln!(out, "elapsed {:?}", b.duration_since(a)).expect("stdout");
        }
        Some("diverge") => {
            if std::env::var_os("TRACER_DIVERGE").is_some() {
                let _ = std::fs::metadata("/tracer-diverge-probe");
            }
            writeln!(out, "the same either way").expect("stdout");
        }
        Some("files") => {
            let dir = std::path::Path::new(args.get(2).expect("files DIR"));
            std::fs::write(dir.join("new.txt"), b"created by the recorded run\n").expect("create");
            std::fs::rename(dir.join("new.txt"), dir.join("renamed.txt")).expect("rename");
            std::fs::write(dir.join("keep.txt"), b"overwritten\n").expect("overwrite");
            std::fs::remove_file(dir.join("doomed.txt")).expect("unlink");
            writeln!(out, "changed {}", dir.display()).expect("stdout");
        }
        _ => {
            eprintln!("usage: replay-corpus time | diverge | files DIR");
            std::process::exit(2);
        }
    }
}
