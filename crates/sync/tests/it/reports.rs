//! Edge reports and delivery receipts at the session level: a parent keeps
//! only the report entries from inside the child's subtree; an ack's time
//! becomes the child's receipt of the heads it acknowledged; a parent
//! sends a child the receipts of the child's subtree only, after the last
//! one the child named in its hello, and the child stores them with that
//! cursor.

use std::sync::{Arc, Mutex};

use automerge::ChangeHash;
use hopluu_sync::frame::{Ack, DocHeads, EdgeReport, Frame, Hello, Receipt, Receipts};
use hopluu_sync::{EdgeReports, Limits, PeerInfo, Role, Session};

use crate::fixtures;
use crate::handmade::{dialing, hello, node, replica};

#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<EdgeReport>>,
}

impl EdgeReports for Recorder {
    fn report(&self) -> Vec<EdgeReport> {
        vec![EdgeReport {
            reporter_node: "node-p1".into(),
            reporter_unit: "p1".into(),
            peer_node: "node-vn".into(),
            peer_unit: "vn".into(),
            upstream: true,
            ..EdgeReport::default()
        }]
    }
    fn reported(&self, _: &PeerInfo, edges: Vec<EdgeReport>) {
        self.got.lock().unwrap().extend(edges);
    }
}

fn entry(reporter: &str, peer: &str) -> EdgeReport {
    EdgeReport {
        reporter_node: format!("node-{reporter}"),
        reporter_unit: reporter.into(),
        peer_node: format!("node-{peer}"),
        peer_unit: peer.into(),
        ..EdgeReport::default()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_parent_keeps_only_reports_from_inside_the_childs_subtree() {
    let dir = fixtures::tempdir();
    let vn = node(&dir, "vn").await;
    let rec = Arc::new(Recorder::default());
    let mut s = Session::new(replica(&vn, "vn", Limits::default()), Role::Acceptor)
        .with_reports(rec.clone());
    s.handle(hello("p1")).await.unwrap();
    // A parent sends no report of its own.
    assert!(s.report().is_none());
    let replies = s
        .handle(Frame::Report(vec![
            entry("p1", "vn"),
            entry("c1", "p1"),
            entry("g1", "c1"),
            // p2 is p1's sibling: p1 may not speak for it.
            entry("p2", "vn"),
            entry("nowhere", "vn"),
        ]))
        .await
        .unwrap();
    assert!(replies.is_empty());
    let got: Vec<String> = rec
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.reporter_unit.clone())
        .collect();
    assert_eq!(got, ["p1", "c1", "g1"]);

    // A child reports its edges; it refuses a report from its parent.
    let p1 = node(&dir, "p1").await;
    let mut child = dialing(&p1, "p1", "vn").await.with_reports(rec.clone());
    match child.report() {
        Some(Frame::Report(edges)) => assert_eq!(edges[0].peer_node, "node-vn"),
        other => panic!("expected a report, got {other:?}"),
    }
    let err = child
        .handle(Frame::Report(vec![entry("vn", "p1")]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("protocol"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn receipts_follow_acks_up_and_come_back_down_to_their_subtree() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    // p1's session with its parent: an ack with a time becomes receipts.
    let mut up = dialing(&p1, "p1", "vn").await;
    // A batch must have been sent for its ack to count: send what p1 has.
    let sent = up
        .next_batch()
        .await
        .unwrap()
        .expect("p1 has documents for vn");
    let Frame::Batch(b) = sent else {
        panic!("a batch")
    };
    let heads = |doc: &str| vec![ChangeHash([doc.len() as u8; 32])];
    up.handle(Frame::Ack(Ack {
        batch: b.id,
        applied_upto: 0,
        docs: ["roster/g1", "roster/g2"]
            .iter()
            .map(|d| DocHeads {
                doc: (*d).to_owned(),
                heads: heads(d),
                rejected: String::new(),
                quarantined: Vec::new(),
            })
            .collect(),
        at: 5_000,
        held: Default::default(),
    }))
    .await
    .unwrap();
    up.flush().await.unwrap();
    let stored = p1.receipts_after(0, 10).await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(
        stored
            .iter()
            .all(|r| r.node_id == "node-vn" && r.at == 5_000)
    );

    // Down to c1: only the receipts of c1's subtree (g1's roster, not g2's).
    let mut down = Session::new(replica(&p1, "p1", Limits::default()), Role::Acceptor);
    down.handle(Frame::Hello(Hello {
        receipts_from_you: 0,
        ..match hello("c1") {
            Frame::Hello(h) => h,
            _ => unreachable!(),
        }
    }))
    .await
    .unwrap();
    let Some(Frame::Receipts(r)) = down.next_receipts().await.unwrap() else {
        panic!("receipts for c1")
    };
    assert_eq!(r.receipts.len(), 1, "{r:?}");
    assert_eq!(r.receipts[0].doc, "roster/g1");
    assert_eq!(r.upto, stored.last().unwrap().id);
    assert!(down.next_receipts().await.unwrap().is_none(), "nothing new");

    // c1 stores them, with p1's cursor, and names it in its next hello.
    let c1 = node(&dir, "c1").await;
    let mut c1_up = dialing(&c1, "c1", "p1").await;
    c1_up.handle(Frame::Receipts(r.clone())).await.unwrap();
    let at_c1 = c1.receipts_after(0, 10).await.unwrap();
    assert_eq!(at_c1.len(), 1);
    assert_eq!(c1.receipt_cursor("node-p1").await.unwrap(), r.upto);
    let mut again = Session::new(
        replica(&c1, "c1", Limits::default()),
        Role::Dialer {
            expect: "node-p1".into(),
        },
    );
    match again.start().await.unwrap() {
        Some(Frame::Hello(h)) => assert_eq!(h.receipts_from_you, r.upto),
        other => panic!("a hello, got {other:?}"),
    }
    // A parent does not take receipts from its child.
    let err = down
        .handle(Frame::Receipts(Receipts {
            upto: 1,
            receipts: vec![Receipt {
                doc: "roster/g1".into(),
                node_id: "node-x".into(),
                unit: "x".into(),
                heads: heads("x"),
                at: 1,
            }],
        }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("protocol"), "{err}");
}
