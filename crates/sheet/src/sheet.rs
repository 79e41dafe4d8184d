//! A roster as read: the header row found among the first rows, and the
//! member rows under it, numbered and normalised.

use std::collections::BTreeMap;

use crate::column::Column;
use crate::error::ImportFileError;
use crate::normalise::normalise;
use crate::read::Cell;

/// The header must be within this many (non-blank) rows of the top.
pub(crate) const HEADER_SEARCH_ROWS: usize = 10;
/// A row is the header when at least this many known column names appear.
const MIN_HEADER_COLUMNS: usize = 3;

/// One member row as read from the file, before any validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// 1-based row number in Excel, or line number in a CSV file.
    pub line: usize,
    /// Trimmed, normalised values; empty cells are left out.
    pub values: BTreeMap<Column, String>,
}

/// A roster as read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    /// The recognised columns, in the file's order.
    pub columns: Vec<Column>,
    /// The member rows, in the file's order, blank rows left out.
    pub rows: Vec<RawRow>,
}

pub(crate) struct Header {
    index: usize,
    line: usize,
    columns: Vec<(usize, Column)>,
}

/// The known columns of a row, by cell index; the first of duplicates wins.
fn header_columns(cells: &[Cell]) -> Vec<(usize, Column)> {
    let mut columns: Vec<(usize, Column)> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        if let Some(column) = Column::from_header(&cell.text())
            && !columns.iter().any(|&(_, c)| c == column)
        {
            columns.push((i, column));
        }
    }
    columns
}

/// A roster's header names at least three known columns.
pub(crate) fn roster_header(cells: &[Cell]) -> Option<usize> {
    let n = header_columns(cells).len();
    (n >= MIN_HEADER_COLUMNS).then_some(n)
}

fn find_header(rows: &[(usize, Vec<Cell>)]) -> Option<Header> {
    rows.iter()
        .take(HEADER_SEARCH_ROWS)
        .enumerate()
        .find_map(|(index, (line, cells))| {
            let columns = header_columns(cells);
            (columns.len() >= MIN_HEADER_COLUMNS).then_some(Header {
                index,
                line: *line,
                columns,
            })
        })
}

pub(crate) fn build_sheet(rows: Vec<(usize, Vec<Cell>)>) -> Result<Sheet, ImportFileError> {
    let header = find_header(&rows).ok_or(ImportFileError::NoHeaderRow)?;
    let missing: Vec<Column> = Column::REQUIRED
        .into_iter()
        .filter(|c| !header.columns.iter().any(|(_, h)| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(ImportFileError::MissingColumns {
            missing,
            header_line: header.line,
        });
    }
    let mut out = Vec::new();
    for (line, cells) in rows.into_iter().skip(header.index + 1) {
        if header_columns(&cells) == header.columns {
            continue; // the header repeated, e.g. on every printed page
        }
        let values: BTreeMap<Column, String> = header
            .columns
            .iter()
            .filter_map(|&(i, column)| Some((column, normalise(column, cells.get(i)?)?)))
            .collect();
        if !values.is_empty() {
            out.push(RawRow { line, values });
        }
    }
    Ok(Sheet {
        columns: header.columns.iter().map(|&(_, c)| c).collect(),
        rows: out,
    })
}
