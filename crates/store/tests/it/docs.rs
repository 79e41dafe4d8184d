//! Every document kind round-trips: what a commit wrote is what the store
//! reads back, through its cache and through a cold store on the same
//! database (snapshot + chunks).

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use automerge::{Automerge, ChangeHash, hydrate};
use hopluu_model::award::{self, NewAward, NewProposal, Recipient};
use hopluu_model::campaign::{self, NewCampaign, Plan};
use hopluu_model::emulation::{self, InitiativeStatus, NewInitiative, NewWork};
use hopluu_model::member::{self, MemberUpdate, NewMember, PrivateData};
use hopluu_model::unit;
use hopluu_model::{AwardId, DocId, KindId, ProposalId};
use hopluu_store::Store;

use crate::harness::*;

suite!(case_round_trip_every_kind, case_missing_document_reads_none);

/// What was committed for one document: heads and content.
type Written = BTreeMap<DocId, (Vec<ChangeHash>, hydrate::Value)>;

/// Records the document's state as the commit will store it.
fn note(written: &mut Written, id: &DocId, doc: &Automerge) {
    written.insert(id.clone(), (doc.get_heads(), doc.hydrate(None)));
}

async fn check_written(store: &Store, written: &Written) -> Result<()> {
    for (id, (heads, content)) in written {
        let (h, c) = store
            .read_doc(id, |d| (d.get_heads(), d.hydrate(None)))
            .await?
            .with_context(|| format!("{id} was committed but reads as missing"))?;
        ensure!(
            h == *heads,
            "{id}: heads read back differ from those written"
        );
        ensure!(c == *content, "{id}: content read back differs");
        ensure!(
            store.doc_heads(id).await?.as_ref() == Some(heads),
            "{id}: the stored heads differ from those written"
        );
        let bytes = store.doc_bytes(id).await?.context("doc_bytes")?;
        let loaded = Automerge::load(&bytes)?;
        ensure!(loaded.get_heads() == *heads, "{id}: doc_bytes heads");
    }
    Ok(())
}

