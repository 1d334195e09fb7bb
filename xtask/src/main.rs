//! `cargo xtask`: the project's tasks. Each installs what it needs first
//! (`setup` is idempotent), so a new machine needs nothing by hand.
mod bench;
mod setup;
mod util;

use std::{os::unix::process::CommandExt, process::Command, time::Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use util::{root, run};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what this machine lacks: nightly rust-src, LLVM 22, bpf-linker,
    /// bpftrace and strace (for benchmarks). Idempotent.
    Setup,
    /// Setup, then build the release binaries.
    Build,
    /// Setup, build, and run the daemon in the foreground, recording this
    /// host into ./var/tracer (Ctrl-C stops it).
    Run {
        /// Extra daemon arguments.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Setup, build, and run every test (unit and end to end; needs root).
    Test {
        /// Shorter stress tests.
        #[arg(long)]
        quick: bool,
    },
    /// Setup, build, and replay the real-world corpus (tests/src/bin/corpus.rs):
    /// a table of programs, identical or why not, and `N of M identical`.
    /// Fails only on a hang, a replayer failure, or a wrong replay called
    /// identical. Needs root.
    Corpus {
        /// Only the cases whose name contains this.
        filter: Option<String>,
    },
    /// rustfmt and clippy, warnings as errors.
    Lint,
    /// Benchmarks, measured side by side in one run.
    Bench(bench::Args),
}

fn build() -> anyhow::Result<()> {
    setup::setup()?;
    run(Command::new("cargo").current_dir(root()).args([
        "build",
        "--release",
        "-p",
        "tracer-daemon",
        "-p",
        "tracer-cli",
        "-p",
        "tracer-tests",
        "--bins",
    ]))
}

/// The real-world replay corpus, from the binaries `build` made.
fn corpus(filter: Option<String>) -> anyhow::Result<()> {
    run(Command::new(root().join("target/release/corpus"))
        .args(filter)
        .env(
            "TRACER_DAEMON_BIN",
            root().join("target/release/tracer-daemon"),
        ))
}

/// A bounded run of the segment decoder's fuzz target, from its seed corpus
/// (copied, so the run does not grow the committed one).
fn fuzz(seconds: u32) -> anyhow::Result<()> {
    let corpus = tempfile::tempdir()?;
    for entry in std::fs::read_dir(root().join("fuzz/corpus/segment"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), corpus.path().join(entry.file_name()))?;
    }
    run(Command::new("cargo")
        .current_dir(root().join("fuzz"))
        .args(["+nightly", "fuzz", "run", "segment"])
        .arg(corpus.path())
        .args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
            "-timeout=10",
        ]))
}

/// What `cargo xtask run` prints before starting the daemon: the lines a
/// user pastes into another shell to reach it.
fn reach_line(connect: &str, tracectl: &std::path::Path) -> String {
    format!(
        "xtask run: reach this daemon from another shell (as root) with\n    export TRACER_CONNECT={connect}\n    {} ps",
        tracectl.display()
    )
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Setup => setup::setup(),
        Cmd::Build => build(),
        Cmd::Run { args } => {
            build()?;
            let data = root().join("var/tracer");
            std::fs::create_dir_all(&data)
                .with_context(|| format!("creating {}", data.display()))?;
            // The daemon refuses a data directory others can read.
            std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .with_context(|| format!("making {} private", data.display()))?;
            let connect = format!("unix:{}", data.join("tracer.sock").display());
            // tracectl's default is the packaged service's socket, not this
            // one: say how to reach the daemon started here.
            eprintln!(
                "{}",
                reach_line(&connect, &root().join("target/release/tracectl"))
            );
            let err = Command::new(root().join("target/release/tracer-daemon"))
                .arg("--data-dir")
                .arg(&data)
                .arg("--listen")
                .arg(&connect)
                .args(args)
                .exec();
            bail!("starting tracer-daemon: {err}")
        }
        Cmd::Test { quick } => {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                bail!("the tests load eBPF programs and need root: run `sudo cargo xtask test`");
            }
            let started = Instant::now();
            build()?;
            let mut cmd = Command::new("cargo");
            cmd.current_dir(root())
                .args(["test", "--release", "--", "--test-threads=1"])
                .env(
                    "TRACER_DAEMON_BIN",
                    root().join("target/release/tracer-daemon"),
                );
            if quick {
                cmd.env("TRACER_QUICK", "1");
            }
            let result = run(&mut cmd)
                .and_then(|()| fuzz(if quick { 10 } else { 30 }))
                .and_then(|()| corpus(None));
            println!("xtask test: {:.0} s", started.elapsed().as_secs_f64());
            result
        }
        Cmd::Lint => {
            setup::setup()?;
            run(Command::new("cargo")
                .current_dir(root())
                .args(["fmt", "--all", "--", "--check"]))?;
            run(Command::new("cargo").current_dir(root()).args([
                "clippy",
                "--release",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
            // The kernel programs, for their own target.
            run(Command::new("cargo")
                .current_dir(root().join("tracer-ebpf"))
                .args([
                    "+nightly",
                    "clippy",
                    "--release",
                    "--target",
                    "bpfel-unknown-none",
                    "-Z",
                    "build-std=core",
                    "--",
                    "-D",
                    "warnings",
                ]))
        }
        Cmd::Corpus { filter } => {
            build()?;
            corpus(filter)
        }
        Cmd::Bench(args) => {
            build()?;
            bench::bench(&args)
        }
    }
}
