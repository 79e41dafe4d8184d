//! The fuzz targets of `fuzz/` in the normal test run (README, "Fuzzing").
//!
//! - [`every_corpus_and_regression_input_runs_clean`]: every file under
//!   `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through
//!   its target's body (`hopluu_fuzzing`, the very code the fuzzer
//!   runs) and must return without panicking. A crash the fuzzer found is
//!   copied to `fuzz/regressions/<target>/` with its fix, and stays fixed.
//!   A crash whose fix belongs to another change is listed in
//!   `fuzz/regressions/known-failing` until then: it must still panic (so
//!   the list is cleaned up when the fix lands).
//! - [`automerge_crash_inputs_are_turned_away_and_write_no_document`]
//!   delivers the inputs that crash automerge 0.12 itself to the receiving
//!   node as a peer's batch: each is refused, held in quarantine or caught
//!   by the gate as expected, and no document is written.
//! - [`xlsx_regressions_are_refused_with_a_reason`] reads the importer's
//!   regressions (one crashed calamine in debug builds): each ends in an
//!   error that says why.
//! - [`seeds_generate_and_run_clean`]: the corpora's seeds (`seed-*` files)
//!   made from real data: the frames of real sync sessions between two
//!   stores, their automerge payloads, saved documents and sync messages on
//!   the fuzzer's fixture roster, the `deploy/` configurations and sample
//!   rosters. Run with `HOPLUU_FUZZ_WRITE_SEEDS=1` to write them into
//!   `fuzz/corpus/` (replacing the `seed-*` files there).
//!
//! The seeds are made in `sessions` (real sync sessions) and `files` (the
//! fixture roster's own payloads, configurations, rosters).

mod files;
mod sessions;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use automerge::sync::{self as am_sync, SyncDoc};
use hopluu_fuzzing::{self as fuzzing, TARGETS};
use hopluu_model::campaign::{self, NewCampaign};
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::member::{self, MemberUpdate, PrivateData};
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit};
use hopluu_model::{Author, DocId, MemberId, UnitId};
use hopluu_store::{Store, StoreOptions};
use hopluu_sync::frame::{DocHeads, Frame, Hello, Payload};
use hopluu_sync::{Limits, PROTOCOL_VERSION, Replica, Role, Session, SyncError};
use prost::Message as _;

use files::*;
use sessions::*;

