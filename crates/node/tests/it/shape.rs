//! A faulty child over real TLS: an authorised child node (its
//! certificate, its own subtree) sends a roster update whose changes
//! break the roster's shape (a malformed date, a text object and a number
//! where a string belongs, a path no version writes, a gender out of
//! range) beside a good change. Each misshapen change is quarantined with
//! the field and the reason, the good one applied, the batch acknowledged;
//! and the link keeps converging: the next update is applied and the
//! node's heads are the child's, bar what it held.

use anyhow::{Context, Result, bail, ensure};
use automerge::transaction::{Transactable, Transaction};
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ReadDoc};
use hopluu_model::{Author, UnitId};
use hopluu_node::convert::frames::{from_pb, to_pb};
use hopluu_proto::v1 as pb;
use hopluu_store::quarantine::{QuarantineFilter, QuarantineState};
use hopluu_sync::frame::{Ack, Batch, DocUpdate, Frame, Payload};

use crate::admin::roster;
use crate::harness::*;
use crate::sync_stream::{SyncStream, hello};

/// One change by the child on `base`'s heads, to the roster's first
/// member (under an actor of its own, so that concurrent ones merge).
fn change_on(base: &Automerge, n: u8, f: impl FnOnce(&mut Transaction<'_>, &ObjId)) -> Automerge {
    let mut d = base.fork();
    d.set_actor(Author::actor_for(
        "hg-node",
        &UnitId::parse("unit", HG).expect("a unit id"),
        &[b's', n],
    ));
    let members = d.get(automerge::ROOT, "members").unwrap().unwrap().1;
    let first = d.keys(&members).next().expect("a member");
    let member = d.get(&members, first.as_str()).unwrap().unwrap().1;
    let mut tx = d.transaction();
    f(&mut tx, &member);
    tx.commit();
    d
}

/// Sends `update` in a batch and reads the acknowledgement.
async fn send(stream: &mut SyncStream, id: u64, update: DocUpdate) -> Result<Ack> {
    stream
        .send
        .send(to_pb(Frame::Batch(Batch {
            id,
            from_seq: 0,
            upto_seq: 0,
            docs: vec![update],
        })))
        .await?;
    loop {
        let frame = stream
            .next()
            .await?
            .context("the stream ended without an acknowledgement")?;
        match from_pb(frame)? {
            Frame::Ack(a) if a.batch == id => return Ok(a),
            Frame::Refusal(r) => bail!("refused: {} {}", r.code, r.reason),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_faulty_childs_misshapen_values_are_held_and_the_link_converges() -> Result<()> {
    let national = Node::with_tree().await?;
    national
        .replication
        .allow_child("hg-node", &UnitId::parse("unit", HG)?);
    national
        .add(HG_A, person("Trần Thị Bích", "HG-0001", pb::Gender::Female))
        .await?;
    let doc = roster(HG_A);
    let base = Automerge::load(
        &national
            .app
            .store()
            .doc_bytes(&doc)
            .await?
            .context("the roster")?,
    )?;
    let before = base.get_heads();
    let bad: Vec<(Automerge, &str, &str)> = vec![
        (
            change_on(&base, 1, |tx, m| {
                tx.put(m, "birth_date", "not-a-date").unwrap();
            }),
            "birth_date",
            "date",
        ),
        (
            change_on(&base, 2, |tx, m| {
                let t = tx.put_object(m, "position", ObjType::Text).unwrap();
                tx.splice_text(&t, 0, 0, "Kế toán").unwrap();
            }),
            "position",
            "text object",
        ),
        (
            change_on(&base, 3, |tx, m| {
                tx.put(m, "position", 42).unwrap();
            }),
            "position",
            "must be a string, got an integer",
        ),
        (
            change_on(&base, 4, |tx, m| {
                tx.put(m, "nickname", "Bích").unwrap();
            }),
            "nickname",
            "unknown path",
        ),
        (
            change_on(&base, 5, |tx, m| {
                tx.put(m, "gender", "unknown").unwrap();
            }),
            "gender",
            "gender",
        ),
    ];
    let good = change_on(&base, 6, |tx, m| {
        tx.put(m, "position", "Kế toán trưởng").unwrap();
    });
    let mut all = base.fork();
    for (d, _, _) in &bad {
        all.merge(&mut d.clone())?;
    }
    all.merge(&mut good.clone())?;

    let mut stream = SyncStream::open(
        &national,
        &Caller::node("hg-node", HG),
        hello("hg-node", HG),
    )
    .await?;
    let a = send(
        &mut stream,
        1,
        DocUpdate {
            doc: doc.to_string(),
            heads: all.get_heads(),
            payload: Payload::Changes(all.save_after(&before)),
        },
    )
    .await?;
    ensure!(a.docs[0].rejected.is_empty(), "acknowledged: {a:?}");
    let mut held = a.docs[0].quarantined.clone();
    held.sort();
    let mut want: Vec<ChangeHash> = bad.iter().map(|(d, _, _)| d.get_heads()[0]).collect();
    want.sort();
    ensure!(held == want, "the five misshapen changes held: {held:?}");
    let here = national.app.store().doc_heads(&doc).await?;
    ensure!(
        here == Some(good.get_heads()),
        "the good change applied, alone: {here:?}"
    );
    let entries = national
        .app
        .store()
        .quarantine_list(&QuarantineFilter {
            state: Some(QuarantineState::Held),
            ..Default::default()
        })
        .await?;
    for (d, field, why) in &bad {
        let e = entries
            .iter()
            .find(|e| e.hash == d.get_heads()[0])
            .context("an entry")?;
        ensure!(e.code == "invalid-value", "{e:?}");
        ensure!(
            e.reason.contains(field) && e.reason.contains(why),
            "{field}: {}",
            e.reason
        );
    }

    // The link goes on: the child's next edit is applied, and the node's
    // heads are the child's, bar the held changes.
    let next = change_on(&good, 7, |tx, m| {
        tx.put(m, "position", "Phó phòng kế toán").unwrap();
    });
    let a = send(
        &mut stream,
        2,
        DocUpdate {
            doc: doc.to_string(),
            heads: next.get_heads(),
            payload: Payload::Changes(next.save_after(&good.get_heads())),
        },
    )
    .await?;
    ensure!(
        a.docs[0].rejected.is_empty() && a.docs[0].quarantined.is_empty(),
        "{a:?}"
    );
    ensure!(national.app.store().doc_heads(&doc).await? == Some(next.get_heads()));
    drop(stream);
    national.stop().await
}
