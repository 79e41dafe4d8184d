//! The fuzz targets of `fuzz/` in the normal test run (README, "Fuzzing").
//!
//! - [`every_corpus_and_regression_input_runs_clean`]: every file under
//!   `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through
//!   its target's body (`hopluu_cli::fuzzing`, the very code the fuzzer
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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use automerge::sync::{self as am_sync, SyncDoc};
use hopluu_cli::fuzzing::{self, TARGETS};
use hopluu_model::campaign::{self, NewCampaign};
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::member::{self, MemberUpdate, PrivateData};
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit};
use hopluu_model::{Author, DocId, MemberId, UnitId};
use hopluu_store::{Store, StoreOptions};
use hopluu_sync::frame::{DocHeads, Frame, Hello, Payload};
use hopluu_sync::{Limits, PROTOCOL_VERSION, Replica, Role, Session, SyncError};
use prost::Message as _;

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
            hopluu_cli::import::read_xlsx(std::io::Cursor::new(&data))
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

// ---- real sync sessions -----------------------------------------------------

const PARENT: &str = "hau-giang";
const CHILD: &str = fuzzing::FIXTURE_NODE;

fn uid(s: &str) -> UnitId {
    UnitId::parse("unit", s).expect("a unit id")
}

/// A node's author at a fixed time: the same change hashes on every run.
fn author(node: &str) -> Author {
    fuzzing::node_author(node)
}

struct Node {
    id: &'static str,
    store: Store,
}

impl Node {
    async fn open(dir: &Path, id: &'static str) -> Result<Node> {
        let url = format!("sqlite:{}/{id}.sqlite", dir.display());
        let options = StoreOptions {
            max_connections: 2,
            ..StoreOptions::default()
        };
        let store = Store::open(
            &url,
            options,
            std::sync::Arc::new(hopluu_model::SystemClock),
        )
        .await
        .with_context(|| format!("opening {url}"))?;
        Ok(Node { id, store })
    }

    fn replica(&self) -> Replica {
        Replica {
            store: self.store.clone(),
            node_id: self.id.to_owned(),
            unit: uid(self.id),
            private_depth: 1,
            limits: Limits::default(),
        }
    }