pub async fn case_round_trip_every_kind(store: Store) -> Result<()> {
    let a = author(&store);
    let mut written = Written::new();

    // Units: the root, a province and a grassroots union, one renamed.
    small_tree(&store).await?;
    let g1 = unit_doc("g1");
    let renamed = write(&store, &g1, |doc, a| {
        unit::rename(
            doc,
            a,
            "CĐCS Công ty CP Mía đường Cần Thơ",
            &decision("12/QĐ", "2025-07-01", "2025-07-01"),
        )
    })
    .await?;
    ensure!(renamed.names.len() == 2, "rename keeps the history");

    // Roster and private roster: two members, one updated, one who left.
    let (an, bucket_an) =
        add_member(&store, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    add_member(&store, "g1", "m-binh", "Lê Thị Bình", "nữ", "HG-0002").await?;
    let roster_an = member::roster_doc(&uid("g1"), bucket_an);
    let an = write(&store, &roster_an, |doc, a| {
        member::update(
            doc,
            a,
            &an.id,
            &MemberUpdate {
                position: Some("Tổ trưởng".to_owned()),
                ..Default::default()
            },
            today(),
        )
    })
    .await?;
    let binh = end_member(
        &store,
        "m-binh",
        "g1",
        member::MemberStatus::Left,
        "nghỉ hưu",
        "2025-05-31",
    )
    .await?;

    // Every other kind, each written in its own commit and noted as
    // committed.
    let c1 = cid("c1");
    let new_c = NewCampaign::parse(
        Some("c1"),
        "p1",
        "Thi đua lao động giỏi",
        "Năm 2025",
        "2025-01-01",
        "2025-12-31",
        "p1",
    )?;
    let plans = vec![(
        uid("g1"),
        Plan {
            initiative_quota: 3,
            works_quota: 1,
        },
    )];
    let new_i = NewInitiative::parse(
        "Cải tiến dây chuyền ép mía",
        &["Nguyễn Văn An".to_owned()],
        150_000_000,
        "2025-03-01",
        today(),
    )?;
    let new_w = NewWork::parse(
        "Nhà văn hoá công nhân",
        800_000_000,
        true,
        "2025-04-30",
        today(),
    )?;
    let giay_khen = award_type("giay-khen");
    let pid = ProposalId::parse("proposal_id", "p-2025-1")?;
    let aid = AwardId::parse("award_id", "a-2025-1")?;
    let priv_doc = member::private_doc(&uid("g1"), bucket_an);
    let em = emulation::doc_id(&uid("g1"), &c1);
    let campaign_doc = DocId::Campaign(c1.clone());
    let proposal_doc = DocId::Proposal(pid.clone());
    let award_doc = DocId::Award(aid.clone());

    let mut tx = store.begin().await?;
    let doc = tx.doc(&campaign_doc).await?;
    campaign::create(doc, &a, &new_c)?;
    let c = campaign::set_plans(doc, &a, &plans)?;
    note(&mut written, &campaign_doc, doc);
    tx.commit().await?;

    let mut tx = store.begin().await?;
    let doc = tx.doc(&em).await?;
    emulation::register(doc, &a, &uid("g1"), &c1, d("2025-01-15"), "Vượt kế hoạch")?;
    let i = emulation::record_initiative(doc, &a, &uid("g1"), &c1, &new_i)?;
    emulation::set_initiative_status(doc, &a, &i.id, InitiativeStatus::Valid, "", "đạt")?;
    emulation::record_work(doc, &a, &uid("g1"), &c1, &new_w)?;
    let e = emulation::read(doc)?;
    note(&mut written, &em, doc);
    tx.commit().await?;

    let mut tx = store.begin().await?;
    let doc = tx.doc(&proposal_doc).await?;
    let p = award::propose(
        doc,
        &a,
        &NewProposal {
            id: pid.clone(),
            proposing_unit: uid("g1"),
            addressed_unit: uid("d1"),
            award_type: &giay_khen,
            campaign: Some(c1.clone()),
            candidates: vec![member_recipient("m-an", "g1"), Recipient::Unit(uid("g1"))],
            reason: "Hoàn thành xuất sắc".to_owned(),
            proposed_on: d("2025-06-01"),
        },
    )?;
    note(&mut written, &proposal_doc, doc);
    tx.commit().await?;

    let mut tx = store.begin().await?;
    let doc = tx.doc(&award_doc).await?;
    award::decide(
        doc,
        &a,
        &NewAward {
            id: aid.clone(),
            issuing_unit: uid("d1"),
            issuing_kind: KindId::parse("kind", "district")?,
            decision_no: "45/QĐ-LĐLĐ".to_owned(),
            decided_on: d("2025-06-20"),
            effective_on: d("2025-07-01"),
            award_type: &giay_khen,
            recipients: vec![member_recipient("m-an", "g1"), Recipient::Unit(uid("g1"))],
            campaign: Some(c1.clone()),
            proposal: Some(pid.clone()),
            reason: "Thành tích năm 2025".to_owned(),
        },
    )?;
    let aw = award::revoke(doc, &a, d("2025-08-01"), "Trùng danh sách")?;
    note(&mut written, &award_doc, doc);
    tx.commit().await?;

    let private = PrivateData::parse("079190001234", "Khmer", "Phật giáo")?;
    let mut tx = store.begin().await?;
    let doc = tx.doc(&priv_doc).await?;
    member::put_private(doc, &a, &uid("g1"), bucket_an, &an.id, &private)?;
    note(&mut written, &priv_doc, doc);
    tx.commit().await?;

    // The remaining documents as they are now (written by the helpers).
    let roster_binh = roster_of(&store, "m-binh", "g1").await?;
    for id in [
        unit_doc("vn"),
        unit_doc("p1"),
        g1.clone(),
        roster_an.clone(),
        roster_binh,
    ] {
        let (h, c) = store
            .read_doc(&id, |d| (d.get_heads(), d.hydrate(None)))
            .await?
            .context("stored")?;
        written.insert(id, (h, c));
    }

    let new_binh = NewMember::parse(&input("Lê Thị Bình", "nữ", "HG-0002"), today())?;
    for (label, s) in [("warm", store.clone()), ("cold", reopen(&store).await?)] {
        let ctx = || format!("{label} store");
        check_written(&s, &written).await.with_context(ctx)?;
        ensure!(
            s.unit(&uid("g1")).await? == Some(renamed.clone()),
            "{label}: unit"
        );
        let loc = s
            .current_member_loc(&an.id)
            .await?
            .context("m-an located")?;
        ensure!(
            s.member(&loc).await? == Some(an.clone()),
            "{label}: member an"
        );
        let loc = s
            .current_member_loc(&binh.id)
            .await?
            .context("m-binh located")?;
        ensure!(
            s.member(&loc).await? == Some(binh.clone()),
            "{label}: member binh"
        );
        ensure!(
            s.private_data(&an.id, &uid("g1")).await? == Some(private.clone()),
            "{label}: private data of an (projection)"
        );
        ensure!(
            s.private_data(&binh.id, &uid("g1")).await? == Some(new_binh.private.clone()),
            "{label}: private data of binh (projection)"
        );
        let from_doc = s
            .read_doc(&priv_doc, |d| member::read_private(d, None))
            .await?
            .context("private roster stored")??;
        ensure!(
            from_doc.iter().any(|(m, p)| *m == an.id && *p == private),
            "{label}: private data of an (document)"
        );
        ensure!(
            s.campaign(&c1).await? == Some(c.clone()),
            "{label}: campaign"
        );
        ensure!(
            s.emulation(&uid("g1"), &c1).await? == Some(e.clone()),
            "{label}: emulation"
        );
        ensure!(
            s.proposal(&pid).await? == Some(p.clone()),
            "{label}: proposal"
        );
        ensure!(s.award(&aid).await? == Some(aw.clone()), "{label}: award");
        ensure!(
            s.proposals(&uid("d1")).await? == vec![p.clone()],
            "{label}: proposals addressed to d1"
        );
        ensure!(
            s.awards(&uid("g1"), Some(2025)).await? == vec![aw.clone()],
            "{label}: awards of g1 in 2025"
        );
        ensure!(
            s.campaigns_covering(&uid("g1")).await? == vec![c.clone()],
            "{label}: campaigns covering g1"
        );
        // Six units, the roster and private roster of g1 (both members fit
        // in bucket 0), the campaign, emulation, proposal and award.
        ensure!(s.doc_count().await? == 12, "{label}: doc count");
    }
    Ok(())
}

pub async fn case_missing_document_reads_none(store: Store) -> Result<()> {
    small_tree(&store).await?;
    ensure!(store.unit(&uid("nowhere")).await?.is_none(), "unit");
    ensure!(store.campaign(&cid("nope")).await?.is_none(), "campaign");
    ensure!(
        store
            .read_doc(&unit_doc("nowhere"), |_| ())
            .await?
            .is_none(),
        "read_doc"
    );
    ensure!(
        store.doc_heads(&unit_doc("nowhere")).await?.is_none(),
        "heads"
    );
    // Looking at a document in a transaction does not create it.
    let mut tx = store.begin().await?;
    ensure!(!tx.exists(&unit_doc("nowhere")).await?, "exists");
    ensure!(tx.exists(&unit_doc("g1")).await?, "g1 exists");
    let done = tx.commit().await?;
    ensure!(
        done.docs.is_empty(),
        "a commit without edits stores nothing: {done:?}"
    );
    ensure!(
        store
            .read_doc(&unit_doc("nowhere"), |_| ())
            .await?
            .is_none(),
        "read_doc after an empty commit"
    );
    Ok(())
}
