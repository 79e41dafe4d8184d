//! Attacks on a federation over real mutual TLS on loopback, end to end:
//! real nodes ([`Federation`]) and a rogue child ([`Rogue`]) that holds a
//! valid node certificate and speaks the sync stream by hand. Each attack
//! gets a clear answer (a refusal code, an update rejected or quarantined
//! in the acknowledgement, an entry the AdminService lists), nothing
//! panics (every session answers or ends; every node stops cleanly),
//! nothing is written where it must not be (feed, documents, heads and
//! projection rows compared before and after), and the nodes go on serving
//! clients and their honest peers.
//!
//! The tree ([`Tree`]):
//!
//! ```text
//! vn (central)
//! ├── hau-giang (provincial)
//! │   ├── hg-chau-thanh (district)  ── grassroots hg-chau-thanh-g1
//! │   └── hg-vi-thanh (district)    ── grassroots hg-vi-thanh-g1
//! └── lai-chau (provincial; no node)
//! ```
//!
//! `vn` and `hau-giang` always run; a district runs a node only where a
//! test needs an honest peer or a real writer. The rogue is a configured
//! child of `hau-giang` with no real node behind its identity (a node has
//! one session at a time: a real node would take it back).
//!
//! Covered elsewhere over TLS with a real node, and not repeated here:
//! valid protobuf that says nothing or says it wrongly, and a frame over
//! the message size limit (`crates/node/tests/it/attacks.rs`); handshakes
//! without a trusted certificate, hellos with an identity that is not the
//! certificate's or not a configured child (`identity`, `unknown-peer`,
//! `unknown-unit`) at a lone node, and the dialer checking its upstream
//! (`crates/node/tests/it/tls.rs`); the hello flood's rate limit at a lone
//! node (`a_flood_of_hellos_is_bounded`, which here is checked again
//! against honest peers that keep syncing). The gate's rules session by
//! session (dependents of held changes, release and discard, limits, the
//! skeleton actor, inputs that crash automerge) and the driver's timeouts
//! are in `crates/sync/tests/it/gate.rs` and `drive.rs`.
//!
//! # Layout
//! The tests are here; `fixture` holds the tree, the observations and the
//! forging, `raw` a sync stream of raw bytes.

mod fixture;
mod raw;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use automerge::ActorId;
use hopluu_devcluster::federation::Federation;
use hopluu_devcluster::pki::Caller;
use hopluu_model::{Author, DocId, UnitId};
use hopluu_proto::v1 as pb;
use hopluu_tests::rogue::{self, End, Rogue};
use prost::Message;

use fixture::*;
use raw::*;

// -------------------------------------------------------------------- tests

