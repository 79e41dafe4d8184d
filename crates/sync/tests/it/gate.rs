//! The receiver's gate, driven with hand-made batches: what a compromised
//! or misconfigured district (or a province relaying for one) could send.
//! Each test opens an accepting (or dialling) session, feeds it a hello and
//! a batch, and looks at the acknowledgement, the stored documents, the
//! feed and the quarantine.
//!
//! The tree: vn → p1 → {c1 → g1, c2 → g2}, vn → p2. Node ids are
//! `node-<unit>`; a change "by c1" is made under c1's actor.

use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use hopluu_model::doc::skeleton_actor;
use hopluu_model::{DocId, member};
use hopluu_store::quarantine::{NewQuarantine, QuarantineFilter, QuarantineState};
use hopluu_sync::frame::{DocUpdate, Frame, Payload};
use hopluu_sync::{Limits, Role, Session, SyncError, gate};

use crate::fixtures::{self, cid, uid};

use crate::handmade::*;

/// A district writes its parent's campaign, a sibling's roster and
/// another province's award, beside a change to its own roster: the three
/// are quarantined at the first hop, the fourth applied, and the batch
/// acknowledged.
#[tokio::test(flavor = "current_thread")]
async fn a_district_cannot_write_outside_its_subtree() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let before = p1.feed_position().await.unwrap();
    let camp_heads = p1.doc_heads(&campaign()).await.unwrap();
    let g2_heads = p1.doc_heads(&roster("g2")).await.unwrap();
    let (to_campaign, h1) = edit(&p1, &campaign(), actor("c1"), "ours now").await;
    let (to_sibling, h2) = edit(&p1, &roster("g2"), actor("c1"), "ours now").await;
    let (award, h3) = forge(&award_p2(), "p2", actor("c1"));
    let (own, h4) = edit(&p1, &roster("g1"), actor("c1"), "a correction").await;

    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    let a = ack(&mut s, vec![to_campaign.clone(), to_sibling, award, own]).await;

    assert_eq!(a.docs[0].quarantined, vec![h1]);
    assert_eq!(a.docs[1].quarantined, vec![h2]);
    assert_eq!(a.docs[2].quarantined, vec![h3]);
    assert!(a.docs[3].quarantined.is_empty());
    assert!(a.docs.iter().all(|d| d.rejected.is_empty()), "{a:?}");
    assert_eq!(p1.doc_heads(&campaign()).await.unwrap(), camp_heads);
    assert_eq!(p1.doc_heads(&roster("g2")).await.unwrap(), g2_heads);
    assert_eq!(p1.doc_heads(&award_p2()).await.unwrap(), None);
    assert_eq!(p1.doc_heads(&roster("g1")).await.unwrap(), Some(vec![h4]));
    // Only the district's own roster entered the feed.
    assert_eq!(p1.feed_position().await.unwrap(), before + 1);
    let mut got = held(&p1).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                award_p2().to_string(),
                "not-authorised".into(),
                QuarantineState::Held
            ),
            (
                campaign().to_string(),
                "not-authorised".into(),
                QuarantineState::Held
            ),
            (
                roster("g2").to_string(),
                "not-authorised".into(),
                QuarantineState::Held
            ),
        ]
    );
    let entry = &p1
        .quarantine_list(&QuarantineFilter::default())
        .await
        .unwrap()[0];
    assert_eq!(
        (entry.origin_node.as_str(), entry.peer_node.as_str()),
        ("node-c1", "node-c1")
    );
    assert!(entry.reason.contains("no authority"), "{}", entry.reason);

    // Sent again (the district insists): recognised, not stored twice, and
    // still reported as quarantined so the sender stops.
    let a = ack(&mut s, vec![to_campaign]).await;
    assert_eq!(a.docs[0].quarantined, vec![h1]);
    assert!(a.docs[0].rejected.is_empty());
    assert_eq!(held(&p1).await.len(), 3);
}

