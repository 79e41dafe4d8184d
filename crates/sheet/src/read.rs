//! The file formats: a CSV or XLSX file read into numbered rows of cells.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use calamine::{Data, Reader, Xlsx};

use crate::error::ImportFileError;
use crate::normalise::excel_date_iso;
use crate::sheet::{HEADER_SEARCH_ROWS, Sheet, build_sheet, roster_header};

/// Excel's sheet: 1,048,576 rows and 16,384 columns (`XFD`).
const XLSX_ROWS: u32 = 1 << 20;
const XLSX_COLUMNS: u32 = 1 << 14;

/// Rows of cells as a file holds them, each with the number under which
/// the clerk sees it (the row in Excel, the line in a text editor).
pub(crate) type Rows = Vec<(usize, Vec<Cell>)>;

/// How a layout (a roster, a sheet of moves) knows its header row: the
/// number of its columns a row names, when that makes the row its header.
/// CSV files are read with the delimiter under which the header names the
/// most columns.
pub(crate) type HeaderScore = fn(&[Cell]) -> Option<usize>;

/// Reads a roster file, a `.csv` or an `.xlsx` (by extension, any case).
pub fn read_file(path: &Path) -> Result<Sheet, ImportFileError> {
    build_sheet(read_path(path, roster_header)?)
}

/// Reads a CSV roster (UTF-8, optional BOM, `,` `;` or tab delimited).
pub fn read_csv<R: Read>(r: R) -> Result<Sheet, ImportFileError> {
    build_sheet(csv_cells(r, roster_header)?)
}

/// Reads the first worksheet of an XLSX roster.
pub fn read_xlsx<R: Read + Seek>(r: R) -> Result<Sheet, ImportFileError> {
    build_sheet(xlsx_cells(r)?)
}

/// The rows of a `.csv` or `.xlsx` file (by extension, any case); a CSV
/// file's delimiter is the one under which `header` finds the header.
pub(crate) fn read_path(path: &Path, header: HeaderScore) -> Result<Rows, ImportFileError> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if extension != "csv" && extension != "xlsx" {
        return Err(ImportFileError::UnsupportedExtension { extension });
    }
    let unreadable = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ImportFileError::NotFound {
                path: path.to_owned(),
            }
        } else {
            ImportFileError::Unreadable {
                path: Some(path.to_owned()),
                source,
            }
        }
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    if extension == "csv" {
        csv_cells(file, header).map_err(|e| match e {
            ImportFileError::Unreadable { path: None, source } => unreadable(source),
            e => e,
        })
    } else {
        xlsx_cells(BufReader::new(file))
    }
}

/// The rows of a CSV file (UTF-8, optional BOM, `,` `;` or tab delimited).
pub(crate) fn csv_cells<R: Read>(mut r: R, header: HeaderScore) -> Result<Rows, ImportFileError> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)
        .map_err(|source| ImportFileError::Unreadable { path: None, source })?;
    csv_from_bytes(&bytes, header)
}

/// The rows of the first worksheet of an XLSX workbook.
///
/// The cells are read one by one, not as a calamine `Range`: a range is
/// dense, so a single cell at a far address (`ZZZZZZ1`, found by fuzzing)
/// made it allocate tens of gigabytes. A cell beyond Excel's last row or
/// column is refused; rows span the first to the last non-empty row, and
/// columns start at the first non-empty column, as a range's did.
pub(crate) fn xlsx_cells<R: Read + Seek>(r: R) -> Result<Rows, ImportFileError> {
    let mut workbook = Xlsx::new(r).map_err(ImportFileError::Xlsx)?;
    let name = workbook
        .sheet_names()
        .into_iter()
        .next()
        .ok_or(ImportFileError::NoWorksheet)?;
    let mut reader = match workbook.worksheet_cells_reader(&name) {
        Ok(reader) => reader,
        // A chart sheet first: no cells, as calamine's range reads it.
        Err(calamine::XlsxError::NotAWorksheet(_)) => return Ok(Vec::new()),
        Err(e) => return Err(ImportFileError::Xlsx(e)),
    };
    let mut cells: BTreeMap<u32, Vec<(u32, Cell)>> = BTreeMap::new();
    while let Some(cell) = reader.next_cell().map_err(ImportFileError::Xlsx)? {
        let (row, column) = cell.get_position();
        if row >= XLSX_ROWS || column >= XLSX_COLUMNS {
            return Err(ImportFileError::CellOutsideSheet {
                row: u64::from(row) + 1,
                column: u64::from(column) + 1,
            });
        }
        let data = Data::from(cell.get_value().clone());
        if data != Data::Empty {
            cells
                .entry(row)
                .or_default()
                .push((column, Cell::from_data(&data)));
        }
    }
    let (Some(&first_row), Some(&last_row), Some(first_column)) = (
        cells.keys().next(),
        cells.keys().next_back(),
        cells.values().flatten().map(|&(c, _)| c).min(),
    ) else {
        return Ok(Vec::new());
    };
    Ok((first_row..=last_row)
        .map(|row| {
            let mut line: Vec<Cell> = Vec::new();
            for (column, cell) in cells.remove(&row).unwrap_or_default() {
                let i = (column - first_column) as usize;
                if line.len() <= i {
                    line.resize(i + 1, Cell::Text(String::new()));
                }
                line[i] = cell;
            }
            (row as usize + 1, line)
        })
        .collect())
}

