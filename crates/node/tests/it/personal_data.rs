//! Personal data (Decree 13/2023, Law 91/2025): a node above
//! `[replication] private_depth` holds none and refuses requests that carry
//! or ask for it; de-identification on request removes a member's personal
//! data from every record the node holds, in reads, projections and the
//! documents' current state, and replicates; and no name, CCCD, ethnicity,
//! religion or birth date ever reaches a log line, a span or an error
//! message.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use automerge::{Automerge, ChangeHash, ObjId, ReadDoc, Value};
use hopluu_model::member::{self, DEIDENTIFIED_NAME};
use hopluu_model::{DocId, MemberId, UnitId};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::deidentify_member_request::Key;
use tonic::{Code, Response, Status};

use crate::harness::*;
use crate::replication::{child, eventually};

// A person nobody else in the suite uses, so that any occurrence of these
// strings in a log or a message is a leak.
pub(crate) const NAME: &str = "Ksor H'Bia Tmâm";
pub(crate) const NAME_KEY: &str = "ksor h'bia tmam";
pub(crate) const CCCD: &str = "079912345678";
pub(crate) const ETHNICITY: &str = "Brâu";
pub(crate) const RELIGION: &str = "Bửu Sơn Kỳ Hương";
pub(crate) const BIRTH: &str = "1987-04-23";
pub(crate) const POSITION: &str = "Thủ quỹ tổ Rạch Sỏi";
pub(crate) const CARD: &str = "HG-7701";
/// Every string that must never leave the node but in an answer to a
/// request for it.
pub(crate) const SECRETS: [&str; 7] = [NAME, NAME_KEY, CCCD, ETHNICITY, RELIGION, BIRTH, POSITION];

pub(crate) const REASON: &str = "Đơn đề nghị xoá dữ liệu cá nhân của đoàn viên";
pub(crate) const REFERENCE: &str = "15/ĐN-CĐCS";

/// The usual tree ([`Node::with_tree`]) on a node that holds private
/// rosters at every depth (`private_depth = 0`): one office's own node.
pub async fn private_tree() -> Result<Node> {
    let node = Node::start_with(tempfile::tempdir()?, |c| c.replication.private_depth = 0).await?;
    for (id, name, kind, parent) in [
        (HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN),
        (LC, "LĐLĐ tỉnh Lai Châu", "provincial", VN),
        (HG_CT, "Công đoàn xã Châu Thành", "commune", HG),
        (HG_A, "CĐCS Trường THPT A", "grassroots", HG_CT),
        (HG_B, "CĐCS Nhà máy B", "grassroots", HG_CT),
        (LC_C, "CĐCS Thủy điện Lai Châu", "grassroots", LC),
    ] {
        node.create_unit(id, name, kind, parent)
            .await
            .with_context(|| format!("creating {id}"))?;
    }
    Ok(node)
}

/// The distinctive person's form, every private field filled.
pub(crate) fn secret_person() -> pb::MemberInput {
    pb::MemberInput {
        full_name: NAME.into(),
        birth_date: BIRTH.into(),
        gender: pb::Gender::Female as i32,
        card_number: CARD.into(),
        joined_on: "2010-09-01".into(),
        position: POSITION.into(),
        national_id: CCCD.into(),
        ethnicity: ETHNICITY.into(),
        religion: RELIGION.into(),
    }
}

pub(crate) fn deidentify_by_card(card: &str) -> pb::DeidentifyMemberRequest {
    pb::DeidentifyMemberRequest {
        key: Some(Key::CardNumber(card.into())),
        reason: REASON.into(),
        reference: REFERENCE.into(),
    }
}

pub(crate) fn update(
    id: &str,
    edit: impl FnOnce(&mut pb::UpdateMemberRequest),
) -> pb::UpdateMemberRequest {
    let mut r = pb::UpdateMemberRequest {
        member_id: id.into(),
        ..Default::default()
    };
    edit(&mut r);
    r
}

