//! Compiles the `.proto` files with `protox` (pure Rust, so no `protoc` has
//! to be installed) and generates the messages and the gRPC service with
//! tonic-prost-build. The descriptor set is kept for server reflection.
fn main() -> anyhow::Result<()> {
    let files = [
        "proto/tracer/v1/events.proto",
        "proto/tracer/v1/segment.proto",
        "proto/tracer/v1/service.proto",
        "proto/tracer/v1/bundle.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tracer_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
