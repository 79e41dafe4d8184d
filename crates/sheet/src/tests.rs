//! The reader's unit tests: every header spelling, delimiter, date form and
//! error, and the XLSX fixture (`tests/fixtures/members.xlsx`).

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::normalise::{normalise_gender, parse_date_text};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/members.xlsx");

fn csv(text: &str) -> Sheet {
    read_csv(text.as_bytes()).unwrap()
}

fn get(row: &RawRow, column: Column) -> Option<&str> {
    row.values.get(&column).map(String::as_str)
}

fn row(pairs: &[(Column, &str)]) -> BTreeMap<Column, String> {
    pairs.iter().map(|&(c, v)| (c, v.to_owned())).collect()
}

#[test]
fn column_names_are_canonical() {
    let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "unit_id",
            "full_name",
            "birth_date",
            "gender",
            "card_number",
            "joined_on",
            "position",
            "national_id",
            "ethnicity",
            "religion"
        ]
    );
    assert_eq!(Column::NationalId.to_string(), "national_id");
}

#[test]
fn headers_are_recognised_in_every_spelling() {
    let cases: &[(&str, Column)] = &[
        ("Mã đơn vị", Column::UnitId),
        ("Mã công đoàn cơ sở", Column::UnitId),
        ("Đơn vị", Column::UnitId),
        ("unit_id", Column::UnitId),
        ("Unit", Column::UnitId),
        ("Họ và tên", Column::FullName),
        ("HỌ TÊN", Column::FullName),
        ("full_name", Column::FullName),
        ("Name", Column::FullName),
        ("Ngày sinh", Column::BirthDate),
        ("Ngày tháng năm sinh", Column::BirthDate),
        ("birth_date", Column::BirthDate),
        ("Giới tính", Column::Gender),
        ("GENDER", Column::Gender),
        ("Số thẻ đoàn viên", Column::CardNumber),
        ("Số thẻ", Column::CardNumber),
        ("Mã thẻ", Column::CardNumber),
        ("card_number", Column::CardNumber),
        ("Ngày vào công đoàn", Column::JoinedOn),
        ("Ngày kết nạp", Column::JoinedOn),
        ("joined_on", Column::JoinedOn),
        ("Chức vụ", Column::Position),
        ("position", Column::Position),
        ("CCCD", Column::NationalId),
        ("Số CCCD", Column::NationalId),
        ("Căn cước công dân", Column::NationalId),
        ("Số định danh", Column::NationalId),
        ("national_id", Column::NationalId),
        ("Dân tộc", Column::Ethnicity),
        ("ethnicity", Column::Ethnicity),
        ("Tôn giáo", Column::Religion),
        ("religion", Column::Religion),
        // Spacing, case, a note in parentheses, no diacritics at all.
        ("  ngày   SINH (dd/mm/yyyy) ", Column::BirthDate),
        ("Ho va ten (*)", Column::FullName),
        ("DAN TOC", Column::Ethnicity),
        // Decomposed (NFD) Unicode, as some Mac tools write it.
        ("Ho\u{323} va\u{300} te\u{302}n", Column::FullName),
        ("\u{110}ơn vị", Column::UnitId),
    ];
    for &(header, column) in cases {
        assert_eq!(Column::from_header(header), Some(column), "{header:?}");
    }
    for header in ["STT", "Ghi chú", "", "(*)", "Tên đơn vị", "Năm"] {
        assert_eq!(Column::from_header(header), None, "{header:?}");
    }
}

#[test]
fn vietnamese_headers_below_title_rows() {
    let sheet = csv(concat!(
        "DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN CƠ SỞ TRƯỜNG THCS HOÀ BÌNH,,,,,,\n",
        "(Kèm theo công văn số 12/CĐ),,,,,,\n",
        "\n",
        "STT,Họ và tên,Ngày sinh,Giới tính,Số thẻ đoàn viên,Ngày vào công đoàn,Ghi chú\n",
        "1,  Nguyễn Văn An ,15/03/1990,Nam,HB-0001,01/05/2015,chuyển đến\n",
        "2,\"Trần, Thị Bình\",2/7/1985,Nữ,HB-0002,2010-09-01,\n",
    ));
    assert_eq!(
        sheet.columns,
        [
            Column::FullName,
            Column::BirthDate,
            Column::Gender,
            Column::CardNumber,
            Column::JoinedOn
        ]
    );
    assert_eq!(sheet.rows.len(), 2);
    assert_eq!(sheet.rows[0].line, 5);
    assert_eq!(
        sheet.rows[0].values,
        row(&[
            (Column::FullName, "Nguyễn Văn An"),
            (Column::BirthDate, "1990-03-15"),
            (Column::Gender, "male"),
            (Column::CardNumber, "HB-0001"),
            (Column::JoinedOn, "2015-05-01"),
        ])
    );
    assert_eq!(sheet.rows[1].line, 6);
    assert_eq!(
        get(&sheet.rows[1], Column::FullName),
        Some("Trần, Thị Bình")
    );
    assert_eq!(get(&sheet.rows[1], Column::BirthDate), Some("1985-07-02"));
    assert_eq!(get(&sheet.rows[1], Column::Gender), Some("female"));
    assert_eq!(get(&sheet.rows[1], Column::JoinedOn), Some("2010-09-01"));
}

