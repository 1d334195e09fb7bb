//! Builds the eBPF programs (`tracer-ebpf`) with the nightly toolchain and
//! bpf-linker (`cargo xtask setup` installs both); the object lands in
//! OUT_DIR and is embedded in the daemon.
use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tracer-ebpf");
    println!("cargo:rerun-if-changed={root}/src");
    println!("cargo:rerun-if-changed={root}/Cargo.toml");
    println!(
        "cargo:rerun-if-changed={}/../tracer-common/src",
        env!("CARGO_MANIFEST_DIR")
    );
    let package = aya_build::Package {
        name: "tracer-ebpf",
        root_dir: root,
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::Nightly)
        .context("building the eBPF programs (run `cargo xtask setup` first: it installs nightly rust-src and bpf-linker)")
}
