//! Values as the caller gets them: dates as `yyyy-mm-dd`, gender words,
//! id numbers that Excel stored as numbers.

use calamine::{ExcelDateTime, ExcelDateTimeType};

use crate::column::{Column, fold};
use crate::read::Cell;

/// Excel serials below this (1910-01-01) are not taken for dates: they are
/// rather years or typos, and are left for the caller to report.
const MIN_DATE_SERIAL: f64 = 3654.0;
/// Excel's last date, 9999-12-31, is serial 2958465.
const MAX_DATE_SERIAL: f64 = 2_958_466.0;

/// The value of a cell in a column, or `None` if it is empty.
pub(crate) fn normalise(column: Column, cell: &Cell) -> Option<String> {
    let is_date = matches!(column, Column::BirthDate | Column::JoinedOn);
    let value = match cell {
        Cell::Text(s) => {
            let s = s.trim();
            match column {
                _ if is_date => parse_date_text(s).unwrap_or_else(|| s.to_owned()),
                Column::Gender => normalise_gender(s),
                Column::CardNumber | Column::NationalId => unwrap_text_number(s).to_owned(),
                _ => s.to_owned(),
            }
        }
        Cell::Date(iso) => iso.clone(),
        Cell::Int(i) if is_date => serial_date_iso(*i as f64).unwrap_or_else(|| i.to_string()),
        Cell::Number(f) if is_date => serial_date_iso(*f).unwrap_or_else(|| f.to_string()),
        Cell::Int(i) if column == Column::NationalId => pad_national_id(i.to_string()),
        Cell::Number(f) if column == Column::NationalId => pad_national_id(f.to_string()),
        // `f64`'s Display never uses an exponent nor prints `.0`.
        Cell::Int(_) | Cell::Number(_) => cell.text(),
    };
    (!value.is_empty()).then_some(value)
}

/// Undoes Excel's tricks to keep leading zeros in CSV: `'0123` and `="0123"`.
fn unwrap_text_number(s: &str) -> &str {
    if let Some(inner) = s.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        inner.trim()
    } else if let Some(inner) = s.strip_prefix('\'') {
        inner.trim()
    } else {
        s
    }
}

/// A CCCD always starts with a province code `001`..`096`; as an Excel number
/// it has lost 1 or 2 leading zeros.
fn pad_national_id(digits: String) -> String {
    if (10..=11).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("{digits:0>12}")
    } else {
        digits
    }
}

pub(crate) fn normalise_gender(s: &str) -> String {
    let key: String = fold(s)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    match key.as_str() {
        "nam" | "namgioi" | "m" | "male" => "male".to_owned(),
        "nu" | "nugioi" | "f" | "female" => "female".to_owned(),
        "khac" | "other" => "other".to_owned(),
        _ => s.to_owned(),
    }
}

pub(crate) fn excel_date_iso(dt: &ExcelDateTime) -> String {
    let (y, m, d, ..) = dt.to_ymd_hms_milli();
    format!("{y:04}-{m:02}-{d:02}")
}

fn serial_date_iso(serial: f64) -> Option<String> {
    (MIN_DATE_SERIAL..MAX_DATE_SERIAL)
        .contains(&serial)
        .then(|| {
            excel_date_iso(&ExcelDateTime::new(
                serial,
                ExcelDateTimeType::DateTime,
                false,
            ))
        })
}

/// `dd/mm/yyyy`, `d/m/yyyy`, `dd-mm-yyyy`, `dd.mm.yyyy` or `yyyy-mm-dd`
/// (optionally followed by a time) as `YYYY-MM-DD`, if it is a real date.
pub(crate) fn parse_date_text(s: &str) -> Option<String> {
    let date = match s.find([' ', 'T']) {
        Some(i) => {
            let time = s[i + 1..].trim();
            if !time.starts_with(|c: char| c.is_ascii_digit()) || !time.contains(':') {
                return None;
            }
            &s[..i]
        }
        None => s,
    };
    let separator = date.chars().find(|c| !c.is_ascii_digit())?;
    if !matches!(separator, '/' | '-' | '.') {
        return None;
    }
    let parts: Vec<&str> = date.split(separator).collect();
    let [a, b, c] = parts[..] else {
        return None;
    };
    if [a, b, c]
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (year, month, day) = match (a.len(), b.len(), c.len()) {
        (4, 1..=2, 1..=2) => (a, b, c),
        (1..=2, 1..=2, 4) => (c, b, a),
        _ => return None,
    };
    let (year, month, day): (u32, u32, u32) =
        (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
