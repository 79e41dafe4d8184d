//! Compiles `proto/**/*.proto` without a system `protoc`: `protox` parses the
//! files into a `FileDescriptorSet`, `tonic-prost-build` generates the prost
//! messages plus tonic clients and servers from it, and the encoded set is
//! written to `OUT_DIR` for gRPC reflection.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// File name (in `OUT_DIR`) of the encoded descriptor set; `src/lib.rs` includes it.
const DESCRIPTOR_FILE: &str = "hopluu_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(format!("no .proto files under {}", proto_root.display()).into());
    }
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_source_info(true).include_imports(true);
    for file in &files {
        compiler.open_file(file)?;
    }

    fs::write(
        out_dir.join(DESCRIPTOR_FILE),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;

    Ok(())
}

/// Appends every `.proto` file under `dir` (recursively) to `out`.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