/// Refused as FAILED_PRECONDITION with a message `{field}: {reason…}`.
#[track_caller]
pub(crate) fn expect_precondition<T: std::fmt::Debug>(
    r: Result<Response<T>, Status>,
    field: &str,
    reason: &str,
) -> String {
    let m = expect_code(r, Code::FailedPrecondition)
        .message()
        .to_owned();
    assert!(
        m.starts_with(&format!("{field}: {reason}")),
        "expected `{field}: {reason}…`, got {m:?}"
    );
    m
}

/// Where `member`'s records lie: (unit, bucket) for each.
pub(crate) async fn records(node: &Node, member: &str) -> Result<Vec<(UnitId, u32)>> {
    let id = MemberId::parse("member", member)?;
    let mut out: Vec<(UnitId, u32)> = node
        .app
        .store()
        .member_locations(&id)
        .await?
        .into_iter()
        .map(|l| (l.unit, l.bucket))
        .collect();
    out.sort();
    Ok(out)
}

/// A stored document's current state, every value (conflicting ones too)
/// rendered as text.
pub(crate) async fn current_state(node: &Node, doc: &DocId) -> Result<String> {
    node.app
        .store()
        .read_doc(doc, |d| {
            let mut out = String::new();
            render(d, &automerge::ROOT, &mut out);
            out
        })
        .await?
        .with_context(|| format!("{doc} is not stored"))
}

fn render(d: &Automerge, obj: &ObjId, out: &mut String) {
    let props: Vec<automerge::Prop> = match d.object_type(obj) {
        Ok(automerge::ObjType::Map | automerge::ObjType::Table) => {
            d.keys(obj).map(automerge::Prop::Map).collect()
        }
        _ => (0..d.length(obj)).map(automerge::Prop::Seq).collect(),
    };
    for p in props {
        for (v, id) in d.get_all(obj, p.clone()).unwrap_or_default() {
            match v {
                Value::Object(_) => {
                    let _ = write!(out, "{p:?}: {{");
                    render(d, &id, out);
                    out.push('}');
                }
                Value::Scalar(s) => {
                    let _ = write!(out, "{p:?}={s} ");
                }
            }
        }
    }
}

/// `members[member][field]` as the document was at `heads`.
fn field_at(d: &Automerge, member: &str, field: &str, heads: &[ChangeHash]) -> Option<String> {
    let obj = |o: &ObjId, key: &str| match d.get_at(o, key, heads) {
        Ok(Some((Value::Object(_), id))) => Some(id),
        _ => None,
    };
    let m = obj(&obj(&automerge::ROOT, "members")?, member)?;
    match d.get_at(&m, field, heads) {
        Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// No secret in `text`.
#[track_caller]
pub(crate) fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} contains {s:?}:\n{text}");
    }
}

