//! `hopluu reorg` end to end against a `hopluu serve` process: a TOML
//! plan dry-run (nothing written) then applied, a bad plan refused naming
//! `steps[N].field`, a sheet of moves with its header in flags, and
//! `reorg list` and `reorg show` as tables and JSON.

use std::path::Path;

use serde_json::json;

use crate::{Node, s};

/// Creates units (id, name, kind, parent), each existing since 2020.
fn units(node: &Node, list: &[(&str, &str, &str, &str)]) {
    for (id, name, kind, parent) in list {
        node.ok(&[
            "units",
            "create",
            "--id",
            id,
            "--name",
            name,
            "--kind",
            kind,
            "--parent",
            parent,
            "--effective-on",
            "2020-01-01",
            "--decision-no",
            "1/QĐ",
        ]);
    }
}

fn member(node: &Node, unit: &str, name: &str, card: &str) {
    node.ok(&[
        "members",
        "add",
        "--unit",
        unit,
        "--name",
        name,
        "--birth-date",
        "1990-03-15",
        "--gender",
        "female",
        "--card",
        card,
        "--joined-on",
        "2015-05-01",
    ]);
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    s(&file).to_owned()
}

const MERGER: &str = r#"
number = "759/QĐ-TLĐ"
title = "Hợp nhất LĐLĐ tỉnh Hậu Giang, LĐLĐ tỉnh Sóc Trăng vào LĐLĐ thành phố Cần Thơ"
decided_on = 2025-06-20
effective_on = 2025-07-01
issuing_unit = "vn"

[[steps]]
kind = "merge"
units = ["hau-giang", "soc-trang"]
to = "can-tho"

[[steps]]
kind = "cease"
units = ["st-cang"]
reason = "Doanh nghiệp giải thể"
on = "30/06/2025"
"#;