/// Bytes that are not a `SyncFrame` (garbage, a frame cut in the middle, a
/// field of the wrong wire type), after a hello and as the first message:
/// the parent's decoder fails, the peer gets a `protocol` refusal naming
/// the decoding error, the session ends (no panic, no hang), the edge
/// names the error, nothing is written, and the parent goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_on_the_stream_ends_the_session() -> Result<()> {
    let tree = Tree::start(&[]).await?;
    let hg = tree.node(HG);
    let before = Snapshot::of(hg).await?;
    let hello = rogue::hello(CT, CT).encode_to_vec();
    let mut cut_batch = rogue::batch(
        7,
        vec![rogue::changes(
            &roster(&grassroots(CT)),
            vec![vec![9; 32]],
            vec![1; 64],
        )],
    )
    .encode_to_vec();
    cut_batch.truncate(cut_batch.len() / 2);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("garbage", vec![0xff; 12], "invalid varint"),
        ("a batch cut in half", cut_batch, "buffer underflow"),
        // Field 3 (batch), which is a message, sent as a varint.
        ("a wrong wire type", vec![0x18, 0x01], "invalid wire type"),
    ];
    for (i, (what, bytes, says)) in cases.into_iter().enumerate() {
        let channel = tree.channel_as_node(HG, CT).await?;
        let (send, mut inbound) = raw_stream(channel, hello.clone()).await?;
        match tokio::time::timeout(LIMIT, inbound.message()).await {
            Ok(Ok(Some(pb::SyncFrame {
                body: Some(pb::sync_frame::Body::Hello(h)),
            }))) => ensure!(h.node_id == HG),
            other => bail!("{what}: expected the province's hello, got {other:?}"),
        }
        send.send(bytes).await?;
        // The peer is told why before its session ends.
        let end = raw_end(&mut inbound).await?;
        ensure!(
            matches!(&end, End::Refused(r) if r.code == "protocol" && r.reason.contains(says)),
            "{what}: {end:?}"
        );
        let sessions = i as u64 + 1;
        let mut seen = None;
        Federation::until(&format!("{what}: the edge says why"), LIMIT, || {
            seen = edge(hg, CT);
            let e = seen.clone();
            async move {
                Ok(e.is_some_and(|e| {
                    !e.connected && e.sessions == sessions && e.last_error.contains(says)
                }))
            }
        })
        .await
        .with_context(|| format!("edge: {seen:?}"))?;
        let e = seen.expect("seen");
        ensure!(
            e.last_error.contains("failed to decode Protobuf message"),
            "{what}: {}",
            e.last_error
        );
        println!("{what}: {}", e.last_error);
    }
    // Garbage before any hello: refused too, with no session.
    let channel = tree.channel_as_node(HG, CT).await?;
    let (_send, mut inbound) = raw_stream(channel, vec![0xff; 12]).await?;
    let end = raw_end(&mut inbound).await?;
    ensure!(
        matches!(&end, End::Refused(r) if r.code == "protocol"),
        "{end:?}"
    );

    unchanged(hg, &before).await?;
    ensure!(quarantine(hg).await?.is_empty());
    serving(hg).await?;
    // An honest session of the same child still works.
    let mut r = tree.rogue(HG, CT).await?;
    let (own, h) = edit(hg, &roster(&grassroots(CT)), actor(CT)?, "after").await?;
    let ack = r.batch(vec![own]).await?;
    ensure!(ack.docs[0].heads == hash_bytes(&[h]), "{ack:?}");
    tree.shutdown().await
}

/// Automerge bytes truncated, with a flipped byte, not automerge at all,
/// and as sync messages, in one batch to the district's own roster: each
/// update rejected as `undecodable`, none quarantined, nothing written;
/// the same session then applies a good change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_automerge_in_a_batch_is_rejected_and_writes_nothing() -> Result<()> {
    let tree = Tree::start(&[]).await?;
    let hg = tree.node(HG);
    let doc = roster(&grassroots(CT));
    let (own, h) = edit(hg, &doc, actor(CT)?, "a correction").await?;
    let good = payload_of(&own);
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    use pb::doc_update::Payload;
    let cases = [
        Payload::Changes(good[..good.len() / 2].to_vec()),
        Payload::Changes(good[..7].to_vec()),
        Payload::Changes(flipped),
        Payload::Changes(b"not automerge at all".to_vec()),
        Payload::Sync(vec![0x42, 1, 2, 3]),
        Payload::Sync(good[..good.len() / 2].to_vec()),
    ];
    let before = Snapshot::of(hg).await?;
    let vn_before = Snapshot::of(tree.node(VN)).await?;
    let mut r = tree.rogue(HG, CT).await?;
    let n = cases.len();
    let docs = cases
        .into_iter()
        .map(|p| pb::DocUpdate {
            payload: Some(p),
            ..own.clone()
        })
        .collect();
    let ack = r.batch(docs).await?;
    ensure!(ack.docs.len() == n, "{ack:?}");
    for d in &ack.docs {
        ensure!(d.rejected.starts_with("undecodable"), "{d:?}");
        ensure!(d.quarantined.is_empty(), "{d:?}");
    }
    unchanged(hg, &before).await?;
    ensure!(quarantine(hg).await?.is_empty());
    serving(hg).await?;
    // The session goes on: the good change applies, once.
    let ack = r.batch(vec![own]).await?;
    ensure!(ack.docs[0].heads == hash_bytes(&[h]), "{ack:?}");
    ensure!(ack.docs[0].rejected.is_empty(), "{ack:?}");
    let after = Snapshot::of(hg).await?;
    ensure!(after.feed == before.feed + 1);
    ensure!(after.without(&doc) == before.without(&doc));
    // Only the good change travels on.
    Federation::until("the good change reaches vn", LIMIT, || async {
        Ok(heads(tree.node(VN), &doc).await? == Some(vec![h]))
    })
    .await?;
    ensure!(Snapshot::of(tree.node(VN)).await?.without(&doc) == vn_before.without(&doc));
    tree.shutdown().await
}