#[tokio::test]
async fn a_node_above_private_depth_refuses_personal_data_and_writes_nothing() -> Result<()> {
    // The national node: depth 0, private_depth 1 (the default).
    let node = Node::with_tree().await?;
    let plain = node
        .add(HG_A, person("Nguyễn Văn An", "HG-0001", pb::Gender::Male))
        .await?;
    let before = node.mark().await?;
    const HELD: &str = "this node (depth 0) does not hold personal data; private_depth is 1";

    // Writes that carry private fields, whatever their values.
    let mut m = node.members();
    let add = |input: pb::MemberInput| pb::AddMemberRequest {
        unit_id: HG_A.into(),
        member: Some(input),
    };
    expect_precondition(
        m.add_member(add(secret_person())).await,
        "national_id",
        HELD,
    );
    let mut only_religion = person("Trần Thị Bình", "HG-0002", pb::Gender::Female);
    only_religion.religion = "Phật giáo".into();
    expect_precondition(m.add_member(add(only_religion)).await, "religion", HELD);
    let mut bad_cccd = person("Trần Thị Bình", "HG-0002", pb::Gender::Female);
    bad_cccd.national_id = "123".into();
    expect_precondition(m.add_member(add(bad_cccd)).await, "national_id", HELD);
    expect_precondition(
        m.update_member(update(&plain.id, |r| r.national_id = Some(CCCD.into())))
            .await,
        "national_id",
        HELD,
    );
    // Even clearing one is a request about personal data.
    expect_precondition(
        m.update_member(update(&plain.id, |r| r.ethnicity = Some(String::new())))
            .await,
        "ethnicity",
        HELD,
    );

    // An import carrying them is refused whole, naming the first line.
    let mut carrying = person("Lê Văn Cường", "HG-0004", pb::Gender::Male);
    carrying.ethnicity = "Kinh".into();
    let rows = vec![
        pb::ImportRow {
            line: 3,
            unit_id: HG_A.into(),
            member: Some(person("Phạm Thị Dung", "HG-0003", pb::Gender::Female)),
        },
        pb::ImportRow {
            line: 4,
            unit_id: HG_A.into(),
            member: Some(carrying),
        },
    ];
    let msg = expect_precondition(
        m.import_members(pb::ImportMembersRequest { rows }).await,
        "ethnicity",
        HELD,
    );
    assert!(msg.contains("Line 4 carries it"), "{msg}");

    // Reads of private data, and de-identification (there is nothing here
    // to remove it from: the private rosters are held below).
    expect_precondition(
        m.get_member(pb::GetMemberRequest {
            key: Some(pb::get_member_request::Key::MemberId(plain.id.clone())),
            include_private: true,
        })
        .await,
        "include_private",
        HELD,
    );
    expect_precondition(
        m.deidentify_member(deidentify_by_card("HG-0001")).await,
        "card_number",
        HELD,
    );
    expect_precondition(
        m.deidentify_member(pb::DeidentifyMemberRequest {
            key: Some(Key::MemberId(plain.id.clone())),
            reason: REASON.into(),
            reference: String::new(),
        })
        .await,
        "member_id",
        HELD,
    );

    assert_eq!(node.mark().await?, before, "a refusal wrote something");
    assert_eq!(node.app.store().private_rows().await?, 0);
    assert_eq!(node.list(HG_A, false, None).await?.total, 1);
    // Everything else goes on as before.
    node.member(&plain.id, false).await?;
    node.stop().await
}

