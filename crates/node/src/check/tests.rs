use super::*;

fn h(n: u8) -> ChangeHash {
    ChangeHash([n; 32])
}

fn doc(s: &str) -> DocId {
    DocId::parse("doc", s).unwrap()
}

fn heads(d: &str, hs: &[u8]) -> Heads {
    Heads {
        doc: doc(d),
        heads: hs.iter().map(|n| h(*n)).collect(),
    }
}

/// This node has changes `here` (of every document), holds `held` in
/// quarantine; the peer lacks `peer_lacks` of the documents asked
/// about (`asked`).
#[derive(Default)]
struct World {
    here: Vec<u8>,
    held: Vec<u8>,
    peer_lacks: Vec<u8>,
    unanswered: bool,
}

impl Lookup for World {
    fn has_here(&self, _: &DocId, x: &ChangeHash) -> bool {
        self.here.iter().any(|n| h(*n) == *x)
    }
    fn held_here(&self, _: &DocId, x: &ChangeHash) -> bool {
        self.held.iter().any(|n| h(*n) == *x)
    }
    fn lacks_at_peer(&self, _: &DocId, x: &ChangeHash) -> bool {
        self.unanswered || self.peer_lacks.iter().any(|n| h(*n) == *x)
    }
}

fn one(here: Option<&[u8]>, there: Option<&[u8]>, world: &World) -> Option<State> {
    let d = "roster/hg-truong-a";
    let here: Vec<Heads> = here.map(|x| heads(d, x)).into_iter().collect();
    let there: Vec<Heads> = there.map(|x| heads(d, x)).into_iter().collect();
    let t = compare(&here, &there, world);
    assert_eq!(t.compared, 1);
    assert_eq!(t.in_step + t.differing, 1);
    t.differences.first().map(|d| d.state)
}

#[test]
fn the_same_heads_in_any_order_are_in_step() {
    let w = World {
        here: vec![1, 2],
        ..World::default()
    };
    assert_eq!(one(Some(&[1, 2]), Some(&[2, 1]), &w), None);
}

#[test]
fn a_document_on_one_side_only_is_missing_on_the_other() {
    let w = World::default();
    assert_eq!(one(Some(&[1]), None, &w), Some(State::MissingAtPeer));
    assert_eq!(one(None, Some(&[1]), &w), Some(State::MissingHere));
}

#[test]
fn having_every_head_of_the_peer_makes_it_the_peer_behind() {
    // Here: 1 <- 2; the peer's heads are {1}.
    let w = World {
        here: vec![1, 2],
        ..World::default()
    };
    assert_eq!(one(Some(&[2]), Some(&[1]), &w), Some(State::PeerBehind));
    // Here a merge of the peer's head with a concurrent change.
    assert_eq!(one(Some(&[1, 2]), Some(&[1]), &w), Some(State::PeerBehind));
}

#[test]
fn lacking_the_peers_head_it_asks_whether_the_peer_has_ours() {
    // The peer built 3 on our 2: it has ours.
    let w = World {
        here: vec![1, 2],
        ..World::default()
    };
    assert_eq!(one(Some(&[2]), Some(&[3]), &w), Some(State::HereBehind));
    // The peer has our head among its own.
    assert_eq!(one(Some(&[2]), Some(&[2, 3]), &w), Some(State::HereBehind));
    // Each side wrote on its own: the peer lacks our 2.
    let w = World {
        here: vec![1, 2],
        peer_lacks: vec![2],
        ..World::default()
    };
    assert_eq!(one(Some(&[2]), Some(&[3]), &w), Some(State::Diverged));
    // A peer that did not answer about the document counts as lacking.
    let w = World {
        here: vec![1, 2],
        unanswered: true,
        ..World::default()
    };
    assert_eq!(one(Some(&[2]), Some(&[3]), &w), Some(State::Diverged));
}