/// Had the province been bypassed (or compromised), the national node
/// holds the same three changes: the maker named in the actor is checked
/// at every hop, not only at the first.
#[tokio::test(flavor = "current_thread")]
async fn a_forged_relay_is_quarantined_at_the_national_node() {
    let dir = fixtures::tempdir();
    let vn = node(&dir, "vn").await;
    let before = vn.feed_position().await.unwrap();
    let (to_campaign, h1) = edit(&vn, &campaign(), actor("c1"), "ours now").await;
    let (to_sibling, h2) = edit(&vn, &roster("g2"), actor("c1"), "ours now").await;
    let (award, h3) = forge(&award_p2(), "p2", actor("c1"));
    let mut s = accepting(&vn, "vn", "p1", Limits::default()).await;
    let a = ack(&mut s, vec![to_campaign, to_sibling, award]).await;
    let q: Vec<Vec<ChangeHash>> = a.docs.iter().map(|d| d.quarantined.clone()).collect();
    assert_eq!(q, vec![vec![h1], vec![h2], vec![h3]]);
    assert_eq!(vn.feed_position().await.unwrap(), before);
    assert!(
        held(&vn)
            .await
            .iter()
            .all(|(_, code, _)| code == "not-authorised")
    );
}

/// Forged makers: a child passing its change off as its parent's, a
/// change under the skeleton actor that is not the skeleton, an actor
/// that names no node. All held, with their own codes.
#[tokio::test(flavor = "current_thread")]
async fn forged_actors_are_quarantined() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let (as_parent, _) = edit(&p1, &roster("g1"), actor("p1"), "I am the province").await;
    let (as_skeleton, _) = edit(&p1, &roster("g1"), skeleton_actor(), "no one").await;
    let (as_nobody, _) = edit(
        &p1,
        &roster("g1"),
        ActorId::from(vec![7u8; 16]),
        "anonymous",
    )
    .await;
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    let heads = p1.doc_heads(&roster("g1")).await.unwrap();
    let a = ack(&mut s, vec![as_parent, as_skeleton, as_nobody]).await;
    assert!(a.docs.iter().all(|d| d.quarantined.len() == 1), "{a:?}");
    assert_eq!(p1.doc_heads(&roster("g1")).await.unwrap(), heads);
    let mut codes: Vec<String> = held(&p1).await.into_iter().map(|(_, c, _)| c).collect();
    codes.sort();
    assert_eq!(
        codes,
        ["forged-skeleton", "outside-sender", "unknown-actor"]
    );
}

/// A change that depends on a quarantined one waits with it; releasing
/// the first applies both, and the release enters the feed.
#[tokio::test(flavor = "current_thread")]
async fn dependents_wait_and_follow_a_release() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let g2 = roster("g2");
    // Both by c1 over g2, outside its subtree; the second depends on the
    // first.
    let (update, hashes) = edits(
        &p1,
        &g2,
        actor("c1"),
        &[("note", "bad"), ("note2", "after")],
    )
    .await;
    let (bad, after) = (hashes[0], hashes[1]);
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    let a = ack(&mut s, vec![update]).await;
    assert_eq!(a.docs[0].quarantined, vec![bad, after]);
    let entries = p1
        .quarantine_list(&QuarantineFilter::default())
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].code, "waits");
    assert_eq!(entries[1].waits_for, Some(bad));

    let position = p1.feed_position().await.unwrap();
    let first = p1.quarantine_get(entries[0].id).await.unwrap().unwrap();
    let tree = p1.tree();
    let mut tx = p1.begin().await.unwrap();
    let n = gate::release(&mut tx, &tree, &uid("p1"), &first, "admin:test", T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // The waiting change is by c1 too, over g2: it fails in its own right
    // once free of the first, and stays held with that reason.
    assert_eq!(n, 1);
    assert_eq!(p1.doc_heads(&g2).await.unwrap(), Some(vec![bad]));
    assert_eq!(p1.feed_position().await.unwrap(), position + 1);
    let entries = p1
        .quarantine_list(&QuarantineFilter::default())
        .await
        .unwrap();
    assert_eq!(entries[0].state, QuarantineState::Released);
    assert_eq!(entries[0].decided_by.as_deref(), Some("admin:test"));
    assert_eq!(
        (entries[1].code.as_str(), entries[1].state),
        ("not-authorised", QuarantineState::Held)
    );
}