#[test]
fn semicolon_csv_with_bom() {
    let text = "\u{feff}Mã đơn vị;Họ tên;Ngày sinh;Giới tính;Số thẻ;Ngày kết nạp;CCCD\r\n\
                CD01;Lê Văn Cường;01.02.1970;M;C-1;05-06-1995;001070000123\r\n";
    let sheet = csv(text);
    assert_eq!(sheet.columns.len(), 7);
    assert_eq!(sheet.columns[0], Column::UnitId);
    assert_eq!(
        sheet.rows,
        [RawRow {
            line: 2,
            values: row(&[
                (Column::UnitId, "CD01"),
                (Column::FullName, "Lê Văn Cường"),
                (Column::BirthDate, "1970-02-01"),
                (Column::Gender, "male"),
                (Column::CardNumber, "C-1"),
                (Column::JoinedOn, "1995-06-05"),
                (Column::NationalId, "001070000123"),
            ])
        }]
    );
}

#[test]
fn tab_delimited_csv() {
    let sheet = csv("full_name\tbirth_date\tgender\tcard_number\tjoined_on\n\
                     A B\t1990-01-02\tfemale\tX-1\t2020-01-01\n");
    assert_eq!(get(&sheet.rows[0], Column::FullName), Some("A B"));
    assert_eq!(get(&sheet.rows[0], Column::Gender), Some("female"));
}

#[test]
fn dates_in_every_accepted_form() {
    let cases = [
        ("15/03/1990", "1990-03-15"),
        ("5/3/1990", "1990-03-05"),
        ("05-03-1990", "1990-03-05"),
        ("05.03.1990", "1990-03-05"),
        ("1990-03-05", "1990-03-05"),
        ("1990-3-5", "1990-03-05"),
        ("1990-03-05T00:00:00", "1990-03-05"),
        ("05/03/1990 00:00:00", "1990-03-05"),
        ("29/02/2000", "2000-02-29"),
    ];
    for (text, iso) in cases {
        assert_eq!(parse_date_text(text).as_deref(), Some(iso), "{text:?}");
    }
    for text in [
        "29/02/1900",
        "31/04/1990",
        "13/13/1990",
        "15/03/90",
        "1990",
        "15031990",
        "15/03-1990",
        "ngày 15/03/1990",
        "15/03/1990 sáng",
        "",
    ] {
        assert_eq!(parse_date_text(text), None, "{text:?}");
    }
    // Unreadable dates reach the caller as written.
    let sheet = csv("Họ và tên,Ngày sinh,Giới tính,Số thẻ,Ngày vào công đoàn\n\
                     A,31/02/1990,Nam,X-1,khoảng 2015\n");
    assert_eq!(get(&sheet.rows[0], Column::BirthDate), Some("31/02/1990"));
    assert_eq!(get(&sheet.rows[0], Column::JoinedOn), Some("khoảng 2015"));
}

#[test]
fn gender_words() {
    let cases = [
        ("Nam", "male"),
        ("NAM", "male"),
        ("m", "male"),
        ("Male", "male"),
        ("Nữ", "female"),
        ("nữ", "female"),
        ("Nu", "female"),
        ("F", "female"),
        ("female", "female"),
        ("Khác", "other"),
        ("other", "other"),
        ("Nu\u{303}", "female"),
        ("không rõ", "không rõ"),
        ("1", "1"),
    ];
    for (word, gender) in cases {
        assert_eq!(normalise_gender(word), gender, "{word:?}");
    }
}

#[test]
fn id_numbers_in_csv_keep_leading_zeros() {
    let sheet = csv(
        "Họ và tên,Ngày sinh,Giới tính,Số thẻ,Ngày kết nạp,Số CCCD\n\
                     A,01/01/1990,Nam,'00123,01/01/2015,=\"001090012345\"\n\
                     B,01/01/1990,Nam,00124,01/01/2015,'001090012346\n",
    );
    assert_eq!(get(&sheet.rows[0], Column::CardNumber), Some("00123"));
    assert_eq!(
        get(&sheet.rows[0], Column::NationalId),
        Some("001090012345")
    );
    assert_eq!(get(&sheet.rows[1], Column::CardNumber), Some("00124"));
    assert_eq!(
        get(&sheet.rows[1], Column::NationalId),
        Some("001090012346")
    );
}

