//! The house's rules, checked over the source tree so that they stay true:
//! the gRPC layer never reaches the store, the layers below the node read
//! time only from the injected clock, the node's modules depend one way,
//! and no source file grows past what a reader can hold.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file below `dir` (relative to the workspace root).
fn sources(dir: &str) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path)?;
                out.push((path, text));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The lines of `text` that are code (not comments) and contain `needle`.
fn code_lines<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("//") && l.contains(needle)
        })
        .collect()
}

fn short(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn no_grpc_module_reaches_the_store() -> Result<()> {
    let mut found = Vec::new();
    for dir in ["crates/node/src/grpc", "crates/node/src/convert"] {
        for (path, text) in sources(dir)? {
            for needle in [".store()", "hopluu_store::Store", ".begin().await"] {
                for line in code_lines(&text, needle) {
                    found.push(format!("{}: {}", short(&path), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the store reached past App:\n{}",
        found.join("\n")
    );
    Ok(())
}

#[test]
fn store_sync_and_node_read_time_only_from_the_injected_clock() -> Result<()> {
    let mut found = Vec::new();
    // The node reads the wall clock only for certificates' validity (a
    // certificate expires in real time, whatever a test clock says).
    for (dir, needles) in [
        ("crates/store/src", &["SystemClock", "SystemTime::now"][..]),
        ("crates/sync/src", &["SystemClock", "SystemTime::now"][..]),
        ("crates/node/src", &["SystemClock"][..]),
    ] {
        for (path, text) in sources(dir)? {
            for needle in needles {
                for line in code_lines(&text, needle) {
                    found.push(format!("{}: {}", short(&path), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "time read behind the clock:\n{}",
        found.join("\n")
    );
    Ok(())
}

/// `grpc` -> `replication` -> `convert`, `edge`; `app` knows no transport.
#[test]
fn node_modules_depend_one_way() -> Result<()> {
    let rules: [(&str, &[&str]); 5] = [
        (
            "crates/node/src/app",
            &[
                "crate::grpc",
                "crate::convert",
                "crate::replication",
                "crate::server",
                "tonic",
                "hopluu_proto",
            ],
        ),
        (
            "crates/node/src/check",
            &[
                "crate::grpc",
                "crate::convert",
                "crate::replication",
                "crate::server",
                "tonic",
            ],
        ),
        (
            "crates/node/src/convert",
            &["crate::grpc", "crate::replication", "crate::server"],
        ),
        (
            "crates/node/src/replication",
            &["crate::grpc", "crate::server"],
        ),
        ("crates/node/src/grpc", &["crate::server", "crate::metrics"]),
    ];
    let mut found = Vec::new();
    for (dir, banned) in rules {
        for (path, text) in sources(dir)? {
            for b in banned {
                for line in code_lines(&text, b) {
                    found.push(format!("{} uses {b}: {}", short(&path), line.trim()));
                }
            }
        }
    }
    let edge = std::fs::read_to_string(root().join("crates/node/src/edge.rs"))?;
    for b in ["crate::"] {
        for line in code_lines(&edge, b) {
            found.push(format!("edge.rs uses {b}: {}", line.trim()));
        }
    }
    assert!(
        found.is_empty(),
        "a module imports against the layers:\n{}",
        found.join("\n")
    );
    Ok(())
}

/// No source file over 1,000 lines; at most three over 800, each saying
/// near its top why it stays large (the words "over 800 lines").
#[test]
fn no_source_file_outgrows_a_reader() -> Result<()> {
    let mut over_limit = Vec::new();
    let mut large = Vec::new();
    for dir in ["crates", "tests", "fuzz/fuzz_targets"] {
        for (path, text) in sources(dir)? {
            let n = text.lines().count();
            if n > 1000 {
                over_limit.push(format!("{} ({n} lines)", short(&path)));
            } else if n > 800 {
                let says_why = text.lines().take(30).any(|l| l.contains("over 800 lines"));
                large.push((short(&path), n, says_why));
            }
        }
    }
    assert!(over_limit.is_empty(), "over 1,000 lines: {over_limit:?}");
    assert!(
        large.len() <= 3,
        "more than three files over 800 lines: {large:?}"
    );
    let silent: Vec<_> = large.iter().filter(|(_, _, why)| !why).collect();
    assert!(
        silent.is_empty(),
        "over 800 lines without saying why: {silent:?}"
    );
    Ok(())
}