/// Discarding drops a change and what waits on it; the same change sent
/// again is dropped on sight and not stored again.
#[tokio::test(flavor = "current_thread")]
async fn a_discarded_change_stays_out() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let g2 = roster("g2");
    let (update, _) = edits(&p1, &g2, actor("c1"), &[("note", "one"), ("note", "two")]).await;
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    ack(&mut s, vec![update.clone()]).await;
    let entries = p1
        .quarantine_list(&QuarantineFilter::default())
        .await
        .unwrap();
    let mut tx = p1.begin().await.unwrap();
    let n = gate::discard(&mut tx, &entries[0], "admin:test", T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 2);
    let again = ack(&mut s, vec![update]).await;
    assert_eq!(again.docs[0].quarantined.len(), 2);
    let entries = p1
        .quarantine_list(&QuarantineFilter::default())
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e.state == QuarantineState::Discarded)
    );
    let shown = p1.quarantine_get(entries[0].id).await.unwrap().unwrap();
    assert_eq!(shown.change, None, "a discarded change's bytes are dropped");
}

/// A national correction relayed up by a district (while it was on its
/// fallback link) cannot be vouched for by the district: it is held until
/// it arrives from the parent, and then applied.
#[tokio::test(flavor = "current_thread")]
async fn a_held_relay_passes_when_it_comes_by_its_own_path() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let (correction, h) = edit(&p1, &roster("g1"), actor("vn"), "national correction").await;
    let mut from_child = accepting(&p1, "p1", "c1", Limits::default()).await;
    let a = ack(&mut from_child, vec![correction.clone()]).await;
    assert_eq!(a.docs[0].quarantined, vec![h]);
    assert_eq!(held(&p1).await[0].1, "outside-sender");

    let mut from_parent = dialing(&p1, "p1", "vn").await;
    let a = ack(&mut from_parent, vec![correction]).await;
    assert!(a.docs[0].quarantined.is_empty(), "{a:?}");
    assert_eq!(p1.doc_heads(&roster("g1")).await.unwrap(), Some(vec![h]));
    assert_eq!(held(&p1).await[0].2, QuarantineState::Released);
}

/// A change quarantined by one session (a child relaying it) while
/// another session, bringing the same change by its own path, waits for
/// the writer lock: the second judges it as held, applies it, marks it
/// released, and what follows it is not held.
#[tokio::test(flavor = "current_thread")]
async fn a_change_quarantined_while_its_own_path_waits_is_released() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let g1 = roster("g1");
    let (update, hashes) = edits(
        &p1,
        &g1,
        actor("vn"),
        &[("note", "national correction"), ("note2", "after it")],
    )
    .await;
    let (correction, after) = (hashes[0], hashes[1]);
    let change = {
        let bytes = p1.doc_bytes(&g1).await.unwrap().unwrap();
        let mut d = Automerge::load(&bytes).unwrap();
        let Payload::Changes(data) = &update.payload else {
            unreachable!("edits sends changes")
        };
        d.load_incremental(data).unwrap();
        d.get_change_by_hash(&correction)
            .unwrap()
            .raw_bytes()
            .to_vec()
    };
    let mut from_parent = dialing(&p1, "p1", "vn").await;
    // The child's session holds the writer lock and quarantines the
    // relayed correction; the parent's batch arrives meanwhile.
    let mut child = p1.begin().await.unwrap();
    let (a, ()) = tokio::join!(ack(&mut from_parent, vec![update]), async move {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let entry = NewQuarantine {
            doc: roster("g1"),
            hash: correction,
            origin_node: "node-vn".into(),
            origin_unit: "vn".into(),
            peer_node: "node-c1".into(),
            peer_unit: "c1".into(),
            code: "outside-sender".into(),
            reason: "relayed by a child".into(),
            waits_for: None,
            made_at: 0,
            change,
        };
        assert!(child.quarantine(&entry, T0).await.unwrap());
        child.commit().await.unwrap();
    });
    assert!(a.docs[0].quarantined.is_empty(), "{a:?}");
    assert_eq!(p1.doc_heads(&g1).await.unwrap(), Some(vec![after]));
    assert_eq!(
        held(&p1).await,
        vec![(
            g1.to_string(),
            "outside-sender".to_owned(),
            QuarantineState::Released
        )]
    );
}

/// The national node holds no private roster, whoever sends it.
#[tokio::test(flavor = "current_thread")]
async fn private_rosters_are_refused_above_their_level() {
    let dir = fixtures::tempdir();
    let vn = node(&dir, "vn").await;
    let private = member::private_doc(&uid("g1"), 0);
    let (update, _) = forge(&private, "g1", actor("g1"));
    let before = vn.feed_position().await.unwrap();
    let mut s = accepting(&vn, "vn", "p1", Limits::default()).await;
    let a = ack(&mut s, vec![update]).await;
    assert!(a.docs[0].rejected.starts_with("private-data"), "{a:?}");
    assert_eq!(vn.doc_heads(&private).await.unwrap(), None);
    assert_eq!(vn.feed_position().await.unwrap(), before);
}