/// A district sends changes to its own roster under forged makers: its
/// sibling's actor, its parent's, an actor naming no node, and one naming
/// a node of a unit nobody knows. All four are quarantined at the
/// province with their own codes (listed by the AdminService), the roster
/// is untouched there and nothing reaches the national node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_actors_are_quarantined() -> Result<()> {
    let tree = Tree::start(&[]).await?;
    let (hg, vn) = (tree.node(HG), tree.node(VN));
    let doc = roster(&grassroots(CT));
    let ghost = Author::actor_for("ghost-node", &UnitId::parse("unit", "khong-co")?, b"x");
    let makers: [(&str, ActorId, &str); 4] = [
        ("the sibling's actor", actor(VT)?, "outside-sender"),
        ("the parent's actor", actor(HG)?, "outside-sender"),
        (
            "an actor naming no node",
            ActorId::from(vec![7u8; 16]),
            "unknown-actor",
        ),
        ("an actor of an unknown unit", ghost, "unknown-unit"),
    ];
    let mut updates = Vec::new();
    let mut expected = Vec::new();
    for (what, by, code) in makers {
        let (u, h) = edit(hg, &doc, by, what).await?;
        updates.push(u);
        expected.push((h, code, what));
    }
    let before = Snapshot::of(hg).await?;
    let vn_before = Snapshot::of(vn).await?;
    let mut r = tree.rogue(HG, CT).await?;
    let ack = r.batch(updates).await?;
    ensure!(ack.docs.len() == expected.len(), "{ack:?}");
    // Each update is answered (all four are to one document: their
    // entries are told apart by the hashes they hold).
    let mut held_in_ack: Vec<Vec<u8>> = Vec::new();
    for d in &ack.docs {
        ensure!(d.doc_id == doc && d.rejected.is_empty(), "{d:?}");
        ensure!(d.quarantined.len() == 1, "{d:?}");
        held_in_ack.extend(d.quarantined.iter().cloned());
    }
    let mut want: Vec<Vec<u8>> = expected.iter().map(|(h, _, _)| h.0.to_vec()).collect();
    held_in_ack.sort();
    want.sort();
    ensure!(held_in_ack == want, "{ack:?}");
    let held = quarantine(hg).await?;
    ensure!(held.len() == expected.len(), "{held:#?}");
    for (h, code, what) in &expected {
        let e = held
            .iter()
            .find(|e| e.hash == h.to_string())
            .with_context(|| format!("{what}: no entry for {h}"))?;
        ensure!(e.code == *code, "{what}: {e:?}");
        ensure!(e.doc_id == doc && e.peer_node == CT, "{what}: {e:?}");
        ensure!(e.state == pb::QuarantineState::Held as i32, "{what}: {e:?}");
        ensure!(!e.reason.is_empty(), "{what}: {e:?}");
    }
    let sibling = held.iter().find(|e| e.hash == expected[0].0.to_string());
    ensure!(sibling.is_some_and(|e| e.origin_node == VT), "{sibling:?}");
    unchanged(hg, &before).await?;
    serving(hg).await?;
    // Nothing was relayed: the national node holds nothing new and no
    // entry of its own.
    unchanged(vn, &vn_before).await?;
    ensure!(quarantine(vn).await?.is_empty());
    tree.converged().await?;
    tree.shutdown().await
}

