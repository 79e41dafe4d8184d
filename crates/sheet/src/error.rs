//! Why a roster file as a whole could not be read.

use std::path::{Path, PathBuf};

use crate::column::Column;
use crate::sheet::HEADER_SEARCH_ROWS;

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
