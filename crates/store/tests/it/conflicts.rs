//! Conflicts, on both backends: concurrent writes to one field (made on
//! copies of a roster under two nodes' actors, then merged into the store
//! as replication would) are recorded in the commit that merges them, in
//! one batch or one change at a time, also in a document stored for the
//! first time; a local write elsewhere in the record leaves them; a
//! resolution (keeping a value, or typing a new one) or a later change
//! that overwrites the field clears them; bad resolutions are refused and
//! write nothing.

use anyhow::{Context, Result, ensure};
use automerge::{Automerge, Change, ChangeHash};
use hopluu_model::member::{self, MemberUpdate};
use hopluu_model::{Author, DocId, ModelError};
use hopluu_store::Store;
use hopluu_store::conflicts::{self, Conflict, ConflictFilter, Resolution};

use crate::harness::{add_member, author, mid, now, roster_of, small_tree, today, uid};

suite!(
    case_concurrent_edits_are_recorded_and_a_resolution_clears_them,
    case_a_conflict_arriving_one_change_at_a_time_is_found,
    case_a_later_overwrite_clears_a_conflict,
    case_a_new_document_holding_a_conflict_is_found,
    case_bad_resolutions_are_refused_and_write_nothing,
    case_a_conflict_is_stamped_with_the_store_clock,
);

/// The actor of a node hosting `unit`, writing at `time_millis`.
fn node(id: &str, unit: &str, time_millis: i64) -> Author {
    Author {
        actor: Author::actor_for(id, &uid(unit), b"test"),
        time_millis,
    }
}

fn position(p: &str) -> MemberUpdate {
    MemberUpdate {
        position: Some(p.to_owned()),
        ..Default::default()
    }
}

/// A copy of the stored document `id`.
async fn copy(store: &Store, id: &DocId) -> Result<Automerge> {
    let bytes = store.doc_bytes(id).await?.context("the stored document")?;
    Ok(Automerge::load(&bytes)?)
}

/// The changes `doc` has beyond `base`.
fn changes_since(doc: &Automerge, base: &[ChangeHash]) -> Vec<Change> {
    doc.get_changes(base)
}

/// Applies `changes` to the stored document `id` in one commit, as a
/// receiver would.
async fn merge(store: &Store, id: &DocId, changes: Vec<Change>) -> Result<()> {
    let mut tx = store.begin().await?;
    tx.doc(id).await?.apply_changes(changes)?;
    tx.commit().await?;
    Ok(())
}

/// Member `m` of `g1` edited at two nodes that did not see each other:
/// hau-giang's province node (`p1`) writes `ua`, the district's (`d1`)
/// `ub`. Returns the roster and the two edits' changes.
async fn concurrent(
    store: &Store,
    m: &str,
    ua: MemberUpdate,
    ub: MemberUpdate,
) -> Result<(DocId, Vec<Change>, Vec<Change>)> {
    let roster = roster_of(store, m, "g1").await?;
    let base = copy(store, &roster).await?;
    let heads = base.get_heads();
    let mut a = base.fork();
    member::update(&mut a, &node("node-p1", "p1", 1_000), &mid(m), &ua, today())?;
    let mut b = base.fork();
    member::update(&mut b, &node("node-d1", "d1", 2_000), &mid(m), &ub, today())?;
    Ok((roster, changes_since(&a, &heads), changes_since(&b, &heads)))
}

/// [`concurrent`] edits of `m`'s position: "Chủ tịch" and "Phó chủ tịch".
async fn two_edits(store: &Store, m: &str) -> Result<(DocId, Vec<Change>, Vec<Change>)> {
    concurrent(store, m, position("Chủ tịch"), position("Phó chủ tịch")).await
}

/// The only recorded conflict.
async fn only_conflict(store: &Store) -> Result<Conflict> {
    let all = store.conflicts(&ConflictFilter::default()).await?;
    ensure!(all.len() == 1, "one conflict: {all:?}");
    ensure!(store.conflict_count(None).await? == 1);
    Ok(all.into_iter().next().expect("one"))
}