/// Limits: too many documents end the session with a `limit` refusal; an
/// update too large, or with too many changes, is refused alone.
#[tokio::test(flavor = "current_thread")]
async fn limits_are_answered_not_crashed() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let limits = Limits {
        accept_docs: 2,
        accept_changes: 1,
        accept_doc_bytes: 4096,
        ..Limits::default()
    };
    let (own, _) = edit(&p1, &roster("g1"), actor("c1"), "x").await;
    let mut s = accepting(&p1, "p1", "c1", limits.clone()).await;
    match s
        .handle(batch(vec![own.clone(), own.clone(), own.clone()]))
        .await
    {
        Err(SyncError::Refuse(r)) => {
            assert_eq!(r.code, "limit");
            assert!(r.reason.contains("3 documents"), "{}", r.reason);
        }
        other => panic!("expected a limit refusal, got {other:?}"),
    }
    let before = p1.feed_position().await.unwrap();
    let mut s = accepting(&p1, "p1", "c1", limits).await;
    let big = DocUpdate {
        payload: Payload::Changes(vec![0u8; 5000]),
        ..own.clone()
    };
    let (many, _) = edits(
        &p1,
        &roster("g1"),
        actor("c1"),
        &[("note", "a"), ("note", "b")],
    )
    .await;
    let a = ack(&mut s, vec![big, many]).await;
    assert!(a.docs[0].rejected.starts_with("limit:"), "{a:?}");
    assert!(a.docs[1].rejected.contains("more than 1 changes"), "{a:?}");
    assert_eq!(p1.feed_position().await.unwrap(), before);
}

/// Malformed and truncated automerge bytes, in plain updates and inside
/// sync messages: each refused with a reason, nothing written, no panic.
#[tokio::test(flavor = "current_thread")]
async fn malformed_automerge_is_refused() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let (own, _) = edit(&p1, &roster("g1"), actor("c1"), "x").await;
    let Payload::Changes(good) = own.payload.clone() else {
        unreachable!()
    };
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    let cases: Vec<Payload> = vec![
        Payload::Changes(good[..good.len() / 2].to_vec()),
        Payload::Changes(flipped),
        Payload::Changes(b"not automerge at all".to_vec()),
        Payload::Sync(vec![0x42, 1, 2, 3]),
        Payload::Sync(good.clone()),
    ];
    let before = p1.feed_position().await.unwrap();
    let heads = p1.doc_heads(&roster("g1")).await.unwrap();
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    let docs = cases
        .into_iter()
        .map(|payload| DocUpdate {
            payload,
            ..own.clone()
        })
        .collect();
    let a = ack(&mut s, docs).await;
    for d in &a.docs {
        assert!(d.rejected.starts_with("undecodable"), "{d:?}");
    }
    assert_eq!(p1.feed_position().await.unwrap(), before);
    assert_eq!(p1.doc_heads(&roster("g1")).await.unwrap(), heads);
    assert!(held(&p1).await.is_empty());
}

/// Old messages replayed, in the same session and in a new one: applied
/// once, acknowledged with the same heads, nothing written again.
#[tokio::test(flavor = "current_thread")]
async fn replayed_batches_write_nothing() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let (own, h) = edit(&p1, &roster("g1"), actor("c1"), "once").await;
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    let first = ack(&mut s, vec![own.clone()]).await;
    assert_eq!(first.docs[0].heads, vec![h]);
    let position = p1.feed_position().await.unwrap();
    let again = ack(&mut s, vec![own.clone()]).await;
    assert_eq!(again.docs[0].heads, vec![h]);
    let mut later = accepting(&p1, "p1", "c1", Limits::default()).await;
    let replayed = ack(&mut later, vec![own]).await;
    assert_eq!(replayed.docs[0].heads, vec![h]);
    assert!(replayed.docs[0].rejected.is_empty());
    assert_eq!(p1.feed_position().await.unwrap(), position);
    assert!(held(&p1).await.is_empty());
}