#[tokio::test]
async fn deidentify_removes_personal_data_from_reads_projections_and_documents() -> Result<()> {
    let node = private_tree().await?;
    let her = node.add(HG_A, secret_person()).await?;
    // A clerk's reason that names her, as reasons do.
    node.members()
        .transfer_member(pb::TransferMemberRequest {
            member_id: her.id.clone(),
            to_unit_id: HG_B.into(),
            effective_on: "2026-06-01".into(),
            reason: format!("Chuyển công tác: {NAME}"),
        })
        .await?;
    let mut other = person("Trần Văn Bình", "HG-0002", pb::Gender::Male);
    other.national_id = "001090012345".into();
    let other = node.add(HG_A, other).await?;
    let places = records(&node, &her.id).await?;
    assert_eq!(places.len(), 2, "a record in each unit: {places:?}");
    let mut before = Vec::new();
    for (unit, bucket) in &places {
        for doc in [
            member::roster_doc(unit, *bucket),
            member::private_doc(unit, *bucket),
        ] {
            let heads = node.app.store().doc_heads(&doc).await?.context("stored")?;
            before.push((doc, heads));
        }
    }

    let r = node
        .members()
        .deidentify_member(deidentify_by_card(CARD))
        .await?
        .into_inner();
    assert_eq!(r.unit_ids, [HG_B, HG_A], "in unit id order");
    assert!(r.units_elsewhere.is_empty(), "{:?}", r.units_elsewhere);
    let m = r.member.context("the member")?;
    // What identifies her is gone; what the statistics count stays.
    assert_eq!(
        (
            m.full_name.as_str(),
            m.birth_date.as_str(),
            m.position.as_str()
        ),
        (DEIDENTIFIED_NAME, "", "")
    );
    assert_eq!(m.id, her.id);
    assert_eq!(m.unit_id, HG_B);
    assert_eq!(m.gender, pb::Gender::Female as i32);
    assert_eq!(m.card_number, CARD);
    assert_eq!(m.joined_on, "2010-09-01");
    assert_eq!(m.status, pb::MemberStatus::Active as i32);
    assert_eq!(m.history.len(), 1);
    assert_eq!(
        (m.history[0].kind.as_str(), m.history[0].on.as_str()),
        ("transferred_in", "2026-06-01")
    );
    assert_eq!(m.history[0].other_unit_id, HG_A);
    assert_eq!(m.history[0].reason, "", "a reason may name her");
    // The request, recorded: when, by which node, why, under which number.
    let d = m.deidentified.context("the request is recorded")?;
    assert_eq!(
        (
            d.at.as_str(),
            d.by.as_str(),
            d.operator.as_str(),
            d.reason.as_str(),
            d.reference.as_str()
        ),
        (
            "2026-11-22T00:00:00Z",
            "vn",
            "admin test-admin",
            REASON,
            REFERENCE
        )
    );

    // Reads: the record, the private part, the lists and the search.
    let got = node.member(&her.id, true).await?;
    assert!(
        got.private.is_none(),
        "private data left: {:?}",
        got.private
    );
    assert_eq!(got.full_name, DEIDENTIFIED_NAME);
    assert!(got.deidentified.is_some());
    let listed = node.list(HG_CT, true, None).await?;
    let rows: Vec<&pb::Member> = listed.members.iter().filter(|x| x.id == her.id).collect();
    assert_eq!(rows.len(), 2, "both records listed");
    for row in rows {
        assert_eq!(
            (row.full_name.as_str(), row.birth_date.as_str()),
            (DEIDENTIFIED_NAME, "")
        );
        assert_eq!(
            row.deidentified.as_ref().map(|d| d.at.as_str()),
            Some("2026-11-22T00:00:00Z")
        );
    }
    let find = |query: &str| pb::FindMembersRequest {
        query: query.into(),
        scope_unit_id: String::new(),
        limit: 0,
    };
    let by_name = node
        .members()
        .find_members(find("ksor"))
        .await?
        .into_inner();
    assert!(by_name.members.is_empty(), "found by name: {by_name:?}");
    let by_card = node.members().find_members(find(CARD)).await?.into_inner();
    assert_eq!(by_card.members.len(), 2, "both records carry her card");
    for row in &by_card.members {
        assert_eq!(row.full_name, DEIDENTIFIED_NAME);
    }

    // Projections: no member_private row left for her; the other member's stays.
    let store = node.app.store();
    let her_id = MemberId::parse("member", &her.id)?;
    for (unit, _) in &places {
        assert!(store.private_data(&her_id, unit).await?.is_none());
    }
    assert_eq!(store.private_rows().await?, 1);
    let other_id = MemberId::parse("member", &other.id)?;
    let kept = store
        .private_data(&other_id, &UnitId::parse("unit", HG_A)?)
        .await?
        .context("the other member keeps his")?;
    assert_eq!(
        kept.national_id.map(|n| n.as_str().to_owned()).as_deref(),
        Some("001090012345")
    );

    // Documents: the current state (conflicts included) holds none of it,
    // and the record carries the request.
    for (unit, bucket) in &places {
        let roster = member::roster_doc(unit, *bucket);
        assert_clean(&roster.to_string(), &current_state(&node, &roster).await?);
        let private = member::private_doc(unit, *bucket);
        let state = current_state(&node, &private).await?;
        assert_clean(&private.to_string(), &state);
        assert!(
            !state.contains(&her.id),
            "{private} still has her entry: {state}"
        );
        let rec = store
            .read_doc(&roster, |d| member::read(d, &her_id))
            .await?
            .context("stored")??
            .context("her record")?;
        assert_eq!(rec.deidentified.map(|d| d.reason).as_deref(), Some(REASON));
    }
    // The limit, stated: automerge keeps every change, so the history
    // still reads what the current state no longer holds.
    for (doc, heads) in &before {
        let (field, value) = match doc {
            DocId::Roster { .. } => ("full_name", NAME),
            _ => ("national_id", CCCD),
        };
        let old = store
            .read_doc(doc, |d| field_at(d, &her.id, field, heads))
            .await?
            .flatten();
        assert_eq!(old.as_deref(), Some(value), "{doc} at its earlier heads");
    }

    // A second request: nothing is left to remove, nothing is written.
    let mark = node.mark().await?;
    expect_precondition(
        node.members()
            .deidentify_member(deidentify_by_card(CARD))
            .await,
        "card_number",
        &format!(
            "member {} was de-identified already, at 2026-11-22T00:00:00Z by vn",
            her.id
        ),
    );
    // Her personal data is not recorded again, by an update or an import.
    let mut m = node.members();
    let again = "member ".to_owned() + &her.id + " was de-identified on request";
    expect_precondition(
        m.update_member(update(&her.id, |r| r.full_name = Some(NAME.into())))
            .await,
        "full_name",
        &again,
    );
    expect_precondition(
        m.update_member(update(&her.id, |r| r.national_id = Some(CCCD.into())))
            .await,
        "national_id",
        &again,
    );
    let imported = m
        .import_members(pb::ImportMembersRequest {
            rows: vec![pb::ImportRow {
                line: 2,
                unit_id: HG_B.into(),
                member: Some(secret_person()),
            }],
        })
        .await?
        .into_inner();
    assert_eq!(
        imported.results[0].outcome,
        pb::ImportOutcome::Rejected as i32
    );
    assert_eq!(imported.results[0].errors[0].field, "card_number");
    assert!(
        imported.results[0].errors[0]
            .reason
            .contains("de-identified")
    );
    assert_eq!(node.mark().await?, mark, "a refusal wrote something");

    // She stays a member: counted, transferable, de-identified everywhere.
    let back = m
        .transfer_member(pb::TransferMemberRequest {
            member_id: her.id.clone(),
            to_unit_id: HG_A.into(),
            effective_on: String::new(),
            reason: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        (back.full_name.as_str(), back.birth_date.as_str()),
        (DEIDENTIFIED_NAME, "")
    );
    assert!(back.deidentified.is_some());
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deidentification_replicates_to_every_holder() -> Result<()> {
    // The national node (no personal data) and Hậu Giang's (private_depth 1).
    let national = Node::with_tree().await?;
    let province = child("hg-node", HG, &[("vn", &national)]).await?;
    eventually("the province knows its grassroots unions", || async {
        Ok(province.unit(HG_A).await.is_ok())
    })
    .await?;
    let her = province.add(HG_A, secret_person()).await?;
    eventually("her record at the national node", || async {
        Ok(national.list(HG_A, false, None).await?.total == 1)
    })
    .await?;
    assert_eq!(
        national.list(HG_A, false, None).await?.members[0].full_name,
        NAME
    );
    assert_eq!(
        national.app.store().private_rows().await?,
        0,
        "the private roster went above private_depth"
    );

    province
        .members()
        .deidentify_member(deidentify_by_card(CARD))
        .await?;
    eventually("the national node's record de-identified", || async {
        let m = national.member(&her.id, false).await?;
        Ok(m.deidentified.is_some() && m.full_name == DEIDENTIFIED_NAME)
    })
    .await?;
    let (unit, bucket) = records(&national, &her.id).await?[0].clone();
    let roster = member::roster_doc(&unit, bucket);
    assert_clean(
        "the national node's roster",
        &current_state(&national, &roster).await?,
    );
    assert_clean(
        "the province's roster",
        &current_state(&province, &roster).await?,
    );
    let listed = national.list(HG_A, false, None).await?;
    assert_eq!(listed.members[0].full_name, DEIDENTIFIED_NAME);
    assert_eq!(listed.members[0].birth_date, "");
    // The national node cannot do it itself: it holds no private roster.
    expect_code(
        national
            .members()
            .deidentify_member(deidentify_by_card(CARD))
            .await,
        Code::FailedPrecondition,
    );
    province.stop().await?;
    national.stop().await
}

// ---- logs -----------------------------------------------------------------
