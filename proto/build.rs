//! Compiles `breach/v1/breach.proto` with protox (pure Rust; no `protoc`
//! needed), generates prost messages and tonic client/server code, and
//! writes the encoded `FileDescriptorSet` (with source comments) to
//! `OUT_DIR/breach_v1_descriptor.bin` for gRPC server reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "breach/v1/breach.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["."])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("breach_v1_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
