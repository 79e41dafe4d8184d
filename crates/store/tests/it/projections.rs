//! Projections equal documents after every write: a scripted history of a
//! federation's year, with [`check::consistent`] after each step.

use anyhow::{Context, Result, ensure};
use automerge::Automerge;
use hopluu_model::emulation::{self, InitiativeStatus};
use hopluu_model::member::{self, Gender, MemberStatus, MemberUpdate, PrivateData};
use hopluu_model::unit::{self, UnitStatus};
use hopluu_model::{Author, DocId, ModelError};
use hopluu_store::Store;

use crate::check::consistent;
use crate::harness::*;

suite!(
    case_projections_follow_every_write,
    case_concurrent_edits_merged_in_project_right,
);

/// Runs one step and checks every projection after it.
macro_rules! step {
    ($store:expr, $what:literal, $e:expr) => {{
        let out = $e.await.context($what)?;
        consistent($store)
            .await
            .with_context(|| format!("after: {}", $what))?;
        out
    }};
}

pub async fn case_projections_follow_every_write(store: Store) -> Result<()> {
    let s = &store;
    step!(
        s,
        "create the root",
        create_unit(s, "vn", "Tổng Liên đoàn", "central", None)
    );
    step!(
        s,
        "create a province",
        create_unit(s, "p1", "LĐLĐ tỉnh Hậu Giang", "provincial", Some("vn"))
    );
    step!(
        s,
        "create a second province",
        create_unit(s, "p2", "LĐLĐ TP Cần Thơ", "provincial", Some("vn"))
    );
    step!(
        s,
        "create a district",
        create_unit(s, "d1", "LĐLĐ huyện Châu Thành", "district", Some("p1"))
    );
    step!(
        s,
        "create grassroots 1",
        create_unit(s, "g1", "CĐCS Mía đường", "grassroots", Some("d1"))
    );
    step!(
        s,
        "create grassroots 2",
        create_unit(s, "g2", "CĐCS Trường Ngã Sáu", "grassroots", Some("d1"))
    );

    let people = [
        ("g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001"),
        ("g1", "m-binh", "Lê Thị Bình", "nữ", "HG-0002"),
        ("g1", "m-cuong", "Trần Quốc Cường", "nam", "HG-0003"),
        ("g1", "m-dung", "Phạm Thị Dung", "nữ", "HG-0004"),
        ("g1", "m-em", "Võ Văn Em", "khác", "HG-0005"),
        ("g2", "m-giang", "Đặng Thu Giang", "nữ", "HG-0006"),
        ("g2", "m-hai", "Huỳnh Văn Hải", "nam", "HG-0007"),
    ];
    for (u, id, name, gender, card) in people {
        step!(s, "add a member", add_member(s, u, id, name, gender, card));
    }
    let buckets: Vec<DocId> = s
        .doc_ids()
        .await?
        .into_iter()
        .filter(|d| matches!(d, DocId::Roster { unit, .. } if unit.as_str() == "g1"))
        .collect();
    ensure!(
        buckets.len() >= 2,
        "five members in buckets of four: {buckets:?}"
    );

    let roster = roster_of(s, "m-an", "g1").await?;
    step!(
        s,
        "update a member",
        write(s, &roster, |doc, a| member::update(
            doc,
            a,
            &mid("m-an"),
            &MemberUpdate {
                full_name: Some("Nguyễn Văn Ân".to_owned()),
                position: Some("Chủ tịch CĐCS".to_owned()),
                gender: Some(Gender::Male),
                birth_date: Some(d("1988-02-29")),
                ..Default::default()
            },
            today(),
        ))
    );
    let private_doc = member::private_doc(
        &uid("g1"),
        match &roster {
            DocId::Roster { bucket, .. } => *bucket,
            _ => unreachable!(),
        },
    );
    step!(
        s,
        "change private data",
        write(s, &private_doc, |doc, a| member::put_private(
            doc,
            a,
            &uid("g1"),
            match &private_doc {
                DocId::RosterPrivate { bucket, .. } => *bucket,
                _ => unreachable!(),
            },
            &mid("m-an"),
            &PrivateData::parse("", "Hoa", "Công giáo").unwrap(),
        ))
    );
    step!(
        s,
        "a member leaves",
        end_member(
            s,
            "m-binh",
            "g1",
            MemberStatus::Left,
            "nghỉ việc",
            "2025-03-31"
        )
    );
    step!(
        s,
        "a member ceases",
        end_member(
            s,
            "m-cuong",
            "g1",
            MemberStatus::Ceased,
            "khai trừ",
            "2025-04-30"
        )
    );
    step!(
        s,
        "transfer a member",
        transfer(s, "m-dung", "g1", "g2", "2025-05-15")
    );
    step!(
        s,
        "transfer them back",
        transfer(s, "m-dung", "g2", "g1", "2025-08-15")
    );

    step!(s, "launch a campaign", launch(s, "c1", "p1", "p1"));
    step!(
        s,
        "set plans",
        set_plans(s, "c1", &[("g1", 3, 2), ("g2", 2, 1)])
    );
    step!(
        s,
        "change a plan",
        set_plans(s, "c1", &[("g1", 4, 2), ("d1", 1, 0)])
    );
    let em = emulation::doc_id(&uid("g1"), &cid("c1"));
    step!(
        s,
        "register",
        write(s, &em, |doc, a| emulation::register(
            doc,
            a,
            &uid("g1"),
            &cid("c1"),
            d("2025-01-20"),
            "Hoàn thành vượt mức"
        ))
    );
    let i1 = step!(
        s,
        "record an initiative",
        initiative(
            s,
            "g1",
            "c1",
            "Sáng kiến 1",
            5_000_000,
            InitiativeStatus::Submitted
        )
    );
    step!(
        s,
        "record a valid initiative",
        initiative(
            s,
            "g1",
            "c1",
            "Sáng kiến 2",
            7_000_000,
            InitiativeStatus::Valid
        )
    );
    step!(
        s,
        "record a recognised initiative",
        initiative(
            s,
            "g2",
            "c1",
            "Sáng kiến 3",
            0,
            InitiativeStatus::Recognised
        )
    );
    step!(
        s,
        "review an initiative",
        write(s, &em, |doc, a| emulation::set_initiative_status(
            doc,
            a,
            &i1,
            InitiativeStatus::Rejected,
            "",
            "trùng"
        ))
    );
    let w1 = step!(
        s,
        "record a work",
        work(s, "g1", "c1", "Nhà văn hoá", 250_000_000, true)
    );
    // An emulation record's rows are rewritten only for the entries a write
    // touched: an entry removed (by a peer: hopluu itself never removes
    // one) loses its row, an entry edited keeps its new values, and the
    // others stay as they were.
    step!(
        s,
        "a write that removes an initiative and edits a work",
        write(s, &em, |doc, a| {
            use automerge::transaction::Transactable;
            use automerge::{ROOT, ReadDoc};
            hopluu_model::doc::edit(doc, a, "remove and edit", |tx| {
                let err =
                    |e: automerge::AutomergeError| ModelError::document("emulation", e.to_string());
                let none = || ModelError::document("emulation", "missing");
                let inits = tx
                    .get(ROOT, "initiatives")
                    .map_err(err)?
                    .ok_or_else(none)?
                    .1;
                tx.delete(&inits, i1.as_str()).map_err(err)?;
                let works = tx.get(ROOT, "works").map_err(err)?.ok_or_else(none)?.1;
                let w = tx
                    .get(&works, w1.id.as_str())
                    .map_err(err)?
                    .ok_or_else(none)?
                    .1;
                tx.put(&w, "value_vnd", 260_000_000i64).map_err(err)?;
                Ok(())
            })
        })
    );
    step!(
        s,
        "record another work",
        work(s, "g2", "c1", "Sân bóng", 90_000_000, false)
    );

    step!(
        s,
        "propose",
        propose(
            s,
            "pr1",
            "g1",
            "d1",
            "giay-khen",
            vec![member_recipient("m-an", "g1")]
        )
    );
    step!(
        s,
        "decide the proposal",
        decide(
            s,
            "a1",
            "d1",
            "district",
            "giay-khen",
            "2025-07-01",
            vec![member_recipient("m-an", "g1")],
            Some("pr1")
        )
    );
    step!(
        s,
        "decide a collective award",
        decide(
            s,
            "a2",
            "p1",
            "provincial",
            "co-thi-dua-cap-tinh",
            "2025-07-02",
            vec![hopluu_model::award::Recipient::Unit(uid("g2"))],
            None
        )
    );
    step!(s, "revoke", revoke(s, "a1", "2025-08-01"));

    step!(
        s,
        "move the district to the other province",
        write(s, &unit_doc("d1"), |doc, a| unit::move_to(
            doc,
            a,
            &uid("p2"),
            &decision("1656/QĐ", "2025-06-30", "2025-07-01")
        ))
    );
    step!(
        s,
        "merge a grassroots union into the other",
        write(s, &unit_doc("g2"), |doc, a| unit::close(
            doc,
            a,
            "Sáp nhập",
            &[uid("g1")],
            true,
            &decision("77/QĐ", "2025-08-20", "2025-09-01")
        ))
    );
    step!(
        s,
        "close the first province with successors",
        write(s, &unit_doc("p1"), |doc, a| unit::close(
            doc,
            a,
            "Hợp nhất tỉnh",
            &[uid("p2")],
            false,
            &decision("202/QĐ", "2025-06-12", "2025-07-01")
        ))
    );

    // Spot checks through the public reads.
    let g2 = s.list_units(&uid("p2"), true, None).await?;
    let g2 = g2
        .iter()
        .find(|u| u.id.as_str() == "g2")
        .context("g2 under p2")?;
    ensure!(
        g2.status == UnitStatus::Merged && g2.successors == [uid("g1")],
        "g2 merged"
    );
    ensure!(g2.depth == 2, "g2 two levels under p2 after the move");
    let locs = s.member_locations(&mid("m-dung")).await?;
    ensure!(
        locs.len() == 2,
        "two records of the transferred member: {locs:?}"
    );
    let active = s
        .active_card(&hopluu_model::CardNumber::parse("card", "HG-0004")?)
        .await?;
    ensure!(
        active.is_some_and(|l| l.unit.as_str() == "g1"),
        "the card is active in g1 again"
    );
    Ok(())
}