async fn no_conflict(store: &Store) -> Result<()> {
    let all = store.conflicts(&ConflictFilter::default()).await?;
    ensure!(all.is_empty(), "no conflict: {all:?}");
    ensure!(store.conflict_count(None).await? == 0);
    Ok(())
}

async fn stored_position(store: &Store, m: &str) -> Result<String> {
    let locs = store.member_locations(&mid(m)).await?;
    let m = store
        .member(locs.first().context("a record")?)
        .await?
        .context("the member")?;
    Ok(m.position)
}

pub async fn case_concurrent_edits_are_recorded_and_a_resolution_clears_them(
    store: Store,
) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    add_member(&store, "g1", "m-2", "Trần Thị Bình", "female", "G1-0002").await?;
    no_conflict(&store).await?;

    let (roster, a, b) = two_edits(&store, "m-1").await?;
    let (ha, hb) = (a[0].hash(), b[0].hash());
    merge(&store, &roster, a.into_iter().chain(b).collect()).await?;

    let c = only_conflict(&store).await?;
    ensure!(c.doc == roster, "{c:?}");
    ensure!(c.path == "members/m-1/position", "{c:?}");
    ensure!(c.record == "m-1" && c.field == "position", "{c:?}");
    ensure!(store.conflict(c.id).await?.as_ref() == Some(&c));
    ensure!(
        store.conflict_count(Some(&roster)).await? == 1
            && store
                .conflicts(&ConflictFilter {
                    doc: Some(roster.clone()),
                    ..Default::default()
                })
                .await?
                .len()
                == 1
            && store
                .conflicts(&ConflictFilter {
                    after_id: c.id,
                    ..Default::default()
                })
                .await?
                .is_empty()
    );

    // Both values, who wrote them and when; the one reads show first.
    let (values, path) = store
        .read_doc(&roster, |d| {
            (conflicts::values(d, &c), conflicts::current_path(d, &c))
        })
        .await?
        .context("the roster")?;
    ensure!(path.as_deref() == Some("members/m-1/position"));
    ensure!(values.len() == 2, "{values:?}");
    let shown = stored_position(&store, "m-1").await?;
    ensure!(values[0].value == shown, "reads show {shown}");
    let by = |n: &str| values.iter().find(|v| v.node == n).cloned();
    let p1 = by("node-p1").context("node-p1's value")?;
    let d1 = by("node-d1").context("node-d1's value")?;
    ensure!(p1.value == "Chủ tịch" && p1.unit == "p1" && p1.written_at == 1_000);
    ensure!(d1.value == "Phó chủ tịch" && d1.unit == "d1" && d1.written_at == 2_000);
    ensure!(p1.change == Some(ha) && d1.change == Some(hb));
    ensure!(!p1.is_object && p1.op_id.contains('@'));
    ensure!(
        !format!("{p1:?}").contains("Chủ tịch"),
        "Debug hides values"
    );

    // A local write to another field of the record, and to another
    // member, leaves it.
    let mut tx = store.begin().await?;
    member::update(
        tx.doc(&roster).await?,
        &author(&store),
        &mid("m-1"),
        &MemberUpdate {
            full_name: Some("Nguyễn Văn Anh".into()),
            ..Default::default()
        },
        today(),
    )?;
    tx.commit().await?;
    only_conflict(&store).await?;

    // Resolving keeps the value named by its operation (not the one
    // reads show; named by the start of its op id, which tells it from
    // the other) as a new change by this node.
    let keep = values[1].clone();
    let at = keep.op_id.find('@').context("counter@actor")?;
    let mut tx = store.begin().await?;
    let c = tx.conflict(c.id).await?.context("inside the transaction")?;
    let change = conflicts::resolve(
        tx.doc(&roster).await?,
        &author(&store),
        &c,
        &Resolution::Keep(keep.op_id[..at + 13].to_owned()),
    )?;
    tx.commit().await?;
    no_conflict(&store).await?;
    ensure!(stored_position(&store, "m-1").await? == keep.value);
    let (values, heads) = store
        .read_doc(&roster, |d| (conflicts::values(d, &c), d.get_heads()))
        .await?
        .context("the roster")?;
    ensure!(heads == vec![change], "the resolution is the new head");
    ensure!(
        values.len() == 1 && values[0].value == keep.value,
        "{values:?}"
    );
    Ok(())
}