#[test]
fn empty_rows_are_skipped_and_line_numbers_kept() {
    let sheet = csv(concat!(
        "DANH SÁCH ĐOÀN VIÊN\n",                                   // 1
        "STT;Họ và tên;Ngày sinh;Giới tính;Số thẻ;Ngày kết nạp\n", // 2
        "1;A;01/01/1990;Nam;X-1;01/01/2015\n",                     // 3
        "\n",                                                      // 4
        ";;;;;\n",                                                 // 5
        "2;;;;;\n",                                                // 6 (STT only)
        "3;\"B\nC\";01/01/1991;Nữ;X-2;01/01/2016\n",               // 7-8
        "   ;  ;;;;\n",                                            // 9
        "STT;Họ và tên;Ngày sinh;Giới tính;Số thẻ;Ngày kết nạp\n", // 10 (repeat)
        "4;D;01/01/1992;Khác;X-3;01/01/2017\n",                    // 11
    ));
    let lines: Vec<usize> = sheet.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 7, 11]);
    assert_eq!(get(&sheet.rows[1], Column::FullName), Some("B\nC"));
    assert_eq!(get(&sheet.rows[2], Column::Gender), Some("other"));
}

#[test]
fn line_numbers_with_crlf_cr_and_blank_lines() {
    let header = "Họ và tên,Ngày sinh,Giới tính,Số thẻ,Ngày kết nạp";
    let a = "A,01/01/1990,Nam,X-1,01/01/2015";
    let b = "\"B\nC\",01/01/1991,Nữ,X-2,01/01/2016";
    let d = "D,01/01/1992,Nữ,X-3,01/01/2017";
    for eol in ["\n", "\r\n", "\r"] {
        // Lines: 1-2 blank, 3 title, 4 blank, 5 header, 6 A, 7-8 blank,
        // 9-10 B (a cell with a line break), 11 blank, 12 D.
        let text = ["", "", "TIÊU ĐỀ", "", header, a, "", "", b, "", d, ""].join(eol);
        let sheet = csv(&text);
        let lines: Vec<usize> = sheet.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [6, 9, 12], "{eol:?}");
    }
}

