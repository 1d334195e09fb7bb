//! Compiles the `.proto` files with `protox` (pure Rust, so no `protoc` has
//! to be installed) and generates the Rust types with `prost-build`.
fn main() -> anyhow::Result<()> {
    let files = [
        "proto/tracer/v1/events.proto",
        "proto/tracer/v1/segment.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