pub async fn case_a_conflict_arriving_one_change_at_a_time_is_found(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    let (roster, a, b) = two_edits(&store, "m-1").await?;
    // The first edit stands on what the store has: no conflict.
    merge(&store, &roster, a).await?;
    no_conflict(&store).await?;
    ensure!(stored_position(&store, "m-1").await? == "Chủ tịch");
    // The second was made beside it.
    merge(&store, &roster, b.clone()).await?;
    let c = only_conflict(&store).await?;
    ensure!(c.path == "members/m-1/position", "{c:?}");
    // Receiving it again changes nothing.
    merge(&store, &roster, b).await?;
    ensure!(only_conflict(&store).await? == c);

    // A new value typed in, on a store opened afresh (cold cache).
    let store2 = crate::harness::reopen(&store).await?;
    ensure!(store2.conflict_count(None).await? == 1);
    store2.close().await;
    let mut tx = store.begin().await?;
    conflicts::resolve(
        tx.doc(&roster).await?,
        &author(&store),
        &c,
        &Resolution::Value("  Ủy viên   Ban chấp hành ".into()),
    )?;
    tx.commit().await?;
    no_conflict(&store).await?;
    ensure!(stored_position(&store, "m-1").await? == "Ủy viên Ban chấp hành");
    Ok(())
}

pub async fn case_a_later_overwrite_clears_a_conflict(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    let (roster, a, b) = two_edits(&store, "m-1").await?;
    merge(&store, &roster, a.into_iter().chain(b).collect()).await?;
    only_conflict(&store).await?;
    // Another node that had both edits sets the field: its change, merged
    // here, leaves one value.
    let mut other = copy(&store, &roster).await?;
    let heads = other.get_heads();
    member::update(
        &mut other,
        &node("node-p1", "p1", 3_000),
        &mid("m-1"),
        &position("Ủy viên"),
        today(),
    )?;
    merge(&store, &roster, changes_since(&other, &heads)).await?;
    no_conflict(&store).await?;
    ensure!(stored_position(&store, "m-1").await? == "Ủy viên");
    Ok(())
}

pub async fn case_a_new_document_holding_a_conflict_is_found(store: Store) -> Result<()> {
    small_tree(&store).await?;
    // g2's roster is made and edited concurrently elsewhere, and arrives
    // here whole.
    let (m, _) = {
        let new = member::NewMember::parse(
            &crate::harness::input("Lê Văn Cường", "male", "G2-0001"),
            today(),
        )?;
        (member::joining(mid("m-9"), uid("g2"), &new), new)
    };
    let roster = member::roster_doc(&uid("g2"), 0);
    let mut base = Automerge::new();
    member::add(&mut base, &node("node-d1", "d1", 500), &uid("g2"), 0, &m)?;
    let mut a = base.fork();
    member::update(
        &mut a,
        &node("node-d1", "d1", 1_000),
        &mid("m-9"),
        &position("Tổ trưởng"),
        today(),
    )?;
    let mut b = base.fork();
    member::update(
        &mut b,
        &node("node-p1", "p1", 1_500),
        &mid("m-9"),
        &position("Tổ phó"),
        today(),
    )?;
    a.merge(&mut b)?;
    merge(&store, &roster, a.get_changes(&[])).await?;
    let c = only_conflict(&store).await?;
    ensure!(c.doc == roster && c.record == "m-9", "{c:?}");
    ensure!(c.path == "members/m-9/position", "{c:?}");
    Ok(())
}

