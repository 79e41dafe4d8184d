//! Reading a union office's member roster (CSV or XLSX) into raw,
//! normalised rows, and a sheet of unit moves (the [`moves`] module's
//! layout) for a reorganisation decision.
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
//!
//! # Layout
//! - `column`: the known columns and how header cells are matched to them.
//! - `read`: the file formats (CSV, XLSX) and their cells.
//! - `sheet`: finding a roster's header row and building the rows under it.
//! - [`moves`]: a sheet of unit moves (unit, new parent), read with the
//!   same file formats and its own header.
//! - `normalise`: values (dates, gender, id numbers) as the caller gets them.
//! - `error`: why a file as a whole could not be read.
//!
//! This crate only reads; turning rows into members or steps of a decision
//! (and checking them against the tree) is the caller's.

mod column;
mod error;
pub mod moves;
mod normalise;
mod read;
mod sheet;

pub use column::Column;
pub use error::ImportFileError;
pub use moves::{Moves, MovesError, read_moves_csv, read_moves_file, read_moves_xlsx};
pub use read::{read_csv, read_file, read_xlsx};
pub use sheet::{RawRow, Sheet};

#[cfg(test)]
mod tests;
