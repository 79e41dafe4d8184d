//! The `import` target: a roster spreadsheet (CSV or XLSX).

use hopluu_sheet as roster_import;

/// A roster file for `hopluu import members`, read both as CSV
/// ([`roster_import::read_csv`]) and as XLSX ([`roster_import::read_xlsx`]):
/// the corpus holds both kinds and each reader refuses the other's quickly.
/// A sheet that reads has the required columns, rows in file order and
/// trimmed, non-empty values in known columns only.
pub fn import(data: &[u8]) {
    check_sheet(roster_import::read_csv(data));
    check_sheet(roster_import::read_xlsx(std::io::Cursor::new(data)));
}

fn check_sheet(sheet: Result<roster_import::Sheet, roster_import::ImportFileError>) {
    let sheet = match sheet {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for c in roster_import::Column::REQUIRED {
        assert!(sheet.columns.contains(&c), "a sheet without column {c}");
    }
    for w in sheet.rows.windows(2) {
        assert!(
            w[0].line < w[1].line,
            "rows out of order: line {} then {}",
            w[0].line,
            w[1].line
        );
    }
    for row in &sheet.rows {
        assert!(row.line >= 1);
        assert!(!row.values.is_empty(), "an empty row at line {}", row.line);
        for (column, value) in &row.values {
            assert!(sheet.columns.contains(column));
            assert!(!value.is_empty(), "an empty value at line {}", row.line);
            assert_eq!(
                value.trim(),
                value,
                "an untrimmed value at line {}",
                row.line
            );
        }
    }
}
