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
    /// Per-syscall counts and errors, from the store's indexes.
    Stats {
        /// The daemon's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// One process (by pid) instead of the host.
        #[arg(long)]
        pid: Option<u32>,
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
            report_damage(&r.damage);
            Ok(())
        }
        Cmd::Stats { data_dir, pid } => {
            let stats = store::stats(&data_dir, pid)
                .with_context(|| format!("reading the store in {}", data_dir.display()))?;
            let mut rows: Vec<_> = stats.into_iter().collect();
            rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let _ = writeln!(
                out,
                "{:<24} {:>12} {:>10}  errors",
                "syscall", "calls", "failed"
            );
            for (nr, s) in rows {
                let name = tracer_common::effects::name(nr)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("syscall_{nr}"));
                let failed: u64 = s.errors.values().sum();
                let mut errs: Vec<_> = s.errors.iter().collect();
                errs.sort_by(|a, b| b.1.cmp(a.1));
                let errs: Vec<String> = errs
                    .iter()
                    .map(|(e, n)| format!("{}={n}", tracer_format::errno_name(**e)))
                    .collect();
                if writeln!(
                    out,
                    "{name:<24} {:>12} {failed:>10}  {}",
                    s.count,
                    errs.join(" ")
                )
                .is_err()
                {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

fn report_damage(damage: &[(PathBuf, tracer_store::segment::Damage)]) {
    for (path, d) in damage {
        eprintln!(
            "tracectl: warning: {}: damaged frame at byte {} skipped: {}",
            path.display(),
            d.offset,
            d.error
        );
    }
}
