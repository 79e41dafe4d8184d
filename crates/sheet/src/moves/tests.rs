//! A sheet of moves: headers matched loosely below title rows, CSV and
//! XLSX, grouping by new parent, and rows refused by line.

use std::path::Path;

use super::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/moves.xlsx");

fn csv(text: &str) -> Result<Moves, MovesError> {
    read_moves_csv(text.as_bytes())
}

fn units(m: &Moves) -> Vec<(usize, &str, &str)> {
    m.rows
        .iter()
        .map(|r| (r.line, r.unit.as_str(), r.to.as_str()))
        .collect()
}

#[test]
fn headers_are_matched_loosely() {
    for (header, column) in [
        ("Mã đơn vị", MoveColumn::Unit),
        ("MÃ ĐƠN VỊ (*)", MoveColumn::Unit),
        ("Ma don vi", MoveColumn::Unit),
        ("Mã công đoàn cơ sở", MoveColumn::Unit),
        ("unit_id", MoveColumn::Unit),
        ("Tên đơn vị", MoveColumn::Name),
        ("TÊN CÔNG ĐOÀN CƠ SỞ", MoveColumn::Name),
        ("Mã đơn vị cấp trên mới", MoveColumn::To),
        ("Đơn vị cấp trên mới", MoveColumn::To),
        ("don vi cap tren moi", MoveColumn::To),
        ("Cấp trên mới (mã)", MoveColumn::To),
        ("Chuyển về", MoveColumn::To),
        ("new_parent", MoveColumn::To),
    ] {
        assert_eq!(MoveColumn::from_header(header), Some(column), "{header:?}");
    }
    for other in ["STT", "Đơn vị cấp trên cũ", "Ghi chú", ""] {
        assert_eq!(MoveColumn::from_header(other), None, "{other:?}");
    }
}

#[test]
fn csv_below_a_title_row_grouped_by_new_parent() {
    let m = csv("QUYẾT ĐỊNH SỐ 12/QĐ-LĐLĐ: DANH SÁCH CĐCS CHUYỂN CẤP TRÊN\n\
         STT;MÃ ĐƠN VỊ;Tên đơn vị;Đơn vị cấp trên cũ;Đơn vị cấp trên mới\n\
         1;hg-a;CĐCS Trường A;hg-huyen;hg-phuong-1\n\
         2; hg-b ;CĐCS Nhà máy B;hg-huyen;hg-phuong-2\n\
         \n\
         3;hg-c;CĐCS Bệnh viện C;hg-huyen;hg-phuong-1\n\
         4\n\
         STT;MÃ ĐƠN VỊ;Tên đơn vị;Đơn vị cấp trên cũ;Đơn vị cấp trên mới\n\
         5;hg-d;;hg-huyen;hg-phuong-2\n")
    .unwrap();
    assert_eq!(
        m.columns,
        [MoveColumn::Unit, MoveColumn::Name, MoveColumn::To]
    );
    assert_eq!(
        units(&m),
        [
            (3, "hg-a", "hg-phuong-1"),
            (4, "hg-b", "hg-phuong-2"),
            (6, "hg-c", "hg-phuong-1"),
            (9, "hg-d", "hg-phuong-2"),
        ]
    );
    assert_eq!(m.rows[0].name, "CĐCS Trường A");
    assert_eq!(m.rows[3].name, "");
    let groups = m.by_parent();
    assert_eq!(
        groups,
        [
            MoveGroup {
                to: "hg-phuong-1".into(),
                units: vec!["hg-a".into(), "hg-c".into()],
                lines: vec![3, 6],
            },
            MoveGroup {
                to: "hg-phuong-2".into(),
                units: vec!["hg-b".into(), "hg-d".into()],
                lines: vec![4, 9],
            },
        ]
    );
}

#[test]
fn two_columns_suffice_with_any_delimiter() {
    for text in [
        "unit,to\nhg-a,hg-p\n",
        "Ma don vi\tMa don vi cap tren moi\nhg-a\thg-p\n",
    ] {
        let m = csv(text).unwrap();
        assert_eq!(units(&m), [(2, "hg-a", "hg-p")], "{text:?}");
    }
}

