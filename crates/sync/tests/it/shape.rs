//! The schema gate ([`hopluu_model::shape`]): changes from an authorised
//! child that break the shape of a roster are held with the field and the
//! reason (`invalid-value`), with what builds on them; the rest of the
//! update is applied, the batch acknowledged, and the session goes on.

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjType, ReadDoc};
use hopluu_store::quarantine::{QuarantineFilter, QuarantineState};
use hopluu_sync::Limits;
use hopluu_sync::frame::{DocUpdate, Payload};

use crate::fixtures;
use crate::handmade::{accepting, ack, actor, node, roster};

/// One change on `base`'s heads by the commune c1 (under an actor of its
/// own, so that concurrent ones merge), made by `f` on the roster's
/// member `m-g1`.
fn change_on(
    base: &Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId),
) -> Automerge {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut d = base.fork();
    d.set_actor(hopluu_model::Author::actor_for(
        "node-c1",
        &fixtures::uid("c1"),
        format!("shape-{n}").as_bytes(),
    ));
    let members = d.get(automerge::ROOT, "members").unwrap().unwrap().1;
    let member = d.get(&members, "m-g1").unwrap().unwrap().1;
    let mut tx = d.transaction();
    f(&mut tx, &member);
    tx.commit();
    d
}

fn newest(d: &Automerge) -> ChangeHash {
    d.get_heads()[0]
}

#[tokio::test(flavor = "current_thread")]
async fn misshapen_values_are_held_naming_the_field_and_the_rest_applies() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let doc = roster("g1");
    let base = Automerge::load(&p1.doc_bytes(&doc).await.unwrap().unwrap()).unwrap();
    let before = base.get_heads();

    let bad_date = change_on(&base, |tx, m| {
        tx.put(m, "birth_date", "not-a-date").unwrap();
    });
    let as_text = change_on(&base, |tx, m| {
        let t = tx.put_object(m, "position", ObjType::Text).unwrap();
        tx.splice_text(&t, 0, 0, "Kế toán").unwrap();
    });
    let as_number = change_on(&base, |tx, m| {
        tx.put(m, "position", 42).unwrap();
    });
    let unknown = change_on(&base, |tx, m| {
        tx.put(m, "salary_vnd", "9.000.000").unwrap();
    });
    let bad_enum = change_on(&base, |tx, m| {
        tx.put(m, "gender", "unknown").unwrap();
    });
    let good = change_on(&base, |tx, m| {
        tx.put(m, "position", "Kế toán trưởng").unwrap();
    });
    // And one that builds on the bad date: it waits for it.
    let mut after_bad = bad_date.fork();
    after_bad.set_actor(actor("c1"));
    let mut tx = after_bad.transaction();
    let members = tx.get(automerge::ROOT, "members").unwrap().unwrap().1;
    let member = tx.get(&members, "m-g1").unwrap().unwrap().1;
    tx.put(&member, "status_reason", "đã sửa").unwrap();
    tx.commit();

    let mut all = base.fork();
    for d in [
        &bad_date, &as_text, &as_number, &unknown, &bad_enum, &good, &after_bad,
    ] {
        all.merge(&mut d.clone()).unwrap();
    }
    let update = DocUpdate {
        doc: doc.to_string(),
        heads: all.get_heads(),
        payload: Payload::Changes(all.save_after(&before)),
    };
    let mut s = accepting(&p1, "p1", "c1", Limits::default()).await;
    let a = ack(&mut s, vec![update]).await;
    let d = &a.docs[0];
    assert!(d.rejected.is_empty(), "acknowledged, not refused: {a:?}");
    let mut held = d.quarantined.clone();
    held.sort();
    let mut want = vec![
        newest(&bad_date),
        newest(&as_text),
        newest(&as_number),
        newest(&unknown),
        newest(&bad_enum),
        newest(&after_bad),
    ];
    want.sort();
    assert_eq!(held, want, "every misshapen change, and what waits on one");
    // The good change is applied, alone.
    assert_eq!(p1.doc_heads(&doc).await.unwrap(), Some(vec![newest(&good)]));
    let entries = p1
        .quarantine_list(&QuarantineFilter {
            state: Some(QuarantineState::Held),
            ..Default::default()
        })
        .await
        .unwrap();
    let reason = |h: ChangeHash| {
        let e = entries.iter().find(|e| e.hash == h).expect("an entry");
        (e.code.clone(), e.reason.clone())
    };
    for (change, field, why) in [
        (&bad_date, "members.m-g1.birth_date", "birth_date"),
        (&as_text, "members.m-g1.position", "automerge text object"),
        (
            &as_number,
            "members.m-g1.position",
            "must be a string, got an integer",
        ),
        (&unknown, "members.m-g1.salary_vnd", "unknown path"),
        (&bad_enum, "members.m-g1.gender", "gender"),
    ] {
        let (code, text) = reason(newest(change));
        assert_eq!(code, "invalid-value", "{text}");
        assert!(
            text.contains(field) && text.contains(why),
            "{field}: {text}"
        );
        // A value written is never repeated (it may be personal data).
        assert!(
            !text.contains("not-a-date") && !text.contains("9.000.000"),
            "{text}"
        );
    }
    assert_eq!(reason(newest(&after_bad)).0, "waits");

    // The session goes on: the next edit is applied.
    let next = change_on(&good, |tx, m| {
        tx.put(m, "position", "Phó phòng").unwrap();
    });
    let heads = next.get_heads();
    let a = ack(
        &mut s,
        vec![DocUpdate {
            doc: doc.to_string(),
            heads: heads.clone(),
            payload: Payload::Changes(next.save_after(&good.get_heads())),
        }],
    )
    .await;
    assert!(
        a.docs[0].rejected.is_empty() && a.docs[0].quarantined.is_empty(),
        "{a:?}"
    );
    assert_eq!(p1.doc_heads(&doc).await.unwrap(), Some(heads));
}
