// Compiles proto/miroir.proto. madsim-tonic-build emits code that builds both for real (tonic) and
// under `--cfg madsim` (simulated transport), so one proto serves production and simulation.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protoc is not a system dependency: the vendored binary keeps a fresh machine buildable.
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    println!("cargo:rerun-if-changed=proto/miroir.proto");
    tonic_build::configure().compile_protos(&["proto/miroir.proto"], &["proto"])?;
    Ok(())
}