#[test]
fn a_row_missing_its_parent_refuses_the_sheet_naming_the_line() {
    let err = csv("Danh sách\n\
         Mã đơn vị,Tên đơn vị,Mã đơn vị cấp trên mới\n\
         hg-a,CĐCS A,hg-p\n\
         hg-b,CĐCS B,\n\
         ,CĐCS C,hg-p\n\
         hg-a,CĐCS A lần nữa,hg-q\n")
    .unwrap_err();
    match &err {
        MovesError::BadRows { rows } => {
            let lines: Vec<usize> = rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, [4, 5, 6]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the sheet is refused whole (a decision is applied whole): \
         line 4: unit hg-b has no new parent (\"Mã đơn vị cấp trên mới\"); \
         line 5: no unit (\"Mã đơn vị\"); \
         line 6: unit hg-a is listed twice (also line 3)"
    );
}

#[test]
fn a_sheet_without_its_header_or_moves_is_refused() {
    for text in ["", "Mã đơn vị,Tên đơn vị\nhg-a,A\n", "a,b\n1,2\n"] {
        assert!(
            matches!(csv(text), Err(MovesError::NoHeaderRow)),
            "{text:?}"
        );
    }
    assert!(matches!(
        csv("Mã đơn vị,Cấp trên mới\n\n1,\n"),
        Err(MovesError::BadRows { .. })
    ));
    assert!(matches!(
        csv("STT,Mã đơn vị,Cấp trên mới\n1,,\n"),
        Err(MovesError::NoMoves)
    ));
    // A roster is not a sheet of moves, nor the other way round.
    let roster = "Mã đơn vị,Họ và tên,Ngày sinh,Giới tính,Số thẻ,Ngày kết nạp\n\
                  hg-a,Nguyễn Văn An,01/01/1990,Nam,A-1,01/01/2015\n";
    assert!(matches!(csv(roster), Err(MovesError::NoHeaderRow)));
    assert!(matches!(
        crate::read_csv("Mã đơn vị,Mã đơn vị cấp trên mới\nhg-a,hg-p\n".as_bytes()),
        Err(ImportFileError::NoHeaderRow)
    ));
    let err = read_moves_file(Path::new("quyet-dinh.pdf")).unwrap_err();
    assert!(matches!(
        err,
        MovesError::File(ImportFileError::UnsupportedExtension { .. })
    ));
}

/// `tests/fixtures/moves.xlsx`, written by hand (the XML parts of an
/// `.xlsx`, zipped), first sheet "Chuyển đơn vị":
///
/// * row 1: a title; row 2 empty;
/// * row 3: header `STT | MÃ ĐƠN VỊ (*) | Tên đơn vị | Đơn vị cấp trên
///   mới` (shared strings);
/// * row 4: `hg-thpt-vi-thanh` to `hg-phuong-vi-tan` (a shared string);
/// * row 5: unit the number 101, to `hg-phuong-vi-tan`;
/// * row 6: only the STT number;
/// * row 7: `hg-nha-may-duong`, no name, to ` hg-phuong-iii ` (spaces).
#[test]
fn xlsx_fixture() {
    let m = read_moves_file(Path::new(FIXTURE)).unwrap();
    assert_eq!(
        units(&m),
        [
            (4, "hg-thpt-vi-thanh", "hg-phuong-vi-tan"),
            (5, "101", "hg-phuong-vi-tan"),
            (7, "hg-nha-may-duong", "hg-phuong-iii"),
        ]
    );
    assert_eq!(m.rows[0].name, "CĐCS Trường THPT Vị Thanh");
    let groups: Vec<(String, Vec<String>)> =
        m.by_parent().into_iter().map(|g| (g.to, g.units)).collect();
    assert_eq!(
        groups,
        [
            (
                "hg-phuong-vi-tan".to_owned(),
                vec!["hg-thpt-vi-thanh".to_owned(), "101".to_owned()]
            ),
            (
                "hg-phuong-iii".to_owned(),
                vec!["hg-nha-may-duong".to_owned()]
            ),
        ]
    );
    let bytes = std::fs::read(FIXTURE).unwrap();
    assert_eq!(read_moves_xlsx(std::io::Cursor::new(bytes)).unwrap(), m);
}