/// A configured district, with its own valid certificate, says hello as
/// its sibling (which is connected), as its parent, and as itself with the
/// sibling's unit: each refused with `identity` before any session begins,
/// so the sibling's session is not disturbed and keeps syncing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_claiming_another_nodes_identity_is_refused() -> Result<()> {
    let tree = Tree::start(&[VT]).await?;
    let hg = tree.node(HG);
    Federation::until("the sibling's session is up", LIMIT, || async {
        Ok(edge(hg, VT).is_some_and(|e| e.connected))
    })
    .await?;
    let sibling = edge(hg, VT).expect("seen");
    let before = Snapshot::of(hg).await?;
    for (node, unit) in [(VT, VT), (HG, HG), (CT, VT)] {
        let channel = tree.channel_as_node(HG, CT).await?;
        let mut r = Rogue::open(channel, rogue::hello(node, unit)).await?;
        let refusal = r.refusal().await?;
        ensure!(refusal.code == "identity", "claiming {node}: {refusal:?}");
        ensure!(
            refusal.reason.contains(CT) && refusal.reason.contains(node),
            "claiming {node}: {}",
            refusal.reason
        );
    }
    let now = edge(hg, VT).expect("seen");
    ensure!(
        now.connected && now.sessions == sibling.sessions,
        "the sibling's session was disturbed: {sibling:?} -> {now:?}"
    );
    ensure!(edge(hg, CT).is_none(), "a session began for the liar");
    unchanged(hg, &before).await?;
    serving(hg).await?;
    write_flows(&tree, VT, &grassroots(VT), &[HG, VN], "VT-AFTER-1").await?;
    tree.converged().await?;
    tree.shutdown().await
}

/// The same batch sent again in the same session and in a later one is
/// acknowledged with the same heads (nothing rejected, nothing held), and
/// the change enters the feeds once: at the province, and relayed to the
/// national node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_batches_are_acknowledged_and_write_nothing_new() -> Result<()> {
    let tree = Tree::start(&[]).await?;
    let (hg, vn) = (tree.node(HG), tree.node(VN));
    let doc = roster(&grassroots(CT));
    let (own, h) = edit(hg, &doc, actor(CT)?, "once").await?;
    let (before, vn_before) = (Snapshot::of(hg).await?, Snapshot::of(vn).await?);
    let mut r = tree.rogue(HG, CT).await?;
    let first = r.batch(vec![own.clone()]).await?;
    ensure!(first.docs[0].heads == hash_bytes(&[h]), "{first:?}");
    let applied = Snapshot::of(hg).await?;
    ensure!(applied.feed == before.feed + 1);
    Federation::until("the change reaches vn", LIMIT, || async {
        Ok(heads(vn, &doc).await? == Some(vec![h]))
    })
    .await?;
    let vn_applied = Snapshot::of(vn).await?;
    ensure!(vn_applied.feed == vn_before.feed + 1);

    let again = r.batch(vec![own.clone()]).await?;
    let mut later = tree.rogue(HG, CT).await?;
    let replayed = later.batch(vec![own.clone(), own]).await?;
    for d in again.docs.iter().chain(&replayed.docs) {
        ensure!(d.heads == hash_bytes(&[h]), "{d:?}");
        ensure!(d.rejected.is_empty() && d.quarantined.is_empty(), "{d:?}");
    }
    unchanged(hg, &applied).await?;
    ensure!(quarantine(hg).await?.is_empty());
    serving(hg).await?;
    tree.converged().await?;
    unchanged(vn, &vn_applied).await?;
    tree.shutdown().await
}