    /// Writes a unit's record as the node holding authority over it made
    /// it (every node of these fixtures hosts the unit of its name): its
    /// parent's node, `vn` for the root. The records `vn` made reached the
    /// province from there.
    async fn create_unit(
        &self,
        id: &str,
        name: &str,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<()> {
        let today = fuzzing::fixture_today();
        let decision = Decision::parse("01/QĐ-LĐLĐ", "2025-07-01", "2025-07-01", today)?;
        let new = NewUnit::parse(
            &KindCatalogue::default(),
            Some(id),
            name,
            kind,
            parent,
            decision,
        )?;
        let mut tx = self.store.begin().await?;
        let maker = author(parent.unwrap_or("vn"));
        unit::create(tx.doc(&DocId::Unit(uid(id))).await?, &maker, &new)?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a member's position in the fixture roster.
    async fn promote(&self, member: &str, position: &str) -> Result<()> {
        let upd = MemberUpdate {
            position: Some(position.to_owned()),
            ..MemberUpdate::default()
        };
        let id = MemberId::parse("member", member)?;
        let mut tx = self.store.begin().await?;
        let doc = tx.doc(&fuzzing::fixture().roster_id).await?;
        member::update(doc, &author(self.id), &id, &upd, fuzzing::fixture_today())?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets what it knew of its peers' heads (as after a restore).
    async fn forget_peers(&self) -> Result<()> {
        for table in ["peer_docs", "peers"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(self.store.pool())
                .await?;
        }
        Ok(())
    }
}

/// Runs one session between the child (dialling) and the parent until
/// nothing moves; returns every frame sent, in order.
async fn run_session(child: &Node, parent: &Node) -> Result<Vec<Frame>> {
    let mut c = Session::new(
        child.replica(),
        Role::Dialer {
            expect: parent.id.to_owned(),
        },
    );
    let mut p = Session::new(parent.replica(), Role::Acceptor);
    let mut log = Vec::new();
    let mut up: VecDeque<Frame> = VecDeque::new();
    let mut down: VecDeque<Frame> = VecDeque::new();
    let hello = c.start().await?.context("the dialer speaks first")?;
    log.push(hello.clone());
    up.push_back(hello);
    for _ in 0..1000 {
        let mut moved = false;
        loop {
            if let Some(f) = up.pop_front() {
                for r in p.handle(f).await? {
                    log.push(r.clone());
                    down.push_back(r);
                }
            } else if let Some(f) = down.pop_front() {
                for r in c.handle(f).await? {
                    log.push(r.clone());
                    up.push_back(r);
                }
            } else {
                break;
            }
            moved = true;
        }
        while let Some(b) = c.next_batch().await? {
            log.push(b.clone());
            up.push_back(b);
            moved = true;
        }
        while let Some(b) = p.next_batch().await? {
            log.push(b.clone());
            down.push_back(b);
            moved = true;
        }
        if !moved {
            c.flush().await?;
            p.flush().await?;
            return Ok(log);
        }
    }
    bail!("the sessions did not settle")
}

/// A hello the parent refuses, and its refusal.
async fn refused(parent: &Node, hello: Hello) -> Result<Frame> {
    let mut p = Session::new(parent.replica(), Role::Acceptor);
    match p.handle(Frame::Hello(hello)).await {
        Err(SyncError::Refuse(r)) => Ok(Frame::Refusal(r)),
        other => bail!("expected a refusal, got {other:?}"),
    }
}

/// Frames of real sessions between a district node (which writes the
/// fuzzer's fixture roster) and its province: first contact, a warm edit,
/// an edit the province quarantines, then concurrent edits with the heads
/// forgotten (the sync protocol), and refusals. Each frame is a
/// `sync_frame` seed; each payload an `automerge_payload` seed, and so are
/// the documents both ends hold.
async fn session_seeds(out: &mut Seeds) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("hopluu-fuzz-seeds-")
        .tempdir()?;
    let parent = Node::open(dir.path(), PARENT).await?;
    let child = Node::open(dir.path(), CHILD).await?;
    parent
        .create_unit("vn", "Tổng Liên đoàn Lao động Việt Nam", "central", None)
        .await?;
    parent
        .create_unit(PARENT, "LĐLĐ tỉnh Hậu Giang", "provincial", Some("vn"))
        .await?;
    parent
        .create_unit(CHILD, "LĐLĐ huyện Châu Thành A", "district", Some(PARENT))
        .await?;
    {
        let c = NewCampaign::parse(
            Some("c1"),
            PARENT,
            "Lao động giỏi, lao động sáng tạo",
            "Thi đua yêu nước 2025",
            "2025-01-01",
            "2025-12-31",
            PARENT,
        )?;
        let mut tx = parent.store.begin().await?;
        campaign::create(
            tx.doc(&DocId::Campaign(c.id.clone())).await?,
            &author(PARENT),
            &c,
        )?;
        tx.commit().await?;
    }
    child
        .create_unit(
            fuzzing::FIXTURE_UNIT,
            "CĐCS Trường THCS Hòa Bình",
            "grassroots",
            Some(CHILD),
        )
        .await?;
    {
        let unit = fuzzing::fixture_unit();
        let mut tx = child.store.begin().await?;
        fuzzing::write_fixture_roster(tx.doc(&fuzzing::fixture().roster_id).await?)?;
        let private = PrivateData::parse("001090012345", "Kinh", "Không")?;
        member::put_private(
            tx.doc(&member::private_doc(&unit, 0)).await?,
            &author(CHILD),
            &unit,
            0,
            &MemberId::parse("member", "m-an")?,
            &private,
        )?;
        tx.commit().await?;
    }

    let mut sessions = vec![("first", run_session(&child, &parent).await?)];
    child.promote("m-binh", "Tổ phó").await?;
    sessions.push(("warm", run_session(&child, &parent).await?));
    // An edit the district has no authority for (the province's campaign):
    // the province quarantines it and its ack names the change.
    {
        let c1 = DocId::parse("doc_id", "campaign/c1")?;
        let mut tx = child.store.begin().await?;
        campaign::close(tx.doc(&c1).await?, &author(CHILD), fuzzing::fixture_today())?;
        tx.commit().await?;
    }
    let quarantine = run_session(&child, &parent).await?;
    ensure!(
        quarantine.iter().any(
            |f| matches!(f, Frame::Ack(a) if a.docs.iter().any(|d| !d.quarantined.is_empty()))
        ),
        "the province quarantines the district's edit of its campaign"
    );
    sessions.push(("quarantine", quarantine));
    parent.promote("m-an", "Ủy viên ban chấp hành").await?;
    child.promote("m-binh", "Tổ trưởng").await?;
    parent.forget_peers().await?;
    child.forget_peers().await?;
    sessions.push(("concurrent", run_session(&child, &parent).await?));

    let hello = |unit: &str, protocol: u32| Hello {
        node_id: "hg-vi-thanh".to_owned(),
        unit: unit.to_owned(),
        protocol,
        schema: SCHEMA_VERSION,
        applied_from_you: 0,
        receipts_from_you: 0,
    };
    let refusals = vec![
        refused(&parent, hello("hg-vi-thanh", PROTOCOL_VERSION)).await?,
        refused(&parent, hello(CHILD, PROTOCOL_VERSION + 1)).await?,
    ];
    sessions.push(("refused", refusals));

    for (session, frames) in &sessions {
        for (i, f) in frames.iter().enumerate() {
            let kind = match f {
                Frame::Batch(b) if b.docs.iter().any(|d| matches!(d.payload, Payload::Sync(_))) => {
                    "batch-sync"
                }
                other => other.kind(),
            };
            let wire = hopluu_node::replication::to_pb(f.clone()).encode_to_vec();
            out.add("sync_frame", &format!("{session}-{i:02}-{kind}"), wire);
            let Frame::Batch(b) = f else { continue };
            for (j, u) in b.docs.iter().enumerate() {
                let (what, bytes) = match &u.payload {
                    Payload::Changes(c) => ("changes", c),
                    Payload::Sync(s) => ("sync", s),
                };
                let name = format!("{session}-{i:02}-{j}-{}-{what}", u.doc);
                out.add("automerge_payload", &name, bytes.clone());
                if let Payload::Sync(s) = &u.payload {
                    let msg = am_sync::Message::decode(s)?;
                    for (k, chunk) in msg.changes.iter().enumerate() {
                        out.add(
                            "automerge_payload",
                            &format!("{name}-chunk{k}"),
                            chunk.to_vec(),
                        );
                    }
                }
            }
        }
    }
    // Whole documents as stored.
    for (node, ids) in [
        (&parent, &["unit/vn", "unit/hau-giang", "campaign/c1"][..]),
        (
            &child,
            &["unit/hg-cta-thcs", "roster-private/hg-cta-thcs"][..],
        ),
    ] {
        for id in ids {
            let id = DocId::parse("doc_id", id)?;
            let bytes = node
                .store
                .doc_bytes(&id)
                .await?
                .context("a stored document")?;
            out.add("automerge_payload", &format!("saved-{id}"), bytes);
        }
    }
    parent.store.close().await;
    child.store.close().await;
    Ok(())
}

/// Payloads made against the fuzzer's fixture roster itself, so that they
/// apply to it: its save, each of its changes, an edit on top, and the
/// sync messages a peer holding that edit sends it.
fn fixture_seeds(out: &mut Seeds) -> Result<()> {
    let fixture = fuzzing::fixture();
    out.add("automerge_payload", "fixture-saved", fixture.saved.clone());
    for (i, c) in fixture.roster.get_changes(&[]).iter().enumerate() {
        out.add(
            "automerge_payload",
            &format!("fixture-change-{i}"),
            c.raw_bytes().to_vec(),
        );
    }
    let mut peer = fixture.roster.clone();
    let upd = MemberUpdate {
        position: Some("Phó chủ tịch".to_owned()),
        ..MemberUpdate::default()
    };
    member::update(
        &mut peer,
        &author("hg-vi-thanh"),
        &MemberId::parse("member", "m-binh")?,
        &upd,
        fuzzing::fixture_today(),
    )?;
    out.add(
        "automerge_payload",
        "fixture-edit-incremental",
        peer.save_after(&fixture.heads),
    );
    if let Some(c) = peer.get_last_local_change() {
        out.add(
            "automerge_payload",
            "fixture-edit-change",
            c.raw_bytes().to_vec(),
        );
    }
    // The sync protocol between the peer and a node holding the fixture.
    let mut here = fixture.roster.clone();
    let (mut peer_state, mut here_state) = (am_sync::State::new(), am_sync::State::new());
    for round in 0..6 {
        let mut moved = false;
        if let Some(m) = peer.generate_sync_message(&mut peer_state) {
            out.add(
                "automerge_payload",
                &format!("fixture-sync-{round}-peer"),
                m.clone().encode(),
            );
            here.receive_sync_message(&mut here_state, m)?;
            moved = true;
        }
        if let Some(m) = here.generate_sync_message(&mut here_state) {
            out.add(
                "automerge_payload",
                &format!("fixture-sync-{round}-here"),
                m.clone().encode(),
            );
            peer.receive_sync_message(&mut peer_state, m)?;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    ensure!(
        here.get_heads() == peer.get_heads(),
        "the fixture sync converges"
    );
    out.add(
        "automerge_payload",
        "fixture-sync-state",
        here_state.encode(),
    );
    Ok(())
}

/// The example configurations of `deploy/`.
fn config_seeds(out: &mut Seeds) -> Result<()> {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    for path in inputs(&deploy)? {
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            out.add("config", &format!("deploy-{name}"), std::fs::read(&path)?);
        }
    }
    out.add(
        "config",
        "minimal.toml",
        "[node]\nid = \"vn\"\nunit = \"vn\"\nunit_name = \"Tổng Liên đoàn\"\nunit_kind = \"central\"\n"
            .as_bytes()
            .to_vec(),
    );
    // A database password, which the configuration's Debug form must hide.
    out.add(
        "config",
        "postgres-password.toml",
        b"[node]\nid = \"vn\"\nunit = \"vn\"\n\n[database]\nurl = \"postgres://hopluu:Mat-khau.2025@db.congdoan.vn:5432/hopluu\"\nmax_connections = 32\n".to_vec(),
    );
    Ok(())
}

/// Rosters as offices keep them: the XLSX test fixture, and CSV files with
/// a title row and `;`, with a BOM, quotes, CRLF and Excel's leading-zero
/// tricks, and tab-separated with English headers.
fn import_seeds(out: &mut Seeds) -> Result<()> {
    let xlsx =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/cli/tests/fixtures/members.xlsx");
    out.add("import", "members.xlsx", std::fs::read(&xlsx)?);
    let small = small_xlsx();
    let sheet = hopluu_cli::import::read_xlsx(std::io::Cursor::new(&small))?;
    ensure!(
        sheet.rows.len() == 2
            && sheet.rows[0].values.values().any(|v| v == "1990-03-15")
            && sheet.rows[1].values.values().any(|v| v == "001090012346"),
        "the small workbook reads as written: {sheet:?}"
    );
    out.add("import", "small.xlsx", small);
    out.add(
        "import",
        "title-semicolon.csv",
        "DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN CƠ SỞ TRƯỜNG THCS HOÀ BÌNH\n\
         STT;Mã đơn vị;Họ và tên;Ngày sinh;Giới tính;Số thẻ đoàn viên;Ngày vào công đoàn;Chức vụ;Số CCCD;Dân tộc;Tôn giáo\n\
         1;CD0101;Nguyễn Văn An;15/03/1990;Nam;HB-0001;01/05/2015;Tổ trưởng;001090012345;Kinh;Không\n\
         2;CD0101;Trần Thị Bình;2.11.1985;Nữ;HB-0002;05-09-2008;Giáo viên;;Tày;\n\
         \n\
         3\n"
            .as_bytes()
            .to_vec(),
    );
    out.add(
        "import",
        "bom-quoted-crlf.csv",
        "\u{feff}\"Họ và tên (*)\",\"Ngày tháng năm sinh\",\"GIỚI TÍNH\",\"Số thẻ\",\"Ngày kết nạp\",\"CMND/CCCD\",\"Ghi chú\"\r\n\
         \"Lò Văn Cường\",1979-01-20,nam,'0003,1/4/2001 08:00,=\"079079001234\",\"chuyển đến, 2020\"\r\n\
         \"Hà Thị \"\"Duyên\"\"\",20/01/1992,F,=\"0004\",30.04.2012,,\r\n\
         \r\n\
         \"Họ và tên (*)\",\"Ngày tháng năm sinh\",\"GIỚI TÍNH\",\"Số thẻ\",\"Ngày kết nạp\",\"CMND/CCCD\",\"Ghi chú\"\r\n\
         \"Vừ A Dính\",1988-07-07,Khác,HB-0005,2010-10-10,001088000777,\"dòng\r\nhai\"\r\n"
            .as_bytes()
            .to_vec(),
    );
    out.add(
        "import",
        "tab-english.csv",
        b"unit_id\tfull_name\tbirth_date\tgender\tcard_number\tjoined_on\tposition\tnational_id\tethnicity\treligion\n\
          hg-cta-thcs\tNguyen Van An\t1990-03-15\tmale\tHB-0001\t2015-05-01\tTo truong\t001090012345\tKinh\t\n\
          hg-cta-thcs\tTran Thi Binh\t1985-11-02\tfemale\tHB-0002\t2008-09-05\t\t\t\tPhat giao\n"
            .to_vec(),
    );
    Ok(())
}

/// A small roster workbook (about 2 KB, stored without compression), so
/// that the fuzzer's XLSX mutants stay small enough to keep in the corpus:
/// shared strings, date cells with a date format, a CCCD stored as a number
/// (its leading zero lost), a title row above the header.
fn small_xlsx() -> Vec<u8> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let strings = [
        "DANH SÁCH ĐOÀN VIÊN",
        "Họ và tên",
        "Ngày sinh",
        "Giới tính",
        "Số thẻ đoàn viên",
        "Ngày vào công đoàn",
        "Số CCCD",
        "Nguyễn Văn An",
        "Nam",
        "HB-0001",
        "Trần Thị Bình",
        "Nữ",
        "HB-0002",
        "05/09/2008",
    ];
    let sst: String = strings
        .iter()
        .map(|s| format!("<si><t>{s}</t></si>"))
        .collect();
    let s = |cell: &str, i: usize| format!(r#"<c r="{cell}" t="s"><v>{i}</v></c>"#);
    let n = |cell: &str, v: &str, style: &str| format!(r#"<c r="{cell}"{style}><v>{v}</v></c>"#);
    let date = r#" s="1""#;
    let row = |r: usize, cells: &[String]| format!(r#"<row r="{r}">{}</row>"#, cells.concat());
    let rows = [
        row(1, &[s("A1", 0)]),
        row(
            2,
            &[
                s("A2", 1),
                s("B2", 2),
                s("C2", 3),
                s("D2", 4),
                s("E2", 5),
                s("F2", 6),
            ],
        ),
        row(
            3,
            &[
                s("A3", 7),
                n("B3", "32947", date),
                s("C3", 8),
                s("D3", 9),
                n("E3", "42125", date),
                n("F3", "1090012345", ""),
            ],
        ),
        row(
            4,
            &[
                s("A4", 10),
                n("B4", "31353", ""),
                s("C4", 11),
                s("D4", 12),
                s("E4", 13),
                n("F4", "1090012346", ""),
            ],
        ),
    ];
    let parts = [
        (
            "[Content_Types].xml",
            r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            format!(
                r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets><sheet name="Đoàn viên" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{REL}/styles" Target="styles.xml"/><Relationship Id="rId3" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/styles.xml",
            format!(
                r#"<styleSheet xmlns="{MAIN}"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>"#
            ),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!(r#"<worksheet xmlns="{MAIN}"><sheetData>{}</sheetData></worksheet>"#, rows.concat()),
        ),
        ("xl/sharedStrings.xml", format!(r#"<sst xmlns="{MAIN}">{sst}</sst>"#)),
    ];
    stored_zip(&parts)
}

/// A zip archive of `files`, stored (no compression).
fn stored_zip(files: &[(&str, String)]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let (name, data) = (name.as_bytes(), data.as_bytes());
        let offset = u32::try_from(out.len()).expect("a small archive");
        let size = u32::try_from(data.len()).expect("a small file");
        let name_len = u16::try_from(name.len()).expect("a short name");
        let crc = crc32(data);
        // Version 2.0, no flags, stored, 1980-01-01 00:00, sizes, name.
        let fields = |v: &mut Vec<u8>| {
            for x in [20u16, 0, 0, 0, 0x21] {
                v.extend(x.to_le_bytes());
            }
            for x in [crc, size, size] {
                v.extend(x.to_le_bytes());
            }
            v.extend(name_len.to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra field
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        fields(&mut out);
        out.extend(name);
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // made by
        fields(&mut central);
        central.extend([0u8; 10]); // comment, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name);
    }
    let start = u32::try_from(out.len()).expect("a small archive");
    let len = u32::try_from(central.len()).expect("a small archive");
    let count = u16::try_from(files.len()).expect("a few files");
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // disk numbers
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(start.to_le_bytes());
    out.extend(0u16.to_le_bytes()); // comment
    out
}
