//! `tracectl`: the command-line front of tracer.
//!
//! It owns argument parsing and output only; reading recordings goes through
//! `tracer-store`, rendering through `tracer-format`. Today it reads a
//! daemon's store offline; the gRPC-backed commands build on the API.
use std::{io::Write, path::PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracer_store::store::{self, Query};

#[derive(Parser)]
#[command(name = "tracectl", version, about = "Inspect what tracer recorded")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print recorded events strace-style, read from a daemon's store.
    Events {
        /// The daemon's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Only this process (by pid; repeatable).
        #[arg(long)]
        pid: Vec<u32>,
        /// Only these syscalls, by name (repeatable).
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

fn syscall_number(name: &str) -> anyhow::Result<i64> {
    tracer_common::effects::x86_64::TABLE
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.nr as i64)
        .with_context(|| format!("unknown syscall {name:?}"))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Events {
            data_dir,
            pid,
            syscalls,
        } => {
            let q = Query {
                pids: pid,
                syscalls: syscalls
                    .iter()
                    .map(|n| syscall_number(n))
                    .collect::<anyhow::Result<_>>()?,
                ..Default::default()
            };
            let r = store::query(&data_dir, &q)
                .with_context(|| format!("reading the store in {}", data_dir.display()))?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for e in &r.events {
                if writeln!(out, "{}", tracer_format::line(e)).is_err() {
                    return Ok(()); // stdout closed (e.g. `| head`)
                }
            }
            out.flush().ok();
            for (path, d) in &r.damage {
                eprintln!(
                    "tracectl: warning: {}: damaged frame at byte {} skipped: {}",
                    path.display(),
                    d.offset,
                    d.error
                );
            }
            Ok(())
        }
    }
}