/// A child opens session after session: each ends the one before, and
/// past the per-minute limit it is refused with `limit`. Meanwhile its
/// honest sibling's session is never touched and its writes reach the
/// province and the national node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_hellos_leaves_honest_peers_syncing() -> Result<()> {
    let tree = Tree::start(&[VT]).await?;
    let hg = tree.node(HG);
    Federation::until("the sibling's session is up", LIMIT, || async {
        Ok(edge(hg, VT).is_some_and(|e| e.connected))
    })
    .await?;
    let sibling = edge(hg, VT).expect("seen");
    let channel = tree.channel_as_node(HG, CT).await?;
    let limit = hopluu_node::replication::SESSIONS_PER_MINUTE;
    let mut previous: Option<Rogue> = None;
    let mut refused = None;
    let started = Instant::now();
    for i in 0..limit + 5 {
        if i == limit / 2 {
            // An honest write in the middle of the flood.
            let g = grassroots(VT);
            add_member(tree.node(VT), &g, "Lê Thị Hoa", "VT-FLOOD-1", None).await?;
        }
        let mut r = Rogue::open(channel.clone(), rogue::hello(CT, CT)).await?;
        match r.next().await? {
            Some(pb::SyncFrame {
                body: Some(pb::sync_frame::Body::Hello(_)),
            }) => {
                if let Some(mut p) = previous.take() {
                    // One session per node: the newer one ended it.
                    let end = p.end().await?;
                    ensure!(matches!(end, End::Closed), "session {}: {end:?}", i - 1);
                }
                previous = Some(r);
            }
            Some(pb::SyncFrame {
                body: Some(pb::sync_frame::Body::Refusal(refusal)),
            }) => {
                ensure!(refusal.code == "limit", "{refusal:?}");
                ensure!(refusal.reason.contains(CT), "{}", refusal.reason);
                refused = Some(i);
                break;
            }
            other => bail!("session {i}: {other:?}"),
        }
    }
    println!(
        "{:?} sessions in {:?}, refused from {refused:?}",
        refused,
        started.elapsed()
    );
    ensure!(
        refused == Some(limit),
        "refused at {refused:?}, limit {limit}"
    );
    serving(hg).await?;
    let doc = roster(&grassroots(VT));
    let want = heads(tree.node(VT), &doc).await?;
    for n in [HG, VN] {
        Federation::until(
            &format!("the sibling's write reaches {n}"),
            LIMIT,
            || async { Ok(heads(tree.node(n), &doc).await? == want) },
        )
        .await?;
    }
    let now = edge(hg, VT).expect("seen");
    ensure!(
        now.connected && now.sessions == sibling.sessions,
        "the sibling's session was disturbed: {sibling:?} -> {now:?}"
    );
    tree.converged().await?;
    tree.shutdown().await
}

