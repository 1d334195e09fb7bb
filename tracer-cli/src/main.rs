//! `tracectl`: the command-line front of tracer.
//!
//! It owns argument parsing and output only; reading recordings goes through
//! `tracer-proto`, rendering through `tracer-format`. Today it reads a
//! daemon's event file offline; the gRPC-backed commands build on the API.
use std::{io::Write, path::PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use tracer_proto as pb;

#[derive(Parser)]
#[command(name = "tracectl", version, about = "Inspect what tracer recorded")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print recorded events strace-style, from a daemon's event file.
    Events {
        /// The event file (DATA_DIR/events.pb).
        #[arg(long)]
        file: PathBuf,
        /// Only this process (by pid).
        #[arg(long)]
        pid: Option<u32>,
        /// Only these syscalls (repeatable).
        #[arg(long = "syscall")]
        syscalls: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracectl: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn wanted(e: &pb::Event, pid: Option<u32>, syscalls: &[String]) -> bool {
    if pid.is_some_and(|p| p != e.pid) {
        return false;
    }
    if syscalls.is_empty() {
        return true;
    }
    matches!(&e.kind, Some(pb::event::Kind::Syscall(s)) if syscalls.contains(&s.name))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Events {
            file,
            pid,
            syscalls,
        } => {
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (events, damage) = pb::decode_events(&data);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for e in events.iter().filter(|e| wanted(e, pid, &syscalls)) {
                if writeln!(out, "{}", tracer_format::line(e)).is_err() {
                    return Ok(()); // stdout closed (e.g. `| head`)
                }
            }
            out.flush().ok();
            if let Some((at, err)) = damage {
                bail!(
                    "{}: damaged at byte {at} of {} ({err}); the {} events before it were shown",
                    file.display(),
                    data.len(),
                    events.len()
                );
            }
            Ok(())
        }
    }
}