#[test]
fn missing_columns_are_named() {
    let err = read_csv(
        "Tiêu đề\nHọ và tên,Ngày sinh,Giới tính,Mã đơn vị\nA,01/01/1990,Nam,U1\n".as_bytes(),
    )
    .unwrap_err();
    match &err {
        ImportFileError::MissingColumns {
            missing,
            header_line,
        } => {
            assert_eq!(missing, &[Column::CardNumber, Column::JoinedOn]);
            assert_eq!(*header_line, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the header row (row 2) lacks the required column(s) \"Số thẻ đoàn viên\" \
         (card_number), \"Ngày vào công đoàn\" (joined_on)"
    );
}

#[test]
fn no_header_row() {
    for text in ["", "a,b,c\n1,2,3\n", "Họ và tên,Ngày sinh\nA,01/01/1990\n"] {
        let err = read_csv(text.as_bytes()).unwrap_err();
        assert!(matches!(err, ImportFileError::NoHeaderRow), "{text:?}");
    }
    // A header below the 10th row is not looked for.
    let mut text = "tiêu đề\n".repeat(10);
    text.push_str("Họ và tên,Ngày sinh,Giới tính,Số thẻ,Ngày kết nạp\n");
    assert!(matches!(
        read_csv(text.as_bytes()),
        Err(ImportFileError::NoHeaderRow)
    ));
}

#[test]
fn not_utf8_names_the_line() {
    // "Nữ" in Windows-1258 is not UTF-8.
    let bytes =
        b"Ho va ten,Ngay sinh,Gioi tinh,So the,Ngay ket nap\nA,01/01/1990,N\xf7,X,01/01/2015\n";
    let err = read_csv(&bytes[..]).unwrap_err();
    assert!(
        matches!(err, ImportFileError::NotUtf8 { line: 2 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("CSV UTF-8"));
}

#[test]
fn unknown_extension_is_refused() {
    let err = read_file(Path::new("danh-sach.xls")).unwrap_err();
    assert!(
        matches!(&err, ImportFileError::UnsupportedExtension { extension } if extension == "xls")
    );
    assert!(err.to_string().contains("\".xls\""), "{err}");
    let err = read_file(Path::new("danh-sach")).unwrap_err();
    assert!(err.to_string().contains("no extension"), "{err}");
}

#[test]
fn missing_file_is_reported() {
    let err = read_file(Path::new("/nonexistent/danh-sach.CSV")).unwrap_err();
    assert!(matches!(err, ImportFileError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/danh-sach.CSV"));
}

#[test]
fn read_file_reads_csv() {
    let dir = std::env::temp_dir().join(format!("hopluu-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("roster.csv");
    std::fs::write(
        &path,
        "full_name,birth_date,gender,card_number,joined_on\nA,1990-01-01,F,X-1,2015-01-01\n",
    )
    .unwrap();
    let sheet = read_file(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(sheet.rows.len(), 1);
    assert_eq!(sheet.rows[0].line, 2);
}

#[test]
fn not_an_xlsx_is_reported() {
    let err = read_xlsx(std::io::Cursor::new(b"Ho va ten,Ngay sinh\n".to_vec())).unwrap_err();
    assert!(matches!(err, ImportFileError::Xlsx(_)), "{err:?}");
}

#[test]
fn errors_can_travel_in_anyhow() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<ImportFileError>();
}

/// `tests/fixtures/members.xlsx` (made with `rust_xlsxwriter`), first
/// sheet "Đoàn viên"; a second sheet "Ghi chú" must be ignored.
///
/// * row 1: a merged title cell `DANH SÁCH ĐOÀN VIÊN ...`; row 2 empty;
/// * row 3: header `STT | Mã đơn vị | Họ và tên | Ngày sinh | Giới tính |
///   Số thẻ đoàn viên | Ngày vào công đoàn | Chức vụ | Số CCCD | Dân tộc |
///   Tôn giáo`;
/// * row 4: birth date a date cell, card number the number 790123456789,
///   joining date the text `01/05/2015`, CCCD the text `001090012345`;
/// * row 5 empty;
/// * row 6: unit the number 101, name with spaces around, birth date the
///   plain number 33000 (a serial), joining date a date cell, CCCD the
///   number 1090012346 (leading zeros lost);
/// * row 7: only the STT number;
/// * row 8: birth date the number 1985 (not a date), card number the
///   number 1500, joining date `??`, CCCD the number 123456789 (9 digits,
///   an old CMND, not padded).
#[test]
fn xlsx_fixture() {
    let sheet = read_file(Path::new(FIXTURE)).unwrap();
    assert_eq!(sheet.columns, Column::ALL);
    let lines: Vec<usize> = sheet.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [4, 6, 8]);
    assert_eq!(
        sheet.rows[0].values,
        row(&[
            (Column::UnitId, "CD0101"),
            (Column::FullName, "Nguyễn Văn An"),
            (Column::BirthDate, "1990-03-15"),
            (Column::Gender, "male"),
            (Column::CardNumber, "790123456789"),
            (Column::JoinedOn, "2015-05-01"),
            (Column::Position, "Tổ trưởng"),
            (Column::NationalId, "001090012345"),
            (Column::Ethnicity, "Kinh"),
            (Column::Religion, "Không"),
        ])
    );
    assert_eq!(
        sheet.rows[1].values,
        row(&[
            (Column::UnitId, "101"),
            (Column::FullName, "Trần Thị Bình"),
            (Column::BirthDate, "1990-05-07"),
            (Column::Gender, "female"),
            (Column::CardNumber, "HB-0002"),
            (Column::JoinedOn, "2012-11-20"),
            (Column::NationalId, "001090012346"),
            (Column::Ethnicity, "Tày"),
        ])
    );
    assert_eq!(
        sheet.rows[2].values,
        row(&[
            (Column::FullName, "Lê Thị Cúc"),
            (Column::BirthDate, "1985"),
            (Column::Gender, "other"),
            (Column::CardNumber, "1500"),
            (Column::JoinedOn, "??"),
            (Column::NationalId, "123456789"),
        ])
    );
}

/// A cell at a far address is refused, not expanded into a dense range
/// of tens of gigabytes (found by fuzzing; the files are the fuzz
/// target's regressions).
#[test]
fn a_cell_beyond_the_sheet_is_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/import");
    for (file, at) in [
        ("xlsx-cell-far-column", (1, 321_272_406)), // ZZZZZZ1
        ("xlsx-cell-far-row", (4_000_000_000, 1)),  // A4000000000
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let err = read_xlsx(std::io::Cursor::new(bytes)).unwrap_err();
        assert!(
            matches!(err, ImportFileError::CellOutsideSheet { row, column } if (row, column) == at),
            "{file}: {err}"
        );
    }
}
