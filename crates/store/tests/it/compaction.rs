//! Compaction: chunks folded into a new snapshot keep every change.

use anyhow::{Context, Result, ensure};
use hopluu_model::DocId;
use hopluu_model::member::{self, Member, MemberUpdate};
use hopluu_store::Store;
use sqlx::Row;

use crate::harness::*;

suite!(case_compaction_keeps_content);

/// `(chunks_len, snapshot_len, chunk rows)` of a stored document.
async fn storage(store: &Store, id: &DocId) -> Result<(i64, i64, i64)> {
    let r = sqlx::query(
        "SELECT chunks_len, snapshot_len, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM doc_chunks c WHERE c.doc = docs.id) \
         FROM docs WHERE doc_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(store.pool())
    .await?;
    Ok((r.get(0), r.get(1), r.get(2)))
}

pub async fn case_compaction_keeps_content(store: Store) -> Result<()> {
    small_tree(&store).await?;
    let mut members: Vec<Member> = Vec::new();
    for (id, name, card) in [
        ("m-an", "Nguyễn Văn An", "HG-0001"),
        ("m-binh", "Lê Thị Bình", "HG-0002"),
        ("m-cuong", "Trần Quốc Cường", "HG-0003"),
    ] {
        let (m, bucket) = add_member(&store, "g1", id, name, "nam", card).await?;
        ensure!(bucket == 0, "three members fit in bucket 0");
        members.push(m);
    }
    let roster = member::roster_doc(&uid("g1"), 0);
    let (_, snapshot, rows) = storage(&store, &roster).await?;
    let mut compactions = 0;
    let mut since = rows;
    let mut last_snapshot = snapshot;
    let mut edits = 0;
    while compactions < 3 {
        ensure!(edits < 300, "no compaction after {edits} edits");
        let i = edits % members.len();
        let m = &members[i];
        let position = format!("Vị trí {edits}");
        members[i] = write(&store, &roster, |doc, a| {
            member::update(
                doc,
                a,
                &m.id,
                &MemberUpdate {
                    position: Some(position.clone()),
                    ..Default::default()
                },
                today(),
            )
        })
        .await?;
        edits += 1;
        let (chunks, snapshot, rows) = storage(&store, &roster).await?;
        if chunks == 0 {
            compactions += 1;
            ensure!(rows == 0, "compacted, yet {rows} chunk rows remain");
            ensure!(
                snapshot > last_snapshot,
                "the new snapshot ({snapshot} bytes) holds more than the old ({last_snapshot})"
            );
            since = 0;
        } else {
            since += 1;
            ensure!(
                rows == since,
                "{rows} chunk rows, {since} writes since the snapshot"
            );
            ensure!(
                snapshot == last_snapshot,
                "the snapshot changed without compaction"
            );
            ensure!(
                chunks as f64 <= (snapshot as f64).max(256.0),
                "chunks ({chunks} bytes) outgrew the snapshot ({snapshot}) without compaction"
            );
        }
        last_snapshot = snapshot;
        // Content is right after every write, compacted or not.
        let loc = store
            .current_member_loc(&members[i].id)
            .await?
            .context("member")?;
        ensure!(
            store.member(&loc).await?.as_ref() == Some(&members[i]),
            "after edit {edits}"
        );
    }

    let heads = store.doc_heads(&roster).await?.context("heads")?;
    for (label, s) in [("warm", store.clone()), ("cold", reopen(&store).await?)] {
        let in_doc = s
            .read_doc(&roster, |d| (d.get_heads(), member::read_many(d, None)))
            .await?
            .context("roster")?;
        ensure!(in_doc.0 == heads, "{label}: heads");
        let mut got = in_doc.1?;
        got.sort_by(|a, b| a.id.cmp(&b.id));
        let mut want = members.clone();
        want.sort_by(|a, b| a.id.cmp(&b.id));
        ensure!(
            got == want,
            "{label}: the roster lost edits across compaction"
        );
        let (listed, _) = s.list_members(&uid("g1"), false, None, 10, 0).await?;
        for m in &members {
            ensure!(
                listed
                    .iter()
                    .any(|l| l.id == m.id && l.position == m.position),
                "{label}: projection of {}",
                m.id
            );
        }
    }
    Ok(())
}