/// The automerge inputs the fuzzer found crashing (or corrupting) automerge
/// 0.12 itself, sent by a child as plain changes and as sync messages: each
/// refused with a reason, nothing written, the session and the node go on.
#[tokio::test(flavor = "current_thread")]
async fn crafted_automerge_that_crashes_automerge_is_refused() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let regressions = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/automerge_payload");
    let mut files: Vec<_> = std::fs::read_dir(&regressions)
        .expect("the fuzz regressions")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let before = p1.feed_position().await.unwrap();
    let heads = p1.doc_heads(&roster("g1")).await.unwrap();
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        for payload in [Payload::Changes(data.clone()), Payload::Sync(data)] {
            let update = DocUpdate {
                doc: roster("g1").to_string(),
                heads: Vec::new(),
                payload,
            };
            let a = ack(&mut s, vec![update]).await;
            assert!(a.docs.len() == 1, "{}: {a:?}", f.display());
        }
        // The session still answers.
        let next = s.next_batch().await;
        assert!(next.is_ok(), "{}: {next:?}", f.display());
    }
    assert_eq!(p1.feed_position().await.unwrap(), before);
    assert_eq!(p1.doc_heads(&roster("g1")).await.unwrap(), heads);
    let (own, h) = edit(&p1, &roster("g1"), actor("c1"), "still served").await;
    let a = ack(&mut s, vec![own]).await;
    assert_eq!(a.docs[0].heads, vec![h]);
}

/// A national campaign that a district relays up (held at the province:
/// `outside-sender`) before, or at any round of, the national node's own
/// session with the province, from first contact (the sync protocol, since
/// the province's heads are unknown) until both sides are quiet: the
/// province ends with the campaign, its held entries released.
#[tokio::test(flavor = "current_thread")]
async fn a_relayed_campaign_arrives_whole_whenever_the_relay_comes() {
    for relay_at in 0..8 {
        let dir = fixtures::tempdir();
        let vn = node(&dir, "vn").await;
        let p1 = node(&dir, "p1").await;
        let camp = DocId::Campaign(cid("camp-vn"));
        fixtures::launch_campaign(&vn, &author("vn"), "camp-vn", &uid("vn"), &uid("vn"))
            .await
            .unwrap();
        let bytes = vn.doc_bytes(&camp).await.unwrap().unwrap();
        let heads = vn.doc_heads(&camp).await.unwrap().unwrap();
        let mut from_c1 = accepting(&p1, "p1", "c1", Limits::default()).await;
        let relay = DocUpdate {
            doc: camp.to_string(),
            heads: heads.clone(),
            payload: Payload::Changes(bytes),
        };
        // vn's session with p1, both sides real, pumped until quiet.
        let mut up = Session::new(
            replica(&p1, "p1", Limits::default()),
            Role::Dialer {
                expect: "node-vn".into(),
            },
        );
        let mut down = Session::new(replica(&vn, "vn", Limits::default()), Role::Acceptor);
        let mut to_down: Vec<Frame> = up.start().await.unwrap().into_iter().collect();
        let mut to_up: Vec<Frame> = Vec::new();
        for round in 0..200 {
            if round == relay_at {
                ack(&mut from_c1, vec![relay.clone()]).await;
            }
            for f in std::mem::take(&mut to_down) {
                to_up.extend(down.handle(f).await.unwrap());
            }
            if down.peer().is_some()
                && let Some(b) = down.next_batch().await.unwrap()
            {
                to_up.push(b);
            }
            for f in std::mem::take(&mut to_up) {
                to_down.extend(up.handle(f).await.unwrap());
            }
            if up.peer().is_some()
                && let Some(b) = up.next_batch().await.unwrap()
            {
                to_down.push(b);
            }
            if round > relay_at
                && to_up.is_empty()
                && to_down.is_empty()
                && !down.awaiting_ack()
                && !up.awaiting_ack()
            {
                break;
            }
        }
        assert_eq!(
            p1.doc_heads(&camp).await.unwrap(),
            Some(heads),
            "relay at round {relay_at}: the province lacks the campaign; held: {:?}",
            held(&p1).await
        );
        assert!(
            held(&p1)
                .await
                .iter()
                .all(|(_, _, state)| *state == QuarantineState::Released),
            "relay at round {relay_at}: {:?}",
            held(&p1).await
        );
    }
}