/// A slowloris: a child says hello and keeps sending (empty batches, ten
/// a second) but never reads, over a connection whose receive window is
/// 1 KiB, so the province's frames back up. The province stops reading it
/// in turn and drops it with a clear error within its timeouts; meanwhile
/// it answers clients and its honest child's writes flow up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_dropped_while_others_are_served() -> Result<()> {
    let tree = Tree::start(&[VT]).await?;
    let hg = tree.node(HG);
    let before = Snapshot::of(hg).await?;
    let channel = tree
        .fed
        .pki()?
        .endpoint(hg.addr, &Caller::node(CT, CT))?
        .initial_stream_window_size(1024)
        .connect()
        .await?;
    let slowloris = Rogue::open(channel, rogue::hello(CT, CT)).await?;
    let send = slowloris.sender();
    let writer = tokio::spawn(async move {
        let mut id = 1;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if send.send(rogue::batch(id, Vec::new())).await.is_err() {
                return id;
            }
            id += 1;
        }
    });
    let started = Instant::now();
    Federation::until("the slowloris's session begins", LIMIT, || async {
        Ok(edge(hg, CT).is_some_and(|e| e.connected))
    })
    .await?;
    // While it holds its session: clients and the honest child are served.
    serving(hg).await?;
    write_flows(&tree, VT, &grassroots(VT), &[HG, VN], "VT-SLOW-1").await?;
    let mut seen = None;
    Federation::until(
        "the province drops the peer that never reads",
        Duration::from_secs(180),
        || {
            seen = edge(hg, CT);
            let e = seen.clone();
            async move { Ok(e.is_some_and(|e| !e.connected)) }
        },
    )
    .await
    .with_context(|| format!("edge: {seen:?}"))?;
    let e = seen.expect("seen");
    println!(
        "slowloris dropped after {:?}: {}",
        started.elapsed(),
        e.last_error
    );
    ensure!(
        e.last_error
            .contains(&format!("read nothing for {STALL_SECS} s"))
            || e.last_error.contains("acknowledgement timeouts"),
        "{}",
        e.last_error
    );
    writer.abort();
    drop(slowloris);
    serving(hg).await?;
    // It wrote nothing: what changed is the honest child's roster only.
    let doc = roster(&grassroots(VT));
    ensure!(Snapshot::of(hg).await?.without(&doc) == before.without(&doc));
    ensure!(quarantine(hg).await?.is_empty());
    write_flows(&tree, VT, &grassroots(VT), &[HG, VN], "VT-SLOW-2").await?;
    tree.converged().await?;
    tree.shutdown().await
}