/// An office elsewhere: a fork of a stored document edited by another actor.
struct Elsewhere {
    author: Author,
    doc: Automerge,
}

impl Elsewhere {
    async fn fork(store: &Store, node: &str, id: &DocId) -> Result<Elsewhere> {
        let bytes = store.doc_bytes(id).await?.context("stored")?;
        Ok(Elsewhere {
            author: Author {
                actor: Author::actor_for(
                    node,
                    &hopluu_model::UnitId::parse("unit", "vn").unwrap(),
                    &[7, 7, 7, 7],
                ),
                time_millis: 0,
            },
            doc: Automerge::load(&bytes)?,
        })
    }
}

/// Receives the changes of some forks of one document, in one commit.
async fn receive(store: &Store, id: &DocId, from: &[&Elsewhere]) -> Result<()> {
    let mut tx = store.begin().await?;
    let doc = tx.doc(id).await?;
    for e in from {
        doc.load_incremental(&e.doc.save())?;
    }
    tx.commit().await?;
    Ok(())
}

/// Changes made concurrently on other nodes, merged into the store (the
/// projection then follows an automerge diff over a merge, with conflicts).
pub async fn case_concurrent_edits_merged_in_project_right(store: Store) -> Result<()> {
    let s = &store;
    small_tree(s).await?;
    add_member(s, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    add_member(s, "g1", "m-binh", "Lê Thị Bình", "nữ", "HG-0002").await?;
    let roster = roster_of(s, "m-an", "g1").await?;
    let bucket = match &roster {
        DocId::Roster { bucket, .. } => *bucket,
        _ => unreachable!(),
    };
    let mut a = Elsewhere::fork(s, "node-a", &roster).await?;
    let mut b = Elsewhere::fork(s, "node-b", &roster).await?;
    let rename = |name: &str| MemberUpdate {
        full_name: Some(name.to_owned()),
        ..Default::default()
    };
    member::update(
        &mut a.doc,
        &a.author,
        &mid("m-an"),
        &rename("Nguyễn Văn Ân"),
        today(),
    )?;
    member::end(
        &mut a.doc,
        &a.author,
        &mid("m-binh"),
        MemberStatus::Left,
        "",
        d("2025-05-01"),
        None,
    )?;
    member::update(
        &mut b.doc,
        &b.author,
        &mid("m-an"),
        &rename("Nguyễn Văn Án"),
        today(),
    )?;
    member::update(
        &mut b.doc,
        &b.author,
        &mid("m-an"),
        &MemberUpdate {
            position: Some("Tổ phó".to_owned()),
            ..Default::default()
        },
        today(),
    )?;
    let joined = member::joining(
        mid("m-moi"),
        uid("g1"),
        &member::NewMember::parse(&input("Trần Văn Mới", "nam", "HG-0003"), today())?,
    );
    member::add(&mut b.doc, &b.author, &uid("g1"), bucket, &joined)?;
    // And a local edit concurrent with both.
    write(s, &roster, |doc, au| {
        member::update(
            doc,
            au,
            &mid("m-binh"),
            &MemberUpdate {
                position: Some("Kế toán".to_owned()),
                ..Default::default()
            },
            today(),
        )
    })
    .await?;
    step!(s, "receive node a's edits", receive(s, &roster, &[&a]));
    step!(s, "receive node b's edits", receive(s, &roster, &[&b]));
    let members = s
        .read_doc(&roster, |doc| member::read_many(doc, None))
        .await?
        .context("roster")??;
    ensure!(
        members.len() == 3,
        "three members after the merge: {members:?}"
    );
    let an = members
        .iter()
        .find(|m| m.id.as_str() == "m-an")
        .context("m-an")?;
    ensure!(an.position == "Tổ phó", "b's position kept");
    ensure!(
        an.full_name == "Nguyễn Văn Ân" || an.full_name == "Nguyễn Văn Án",
        "one of the concurrent names wins: {}",
        an.full_name
    );

    // Two nodes move the same district concurrently: one parent wins, and
    // the closure table follows the winner.
    let d1 = unit_doc("d1");
    let mut a = Elsewhere::fork(s, "node-a", &d1).await?;
    let mut b = Elsewhere::fork(s, "node-b", &d1).await?;
    unit::move_to(
        &mut a.doc,
        &a.author,
        &uid("p2"),
        &decision("5/QĐ", "2025-07-01", ""),
    )?;
    unit::move_to(
        &mut b.doc,
        &b.author,
        &uid("vn"),
        &decision("6/QĐ", "2025-07-02", ""),
    )?;
    unit::rename(
        &mut b.doc,
        &b.author,
        "LĐLĐ huyện mới",
        &decision("6/QĐ", "2025-07-02", ""),
    )?;
    step!(
        s,
        "receive both moves in one commit",
        receive(s, &d1, &[&a, &b])
    );
    let moved = s.unit(&uid("d1")).await?.context("d1")?;
    let parent = moved.parent.clone().context("a parent")?;
    let listed = s.list_units(&parent, true, None).await?;
    ensure!(
        listed.iter().any(|u| u.id.as_str() == "g1" && u.depth == 2),
        "g1 under the winning parent {parent}: {listed:?}"
    );
    ensure!(
        s.list_units(&uid("p1"), true, None).await?.len() == 1,
        "nothing left under p1"
    );
    Ok(())
}
