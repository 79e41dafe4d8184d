//! Reading a union office's member roster (CSV or XLSX) into raw,
//! normalised rows.
//!
//! # Accepted layout
//!
//! A roster is either a `.csv` file (UTF-8, with or without BOM — in Excel
//! "Save As → CSV UTF-8"; fields separated by `,`, `;` or tab, detected from
//! the header line; fields may be quoted with `"`) or an `.xlsx` workbook, of
//! which only the first worksheet is read.
//!
//! One row holds the column names and every row below it is one member. Title
//! rows such as `DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN CƠ SỞ ...` may sit above the
//! header: the header is the first row, among the first 10, in which at least
//! three of the known column names below appear. For example:
//!
//! ```text
//! DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN CƠ SỞ TRƯỜNG THCS HOÀ BÌNH
//! STT;Mã đơn vị;Họ và tên;Ngày sinh;Giới tính;Số thẻ đoàn viên;Ngày vào công đoàn;Chức vụ;Số CCCD;Dân tộc;Tôn giáo
//! 1;CD0101;Nguyễn Văn An;15/03/1990;Nam;HB-0001;01/05/2015;Tổ trưởng;001090012345;Kinh;Không
//! ```
//!
//! Column names are matched ignoring case, spaces, punctuation, Vietnamese
//! diacritics (`đ` counts as `d`) and anything in parentheses, so
//! `HỌ VÀ TÊN`, `Ho va ten` and `Họ và tên (*)` are the same column. Columns
//! may come in any order. Known names:
//!
//! | field         | accepted headers                                                      |
//! |---------------|-----------------------------------------------------------------------|
//! | `unit_id`     | Mã đơn vị, Mã công đoàn cơ sở, Mã công đoàn, Đơn vị, unit_id, unit    |
//! | `full_name`   | Họ và tên, Họ tên, full_name, name                                    |
//! | `birth_date`  | Ngày sinh, Ngày tháng năm sinh, birth_date                            |
//! | `gender`      | Giới tính, gender                                                     |
//! | `card_number` | Số thẻ đoàn viên, Số thẻ, Mã thẻ, card_number                         |
//! | `joined_on`   | Ngày vào công đoàn, Ngày kết nạp, joined_on                           |
//! | `position`    | Chức vụ, position                                                     |
//! | `national_id` | CCCD, Số CCCD, Căn cước công dân, Số định danh, CMND/CCCD, national_id |
//! | `ethnicity`   | Dân tộc, ethnicity                                                    |
//! | `religion`    | Tôn giáo, religion                                                    |
//!
//! Full name, birth date, gender, card number and joining date are required;
//! the unit may be left out when the whole file belongs to one unit (the
//! command line then names it); the other columns are optional. Any other
//! column (`STT`, notes, ...) is ignored, and when a column appears twice the
//! first one counts.
//!
//! Rows without a value in any known column (blank rows, rows holding only an
//! `STT` number) are skipped, and so is a repeat of the header row. Every row
//! keeps the number under which the clerk sees it: the row number in Excel,
//! the line number in a text editor for CSV (title and header lines count).
//!
//! Values are trimmed and normalised:
//!
//! * dates (birth, joining): `dd/mm/yyyy`, `d/m/yyyy`, `dd-mm-yyyy`,
//!   `dd.mm.yyyy` and `yyyy-mm-dd` (a trailing time is ignored), and in XLSX
//!   real date cells and Excel date serial numbers, become `yyyy-mm-dd`;
//!   anything else is kept as written, to be reported by the caller;
//! * gender: `Nam`/`M`/`male` → `male`, `Nữ`/`Nu`/`F`/`female` → `female`,
//!   `Khác`/`other` → `other`; anything else is kept as written;
//! * card numbers and CCCD numbers that Excel stores as numbers come out as
//!   plain digits (no `.0`, no exponent); text cells are kept as written,
//!   leading zeros included. Every CCCD starts with a province code
//!   `001`–`096`, so a CCCD stored as a number of 10 or 11 digits has lost its
//!   leading zeros and gets them back (12 digits). Excel's ways of keeping
//!   leading zeros in CSV, a leading `'` or `="..."`, are undone.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use calamine::{Data, ExcelDateTime, ExcelDateTimeType, Reader, Xlsx};

/// The header must be within this many (non-blank) rows of the top.
const HEADER_SEARCH_ROWS: usize = 10;
/// A row is the header when at least this many known column names appear.
const MIN_HEADER_COLUMNS: usize = 3;
/// Excel serials below this (1910-01-01) are not taken for dates: they are
/// rather years or typos, and are left for the caller to report.
const MIN_DATE_SERIAL: f64 = 3654.0;
/// Excel's last date, 9999-12-31, is serial 2958465.
const MAX_DATE_SERIAL: f64 = 2_958_466.0;
/// Excel's sheet: 1,048,576 rows and 16,384 columns (`XFD`).
const XLSX_ROWS: u32 = 1 << 20;
const XLSX_COLUMNS: u32 = 1 << 14;