#[test]
fn what_the_quarantine_holds_is_held_here_not_behind() {
    let w = World {
        here: vec![1],
        held: vec![3],
        peer_lacks: vec![1],
        ..World::default()
    };
    let d = "roster/hg-truong-a";
    let t = compare(&[heads(d, &[1])], &[heads(d, &[3])], &w);
    assert_eq!(t.differences[0].state, State::HeldHere);
    assert_eq!(t.differences[0].held, vec![h(3)]);
    // Nothing to ask the peer: the quarantine explains the difference.
    assert!(to_ask(&doc(d), &[h(1)], &[h(3)], &w).is_empty());
    // Held, but another of the peer's changes is simply missing here:
    // a replication fault after all.
    let w = World {
        here: vec![1],
        held: vec![3],
        ..World::default()
    };
    assert_eq!(one(Some(&[1]), Some(&[3, 4]), &w), Some(State::HereBehind));
    // A document whose every change is held is held here, not missing.
    assert_eq!(one(None, Some(&[3]), &w), Some(State::HeldHere));
}

#[test]
fn only_the_heads_the_peer_does_not_list_are_asked_about() {
    let w = World {
        here: vec![1, 2],
        ..World::default()
    };
    let d = doc("unit/vn");
    assert_eq!(to_ask(&d, &[h(1), h(2)], &[h(1), h(3)], &w), vec![h(2)]);
    // Peer behind, or in step: nothing to ask.
    assert!(to_ask(&d, &[h(2)], &[h(1)], &w).is_empty());
    assert!(to_ask(&d, &[h(1)], &[h(1)], &w).is_empty());
}

#[test]
fn a_window_counts_the_union_once_and_lists_by_id() {
    let w = World {
        here: vec![1, 2, 5],
        ..World::default()
    };
    let here = [
        heads("unit/vn", &[1]),
        heads("roster/hg-truong-a", &[2]),
        heads("roster-private/hg-truong-a", &[5]),
        heads("campaign/tt-2026", &[7]),
    ];
    let there = [
        heads("unit/vn", &[1]),
        heads("roster/hg-truong-a", &[1]),
        heads("award/a1", &[9]),
        heads("campaign/tt-2026", &[7]),
    ];
    let t = compare(&here, &there, &w);
    assert_eq!(t.compared, 5);
    assert_eq!(t.in_step, 2);
    assert_eq!(t.differing, 3);
    let got: Vec<(String, State)> = t
        .differences
        .iter()
        .map(|d| (d.doc.to_string(), d.state))
        .collect();
    assert_eq!(
        got,
        [
            ("award/a1".to_owned(), State::MissingHere),
            (
                "roster-private/hg-truong-a".to_owned(),
                State::MissingAtPeer
            ),
            ("roster/hg-truong-a".to_owned(), State::PeerBehind),
        ]
    );
    assert_eq!(t.differences[2].here, vec![h(2)]);
    assert_eq!(t.differences[2].there, vec![h(1)]);
}

#[test]
fn tallies_add_up_and_list_at_most_the_cap() {
    let w = World::default();
    let mut total = Tally::default();
    for i in 0..3 {
        let here: Vec<Heads> = (0..600)
            .map(|k| heads(&format!("campaign/c{i}-{k}"), &[1]))
            .collect();
        total.add(compare(&here, &[], &w));
    }
    assert_eq!(total.compared, 1800);
    assert_eq!(total.differing, 1800);
    assert_eq!(total.differences.len(), MAX_LISTED);
}

#[test]
fn pages_out_of_order_are_refused() {
    let page = |docs: &[&str], next: Option<&str>| PeerPage {
        node_id: "p".into(),
        unit: "hau-giang".into(),
        docs: docs.iter().map(|d| heads(d, &[1])).collect(),
        next_after: next.map(doc),
    };
    let ok = page(&["campaign/a", "unit/b"], Some("unit/b"));
    assert!(check_page("p", None, &ok).is_ok());
    assert!(check_page("p", Some(&doc("award/z")), &ok).is_ok());
    for (after, bad) in [
        (None, page(&["unit/b", "campaign/a"], None)),
        (None, page(&["unit/b"], Some("campaign/a"))),
        (Some(doc("unit/b")), page(&[], Some("unit/b"))),
        (Some(doc("unit/c")), page(&["unit/b"], None)),
    ] {
        assert!(
            matches!(
                check_page("p", after.as_ref(), &bad),
                Err(CheckError::Refused(_))
            ),
            "{bad:?} after {after:?}"
        );
    }
}
