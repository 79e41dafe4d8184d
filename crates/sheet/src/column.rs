//! The roster columns the reader recognises, and how a header cell is
//! matched to one of them.

use std::fmt;

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

/// Lower case without Vietnamese diacritics (`đ` → `d`), for precomposed and
/// decomposed text alike.
pub(crate) fn fold(s: &str) -> String {
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
pub(crate) fn header_key(header: &str) -> String {
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
