//! A whole document taken as it arrived ([`WriteTx::adopt`]): stored as
//! the bytes it came in, projected from what checking it read; and, once
//! edited in the same transaction, saved and read again like any other.
//! A document loaded outside the writer lock ([`WriteTx::offer`]) is
//! taken only while it is still what is stored.
//! (The runner then checks every projection row against the documents.)

use anyhow::{Result, ensure};
use automerge::Automerge;
use hopluu_model::member::MemberUpdate;
use hopluu_model::{DocId, member, shape};
use hopluu_store::tx::Loaded;
use hopluu_store::{Store, StoreOptions};
use sqlx::Row;

use crate::harness::{
    add_member, author, input, mid, reopen_with, roster_of, small_tree, today, uid,
};

suite!(
    case_an_adopted_roster_is_stored_as_it_came_and_projected_from_its_read,
    case_an_adopted_roster_edited_before_commit_is_saved_and_read_again,
    case_a_document_loaded_outside_the_lock_is_taken_only_while_still_stored,
);

/// A roster and its private roster for unit g1, bucket 0, made elsewhere:
/// the documents and the bytes each would arrive as.
fn made_elsewhere(store: &Store) -> Result<[(DocId, Automerge, Vec<u8>); 2]> {
    let g1 = uid("g1");
    let author = author(store);
    let mut roster = Automerge::new();
    let mut private = Automerge::new();
    for (id, name, card) in [
        ("m-an", "Nguyễn Văn An", "HG-0001"),
        ("m-binh", "Lê Thị Bình", "HG-0002"),
        ("m-cuong", "Trần Văn Cường", "HG-0003"),
    ] {
        let new = member::NewMember::parse(&input(name, "nam", card), today())?;
        let m = member::joining(mid(id), g1.clone(), &new);
        member::add(&mut roster, &author, &g1, 0, &m)?;
        member::put_private(&mut private, &author, &g1, 0, &m.id, &new.private)?;
    }
    let (rb, pb) = (roster.save(), private.save());
    Ok([
        (member::roster_doc(&g1, 0), roster, rb),
        (member::private_doc(&g1, 0), private, pb),
    ])
}

async fn stored_snapshot(store: &Store, id: &DocId) -> Result<Vec<u8>> {
    let row = sqlx::query("SELECT snapshot FROM docs WHERE doc_id = $1")
        .bind(id.to_string())
        .fetch_one(store.pool())
        .await?;
    Ok(row.get(0))
}

pub async fn case_an_adopted_roster_is_stored_as_it_came_and_projected_from_its_read(
    store: Store,
) -> Result<()> {
    let s = &store;
    small_tree(s).await?;
    let docs = made_elsewhere(s)?;
    let mut tx = s.begin().await?;
    for (id, doc, bytes) in docs.clone() {
        let read = shape::check_whole(&id, &doc)?;
        ensure!(read.is_some(), "checking a roster whole reads its members");
        tx.adopt(&id, doc, bytes, read).await?;
    }
    tx.commit().await?;
    for (id, _, bytes) in &docs {
        ensure!(
            stored_snapshot(s, id).await? == *bytes,
            "{id} is stored as the bytes it came in"
        );
    }
    let loc = s
        .current_member_loc(&mid("m-binh"))
        .await?
        .expect("projected");
    ensure!(loc.unit == uid("g1") && loc.bucket == 0, "{loc:?}");
    let binh = s.member(&loc).await?.expect("in the roster");
    ensure!(binh.full_name == "Lê Thị Bình", "{binh:?}");
    let private = s.private_data(&mid("m-cuong"), &uid("g1")).await?;
    ensure!(
        private.is_some_and(|p| p.ethnicity == "Kinh"),
        "the private roster is projected"
    );
    ensure!(s.private_rows().await? == 3, "three private rows");
    Ok(())
}

pub async fn case_an_adopted_roster_edited_before_commit_is_saved_and_read_again(
    store: Store,
) -> Result<()> {
    let s = &store;
    small_tree(s).await?;
    let [(id, doc, bytes), _] = made_elsewhere(s)?;
    let read = shape::check_whole(&id, &doc)?;
    let mut tx = s.begin().await?;
    tx.adopt(&id, doc, bytes.clone(), read).await?;
    // A fourth member written in the same transaction: what was read of
    // the document as it came no longer describes it.
    let new = member::NewMember::parse(&input("Phạm Thị Dung", "nữ", "HG-0004"), today())?;
    let dung = member::joining(mid("m-dung"), uid("g1"), &new);
    member::add(tx.doc(&id).await?, &author(s), &uid("g1"), 0, &dung)?;
    tx.commit().await?;
    let stored = stored_snapshot(s, &id).await?;
    ensure!(stored != bytes, "the edited document is saved anew");
    let reloaded = Automerge::load(&stored)?;
    ensure!(
        member::count(&reloaded) == 4,
        "the snapshot holds the fourth member"
    );
    let loc = s
        .current_member_loc(&mid("m-dung"))
        .await?
        .expect("the member added after adopting is projected");
    ensure!(s.member(&loc).await?.is_some(), "{loc:?}");
    Ok(())
}

async fn loaded_outside(store: &Store, id: &DocId) -> Result<Vec<Loaded>> {
    let fetched = store.fetch_uncached(std::slice::from_ref(id)).await?;
    Ok(fetched
        .into_iter()
        .map(|f| f.decode())
        .collect::<Result<_, _>>()?)
}

pub async fn case_a_document_loaded_outside_the_lock_is_taken_only_while_still_stored(
    store: Store,
) -> Result<()> {
    small_tree(&store).await?;
    // A store that caches nothing: every document is loaded, and may be
    // loaded ahead. (Written only through it from here on.)
    let options = StoreOptions {
        cache_docs: 0,
        ..store.options().clone()
    };
    let s = &reopen_with(&store, options).await?;
    add_member(s, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    let roster = roster_of(s, "m-an", "g1").await?;
    let fresh = loaded_outside(s, &roster).await?;
    let stale = loaded_outside(s, &roster).await?;
    ensure!(fresh.len() == 1 && stale.len() == 1, "loaded ahead");
    // Still what is stored: taken, and the edit on it commits.
    let mut tx = s.begin().await?;
    tx.offer(fresh);
    let rename = MemberUpdate {
        full_name: Some("Nguyễn Văn Ân".into()),
        ..Default::default()
    };
    member::update(
        tx.doc(&roster).await?,
        &author(s),
        &mid("m-an"),
        &rename,
        today(),
    )?;
    tx.commit().await?;
    // No longer what is stored (the rename came since): not taken, or the
    // rename would be lost.
    let mut tx = s.begin().await?;
    tx.offer(stale);
    let promote = MemberUpdate {
        position: Some("Tổ trưởng".into()),
        ..Default::default()
    };
    member::update(
        tx.doc(&roster).await?,
        &author(s),
        &mid("m-an"),
        &promote,
        today(),
    )?;
    tx.commit().await?;
    let loc = s
        .current_member_loc(&mid("m-an"))
        .await?
        .expect("projected");
    let an = s.member(&loc).await?.expect("in the roster");
    ensure!(
        an.full_name == "Nguyễn Văn Ân" && an.position == "Tổ trưởng",
        "both edits kept: {an:?}"
    );
    s.close().await;
    Ok(())
}