/// The cargo-fuzz package.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of a corpus or regressions directory, sorted (none if it is
/// missing).
fn inputs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `fuzz/regressions/known-failing`: `<target>/<file>` per line (`#`
/// starts a comment): crashes kept in `regressions/` whose fix is not in
/// yet.
fn known_failing() -> Result<BTreeSet<String>> {
    let path = fuzz_dir().join("regressions/known-failing");
    if !path.exists() {
        return Ok(BTreeSet::new());
    }
    let text = std::fs::read_to_string(&path)?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

#[test]
fn every_corpus_and_regression_input_runs_clean() -> Result<()> {
    let known = known_failing()?;
    let mut seen = BTreeSet::new();
    let mut crashes = Vec::new();
    let mut fixed = Vec::new();
    let mut corpus_sizes = BTreeMap::new();
    for (name, body) in TARGETS {
        for kind in ["corpus", "regressions"] {
            let files = inputs(&fuzz_dir().join(kind).join(name))?;
            if kind == "corpus" {
                corpus_sizes.insert(name, files.len());
            }
            for path in files {
                let data = std::fs::read(&path)?;
                let file = path.file_name().expect("a file").to_string_lossy();
                let key = format!("{name}/{file}");
                let clean = catch_unwind(AssertUnwindSafe(|| body(&data))).is_ok();
                let listed = kind == "regressions" && known.contains(&key);
                if listed {
                    seen.insert(key.clone());
                }
                match (clean, listed) {
                    (false, false) => crashes.push(format!("fuzz/{kind}/{key}")),
                    (true, true) => fixed.push(key),
                    _ => {}
                }
            }
        }
    }
    let stale: Vec<&String> = known.difference(&seen).collect();
    ensure!(
        crashes.is_empty(),
        "these inputs crash their fuzz target (replay one with `cargo fuzz run -s none <target> <file>` \
         in fuzz/, or read the panic above): {crashes:#?}"
    );
    ensure!(
        fixed.is_empty(),
        "these known crashes are fixed: delete their lines from fuzz/regressions/known-failing \
         (the inputs stay in fuzz/regressions/): {fixed:#?}"
    );
    ensure!(
        stale.is_empty(),
        "fuzz/regressions/known-failing names inputs that are not in fuzz/regressions/: {stale:#?}"
    );
    for (name, n) in corpus_sizes {
        ensure!(n > 0, "fuzz/corpus/{name}/ is empty");
    }
    Ok(())
}

/// How the receiving node turns away a crafted automerge input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TurnedAway {
    /// Refused whole by the gate's own checks (a change without
    /// operations, op counters past 2^32, bytes that are neither changes
    /// nor a sync message): automerge never applies it.
    Refused,
    /// Refused whole after automerge panicked on it inside the gate's
    /// `guarded` (decoding or applying changes from authorised actors).
    RefusedByGuard,
    /// Changes onto the fixture roster, refused when the gate, checking
    /// after applying them that the document gained exactly the changes
    /// sent, met a panic in automerge (`save-after-change-with-altered-ops`:
    /// bytes that are not the canonical encoding of the change's ops);
    /// the roster not held lacks their dependencies, so nothing applies
    /// there.
    RefusedByGuardWhereItApplies,
    /// Changes held in quarantine by the authority check (an actor that is
    /// no node of the sender's subtree): stored aside, never applied; the
    /// other form refused.
    Held,
    /// A sync message without changes, taken; automerge panicked, inside
    /// `guarded`, generating the answer, so there is none.
    Unanswered,
}

/// The automerge inputs that crash (or corrupt documents in) automerge 0.12
/// itself, once listed in `fuzz/regressions/known-failing` (git history
/// has the notes on each), and variants from authorised actors that reach
/// automerge past the authority check: delivered to the receiving node as
/// a child's batch, none panics out of the session and none writes a
/// document.
const CRASH_AUTOMERGE: [(&str, TurnedAway); 12] = [
    ("load-incremental-unknown-actor-seq", TurnedAway::Held),
    ("load-incremental-seq-gap", TurnedAway::Held),
    (
        "load-incremental-op-counter-overflow",
        TurnedAway::RefusedByGuard,
    ),
    (
        "change-try-from-op-counter-overflow",
        TurnedAway::RefusedByGuard,
    ),
    ("saved-document-does-not-load", TurnedAway::Refused),
    ("saved-document-does-not-load-op-gap", TurnedAway::Refused),
    ("save-after-malformed-empty-change", TurnedAway::Refused),
    ("sync-message-bloom-zero-bits", TurnedAway::Refused),
    (
        "sync-message-bloom-zero-bits-no-changes",
        TurnedAway::Unanswered,
    ),
    ("authorised-unknown-actor-seq", TurnedAway::RefusedByGuard),
    ("authorised-seq-gap", TurnedAway::RefusedByGuard),
    (
        "save-after-change-with-altered-ops",
        TurnedAway::RefusedByGuardWhereItApplies,
    ),
];

#[test]
fn automerge_crash_inputs_are_turned_away_and_write_no_document() -> Result<()> {
    let dir = fuzz_dir().join("regressions/automerge_payload");
    for (name, how) in CRASH_AUTOMERGE {
        let data = std::fs::read(dir.join(name)).with_context(|| name.to_owned())?;
        let d = catch_unwind(AssertUnwindSafe(|| {
            fuzzing::deliver_automerge_payload(&data)
        }))
        .map_err(|_| anyhow::anyhow!("{name}: the delivery panicked"))?;
        ensure!(!d.docs_written, "{name}: documents written: {d:#?}");
        let updates: Vec<&DocHeads> = d.acks.iter().flat_map(|a| &a.docs).collect();
        let all_refused = updates.iter().all(|u| fuzzing::refused(&u.rejected));
        let ok = match how {
            TurnedAway::Refused => {
                all_refused && d.quarantined == 0 && !d.peer_state_written && d.caught_panics == 0
            }
            TurnedAway::RefusedByGuard => {
                all_refused && d.quarantined == 0 && !d.peer_state_written && d.caught_panics > 0
            }
            TurnedAway::RefusedByGuardWhereItApplies => {
                fuzzing::refused(&d.acks[0].docs[0].rejected)
                    && d.quarantined == 0
                    && !d.peer_state_written
                    && d.caught_panics > 0
            }
            TurnedAway::Held => {
                let (changes, sync) = (&d.acks[0].docs, &d.acks[1].docs);
                changes
                    .iter()
                    .all(|u| u.rejected.is_empty() && !u.quarantined.is_empty())
                    && sync.iter().all(|u| fuzzing::refused(&u.rejected))
                    && d.quarantined > 0
                    && d.caught_panics == 0
            }
            TurnedAway::Unanswered => {
                fuzzing::refused(&d.acks[0].docs[0].rejected)
                    && d.acks[1].docs.iter().all(|u| u.rejected.is_empty())
                    && d.quarantined == 0
                    && d.caught_panics > 0
            }
        };
        ensure!(ok, "{name}: expected {how:?}, the node did: {d:#?}");
    }
    Ok(())
}

/// The importer's regressions: each workbook is refused with an error
/// that says why, in the test profile too (calamine's overflow checks are
/// off there as in release: the root `Cargo.toml`).
#[test]
fn xlsx_regressions_are_refused_with_a_reason() -> Result<()> {
    let dir = fuzz_dir().join("regressions/import");
    for (name, says) in [
        ("calamine-column-overflow", "not a readable Excel workbook"),
        ("xlsx-cell-far-column", "beyond Excel's last row or column"),
        ("xlsx-cell-far-row", "beyond Excel's last row or column"),
    ] {
        let data = std::fs::read(dir.join(name)).with_context(|| name.to_owned())?;
        let read = catch_unwind(AssertUnwindSafe(|| {
            hopluu_sheet::read_xlsx(std::io::Cursor::new(&data))
        }))
        .map_err(|_| anyhow::anyhow!("{name}: reading the workbook panicked"))?;
        match read {
            Ok(sheet) => bail!("{name}: read as a sheet: {sheet:?}"),
            Err(e) => ensure!(e.to_string().contains(says), "{name}: {e}"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn seeds_generate_and_run_clean() -> Result<()> {
    let seeds = seeds().await?;
    for (name, _) in TARGETS {
        ensure!(seeds.iter().any(|s| s.target == name), "no seed for {name}");
    }
    for s in &seeds {
        let body = fuzzing::target(s.target).expect("a target");
        catch_unwind(AssertUnwindSafe(|| body(&s.data)))
            .map_err(|_| anyhow::anyhow!("seed {}/{} crashes", s.target, s.name))?;
    }
    if std::env::var_os("HOPLUU_FUZZ_WRITE_SEEDS").is_some() {
        write_seeds(&seeds)?;
    }
    Ok(())
}

/// One seed input.
#[derive(Debug)]
struct Seed {
    target: &'static str,
    /// The file name under `fuzz/corpus/<target>/` (always `seed-…`).
    name: String,
    data: Vec<u8>,
}

/// Replaces the `seed-*` files of every corpus (the fuzzer's own finds
/// stay): writes every seed, then deletes the seed files no longer made.
fn write_seeds(seeds: &[Seed]) -> Result<()> {
    let mut written = BTreeSet::new();
    for s in seeds {
        let dir = fuzz_dir().join("corpus").join(s.target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(&s.name);
        std::fs::write(&path, &s.data).with_context(|| format!("{}", path.display()))?;
        written.insert(path);
    }
    for (name, _) in TARGETS {
        for path in inputs(&fuzz_dir().join("corpus").join(name))? {
            let seed = path
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("seed-"));
            if seed && !written.contains(&path) {
                std::fs::remove_file(&path)?;
            }
        }
    }
    eprintln!("wrote {} seeds under {}", seeds.len(), fuzz_dir().display());
    Ok(())
}

/// Every seed, deterministic: the same bytes on every run.
async fn seeds() -> Result<Vec<Seed>> {
    let mut out = Seeds::default();
    session_seeds(&mut out).await?;
    fixture_seeds(&mut out)?;
    config_seeds(&mut out)?;
    import_seeds(&mut out)?;
    Ok(out.seeds)
}

/// Seeds, without duplicate contents per target.
#[derive(Default)]
struct Seeds {
    seeds: Vec<Seed>,
    contents: BTreeSet<(&'static str, Vec<u8>)>,
}

impl Seeds {
    fn add(&mut self, target: &'static str, name: &str, data: Vec<u8>) {
        if self.contents.insert((target, data.clone())) {
            let name: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            self.seeds.push(Seed {
                target,
                name: format!("seed-{name}"),
                data,
            });
        }
    }
}