/// A district with a valid certificate writes its parent's campaign, its
/// sibling's roster and another province's award (beside a correction to
/// its own roster): the three are quarantined at the first hop (the
/// province), the fourth applied and relayed. Sent again, they are
/// recognised and not stored twice. Then the relay is forged: with the
/// province's certificate, the same district-made changes go straight to
/// the national node, which quarantines them too (the maker is checked at
/// every hop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_outside_the_subtree_are_quarantined_at_the_first_hop_and_at_national() -> Result<()>
{
    let tree = Tree::start(&[]).await?;
    let (hg, vn) = (tree.node(HG), tree.node(VN));
    let by = actor(CT)?;
    let award = "award/lc-2026-001";
    let (to_campaign, h1) = edit(hg, &campaign_doc(), by.clone(), "ours now").await?;
    let (to_sibling, h2) = edit(hg, &roster(&grassroots(VT)), by.clone(), "ours now").await?;
    let (to_award, h3) = forge(award, LC, by.clone())?;
    let own_doc = roster(&grassroots(CT));
    let (own, h4) = edit(hg, &own_doc, by, "a correction").await?;
    let targets = [campaign_doc(), roster(&grassroots(VT)), award.to_owned()];
    // Each change with the code it is held under at the province: the
    // other province's unit record is held there too (a child of the
    // national unit, above it), so the award is not-authorised as well.
    let expected = [
        (targets[0].as_str(), h1, "not-authorised"),
        (targets[1].as_str(), h2, "not-authorised"),
        (award, h3, "not-authorised"),
    ];
    let (before, vn_before) = (Snapshot::of(hg).await?, Snapshot::of(vn).await?);

    let mut r = tree.rogue(HG, CT).await?;
    let attack = vec![to_campaign, to_sibling, to_award];
    let mut batch = attack.clone();
    batch.push(own);
    let ack = r.batch(batch).await?;
    for (doc, h, _) in &expected {
        let d = acked(&ack, doc)?;
        ensure!(d.quarantined == hash_bytes(&[*h]), "{doc}: {d:?}");
        ensure!(d.rejected.is_empty(), "{doc}: {d:?}");
    }
    let d = acked(&ack, &own_doc)?;
    ensure!(
        d.heads == hash_bytes(&[h4]) && d.quarantined.is_empty(),
        "{d:?}"
    );
    let held = quarantine(hg).await?;
    ensure!(held.len() == 3, "{held:#?}");
    for (doc, h, code) in &expected {
        let e = held
            .iter()
            .find(|e| e.doc_id == *doc)
            .with_context(|| format!("no entry for {doc}: {held:#?}"))?;
        ensure!(e.hash == h.to_string(), "{e:?}");
        ensure!(e.code == *code, "{doc}: {e:?}");
        ensure!(e.origin_node == CT && e.peer_node == CT, "{e:?}");
        ensure!(e.state == pb::QuarantineState::Held as i32, "{e:?}");
    }
    let after = Snapshot::of(hg).await?;
    ensure!(
        after.feed == before.feed + 1,
        "only the own roster enters the feed"
    );
    ensure!(
        after.without(&own_doc) == before.without(&own_doc),
        "{}",
        difference(&before.without(&own_doc), &after.without(&own_doc))
    );
    // The own correction reaches the national node; nothing else does.
    Federation::until("the own correction reaches vn", LIMIT, || async {
        Ok(heads(vn, &own_doc).await? == Some(vec![h4]))
    })
    .await?;
    ensure!(Snapshot::of(vn).await?.without(&own_doc) == vn_before.without(&own_doc));
    ensure!(quarantine(vn).await?.is_empty(), "the first hop held them");
    // Sent again: recognised, reported as quarantined, not stored twice.
    let again = r.batch(attack.clone()).await?;
    for (doc, h, _) in &expected {
        let d = acked(&again, doc)?;
        ensure!(d.quarantined == hash_bytes(&[*h]), "{doc} again: {d:?}");
    }
    ensure!(quarantine(hg).await?.len() == 3);
    serving(hg).await?;
    for t in &targets {
        ensure!(
            heads(hg, t).await? == before.docs.get(t).cloned(),
            "{t} at the province"
        );
    }

    // ---- the forged relay: the province bypassed ------------------------
    tree.cut_province().await?;
    let vn_before = Snapshot::of(vn).await?;
    let mut relay = tree.rogue(VN, HG).await?;
    let ack = relay.batch(attack).await?;
    for (doc, h, _) in &expected {
        let d = acked(&ack, doc)?;
        ensure!(d.quarantined == hash_bytes(&[*h]), "relayed {doc}: {d:?}");
        ensure!(d.rejected.is_empty(), "relayed {doc}: {d:?}");
    }
    let held = quarantine(vn).await?;
    ensure!(held.len() == 3, "{held:#?}");
    // The national node knows the whole tree: all three are not-authorised.
    for (doc, h, _) in &expected {
        let e = held
            .iter()
            .find(|e| e.doc_id == *doc)
            .with_context(|| format!("no entry for {doc} at vn: {held:#?}"))?;
        ensure!(e.hash == h.to_string(), "{e:?}");
        ensure!(e.code == "not-authorised", "{doc} at vn: {e:?}");
        ensure!(e.origin_node == CT && e.peer_node == HG, "{e:?}");
    }
    unchanged(vn, &vn_before).await?;
    serving(vn).await?;
    drop(relay);
    // The real province comes back (its writes flow again) and the
    // federation converges without the held changes.
    tree.fed.link(HG, VN).heal();
    write_flows(&tree, HG, &grassroots(CT), &[VN], "HG-AFTER-1").await?;
    tree.converged().await?;
    for t in &targets {
        ensure!(
            heads(vn, t).await? == before.docs.get(t).cloned(),
            "{t} at vn"
        );
    }
    tree.shutdown().await
}