/// A roster column that the importer recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    UnitId,
    FullName,
    BirthDate,
    Gender,
    CardNumber,
    JoinedOn,
    Position,
    NationalId,
    Ethnicity,
    Religion,
}

impl Column {
    /// Every column, in canonical order.
    pub const ALL: [Column; 10] = [
        Column::UnitId,
        Column::FullName,
        Column::BirthDate,
        Column::Gender,
        Column::CardNumber,
        Column::JoinedOn,
        Column::Position,
        Column::NationalId,
        Column::Ethnicity,
        Column::Religion,
    ];

    /// The columns a roster must have (the unit can come from `--unit`).
    pub const REQUIRED: [Column; 5] = [
        Column::FullName,
        Column::BirthDate,
        Column::Gender,
        Column::CardNumber,
        Column::JoinedOn,
    ];

    /// The canonical field name, e.g. `full_name`.
    pub fn name(self) -> &'static str {
        match self {
            Column::UnitId => "unit_id",
            Column::FullName => "full_name",
            Column::BirthDate => "birth_date",
            Column::Gender => "gender",
            Column::CardNumber => "card_number",
            Column::JoinedOn => "joined_on",
            Column::Position => "position",
            Column::NationalId => "national_id",
            Column::Ethnicity => "ethnicity",
            Column::Religion => "religion",
        }
    }

    /// The usual Vietnamese header of the column, e.g. `Họ và tên`.
    pub fn header_vi(self) -> &'static str {
        match self {
            Column::UnitId => "Mã đơn vị",
            Column::FullName => "Họ và tên",
            Column::BirthDate => "Ngày sinh",
            Column::Gender => "Giới tính",
            Column::CardNumber => "Số thẻ đoàn viên",
            Column::JoinedOn => "Ngày vào công đoàn",
            Column::Position => "Chức vụ",
            Column::NationalId => "Số CCCD",
            Column::Ethnicity => "Dân tộc",
            Column::Religion => "Tôn giáo",
        }
    }

    /// The column a header cell names, if any (case-, space-, punctuation-
    /// and diacritics-insensitive; text in parentheses is ignored).
    pub fn from_header(header: &str) -> Option<Column> {
        let key = header_key(header);
        if key.is_empty() {
            return None;
        }
        Column::ALL
            .into_iter()
            .find(|c| c.aliases().contains(&key.as_str()))
    }

    /// Accepted headers, as [`header_key`] folds them.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::UnitId => &[
                "madonvi",
                "macongdoancoso",
                "macongdoan",
                "madonvicongdoan",
                "donvi",
                "unitid",
                "unit",
            ],
            Column::FullName => &[
                "hovaten",
                "hoten",
                "hovatendoanvien",
                "hotendoanvien",
                "fullname",
                "name",
            ],
            Column::BirthDate => &["ngaysinh", "ngaythangnamsinh", "birthdate", "dateofbirth"],
            Column::Gender => &["gioitinh", "gender", "sex"],
            Column::CardNumber => &[
                "sothedoanvien",
                "sothe",
                "mathe",
                "mathedoanvien",
                "sothecongdoan",
                "cardnumber",
            ],
            Column::JoinedOn => &[
                "ngayvaocongdoan",
                "ngayketnap",
                "ngayketnapcongdoan",
                "ngayketnapdoanvien",
                "joinedon",
            ],
            Column::Position => &["chucvu", "position"],
            Column::NationalId => &[
                "cccd",
                "socccd",
                "cancuoccongdan",
                "socancuoccongdan",
                "sodinhdanh",
                "sodinhdanhcanhan",
                "cmndcccd",
                "socmndcccd",
                "nationalid",
            ],
            Column::Ethnicity => &["dantoc", "ethnicity"],
            Column::Religion => &["tongiao", "religion"],
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

/// Why a roster file as a whole could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportFileError {
    #[error("file not found: {}", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot read {}: {source}", path_or_file(path.as_deref()))]
    Unreadable {
        path: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", unsupported_extension_message(extension))]
    UnsupportedExtension { extension: String },
    #[error(
        "line {line} of the CSV file is not UTF-8 text; in Excel save the roster as \
         \"CSV UTF-8 (Comma delimited)\" or as an Excel workbook (.xlsx)"
    )]
    NotUtf8 { line: usize },
    #[error("the CSV file could not be read: {0}")]
    Csv(#[source] csv::Error),
    #[error("the file is not a readable Excel workbook (.xlsx): {0}")]
    Xlsx(#[source] calamine::XlsxError),
    #[error("the workbook has no worksheet")]
    NoWorksheet,
    #[error(
        "the workbook has a cell beyond Excel's last row or column (row {row}, column {column}): \
         open the file in Excel and save it again"
    )]
    CellOutsideSheet { row: u64, column: u64 },
    #[error(
        "no header row found: one of the first {HEADER_SEARCH_ROWS} rows must name the columns, \
         e.g. \"Họ và tên\", \"Ngày sinh\", \"Giới tính\", \"Số thẻ đoàn viên\", \
         \"Ngày vào công đoàn\""
    )]
    NoHeaderRow,
    #[error(
        "the header row (row {header_line}) lacks the required column(s) {}",
        missing_columns_message(missing)
    )]
    MissingColumns {
        missing: Vec<Column>,
        header_line: usize,
    },
}

