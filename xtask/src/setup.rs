//! `cargo xtask setup`: installs, only where missing, what building and
//! testing need (MACHINE-FACTS.md has the recipe). A second run only checks.
use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

use crate::util::{run, succeeds};

const LLVM_PACKAGES: &[&str] = &["llvm-22-dev", "libpolly-22-dev", "libzstd-dev"];
/// `prometheus` for its `promtool`, which checks the daemon's /metrics.
const TOOL_PACKAGES: &[&str] = &["bpftrace", "strace", "gdb", "gcc", "python3", "prometheus"];
/// Programs of the replay corpus that a new machine may lack (the image
/// has node, the JDK, git, sqlite3, perl and curl).
const CORPUS_PACKAGES: &[&str] = &[
    "golang-go",
    "redis-server",
    "redis-tools",
    "nginx-light",
    "jq",
    "bc",
    "zstd",
    "xz-utils",
    "bzip2",
    "make",
    "file",
];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

struct Apt {
    updated: bool,
}

impl Apt {
    fn ensure(&mut self, pkgs: &[&str]) -> anyhow::Result<()> {
        let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
        if missing.is_empty() {
            println!("setup: apt {}: present", pkgs.join(" "));
            return Ok(());
        }
        println!("setup: apt: installing {}", missing.join(" "));
        if !self.updated {
            run(Command::new("apt-get").arg("update").arg("-qq"))?;
            self.updated = true;
        }
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    }
}

fn cargo_bin(name: &str) -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("bin")
        .join(name)
}

pub fn setup() -> anyhow::Result<()> {
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("running rustup")?;
    if !String::from_utf8_lossy(&toolchains.stdout).contains("nightly") {
        bail!(
            "no nightly toolchain (`rustup toolchain list`): the eBPF programs need one. \
             The machine image ships it and it cannot be downloaded here; use an image \
             that has it"
        );
    }
    println!("setup: nightly toolchain: present");
    let comps = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .context("running rustup")?;
    if String::from_utf8_lossy(&comps.stdout).contains("rust-src") {
        println!("setup: nightly rust-src: present");
    } else {
        println!("setup: nightly rust-src: adding");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }

    let mut apt = Apt { updated: false };
    let linker = cargo_bin("bpf-linker");
    if succeeds(&linker.to_string_lossy(), &["--version"]) {
        println!("setup: bpf-linker: present ({})", linker.display());
    } else if succeeds("bpf-linker", &["--version"]) {
        println!("setup: bpf-linker: present (on PATH)");
    } else {
        apt.ensure(LLVM_PACKAGES)?;
        println!("setup: bpf-linker: building it against LLVM 22 (about 4 minutes)");
        let path = format!(
            "/usr/lib/llvm-22/bin:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        run(Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("PATH", path))?;
    }
    apt.ensure(TOOL_PACKAGES)?;
    apt.ensure(CORPUS_PACKAGES)?;

    // The segment decoder's fuzz target runs (bounded) in `cargo xtask test`.
    if succeeds("cargo", &["fuzz", "--version"]) {
        println!("setup: cargo-fuzz present");
    } else {
        println!("setup: installing cargo-fuzz");
        run(Command::new("cargo").args(["install", "cargo-fuzz"]))?;
    }

    // bpftrace's tracepoint probes need tracefs; a new machine has it unmounted.
    if std::path::Path::new("/sys/kernel/tracing/events").exists() {
        println!("setup: tracefs: mounted");
    } else {
        println!("setup: tracefs: mounting on /sys/kernel/tracing");
        if !succeeds(
            "mount",
            &["-t", "tracefs", "tracefs", "/sys/kernel/tracing"],
        ) {
            println!(
                "setup: warning: could not mount tracefs; the bpftrace benchmark will be skipped"
            );
        }
    }
    println!("setup: ready");
    Ok(())
}