/// A district writes a member with a national id, ethnicity and religion:
/// the private roster is held by the district and the province (depth 1,
/// the configured `private_depth`), not by the national node nor by the
/// sibling district, after both have synced past it. A rogue relay (the
/// province's certificate) pushing it to the national node is refused
/// there as `private-data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_rosters_stay_at_their_level() -> Result<()> {
    let tree = Tree::start(&[CT, VT]).await?;
    let (vn, hg, ct, vt) = (tree.node(VN), tree.node(HG), tree.node(CT), tree.node(VT));
    let g = grassroots(CT);
    let cccd = "001190012345";
    let m = add_member(ct, &g, "Lò Thị Mai", "CT-PRIV-1", Some(cccd)).await?;
    let (public, private) = (roster(&g), private_roster(&g));
    let want = heads(ct, &private).await?;
    ensure!(want.is_some(), "the district holds {private}");
    let want_public = heads(ct, &public).await?;
    Federation::until("the private roster reaches the province", LIMIT, || async {
        Ok(heads(hg, &private).await? == want)
    })
    .await?;
    Federation::until("the public roster reaches vn", LIMIT, || async {
        Ok(heads(vn, &public).await? == want_public)
    })
    .await?;
    // A barrier for the sibling: a campaign launched at the province after
    // the private roster arrived there reaches it.
    hg.campaigns()
        .launch_campaign(pb::LaunchCampaignRequest {
            id: Some("hg-2026-2".to_owned()),
            launching_unit_id: HG.to_owned(),
            title: "Đợt 2".to_owned(),
            theme: "Lao động giỏi".to_owned(),
            starts_on: "2026-06-01".to_owned(),
            ends_on: "2026-12-31".to_owned(),
            scope_unit_id: HG.to_owned(),
        })
        .await?;
    Federation::until("the sibling has the later campaign", LIMIT, || async {
        Ok(heads(vt, "campaign/hg-2026-2").await?.is_some())
    })
    .await?;

    let holds = |s: &Snapshot| s.docs.keys().any(|d| d.starts_with("roster-private/"));
    for (n, should) in [(ct, true), (hg, true), (vn, false), (vt, false)] {
        let s = Snapshot::of(n).await?;
        ensure!(
            holds(&s) == should,
            "{} holds private rosters: {}",
            n.id,
            !should
        );
        let rows = s.rows.iter().filter(|r| r.starts_with("roster-private/"));
        ensure!(
            (rows.count() > 0) == should,
            "{}: private projection rows",
            n.id
        );
    }
    ensure!(
        heads(vt, &public).await?.is_none(),
        "the sibling holds the roster"
    );
    // Through the API: the province shows the national id, the national
    // node refuses to.
    let get = |include_private| pb::GetMemberRequest {
        key: Some(pb::get_member_request::Key::MemberId(m.id.clone())),
        include_private,
    };
    let at_hg = hg.members().get_member(get(true)).await?.into_inner();
    ensure!(
        at_hg
            .private
            .as_ref()
            .is_some_and(|p| p.national_id == cccd),
        "{at_hg:?}"
    );
    let refused = vn.members().get_member(get(true)).await;
    ensure!(
        matches!(&refused, Err(s) if s.code() == tonic::Code::FailedPrecondition),
        "{refused:?}"
    );
    let at_vn = vn.members().get_member(get(false)).await?.into_inner();
    ensure!(at_vn.private.is_none(), "{at_vn:?}");

    // A rogue relay pushes the private roster to the national node.
    let bytes = hg
        .app
        .store()
        .doc_bytes(&DocId::parse("doc", &private)?)
        .await?
        .context("the province's private roster")?;
    tree.cut_province().await?;
    let vn_before = Snapshot::of(vn).await?;
    let mut relay = tree.rogue(VN, HG).await?;
    let update = rogue::changes(&private, hash_bytes(&want.unwrap_or_default()), bytes);
    let ack = relay.batch(vec![update]).await?;
    ensure!(ack.docs[0].rejected.starts_with("private-data"), "{ack:?}");
    unchanged(vn, &vn_before).await?;
    serving(vn).await?;
    drop(relay);
    tree.fed.link(HG, VN).heal();
    write_flows(&tree, CT, &g, &[HG, VN], "CT-AFTER-1").await?;
    tree.converged().await?;
    tree.shutdown().await
}
