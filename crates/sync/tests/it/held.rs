//! What a receiver holds of a sender's changes, told to the sender: in
//! every acknowledgement, and in a notice (an ack of batch 0 that
//! acknowledges nothing) when it changes between batches, after an
//! administrator's decision say. The sender keeps the figures as the
//! changes the peer holds: sent, not delivered.

use hopluu_store::quarantine::QuarantineFilter;
use hopluu_sync::frame::{Ack, Frame, HeldChanges};
use hopluu_sync::{Limits, gate};

use crate::handmade::*;

/// The notice `s` sends now, if any.
async fn notice(s: &mut hopluu_sync::Session) -> Option<Ack> {
    match s.next_notice().await.expect("a notice looked up") {
        None => None,
        Some(Frame::Ack(a)) => Some(a),
        Some(other) => panic!("expected an ack, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_receiver_tells_what_it_holds_in_every_ack_and_when_an_administrator_decides() {
    let dir = crate::fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    // Nothing held: no notice at the start of the session.
    assert_eq!(notice(&mut s).await, None);

    let (to_campaign, _) = edit(&p1, &campaign(), actor("c1"), "ours now").await;
    let (to_sibling, _) = edit(&p1, &roster("g2"), actor("c1"), "ours too").await;
    let (own, _) = edit(&p1, &roster("g1"), actor("c1"), "a correction").await;
    let a = ack(&mut s, vec![to_campaign, to_sibling, own]).await;
    assert_eq!(a.held.changes, 2, "{a:?}");
    assert_eq!(a.held.docs, 2);
    assert!(a.held.oldest_millis > 0, "{a:?}");
    // Told in the ack: no notice for it.
    assert_eq!(notice(&mut s).await, None);

    // The administrator discards one: the next look sends a notice with
    // what is left, once.
    let entry = p1
        .quarantine_list(&QuarantineFilter::default())
        .await
        .unwrap()
        .remove(0);
    let mut tx = p1.begin().await.unwrap();
    gate::discard(&mut tx, &entry, "admin", 5).await.unwrap();
    tx.commit().await.unwrap();
    let n = notice(&mut s).await.expect("a notice after the decision");
    assert_eq!((n.batch, n.docs.len(), n.at), (0, 0, 0));
    assert_eq!(n.held.changes, 1);
    assert_eq!(n.held.docs, 1);
    assert_eq!(notice(&mut s).await, None, "told once");

    // A commit that does not touch the quarantine sends nothing.
    let (more, _) = edit(&p1, &roster("g1"), actor("c1"), "another").await;
    let a = ack(&mut s, vec![more]).await;
    assert_eq!(a.held.changes, 1);
    assert_eq!(notice(&mut s).await, None);
}

#[tokio::test(flavor = "current_thread")]
async fn a_sender_counts_what_its_peer_holds_until_the_peer_says_otherwise() {
    let dir = crate::fixtures::tempdir();
    let c1 = node(&dir, "c1").await;
    let mut s = dialing(&c1, "c1", "p1").await;
    assert_eq!(s.stats().held_by_peer, HeldChanges::default());
    let told = HeldChanges {
        changes: 3,
        docs: 2,
        oldest_millis: 1_000,
    };
    // A notice: it acknowledges nothing, and moves no checkpoint back.
    let before = s.acked_upto();
    s.handle(Frame::Ack(Ack {
        batch: 0,
        applied_upto: 0,
        docs: Vec::new(),
        at: 0,
        held: told,
    }))
    .await
    .unwrap();
    assert_eq!(s.stats().held_by_peer, told);
    assert_eq!(s.acked_upto(), before);
    s.handle(Frame::Ack(Ack {
        batch: 0,
        applied_upto: 0,
        docs: Vec::new(),
        at: 0,
        held: HeldChanges::default(),
    }))
    .await
    .unwrap();
    assert_eq!(s.stats().held_by_peer, HeldChanges::default());
    // A new session starts from nothing: the peer tells again.
    s.handle(Frame::Ack(Ack {
        batch: 0,
        applied_upto: 0,
        docs: Vec::new(),
        at: 0,
        held: told,
    }))
    .await
    .unwrap();
    s.handle(hello("p1")).await.unwrap();
    assert_eq!(s.stats().held_by_peer, HeldChanges::default());
}
