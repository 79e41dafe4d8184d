//! A sheet of unit moves: the spreadsheet an office keeps of a
//! reorganisation decision, one row per unit moved to a new parent, read
//! for `hopluu reorg apply FILE.csv|FILE.xlsx`.
//!
//! # Accepted layout
//!
//! The same files as a roster (a `.csv` in UTF-8 with `,` `;` or tab, or
//! the first worksheet of an `.xlsx`), with title rows allowed above the
//! header: the header is the first row, among the first 10, that names
//! both the unit and its new parent. Headers are matched as a roster's
//! are (case, spaces, punctuation, diacritics and anything in parentheses
//! ignored):
//!
//! | field  | accepted headers                                                        |
//! |--------|-------------------------------------------------------------------------|
//! | `unit` | Mã đơn vị, Mã công đoàn cơ sở, Mã công đoàn, Đơn vị, unit_id, unit      |
//! | `name` | Tên đơn vị, Tên công đoàn cơ sở, Tên công đoàn, name (informational)    |
//! | `to`   | Mã đơn vị cấp trên mới, Đơn vị cấp trên mới, Cấp trên mới, Chuyển về, new_parent, to |
//!
//! ```text
//! DANH SÁCH CÔNG ĐOÀN CƠ SỞ CHUYỂN VỀ CÔNG ĐOÀN PHƯỜNG VỊ TÂN
//! STT;Mã đơn vị;Tên đơn vị;Mã đơn vị cấp trên mới
//! 1;hg-thpt-vi-thanh;CĐCS Trường THPT Vị Thanh;hg-phuong-vi-tan
//! ```
//!
//! Rows with no unit, name or new parent (blank rows, an `STT` alone) and
//! repeats of the header are skipped. A row with a unit but no new parent,
//! or a new parent but no unit, or a unit listed twice, refuses the whole
//! sheet, naming every such row by the number the clerk sees: a decision
//! is applied whole, so a sheet is too. Values are trimmed; a number
//! Excel stored comes out as its digits.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use crate::column::header_key;
use crate::error::ImportFileError;
use crate::read::{Cell, Rows, csv_cells, read_path, xlsx_cells};
use crate::sheet::HEADER_SEARCH_ROWS;

/// A column of a sheet of moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MoveColumn {
    /// The unit moved.
    Unit,
    /// Its name, for the clerk's eyes only.
    Name,
    /// Its new parent.
    To,
}

impl MoveColumn {
    pub const ALL: [MoveColumn; 3] = [MoveColumn::Unit, MoveColumn::Name, MoveColumn::To];

    /// The usual Vietnamese header of the column.
    pub fn header_vi(self) -> &'static str {
        match self {
            MoveColumn::Unit => "Mã đơn vị",
            MoveColumn::Name => "Tên đơn vị",
            MoveColumn::To => "Mã đơn vị cấp trên mới",
        }
    }

    /// The column a header cell names, if any.
    pub fn from_header(header: &str) -> Option<MoveColumn> {
        let key = header_key(header);
        MoveColumn::ALL
            .into_iter()
            .find(|c| c.aliases().contains(&key.as_str()))
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            MoveColumn::Unit => &[
                "madonvi",
                "macongdoancoso",
                "macongdoan",
                "madonvicongdoan",
                "donvi",
                "unitid",
                "unit",
            ],
            MoveColumn::Name => &[
                "tendonvi",
                "tencongdoancoso",
                "tencongdoan",
                "tendonvicongdoan",
                "name",
                "unitname",
            ],
            MoveColumn::To => &[
                "madonvicaptrenmoi",
                "donvicaptrenmoi",
                "macaptrenmoi",
                "captrenmoi",
                "macongdoancaptrenmoi",
                "congdoancaptrenmoi",
                "chuyenve",
                "chuyenden",
                "newparent",
                "newparentid",
                "to",
            ],
        }
    }
}

/// One unit moved, as its row gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveRow {
    /// 1-based row number in Excel, or line number in a CSV file.
    pub line: usize,
    pub unit: String,
    /// Empty when the sheet has no name column or the cell is empty.
    pub name: String,
    pub to: String,
}

/// The units moved to one new parent, in the sheet's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveGroup {
    pub to: String,
    pub units: Vec<String>,
    /// The line of each unit, in `units` order.
    pub lines: Vec<usize>,
}

/// A sheet of moves as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moves {
    /// The recognised columns, in the file's order.
    pub columns: Vec<MoveColumn>,
    pub rows: Vec<MoveRow>,
}

impl Moves {
    /// The moves grouped by new parent, groups in the order each parent
    /// first appears (one `move` step each).
    pub fn by_parent(&self) -> Vec<MoveGroup> {
        let mut groups: Vec<MoveGroup> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for r in &self.rows {
            let i = *index.entry(r.to.as_str()).or_insert_with(|| {
                groups.push(MoveGroup {
                    to: r.to.clone(),
                    units: Vec::new(),
                    lines: Vec::new(),
                });
                groups.len() - 1
            });
            groups[i].units.push(r.unit.clone());
            groups[i].lines.push(r.line);
        }
        groups
    }
}