fn csv_from_bytes(bytes: &[u8], header: HeaderScore) -> Result<Rows, ImportFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| ImportFileError::NotUtf8 {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })?;
    // The delimiter is the one under which a header row shows up, with the
    // most known columns (`,` first on a tie).
    let mut best: Option<(usize, u8)> = None;
    for delimiter in [b',', b';', b'\t'] {
        let head = csv_rows(text, delimiter, Some(HEADER_SEARCH_ROWS))?;
        if let Some(count) = head.iter().find_map(|(_, cells)| header(cells))
            && best.is_none_or(|(c, _)| count > c)
        {
            best = Some((count, delimiter));
        }
    }
    let Some((_, delimiter)) = best else {
        return Err(ImportFileError::NoHeaderRow);
    };
    csv_rows(text, delimiter, None)
}

/// Parses CSV records with their starting line numbers, up to `limit`
/// records (blank lines are not records).
fn csv_rows(text: &str, delimiter: u8, limit: Option<usize>) -> Result<Rows, ImportFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter {
        text: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        if limit.is_some_and(|l| rows.len() >= l) {
            break;
        }
        let record = record.map_err(ImportFileError::Csv)?;
        let line = lines.line_at(record.position().map_or(0, |p| p.byte() as usize));
        rows.push((
            line,
            record.iter().map(|s| Cell::Text(s.to_owned())).collect(),
        ));
    }
    Ok(rows)
}

/// Line numbers as a text editor shows them (`\n`, `\r\n` or `\r` ends a
/// line). The `csv` crate's own line count is off after `\r\n` and blank
/// lines, and its record offsets point before the blank lines it skips.
struct LineCounter<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl LineCounter<'_> {
    /// The line of the record the csv reader reports at byte `offset`
    /// (offsets must not decrease).
    fn line_at(&mut self, offset: usize) -> usize {
        let mut start = offset.max(self.pos);
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        for i in self.pos..start {
            let byte = self.text[i];
            if byte == b'\n' || (byte == b'\r' && self.text.get(i + 1) != Some(&b'\n')) {
                self.line += 1;
            }
        }
        self.pos = start;
        self.line
    }
}

/// A cell, whichever file it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(String),
    Int(i64),
    Number(f64),
    /// A real date cell, already as `YYYY-MM-DD`.
    Date(String),
}

impl Cell {
    fn from_data(data: &Data) -> Cell {
        match data {
            Data::Empty => Cell::Text(String::new()),
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
            Data::Int(i) => Cell::Int(*i),
            Data::Float(f) => Cell::Number(*f),
            Data::Bool(b) => Cell::Text(if *b { "TRUE" } else { "FALSE" }.to_owned()),
            Data::DateTime(dt) if dt.is_datetime() => Cell::Date(excel_date_iso(dt)),
            Data::DateTime(dt) => Cell::Number(dt.as_f64()),
            Data::Error(e) => Cell::Text(e.to_string()),
        }
    }

    /// The cell as header text.
    pub(crate) fn text(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Date(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Number(f) => f.to_string(),
        }
    }
}