#[test]
fn a_toml_plan_is_dry_run_then_applied_and_listed() {
    let node = Node::start();
    units(
        &node,
        &[
            ("hau-giang", "LĐLĐ tỉnh Hậu Giang", "provincial", "vn"),
            ("soc-trang", "LĐLĐ tỉnh Sóc Trăng", "provincial", "vn"),
            ("can-tho", "LĐLĐ thành phố Cần Thơ", "provincial", "vn"),
            (
                "hg-chau-thanh",
                "Công đoàn xã Châu Thành",
                "commune",
                "hau-giang",
            ),
            (
                "hg-thpt",
                "CĐCS Trường THPT Châu Thành",
                "grassroots",
                "hg-chau-thanh",
            ),
            ("st-cang", "CĐCS Cảng Sóc Trăng", "grassroots", "soc-trang"),
        ],
    );
    member(&node, "hg-thpt", "Nguyễn Thị Lan", "HG-0001");
    member(&node, "st-cang", "Trần Văn Bình", "ST-0001");
    member(&node, "st-cang", "Lê Thị Cúc", "ST-0002");
    let dir = tempfile::TempDir::new().unwrap();
    let plan = write(dir.path(), "sap-nhap.toml", MERGER);

    // The dry run: the impact, and nothing written.
    let tree = node.ok(&["units", "list", "--all"]);
    let feed = node.json(&["status"])["feed_position"].clone();
    let out = node.ok(&["reorg", "apply", &plan, "--dry-run"]);
    assert!(out.starts_with("DRY RUN: nothing was written\n"), "{out}");
    for line in [
        "Units would be moved (2):",
        "  hg-chau-thanh: hau-giang -> can-tho",
        "  st-cang: soc-trang -> can-tho",
        "  hau-giang: merged, successors can-tho",
        "  soc-trang: merged, successors can-tho",
        "Member records moving with their units: active 3",
        "Members ceased: 2",
        "Unit records whose owner changes: 2",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    assert_eq!(node.json(&["status"])["feed_position"], feed);
    assert_eq!(node.ok(&["units", "list", "--all"]), tree);
    let hg = node.json(&["units", "show", "hau-giang"]);
    assert_eq!(hg["status"], "UNIT_STATUS_ACTIVE");
    assert_eq!(node.json(&["reorg", "list"])["decisions"], json!([]));

    // Applied: the tree changed.
    let out = node.ok(&["reorg", "apply", &plan]);
    assert!(out.starts_with("Applied decision 759/QĐ-TLĐ (id "), "{out}");
    assert!(out.contains("Units moved (2):"), "{out}");
    assert_eq!(
        node.json(&["units", "show", "hg-chau-thanh"])["parent_id"],
        "can-tho"
    );
    let hg = node.json(&["units", "show", "hau-giang"]);
    assert_eq!(hg["status"], "UNIT_STATUS_MERGED");
    assert_eq!(hg["successor_ids"][0], "can-tho");
    let shown = node.ok(&["units", "show", "st-cang"]);
    assert!(
        shown.contains("2025-07-01 can-tho (decided 2025-06-20, 759/QĐ-TLĐ)"),
        "{shown}"
    );
    let ceased = node.json(&["members", "list", "--unit", "st-cang", "--status", "ceased"]);
    assert_eq!(ceased["total"], "2", "{ceased}");

    // The same file again: the number was applied.
    let err = node.fails(&["reorg", "apply", &plan]);
    assert!(
        err.contains("number: decision 759/QĐ-TLĐ of unit vn was applied already"),
        "{err}"
    );

    // List and show, as tables and JSON.
    let listed = node.ok(&["reorg", "list"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with("759/QĐ-TLĐ"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("2025-07-01") && row.contains("vn"), "{row}");
    let j = node.json(&["reorg", "list"]);
    let d = &j["decisions"][0];
    assert_eq!(d["number"], "759/QĐ-TLĐ");
    assert_eq!(d["units_closed"], "2");
    assert_eq!(d["members_ceased"], "2");
    let id = d["id"].as_str().unwrap().to_owned();
    let shown = node.ok(&["reorg", "show", "759/QĐ-TLĐ"]);
    assert!(shown.contains(&id), "{shown}");
    assert!(shown.contains("Steps (2):"), "{shown}");
    assert!(
        shown.lines().any(|l| l.starts_with("0     merge")
            && l.contains("units hau-giang, soc-trang; to can-tho")),
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l.starts_with("1     cease")
            && l.contains("reason Doanh nghiệp giải thể; on 2025-06-30")),
        "{shown}"
    );
    let j = node.json(&["reorg", "show", &id]);
    assert_eq!(j["summary"]["number"], "759/QĐ-TLĐ");
    assert_eq!(j["plan"]["steps"][1]["kind"], "cease");
    node.stop();
}

#[test]
fn a_bad_plan_is_refused_naming_the_step_and_writes_nothing() {
    let node = Node::start();
    units(
        &node,
        &[
            ("hau-giang", "LĐLĐ tỉnh Hậu Giang", "provincial", "vn"),
            ("hg-a", "CĐCS A", "grassroots", "hau-giang"),
            ("hg-b", "CĐCS B", "grassroots", "hau-giang"),
        ],
    );
    let dir = tempfile::TempDir::new().unwrap();
    let feed = node.json(&["status"])["feed_position"].clone();
    let plan = write(
        dir.path(),
        "sai.toml",
        "number = \"3/QĐ\"\nissuing_unit = \"hau-giang\"\n\n\
         [[steps]]\nkind = \"rename\"\nunit = \"hg-a\"\nname = \"CĐCS A mới\"\n\n\
         [[steps]]\nkind = \"move\"\nunits = [\"hg-a\"]\nto = \"hg-b\"\n",
    );
    for dry in [true, false] {
        let mut args = vec!["reorg", "apply", plan.as_str()];
        if dry {
            args.push("--dry-run");
        }
        let err = node.fails(&args);
        assert!(
            err.contains(
                "steps[1].to: unit hg-b is of kind grassroots, which cannot hold child units"
            ) && err.contains("InvalidArgument"),
            "{err}"
        );
    }
    // An unknown key is refused by name before anything is sent.
    let typo = write(
        dir.path(),
        "typo.toml",
        "number = \"3/QĐ\"\nissuing_unit = \"hau-giang\"\n[[steps]]\nkind = \"move\"\nparent = \"hg-b\"\n",
    );
    let err = node.fails(&["reorg", "apply", &typo]);
    assert!(err.contains("unknown field `parent`"), "{err}");
    // A TOML plan carries its header: the flags are refused.
    let err = node.fails(&["reorg", "apply", &plan, "--number", "4/QĐ"]);
    assert!(
        err.contains("--number: a TOML plan carries its own header"),
        "{err}"
    );
    assert_eq!(node.json(&["status"])["feed_position"], feed);
    assert_eq!(node.json(&["units", "show", "hg-a"])["name"], "CĐCS A");
    let listed = node.ok(&["reorg", "list"]);
    assert_eq!(listed.lines().count(), 2, "a header and a rule: {listed}");
    node.stop();
}

#[test]
fn a_sheet_of_moves_takes_effect_in_the_past() {
    let node = Node::start();
    units(
        &node,
        &[
            ("hau-giang", "LĐLĐ tỉnh Hậu Giang", "provincial", "vn"),
            (
                "hg-vi-thanh",
                "LĐLĐ thành phố Vị Thanh",
                "district",
                "hau-giang",
            ),
            (
                "hg-vt-thpt",
                "CĐCS Trường THPT Vị Thanh",
                "grassroots",
                "hg-vi-thanh",
            ),
            (
                "hg-vt-benh-vien",
                "CĐCS Bệnh viện Vị Thanh",
                "grassroots",
                "hg-vi-thanh",
            ),
        ],
    );
    // The ward union was created on 1 July 2025.
    node.ok(&[
        "units",
        "create",
        "--id",
        "hg-phuong-vi-tan",
        "--name",
        "Công đoàn phường Vị Tân",
        "--kind",
        "commune",
        "--parent",
        "hau-giang",
        "--effective-on",
        "2025-07-01",
        "--decision-no",
        "01/QĐ-LĐLĐ",
    ]);
    let dir = tempfile::TempDir::new().unwrap();
    let sheet = write(
        dir.path(),
        "chuyen-ve-phuong.csv",
        "DANH SÁCH CĐCS CHUYỂN VỀ CÔNG ĐOÀN PHƯỜNG VỊ TÂN\n\
         STT;Mã đơn vị;Tên đơn vị;Mã đơn vị cấp trên mới\n\
         1;hg-vt-thpt;CĐCS Trường THPT Vị Thanh;hg-phuong-vi-tan\n\
         2;hg-vt-benh-vien;CĐCS Bệnh viện Vị Thanh;hg-phuong-vi-tan\n",
    );
    let header = [
        "--number",
        "12/QĐ-LĐLĐ",
        "--title",
        "Chuyển CĐCS về Công đoàn phường Vị Tân",
        "--decided-on",
        "27/08/2025",
        "--effective-on",
        "01/07/2025",
        "--issuing-unit",
        "hau-giang",
    ];
    let feed = node.json(&["status"])["feed_position"].clone();
    let err = node.fails(&["reorg", "apply", &sheet, "--number", "12/QĐ-LĐLĐ"]);
    assert!(
        err.contains("missing: --title, --decided-on, --effective-on, --issuing-unit"),
        "{err}"
    );
    // A row without its new parent refuses the sheet, by line.
    let bad = write(
        dir.path(),
        "thieu.csv",
        "Mã đơn vị,Mã đơn vị cấp trên mới\nhg-vt-thpt,hg-phuong-vi-tan\nhg-vt-benh-vien,\n",
    );
    let mut args = vec!["reorg", "apply", bad.as_str()];
    args.extend(header);
    let err = node.fails(&args);
    assert!(
        err.contains("line 3: unit hg-vt-benh-vien has no new parent"),
        "{err}"
    );
    // A refusal naming a step names the sheet's row too.
    let unknown = write(
        dir.path(),
        "khong-co.csv",
        "Mã đơn vị;Cấp trên mới\nhg-vt-thpt;hg-phuong-vi-tan\nhg-khong-co;hg-phuong-vi-tan\n",
    );
    let mut args = vec!["reorg", "apply", unknown.as_str(), "--dry-run"];
    args.extend(header);
    let err = node.fails(&args);
    assert!(
        err.contains("steps[0].units[1]: unit hg-khong-co does not exist (row 3 of"),
        "{err}"
    );
    assert_eq!(node.json(&["status"])["feed_position"], feed);

    let mut args = vec!["reorg", "apply", sheet.as_str()];
    args.extend(header);
    let out = node.ok(&args);
    assert!(
        out.contains("hg-vt-thpt: hg-vi-thanh -> hg-phuong-vi-tan"),
        "{out}"
    );
    assert!(
        out.contains("hg-vt-benh-vien: hg-vi-thanh -> hg-phuong-vi-tan"),
        "{out}"
    );
    let u = node.json(&["units", "show", "hg-vt-thpt"]);
    assert_eq!(u["parent_id"], "hg-phuong-vi-tan");
    let last = &u["parent_history"][1];
    assert_eq!(
        last,
        &json!({
            "parent_id": "hg-phuong-vi-tan",
            "effective_on": "2025-07-01",
            "decided_on": "2025-08-27",
            "decision_no": "12/QĐ-LĐLĐ",
        }),
    );
    // The district, now empty, is closed with the ward as its successor.
    node.ok(&[
        "units",
        "close",
        "hg-vi-thanh",
        "--reason",
        "Kết thúc hoạt động cấp huyện",
        "--successor",
        "hg-phuong-vi-tan",
        "--effective-on",
        "2025-07-01",
        "--decision-no",
        "12/QĐ-LĐLĐ",
    ]);
    let d = node.json(&["reorg", "show", "12/QĐ-LĐLĐ"]);
    assert_eq!(d["plan"]["steps"][0]["units"][1], "hg-vt-benh-vien");
    node.stop();
}
