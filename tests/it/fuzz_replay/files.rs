//! Seeds made without a session: payloads on the fuzzer's fixture roster,
//! the `deploy/` configurations, and sample CSV and XLSX rosters (the XLSX
//! files written by hand as stored zips, the same bytes on every run).

use super::*;

/// Payloads made against the fuzzer's fixture roster itself, so that they
/// apply to it: its save, each of its changes, an edit on top, and the
/// sync messages a peer holding that edit sends it.
pub(super) fn fixture_seeds(out: &mut Seeds) -> Result<()> {
    let fixture = fuzzing::fixture();
    out.add("automerge_payload", "fixture-saved", fixture.saved.clone());
    for (i, c) in fixture.roster.get_changes(&[]).iter().enumerate() {
        out.add(
            "automerge_payload",
            &format!("fixture-change-{i}"),
            c.raw_bytes().to_vec(),
        );
    }
    let mut peer = fixture.roster.clone();
    let upd = MemberUpdate {
        position: Some("Phó chủ tịch".to_owned()),
        ..MemberUpdate::default()
    };
    member::update(
        &mut peer,
        &author("hg-vi-thanh"),
        &MemberId::parse("member", "m-binh")?,
        &upd,
        fuzzing::fixture_today(),
    )?;
    out.add(
        "automerge_payload",
        "fixture-edit-incremental",
        peer.save_after(&fixture.heads),
    );
    if let Some(c) = peer.get_last_local_change() {
        out.add(
            "automerge_payload",
            "fixture-edit-change",
            c.raw_bytes().to_vec(),
        );
    }
    // The sync protocol between the peer and a node holding the fixture.
    let mut here = fixture.roster.clone();
    let (mut peer_state, mut here_state) = (am_sync::State::new(), am_sync::State::new());
    for round in 0..6 {
        let mut moved = false;
        if let Some(m) = peer.generate_sync_message(&mut peer_state) {
            out.add(
                "automerge_payload",
                &format!("fixture-sync-{round}-peer"),
                m.clone().encode(),
            );
            here.receive_sync_message(&mut here_state, m)?;
            moved = true;
        }
        if let Some(m) = here.generate_sync_message(&mut here_state) {
            out.add(
                "automerge_payload",
                &format!("fixture-sync-{round}-here"),
                m.clone().encode(),
            );
            peer.receive_sync_message(&mut peer_state, m)?;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    ensure!(
        here.get_heads() == peer.get_heads(),
        "the fixture sync converges"
    );
    out.add(
        "automerge_payload",
        "fixture-sync-state",
        here_state.encode(),
    );
    Ok(())
}

/// The example configurations of `deploy/`.
pub(super) fn config_seeds(out: &mut Seeds) -> Result<()> {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    for path in inputs(&deploy)? {
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            out.add("config", &format!("deploy-{name}"), std::fs::read(&path)?);
        }
    }
    out.add(
        "config",
        "minimal.toml",
        "[node]\nid = \"vn\"\nunit = \"vn\"\nunit_name = \"Tổng Liên đoàn\"\nunit_kind = \"central\"\n"
            .as_bytes()
            .to_vec(),
    );
    // A database password, which the configuration's Debug form must hide.
    out.add(
        "config",
        "postgres-password.toml",
        b"[node]\nid = \"vn\"\nunit = \"vn\"\n\n[database]\nurl = \"postgres://hopluu:Mat-khau.2025@db.congdoan.vn:5432/hopluu\"\nmax_connections = 32\n".to_vec(),
    );
    Ok(())
}

/// Rosters as offices keep them: the XLSX test fixture, and CSV files with
/// a title row and `;`, with a BOM, quotes, CRLF and Excel's leading-zero
/// tricks, and tab-separated with English headers.
pub(super) fn import_seeds(out: &mut Seeds) -> Result<()> {
    let xlsx =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/sheet/tests/fixtures/members.xlsx");
    out.add("import", "members.xlsx", std::fs::read(&xlsx)?);
    let small = small_xlsx();
    let sheet = hopluu_sheet::read_xlsx(std::io::Cursor::new(&small))?;
    ensure!(
        sheet.rows.len() == 2
            && sheet.rows[0].values.values().any(|v| v == "1990-03-15")
            && sheet.rows[1].values.values().any(|v| v == "001090012346"),
        "the small workbook reads as written: {sheet:?}"
    );
    out.add("import", "small.xlsx", small);
    out.add(
        "import",
        "title-semicolon.csv",
        "DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN CƠ SỞ TRƯỜNG THCS HOÀ BÌNH\n\
         STT;Mã đơn vị;Họ và tên;Ngày sinh;Giới tính;Số thẻ đoàn viên;Ngày vào công đoàn;Chức vụ;Số CCCD;Dân tộc;Tôn giáo\n\
         1;CD0101;Nguyễn Văn An;15/03/1990;Nam;HB-0001;01/05/2015;Tổ trưởng;001090012345;Kinh;Không\n\
         2;CD0101;Trần Thị Bình;2.11.1985;Nữ;HB-0002;05-09-2008;Giáo viên;;Tày;\n\
         \n\
         3\n"
            .as_bytes()
            .to_vec(),
    );
    out.add(
        "import",
        "bom-quoted-crlf.csv",
        "\u{feff}\"Họ và tên (*)\",\"Ngày tháng năm sinh\",\"GIỚI TÍNH\",\"Số thẻ\",\"Ngày kết nạp\",\"CMND/CCCD\",\"Ghi chú\"\r\n\
         \"Lò Văn Cường\",1979-01-20,nam,'0003,1/4/2001 08:00,=\"079079001234\",\"chuyển đến, 2020\"\r\n\
         \"Hà Thị \"\"Duyên\"\"\",20/01/1992,F,=\"0004\",30.04.2012,,\r\n\
         \r\n\
         \"Họ và tên (*)\",\"Ngày tháng năm sinh\",\"GIỚI TÍNH\",\"Số thẻ\",\"Ngày kết nạp\",\"CMND/CCCD\",\"Ghi chú\"\r\n\
         \"Vừ A Dính\",1988-07-07,Khác,HB-0005,2010-10-10,001088000777,\"dòng\r\nhai\"\r\n"
            .as_bytes()
            .to_vec(),
    );
    out.add(
        "import",
        "tab-english.csv",
        b"unit_id\tfull_name\tbirth_date\tgender\tcard_number\tjoined_on\tposition\tnational_id\tethnicity\treligion\n\
          hg-cta-thcs\tNguyen Van An\t1990-03-15\tmale\tHB-0001\t2015-05-01\tTo truong\t001090012345\tKinh\t\n\
          hg-cta-thcs\tTran Thi Binh\t1985-11-02\tfemale\tHB-0002\t2008-09-05\t\t\t\tPhat giao\n"
            .to_vec(),
    );
    Ok(())
}

/// A small roster workbook (about 2 KB, stored without compression), so
/// that the fuzzer's XLSX mutants stay small enough to keep in the corpus:
/// shared strings, date cells with a date format, a CCCD stored as a number
/// (its leading zero lost), a title row above the header.
pub(super) fn small_xlsx() -> Vec<u8> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let strings = [
        "DANH SÁCH ĐOÀN VIÊN",
        "Họ và tên",
        "Ngày sinh",
        "Giới tính",
        "Số thẻ đoàn viên",
        "Ngày vào công đoàn",
        "Số CCCD",
        "Nguyễn Văn An",
        "Nam",
        "HB-0001",
        "Trần Thị Bình",
        "Nữ",
        "HB-0002",
        "05/09/2008",
    ];
    let sst: String = strings
        .iter()
        .map(|s| format!("<si><t>{s}</t></si>"))
        .collect();
    let s = |cell: &str, i: usize| format!(r#"<c r="{cell}" t="s"><v>{i}</v></c>"#);
    let n = |cell: &str, v: &str, style: &str| format!(r#"<c r="{cell}"{style}><v>{v}</v></c>"#);
    let date = r#" s="1""#;
    let row = |r: usize, cells: &[String]| format!(r#"<row r="{r}">{}</row>"#, cells.concat());
    let rows = [
        row(1, &[s("A1", 0)]),
        row(
            2,
            &[
                s("A2", 1),
                s("B2", 2),
                s("C2", 3),
                s("D2", 4),
                s("E2", 5),
                s("F2", 6),
            ],
        ),
        row(
            3,
            &[
                s("A3", 7),
                n("B3", "32947", date),
                s("C3", 8),
                s("D3", 9),
                n("E3", "42125", date),
                n("F3", "1090012345", ""),
            ],
        ),
        row(
            4,
            &[
                s("A4", 10),
                n("B4", "31353", ""),
                s("C4", 11),
                s("D4", 12),
                s("E4", 13),
                n("F4", "1090012346", ""),
            ],
        ),
    ];
    let parts = [
        (
            "[Content_Types].xml",
            r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            format!(
                r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets><sheet name="Đoàn viên" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!(
                r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{REL}/styles" Target="styles.xml"/><Relationship Id="rId3" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/styles.xml",
            format!(
                r#"<styleSheet xmlns="{MAIN}"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>"#
            ),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!(r#"<worksheet xmlns="{MAIN}"><sheetData>{}</sheetData></worksheet>"#, rows.concat()),
        ),
        ("xl/sharedStrings.xml", format!(r#"<sst xmlns="{MAIN}">{sst}</sst>"#)),
    ];
    stored_zip(&parts)
}

/// A zip archive of `files`, stored (no compression).
pub(super) fn stored_zip(files: &[(&str, String)]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let (name, data) = (name.as_bytes(), data.as_bytes());
        let offset = u32::try_from(out.len()).expect("a small archive");
        let size = u32::try_from(data.len()).expect("a small file");
        let name_len = u16::try_from(name.len()).expect("a short name");
        let crc = crc32(data);
        // Version 2.0, no flags, stored, 1980-01-01 00:00, sizes, name.
        let fields = |v: &mut Vec<u8>| {
            for x in [20u16, 0, 0, 0, 0x21] {
                v.extend(x.to_le_bytes());
            }
            for x in [crc, size, size] {
                v.extend(x.to_le_bytes());
            }
            v.extend(name_len.to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra field
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        fields(&mut out);
        out.extend(name);
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // made by
        fields(&mut central);
        central.extend([0u8; 10]); // comment, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name);
    }
    let start = u32::try_from(out.len()).expect("a small archive");
    let len = u32::try_from(central.len()).expect("a small archive");
    let count = u16::try_from(files.len()).expect("a few files");
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // disk numbers
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(len.to_le_bytes());
    out.extend(start.to_le_bytes());
    out.extend(0u16.to_le_bytes()); // comment
    out
}