fn path_or_file(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "the file".to_owned(),
    }
}

fn unsupported_extension_message(extension: &str) -> String {
    if extension.is_empty() {
        "the file name has no extension: save the roster as .csv (CSV UTF-8) or .xlsx \
         (Excel workbook)"
            .to_owned()
    } else {
        format!(
            "unsupported file type \".{extension}\": save the roster as .csv (CSV UTF-8) or \
             .xlsx (Excel workbook)"
        )
    }
}

fn missing_columns_message(missing: &[Column]) -> String {
    missing
        .iter()
        .map(|c| format!("\"{}\" ({})", c.header_vi(), c.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a roster file, a `.csv` or an `.xlsx` (by extension, any case).
pub fn read_file(path: &Path) -> Result<Sheet, ImportFileError> {
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
        read_csv(file).map_err(|e| match e {
            ImportFileError::Unreadable { path: None, source } => unreadable(source),
            e => e,
        })
    } else {
        read_xlsx(BufReader::new(file))
    }
}

/// Reads a CSV roster (UTF-8, optional BOM, `,` `;` or tab delimited).
pub fn read_csv<R: Read>(mut r: R) -> Result<Sheet, ImportFileError> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)
        .map_err(|source| ImportFileError::Unreadable { path: None, source })?;
    csv_from_bytes(&bytes)
}

/// Reads the first worksheet of an XLSX roster.
///
/// The cells are read one by one, not as a calamine `Range`: a range is
/// dense, so a single cell at a far address (`ZZZZZZ1`, found by fuzzing)
/// made it allocate tens of gigabytes. A cell beyond Excel's last row or
/// column is refused; rows span the first to the last non-empty row, and
/// columns start at the first non-empty column, as a range's did.
pub fn read_xlsx<R: Read + Seek>(r: R) -> Result<Sheet, ImportFileError> {
    let mut workbook = Xlsx::new(r).map_err(ImportFileError::Xlsx)?;
    let name = workbook
        .sheet_names()
        .into_iter()
        .next()
        .ok_or(ImportFileError::NoWorksheet)?;
    let mut reader = match workbook.worksheet_cells_reader(&name) {
        Ok(reader) => reader,
        // A chart sheet first: no cells, as calamine's range reads it.
        Err(calamine::XlsxError::NotAWorksheet(_)) => return build_sheet(Vec::new()),
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
        return build_sheet(Vec::new());
    };
    let rows = (first_row..=last_row)
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
        .collect();
    build_sheet(rows)
}

fn csv_from_bytes(bytes: &[u8]) -> Result<Sheet, ImportFileError> {
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
        if let Some(header) = find_header(&head) {
            let count = header.columns.len();
            if best.is_none_or(|(c, _)| count > c) {
                best = Some((count, delimiter));
            }
        }
    }
    let Some((_, delimiter)) = best else {
        return Err(ImportFileError::NoHeaderRow);
    };
    build_sheet(csv_rows(text, delimiter, None)?)
}

/// Parses CSV records with their starting line numbers, up to `limit`
/// records (blank lines are not records).
fn csv_rows(
    text: &str,
    delimiter: u8,
    limit: Option<usize>,
) -> Result<Vec<(usize, Vec<Cell>)>, ImportFileError> {
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
enum Cell {
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
    fn text(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Date(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Number(f) => f.to_string(),
        }
    }
}

struct Header {
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

fn build_sheet(rows: Vec<(usize, Vec<Cell>)>) -> Result<Sheet, ImportFileError> {
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

/// The value of a cell in a column, or `None` if it is empty.
fn normalise(column: Column, cell: &Cell) -> Option<String> {
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

fn normalise_gender(s: &str) -> String {
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

fn excel_date_iso(dt: &ExcelDateTime) -> String {
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
fn parse_date_text(s: &str) -> Option<String> {
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

/// Lower case without Vietnamese diacritics (`đ` → `d`), for precomposed and
/// decomposed text alike.
fn fold(s: &str) -> String {
    const TABLE: [(&str, char); 7] = [
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ìíỉĩị", 'i'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ùúủũụưừứửữự", 'u'),
        ("ỳýỷỹỵ", 'y'),
        ("đð", 'd'),
    ];
    s.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| {
            TABLE
                .iter()
                .find(|(from, _)| from.contains(c))
                .map_or(c, |&(_, to)| to)
        })
        .collect()
}

/// A header cell reduced for matching: text in parentheses or brackets
/// dropped, folded, only ASCII letters and digits kept.
fn header_key(header: &str) -> String {
    let mut depth = 0usize;
    let mut kept = String::with_capacity(header.len());
    for c in header.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => kept.push(c),
            _ => {}
        }
    }
    fold(&kept)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
