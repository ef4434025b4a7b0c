//! Compiles `breach/v1/breach.proto` with protox (pure Rust; no `protoc`
//! needed) and generates prost messages and tonic client/server code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "breach/v1/breach.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