/// Runs a child's dialling session and its parent's accepting one until
/// nothing moves, both sides real.
async fn pump(up: &mut Session, down: &mut Session, mut to_down: Vec<Frame>) {
    let mut to_up: Vec<Frame> = Vec::new();
    for _ in 0..200 {
        for f in std::mem::take(&mut to_down) {
            to_up.extend(down.handle(f).await.unwrap());
        }
        if down.peer().is_some() {
            while let Some(b) = down.next_batch().await.unwrap() {
                to_up.push(b);
            }
        }
        for f in std::mem::take(&mut to_up) {
            to_down.extend(up.handle(f).await.unwrap());
        }
        if up.peer().is_some() {
            while let Some(b) = up.next_batch().await.unwrap() {
                to_down.push(b);
            }
        }
        if to_up.is_empty() && to_down.is_empty() {
            if !up.awaiting_ack() && !down.awaiting_ack() {
                return;
            }
            up.on_timeout();
            down.on_timeout();
        }
    }
    panic!("the sessions did not settle");
}

/// Seed 303444: a province's campaign reaches the national node first
/// from a commune on its fallback link, and is held there
/// (`outside-sender`: the commune cannot vouch for its province). Then
/// the province itself names the campaign among its heads. The national
/// node took the held change as had: it acknowledged the province's feed
/// past the campaign, and after a cut the campaign was never sent again.
/// A held change that this sender could deliver is owed by it.
#[tokio::test(flavor = "current_thread")]
async fn a_held_relay_is_owed_by_its_own_path() {
    let dir = fixtures::tempdir();
    let vn = node(&dir, "vn").await;
    let p1 = node(&dir, "p1").await;
    let camp = DocId::Campaign(cid("camp-new"));
    fixtures::launch_campaign(&p1, &author("p1"), "camp-new", &uid("p1"), &uid("p1"))
        .await
        .unwrap();
    let heads = p1.doc_heads(&camp).await.unwrap();
    // The commune relays it up while on its fallback link.
    let mut from_c1 = accepting(&vn, "vn", "c1", Limits::default()).await;
    let relay = DocUpdate {
        doc: camp.to_string(),
        heads: heads.clone().unwrap(),
        payload: Payload::Changes(p1.doc_bytes(&camp).await.unwrap().unwrap()),
    };
    let a = ack(&mut from_c1, vec![relay]).await;
    assert_eq!(a.docs[0].quarantined.len(), 1, "held as known to c1: {a:?}");
    assert_eq!(vn.doc_heads(&camp).await.unwrap(), None);

    // The province's first round with the national node: its feed, as
    // sync messages. The national node answers, then the link is cut
    // before anything else is sent.
    let dialer = || {
        Session::new(
            replica(&p1, "p1", Limits::default()),
            Role::Dialer {
                expect: "node-vn".into(),
            },
        )
    };
    let mut up = dialer();
    let mut down = Session::new(replica(&vn, "vn", Limits::default()), Role::Acceptor);
    let hello = up.start().await.unwrap().expect("a dialer speaks first");
    for f in down.handle(hello).await.unwrap() {
        up.handle(f).await.unwrap();
    }
    let Some(Frame::Batch(b)) = up.next_batch().await.unwrap() else {
        panic!("the province sends its feed")
    };
    let named = b.docs.iter().find(|u| u.doc == camp.to_string());
    assert!(
        named.is_some_and(|u| matches!(u.payload, Payload::Sync(_))),
        "{b:?}"
    );
    for f in down.handle(Frame::Batch(b)).await.unwrap() {
        up.handle(f).await.unwrap();
    }
    up.flush().await.unwrap();
    down.flush().await.unwrap();

    // A new session: the campaign must still come.
    let mut up = dialer();
    let mut down = Session::new(replica(&vn, "vn", Limits::default()), Role::Acceptor);
    let hello = up.start().await.unwrap().into_iter().collect();
    pump(&mut up, &mut down, hello).await;
    assert_eq!(
        vn.doc_heads(&camp).await.unwrap(),
        heads,
        "the national node lacks the campaign; quarantine: {:?}",
        held(&vn).await
    );
    assert!(
        held(&vn)
            .await
            .iter()
            .all(|(_, _, state)| *state == QuarantineState::Released),
        "{:?}",
        held(&vn).await
    );
}