pub async fn case_bad_resolutions_are_refused_and_write_nothing(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    let (roster, a, b) = two_edits(&store, "m-1").await?;
    merge(&store, &roster, a.into_iter().chain(b).collect()).await?;
    let c = only_conflict(&store).await?;
    let before = store.doc_heads(&roster).await?;

    let refused = |choice: Resolution, c: Conflict| {
        let store = store.clone();
        let roster = roster.clone();
        async move {
            let mut tx = store.begin().await?;
            let r = conflicts::resolve(tx.doc(&roster).await?, &author(&store), &c, &choice);
            drop(tx);
            anyhow::Ok(r.expect_err("refused"))
        }
    };
    let field = |e: &ModelError| match e {
        ModelError::Invalid { field, .. } | ModelError::Precondition { field, .. } => field.clone(),
        other => format!("{other:?}"),
    };
    let e = refused(Resolution::Keep("1@00ff".into()), c.clone()).await?;
    ensure!(field(&e) == "keep_op_id", "{e}");
    ensure!(e.to_string().contains("members/m-1/position"), "{e}");
    // Both actors' ids start with the hex of "node-": a start that does
    // not tell the values apart.
    let values = store
        .read_doc(&roster, |d| conflicts::values(d, &c))
        .await?
        .context("the roster")?;
    let at = values[0].op_id.find('@').context("counter@actor")?;
    ensure!(values[0].op_id[..at] == values[1].op_id[..at], "{values:?}");
    let e = refused(
        Resolution::Keep(values[0].op_id[..at + 10].to_owned()),
        c.clone(),
    )
    .await?;
    ensure!(
        field(&e) == "keep_op_id" && e.to_string().contains("more than one"),
        "{e}"
    );
    let e = refused(Resolution::Value("a\u{7}b".into()), c.clone()).await?;
    ensure!(field(&e) == "value", "{e}");
    let e = refused(Resolution::Value("x".repeat(1001)), c.clone()).await?;
    ensure!(field(&e) == "value", "{e}");

    // Nothing was written.
    ensure!(store.doc_heads(&roster).await? == before);
    only_conflict(&store).await?;

    // Once resolved, resolving again is refused.
    let mut tx = store.begin().await?;
    conflicts::resolve(
        tx.doc(&roster).await?,
        &author(&store),
        &c,
        &Resolution::Value("Chủ tịch".into()),
    )?;
    tx.commit().await?;
    let e = refused(Resolution::Value("Ủy viên".into()), c.clone()).await?;
    ensure!(
        field(&e) == "id" && e.to_string().contains("resolved already"),
        "{e}"
    );
    no_conflict(&store).await?;

    // A gender the model does not know: the record would not read back.
    add_member(&store, "g1", "m-2", "Trần Thị Bình", "female", "G1-0002").await?;
    let gender = |g| MemberUpdate {
        gender: Some(g),
        ..Default::default()
    };
    let (_, a, b) = concurrent(
        &store,
        "m-2",
        gender(member::Gender::Male),
        gender(member::Gender::Other),
    )
    .await?;
    merge(
        &store,
        &roster_of(&store, "m-2", "g1").await?,
        a.into_iter().chain(b).collect(),
    )
    .await?;
    let all = store.conflicts(&ConflictFilter::default()).await?;
    let g = all
        .iter()
        .find(|x| x.field == "gender")
        .context("the gender conflict")?
        .clone();
    ensure!(g.record == "m-2", "{g:?}");
    let g_roster = g.doc.clone();
    let g_before = store.doc_heads(&g_roster).await?;
    let mut tx = store.begin().await?;
    let e = conflicts::resolve(
        tx.doc(&g_roster).await?,
        &author(&store),
        &g,
        &Resolution::Value("banana".into()),
    )
    .expect_err("refused");
    drop(tx);
    ensure!(
        field(&e) == "value" && e.to_string().contains("gender"),
        "{e}"
    );
    ensure!(store.doc_heads(&g_roster).await? == g_before);
    // Keeping one of its values works.
    let mut tx = store.begin().await?;
    let doc = tx.doc(&g_roster).await?;
    let keep = conflicts::values(doc, &g)
        .into_iter()
        .find(|v| v.value == "other")
        .context("the value other")?;
    conflicts::resolve(doc, &author(&store), &g, &Resolution::Keep(keep.op_id))?;
    tx.commit().await?;
    no_conflict(&store).await?;
    Ok(())
}

/// The time a conflict was found is the merging store's, not a writer's.
pub async fn case_a_conflict_is_stamped_with_the_store_clock(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    let (roster, a, b) = two_edits(&store, "m-1").await?;
    merge(&store, &roster, a.into_iter().chain(b).collect()).await?;
    let c = only_conflict(&store).await?;
    ensure!(c.detected_at == now(), "{c:?}");
    Ok(())
}
