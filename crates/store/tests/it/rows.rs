//! Each document kind's projection rows, column by column, on both
//! backends: what a write puts in `units`, `members`, `member_private`,
//! `campaigns` and `campaign_plans`, `registrations`, `initiatives` and
//! `works`, `proposals`, `awards` and `award_recipients`. A row's `doc`
//! is shown as the document it points at.

use anyhow::{Result, ensure};
use hopluu_model::emulation::InitiativeStatus;
use hopluu_model::unit::Unit;
use hopluu_store::Store;
use sqlx::{AssertSqlSafe, Row};

use crate::harness::*;

suite!(
    case_unit_rows,
    case_member_rows,
    case_private_rows,
    case_campaign_and_plan_rows,
    case_emulation_rows,
    case_proposal_rows,
    case_award_and_recipient_rows,
);

/// The rows of `table` matching `filter`, ordered by `order`, every
/// column as text (`NULL` for null) and `doc` as its document's id.
async fn rows(
    store: &Store,
    table: &str,
    cols: &[&str],
    filter: &str,
    order: &str,
) -> Result<Vec<Vec<String>>> {
    let select: Vec<String> = cols
        .iter()
        .map(|c| match *c {
            "doc" => {
                "COALESCE((SELECT d.doc_id FROM docs d WHERE d.id = t.doc), 'NULL')".to_owned()
            }
            c => format!("COALESCE(CAST(t.{c} AS TEXT), 'NULL')"),
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {table} t WHERE {filter} ORDER BY {order}",
        select.join(", ")
    );
    let found = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?;
    Ok(found
        .iter()
        .map(|r| (0..cols.len()).map(|i| r.get::<String, _>(i)).collect())
        .collect())
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

const UNIT: &[&str] = &[
    "id",
    "name",
    "kind",
    "parent",
    "status",
    "successors",
    "closed_on",
    "close_reason",
    "doc",
];

pub async fn case_unit_rows(store: Store) -> Result<()> {
    small_tree(&store).await?;
    let got = rows(&store, "units", UNIT, "t.id IN ('vn', 'd1')", "t.id").await?;
    let want = vec![
        strs(&[
            "d1",
            "LĐLĐ huyện Châu Thành",
            "district",
            "p1",
            "active",
            "",
            "",
            "",
            "unit/d1",
        ]),
        // The root's parent is NULL, not empty.
        strs(&[
            "vn",
            "Tổng Liên đoàn Lao động Việt Nam",
            "central",
            "NULL",
            "active",
            "",
            "",
            "",
            "unit/vn",
        ]),
    ];
    ensure!(got == want, "{got:?}");
    // A merged unit names its successors, space-separated.
    let on = decision("07/QĐ-LĐLĐ", "2025-06-20", "2025-06-30");
    let merged: Unit = write(&store, &unit_doc("g2"), |doc, a| {
        hopluu_model::unit::close(doc, a, "sáp nhập", &[uid("g1")], true, &on)
    })
    .await?;
    ensure!(merged.successors == [uid("g1")]);
    let got = rows(&store, "units", UNIT, "t.id = 'g2'", "t.id").await?;
    ensure!(
        got == [strs(&[
            "g2",
            "CĐCS Trường THPT Ngã Sáu",
            "grassroots",
            "d1",
            "merged",
            "g1",
            "2025-06-30",
            "sáp nhập",
            "unit/g2",
        ])],
        "{got:?}"
    );
    Ok(())
}

const MEMBER: &[&str] = &[
    "member_id",
    "unit_id",
    "doc",
    "bucket",
    "full_name",
    "name_key",
    "birth_date",
    "gender",
    "card_number",
    "joined_on",
    "position",
    "status",
    "status_reason",
    "status_on",
    "deidentified_at",
    "deidentified_by",
    "deidentified_operator",
    "deidentified_reason",
    "deidentified_reference",
];

pub async fn case_member_rows(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    let got = rows(
        &store,
        "members",
        MEMBER,
        "t.member_id = 'm-1'",
        "t.unit_id",
    )
    .await?;
    let want = strs(&[
        "m-1",
        "g1",
        "roster/g1",
        "0",
        "Nguyễn Văn An",
        "nguyen van an",
        "1990-05-17",
        "male",
        "G1-0001",
        "2012-03-01",
        "Công nhân",
        "active",
        "",
        // A new member's status dates from joining.
        "2012-03-01",
        "",
        "",
        "",
        "",
        "",
    ]);
    ensure!(got == [want], "{got:?}");
    end_member(
        &store,
        "m-1",
        "g1",
        hopluu_model::member::MemberStatus::Left,
        "nghỉ việc",
        "2025-08-01",
    )
    .await?;
    let got = rows(
        &store,
        "members",
        &["status", "status_reason", "status_on"],
        "t.member_id = 'm-1'",
        "t.unit_id",
    )
    .await?;
    ensure!(
        got == [strs(&["left", "nghỉ việc", "2025-08-01"])],
        "{got:?}"
    );
    Ok(())
}

pub async fn case_private_rows(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    let got = rows(
        &store,
        "member_private",
        &[
            "member_id",
            "unit_id",
            "national_id",
            "ethnicity",
            "religion",
            "bucket",
        ],
        "t.member_id = 'm-1'",
        "t.unit_id",
    )
    .await?;
    ensure!(
        got == [strs(&["m-1", "g1", "001190004005", "Kinh", "", "0"])],
        "{got:?}"
    );
    Ok(())
}

pub async fn case_campaign_and_plan_rows(store: Store) -> Result<()> {
    small_tree(&store).await?;
    launch(&store, "c1", "p1", "p1").await?;
    set_plans(&store, "c1", &[("d1", 3, 2), ("p1", 1, 0)]).await?;
    let got = rows(
        &store,
        "campaigns",
        &[
            "id",
            "launching_unit",
            "title",
            "theme",
            "starts_on",
            "ends_on",
            "scope_unit",
            "status",
            "doc",
        ],
        "t.id = 'c1'",
        "t.id",
    )
    .await?;
    ensure!(
        got == [strs(&[
            "c1",
            "p1",
            "Lao động giỏi, lao động sáng tạo",
            "Phong trào thi đua năm 2025",
            "2025-01-01",
            "2025-12-31",
            "p1",
            "active",
            "campaign/c1",
        ])],
        "{got:?}"
    );
    let got = rows(
        &store,
        "campaign_plans",
        &["campaign", "unit_id", "initiative_quota", "works_quota"],
        "t.campaign = 'c1'",
        "t.unit_id",
    )
    .await?;
    ensure!(
        got == [strs(&["c1", "d1", "3", "2"]), strs(&["c1", "p1", "1", "0"])],
        "{got:?}"
    );
    // Plans are rewritten whole: one dropped is gone.
    set_plans(&store, "c1", &[("d1", 4, 2)]).await?;
    let left = rows(
        &store,
        "campaign_plans",
        &["unit_id", "initiative_quota"],
        "t.campaign = 'c1'",
        "t.unit_id",
    )
    .await?;
    ensure!(left == [strs(&["d1", "4"]), strs(&["p1", "1"])], "{left:?}");
    Ok(())
}

pub async fn case_emulation_rows(store: Store) -> Result<()> {
    small_tree(&store).await?;
    launch(&store, "c1", "p1", "p1").await?;
    let i = initiative(
        &store,
        "g1",
        "c1",
        "Cải tiến dây chuyền ép mía",
        5_000_000,
        InitiativeStatus::Recognised,
    )
    .await?;
    work(
        &store,
        "g1",
        "c1",
        "Nhà văn hóa công nhân",
        12_000_000,
        true,
    )
    .await?;
    let doc = hopluu_model::emulation::doc_id(&uid("g1"), &cid("c1")).to_string();
    let got = rows(
        &store,
        "registrations",
        &[
            "unit_id",
            "campaign",
            "registered",
            "registered_on",
            "pledge",
            "doc",
        ],
        "t.unit_id = 'g1'",
        "t.campaign",
    )
    .await?;
    ensure!(got == [strs(&["g1", "c1", "0", "", "", &doc])], "{got:?}");
    let got = rows(
        &store,
        "initiatives",
        &[
            "id",
            "unit_id",
            "campaign",
            "title",
            "authors",
            "status",
            "recognised_level",
            "value_vnd",
            "submitted_on",
            "doc",
        ],
        "t.unit_id = 'g1'",
        "t.id",
    )
    .await?;
    ensure!(
        got == [strs(&[
            i.as_str(),
            "g1",
            "c1",
            "Cải tiến dây chuyền ép mía",
            "Nguyễn Văn An; Lê Thị Bình",
            "recognised",
            "cấp tỉnh",
            "5000000",
            "2025-03-10",
            &doc,
        ])],
        "{got:?}"
    );
    let got = rows(
        &store,
        "works",
        &[
            "unit_id",
            "campaign",
            "name",
            "value_vnd",
            "plaque",
            "completed_on",
            "doc",
        ],
        "t.unit_id = 'g1'",
        "t.id",
    )
    .await?;
    ensure!(
        got == [strs(&[
            "g1",
            "c1",
            "Nhà văn hóa công nhân",
            "12000000",
            "1",
            "2025-04-30",
            &doc,
        ])],
        "{got:?}"
    );
    Ok(())
}

const PROPOSAL: &[&str] = &[
    "id",
    "proposing_unit",
    "addressed_unit",
    "award_type",
    "campaign",
    "reason",
    "proposed_on",
    "status",
    "award_id",
    "doc",
];

pub async fn case_proposal_rows(store: Store) -> Result<()> {
    small_tree(&store).await?;
    launch(&store, "c1", "p1", "p1").await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    propose(
        &store,
        "pr1",
        "g1",
        "d1",
        "giay-khen",
        vec![member_recipient("m-1", "g1")],
    )
    .await?;
    let got = rows(&store, "proposals", PROPOSAL, "t.id = 'pr1'", "t.id").await?;
    ensure!(
        got == [strs(&[
            "pr1",
            "g1",
            "d1",
            "giay-khen",
            "c1",
            "Có thành tích xuất sắc",
            "2025-06-01",
            "pending",
            "",
            "proposal/pr1",
        ])],
        "{got:?}"
    );
    decide(
        &store,
        "a1",
        "d1",
        "district",
        "giay-khen",
        "2025-07-01",
        vec![member_recipient("m-1", "g1")],
        Some("pr1"),
    )
    .await?;
    let got = rows(
        &store,
        "proposals",
        &["status", "award_id"],
        "t.id = 'pr1'",
        "t.id",
    )
    .await?;
    ensure!(got == [strs(&["decided", "a1"])], "{got:?}");
    Ok(())
}

pub async fn case_award_and_recipient_rows(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-1", "Nguyễn Văn An", "male", "G1-0001").await?;
    decide(
        &store,
        "a1",
        "d1",
        "district",
        "giay-khen",
        "2025-07-01",
        vec![
            member_recipient("m-1", "g1"),
            hopluu_model::award::Recipient::Unit(uid("g2")),
        ],
        None,
    )
    .await?;
    revoke(&store, "a1", "2025-08-01").await?;
    let got = rows(
        &store,
        "awards",
        &[
            "id",
            "issuing_unit",
            "decision_no",
            "decided_on",
            "effective_on",
            "year",
            "award_type",
            "level",
            "campaign",
            "proposal",
            "reason",
            "revoked",
            "revoked_on",
            "revoke_reason",
            "doc",
        ],
        "t.id = 'a1'",
        "t.id",
    )
    .await?;
    ensure!(
        got == [strs(&[
            "a1",
            "d1",
            "a1/QĐ-KT",
            "2025-07-01",
            "2025-07-01",
            "2025",
            "giay-khen",
            "district",
            "",
            "",
            "Hoàn thành xuất sắc nhiệm vụ",
            "1",
            "2025-08-01",
            "Sai thông tin",
            "award/a1",
        ])],
        "{got:?}"
    );
    let got = rows(
        &store,
        "award_recipients",
        &["award", "n", "member_id", "unit_id"],
        "t.award = 'a1'",
        "t.n",
    )
    .await?;
    ensure!(
        got == [
            strs(&["a1", "0", "m-1", "g1"]),
            strs(&["a1", "1", "", "g2"])
        ],
        "{got:?}"
    );
    Ok(())
}