/// A row that cannot be a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMoveRow {
    pub line: usize,
    pub reason: String,
}

/// Why a sheet of moves was refused.
#[derive(Debug, thiserror::Error)]
pub enum MovesError {
    #[error(transparent)]
    File(ImportFileError),
    #[error(
        "no header row found: one of the first {HEADER_SEARCH_ROWS} rows must name the unit and \
         its new parent, e.g. \"Mã đơn vị\" and \"Mã đơn vị cấp trên mới\""
    )]
    NoHeaderRow,
    #[error("the sheet lists no unit to move")]
    NoMoves,
    #[error(
        "the sheet is refused whole (a decision is applied whole): {}",
        bad_rows_message(rows)
    )]
    BadRows { rows: Vec<BadMoveRow> },
}

impl From<ImportFileError> for MovesError {
    fn from(e: ImportFileError) -> MovesError {
        match e {
            ImportFileError::NoHeaderRow => MovesError::NoHeaderRow,
            e => MovesError::File(e),
        }
    }
}

fn bad_rows_message(rows: &[BadMoveRow]) -> String {
    rows.iter()
        .map(|r| format!("line {}: {}", r.line, r.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads a sheet of moves, a `.csv` or an `.xlsx` (by extension).
pub fn read_moves_file(path: &Path) -> Result<Moves, MovesError> {
    build_moves(read_path(path, moves_header)?)
}

/// Reads a sheet of moves from CSV text.
pub fn read_moves_csv<R: Read>(r: R) -> Result<Moves, MovesError> {
    build_moves(csv_cells(r, moves_header)?)
}

/// Reads a sheet of moves from the first worksheet of an XLSX workbook.
pub fn read_moves_xlsx<R: Read + Seek>(r: R) -> Result<Moves, MovesError> {
    build_moves(xlsx_cells(r)?)
}

/// The move columns of a row, by cell index; the first of duplicates wins.
fn columns(cells: &[Cell]) -> Vec<(usize, MoveColumn)> {
    let mut out: Vec<(usize, MoveColumn)> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        if let Some(c) = MoveColumn::from_header(&cell.text())
            && !out.iter().any(|&(_, k)| k == c)
        {
            out.push((i, c));
        }
    }
    out
}

/// A sheet of moves' header names the unit and its new parent.
fn moves_header(cells: &[Cell]) -> Option<usize> {
    let cols = columns(cells);
    let has = |c: MoveColumn| cols.iter().any(|&(_, k)| k == c);
    (has(MoveColumn::Unit) && has(MoveColumn::To)).then_some(cols.len())
}

fn value(cell: Option<&Cell>) -> String {
    cell.map(|c| c.text().trim().to_owned()).unwrap_or_default()
}

fn build_moves(rows: Rows) -> Result<Moves, MovesError> {
    let (index, header) = rows
        .iter()
        .take(HEADER_SEARCH_ROWS)
        .enumerate()
        .find(|(_, (_, cells))| moves_header(cells).is_some())
        .map(|(i, (_, cells))| (i, columns(cells)))
        .ok_or(MovesError::NoHeaderRow)?;
    let at = |c: MoveColumn| header.iter().find(|&&(_, k)| k == c).map(|&(i, _)| i);
    let (unit_at, name_at, to_at) = (
        at(MoveColumn::Unit),
        at(MoveColumn::Name),
        at(MoveColumn::To),
    );
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, cells) in rows.into_iter().skip(index + 1) {
        if columns(&cells) == header {
            continue; // the header repeated, e.g. on every printed page
        }
        let get = |i: Option<usize>| value(i.and_then(|i| cells.get(i)));
        let (unit, name, to) = (get(unit_at), get(name_at), get(to_at));
        match (unit.is_empty(), to.is_empty()) {
            (true, true) if name.is_empty() => continue,
            (true, _) => bad.push(BadMoveRow {
                line,
                reason: format!("no unit (\"{}\")", MoveColumn::Unit.header_vi()),
            }),
            (false, true) => bad.push(BadMoveRow {
                line,
                reason: format!(
                    "unit {unit} has no new parent (\"{}\")",
                    MoveColumn::To.header_vi()
                ),
            }),
            (false, false) => {
                if let Some(first) = seen.get(&unit) {
                    bad.push(BadMoveRow {
                        line,
                        reason: format!("unit {unit} is listed twice (also line {first})"),
                    });
                } else {
                    seen.insert(unit.clone(), line);
                    out.push(MoveRow {
                        line,
                        unit,
                        name,
                        to,
                    });
                }
            }
        }
    }
    if !bad.is_empty() {
        return Err(MovesError::BadRows { rows: bad });
    }
    if out.is_empty() {
        return Err(MovesError::NoMoves);
    }
    Ok(Moves {
        columns: header.iter().map(|&(_, c)| c).collect(),
        rows: out,
    })
}

#[cfg(test)]
mod tests;
