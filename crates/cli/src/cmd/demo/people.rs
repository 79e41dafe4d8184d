//! Sample data: a deterministic generator, Vietnamese names spread as in
//! the demo's regions, positions, initiatives and works by kind of
//! workplace.

use std::collections::HashMap;

use hopluu_model::Date;
use hopluu_proto::v1 as pb;

use super::{District, Grassroots, Profile, Province, Region, Rng, Roster};

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub(super) fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    pub(super) fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    pub(super) fn weighted<'a>(&mut self, xs: &'a [(&'a str, usize)]) -> &'a str {
        let total: usize = xs.iter().map(|(_, w)| w).sum();
        let mut k = self.below(total);
        for (x, w) in xs {
            if k < *w {
                return x;
            }
            k -= w;
        }
        xs[xs.len() - 1].0
    }
}

/// `n` members shared among each district's grassroots unions by weight,
/// every union getting at least one.
pub(super) fn split<'a>(
    n: usize,
    districts: impl Iterator<Item = &'a District> + Clone,
) -> HashMap<&'static str, Vec<usize>> {
    let all: Vec<(&'static str, usize)> = districts
        .clone()
        .flat_map(|d| d.grassroots.iter().map(move |g| (d.id, g.weight)))
        .collect();
    let total: usize = all.iter().map(|(_, w)| w).sum();
    let mut shares: Vec<usize> = all.iter().map(|(_, w)| (n * w / total).max(1)).collect();
    let mut given: usize = shares.iter().sum();
    let mut i = 0;
    let len = shares.len();
    while given < n {
        shares[i % len] += 1;
        given += 1;
        i += 1;
    }
    while given > n {
        let biggest = (0..shares.len())
            .max_by_key(|&k| shares[k])
            .expect("at least one union");
        shares[biggest] -= 1;
        given -= 1;
    }
    let mut out: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for ((d, _), s) in all.iter().zip(shares) {
        out.entry(*d).or_default().push(s);
    }
    out
}

pub(super) const FAMILY: &[(&str, usize)] = &[
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Huỳnh", 4),
    ("Hoàng", 3),
    ("Phan", 4),
    ("Võ", 4),
    ("Vũ", 2),
    ("Đặng", 2),
    ("Bùi", 2),
    ("Đỗ", 2),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 1),
    ("Lý", 1),
];

pub(super) const MIDDLE_MALE: &[&str] = &[
    "Văn", "Văn", "Văn", "Minh", "Hữu", "Quốc", "Đức", "Thanh", "Công", "Hoàng", "Tấn", "Chí",
];

pub(super) const MIDDLE_FEMALE: &[&str] = &[
    "Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bích", "Hồng", "Thùy",
];

pub(super) const GIVEN_MALE: &[&str] = &[
    "An", "Bình", "Cường", "Dũng", "Hải", "Hiếu", "Hùng", "Khang", "Khoa", "Long", "Lộc", "Minh",
    "Nam", "Nghĩa", "Phát", "Phong", "Phúc", "Quang", "Sơn", "Tài", "Tâm", "Thắng", "Thành",
    "Thịnh", "Toàn", "Trung", "Tuấn", "Vinh", "Bảo", "Đạt", "Huy", "Kiệt", "Nhân", "Tín", "Trí",
];

pub(super) const GIVEN_FEMALE: &[&str] = &[
    "Anh", "Chi", "Diễm", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Huyền", "Lan",
    "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Thư",
    "Trang", "Trinh", "Tuyết", "Uyên", "Vân", "Yến", "Thủy", "Hiền", "Ngọc", "Nhi",
];

/// A name and ethnicity; religion as the region's spread suggests.
pub(super) fn name(
    rng: &mut Rng,
    region: Region,
    female: bool,
) -> (String, &'static str, &'static str) {
    let kinh = |rng: &mut Rng| {
        let family = rng.weighted(FAMILY);
        let (middle, given) = if female {
            (rng.pick(MIDDLE_FEMALE), rng.pick(GIVEN_FEMALE))
        } else {
            (rng.pick(MIDDLE_MALE), rng.pick(GIVEN_MALE))
        };
        format!("{family} {middle} {given}")
    };
    let pair = |rng: &mut Rng, families: &[&str], male: &[&str], fem: &[&str]| {
        let family = rng.pick(families).to_owned();
        let given = if female {
            rng.pick(fem)
        } else {
            rng.pick(male)
        };
        format!("{family} {given}")
    };
    match region {
        Region::South => {
            let ethnicity = rng.weighted(&[("Kinh", 92), ("Khmer", 6), ("Hoa", 2)]);
            match ethnicity {
                "Khmer" => (
                    pair(
                        rng,
                        &["Danh", "Thạch", "Sơn", "Kim", "Lâm"],
                        &["Hùng", "Sang", "Út", "Phương", "Tha", "Sơn"],
                        &["Thị Sa Rên", "Thị Phol", "Thị Mỹ", "Thị Nết", "Thị Út"],
                    ),
                    "Khmer",
                    "Phật giáo",
                ),
                "Hoa" => (
                    pair(
                        rng,
                        &["Lâm", "Quách", "Trương", "Lý", "Hứa"],
                        &["Văn Phát", "Minh Quang", "Hoàng Long", "Văn Tài"],
                        &["Ngọc Mai", "Mỹ Linh", "Thị Huệ", "Kim Phượng"],
                    ),
                    "Hoa",
                    rng.weighted(&[("Không", 60), ("Phật giáo", 40)]),
                ),
                _ => (
                    kinh(rng),
                    "Kinh",
                    rng.weighted(&[
                        ("Không", 64),
                        ("Phật giáo", 17),
                        ("Phật giáo Hòa Hảo", 11),
                        ("Công giáo", 5),
                        ("Cao Đài", 3),
                    ]),
                ),
            }
        }
        Region::NorthWest => {
            let ethnicity = rng.weighted(&[("Kinh", 42), ("Thái", 30), ("Mông", 18), ("Dao", 10)]);
            match ethnicity {
                "Thái" => (
                    pair(
                        rng,
                        &["Lò", "Tòng", "Lường", "Quàng", "Điêu", "Cầm"],
                        &[
                            "Văn Hặc",
                            "Văn Xuân",
                            "Văn Tiên",
                            "Văn Pánh",
                            "Văn Khiêm",
                            "Văn Chung",
                        ],
                        &["Thị Ánh", "Thị Phóng", "Thị Hương", "Thị Xuân", "Thị Ngoan"],
                    ),
                    "Thái",
                    "Không",
                ),
                "Mông" => (
                    pair(
                        rng,
                        &["Giàng", "Vàng", "Sùng", "Thào", "Lý", "Mùa", "Hờ"],
                        &["A Páo", "A Sử", "A Chứ", "A Lử", "A Dình", "A Tủa"],
                        &[
                            "Thị Mai",
                            "Thị Dợ",
                            "Thị Sua",
                            "Thị Mỷ",
                            "Thị Dung",
                            "Thị Pà",
                        ],
                    ),
                    "Mông",
                    rng.weighted(&[("Không", 85), ("Tin Lành", 15)]),
                ),
                "Dao" => (
                    pair(
                        rng,
                        &["Tẩn", "Phàn", "Chảo", "Lý", "Đặng"],
                        &["Láo Lở", "A Tả", "Văn Sơn", "Văn Chiêu"],
                        &["Thị Mẩy", "Thị Xuân", "Thị Chiêm", "Thị Lai"],
                    ),
                    "Dao",
                    "Không",
                ),
                _ => (kinh(rng), "Kinh", "Không"),
            }
        }
    }
}

pub(super) fn positions(p: Profile) -> &'static [(&'static str, usize)] {
    match p {
        Profile::School => &[
            ("Giáo viên", 70),
            ("Tổ trưởng chuyên môn", 8),
            ("Nhân viên văn phòng", 8),
            ("Kế toán", 3),
            ("Thủ thư", 3),
            ("Nhân viên y tế trường học", 3),
            ("Bảo vệ", 5),
        ],
        Profile::Hospital => &[
            ("Điều dưỡng", 40),
            ("Bác sĩ", 22),
            ("Kỹ thuật viên xét nghiệm", 8),
            ("Dược sĩ", 7),
            ("Hộ lý", 10),
            ("Nhân viên hành chính", 8),
            ("Kế toán", 5),
        ],
        Profile::Factory => &[
            ("Công nhân may", 55),
            ("Công nhân gò", 15),
            ("Tổ trưởng sản xuất", 8),
            ("Kỹ thuật viên", 7),
            ("Nhân viên kho", 7),
            ("Nhân viên kiểm hàng", 8),
        ],
        Profile::Hydro => &[
            ("Kỹ sư vận hành", 25),
            ("Công nhân vận hành", 30),
            ("Công nhân sửa chữa", 20),
            ("Trưởng ca", 8),
            ("Nhân viên an toàn", 7),
            ("Nhân viên hành chính", 10),
        ],
        Profile::Port => &[
            ("Công nhân bốc xếp", 45),
            ("Lái cẩu", 15),
            ("Nhân viên điều độ", 12),
            ("Nhân viên giao nhận", 12),
            ("Thủ kho", 8),
            ("Kế toán", 8),
        ],
        Profile::Water => &[
            ("Công nhân lắp đặt", 35),
            ("Công nhân vận hành trạm bơm", 25),
            ("Kỹ sư cấp thoát nước", 15),
            ("Nhân viên thu ngân", 15),
            ("Kế toán", 10),
        ],
    }
}

pub(super) fn female_percent(p: Profile) -> usize {
    match p {
        Profile::School => 72,
        Profile::Hospital => 65,
        Profile::Factory => 78,
        Profile::Hydro => 18,
        Profile::Port => 12,
        Profile::Water => 30,
    }
}

pub(super) fn initiative_titles(p: Profile) -> &'static [&'static str] {
    match p {
        Profile::School => &[
            "Ứng dụng sổ điểm điện tử trong quản lý học tập",
            "Dạy học STEM với vật liệu tái chế",
            "Ngân hàng đề ôn thi tốt nghiệp THPT dùng chung",
        ],
        Profile::Hospital => &[
            "Rút ngắn thời gian chờ khám bằng đặt lịch trực tuyến",
            "Bệnh án điện tử tại khoa Nội tổng hợp",
            "Bảng kiểm phòng ngừa té ngã cho người bệnh cao tuổi",
        ],
        Profile::Factory => &[
            "Cải tiến đồ gá may mũ giày, giảm 12% thời gian thao tác",
            "Tận dụng da vụn làm phụ kiện xuất khẩu",
            "Bố trí chuyền may theo mô hình sản xuất tinh gọn",
        ],
        Profile::Hydro => &[
            "Cải tiến hệ thống làm mát ổ đỡ tổ máy",
            "Giám sát mực nước hồ chứa bằng cảm biến từ xa",
            "Rút ngắn thời gian dừng máy khi kiểm tra cánh hướng nước",
        ],
        Profile::Port => &[
            "Tối ưu sơ đồ xếp dỡ hàng tổng hợp tại cầu cảng",
            "Phần mềm theo dõi tàu cập cảng theo thời gian thực",
            "Cải tiến móc cẩu an toàn cho hàng bao",
        ],
        Profile::Water => &[
            "Dò tìm rò rỉ đường ống bằng thiết bị âm học",
            "Thu tiền nước qua ví điện tử",
            "Tự động hóa trạm bơm tăng áp",
        ],
    }
}

pub(super) fn work_names(p: Profile) -> &'static [&'static str] {
    match p {
        Profile::School => &["Sửa chữa phòng học và nhà vệ sinh cho học sinh"],
        Profile::Hospital => &["Khám bệnh, cấp thuốc miễn phí cho đoàn viên khó khăn"],
        Profile::Factory => &[
            "Nhà trọ công nhân \"Mái ấm Công đoàn\"",
            "Nhà ăn ca đạt chuẩn an toàn thực phẩm",
        ],
        Profile::Hydro => &["Đường giao thông nông thôn vào bản"],
        Profile::Port => &["Nhà nghỉ giữa ca cho công nhân bốc xếp"],
        Profile::Water => &["Lắp đặt nước sạch miễn phí cho hộ nghèo"],
    }
}

impl Roster {
    /// One or two authors for a union's `k`-th initiative.
    pub(super) fn authors(&self, unit: &str, k: usize) -> Vec<String> {
        self.author_pairs(unit, k)
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }
    pub(super) fn author_ids(&self, unit: &str, k: usize) -> Vec<String> {
        self.author_pairs(unit, k)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }
    pub(super) fn author_pairs(&self, unit: &str, k: usize) -> Vec<(String, String)> {
        let first = self.first.get(unit).map(Vec::as_slice).unwrap_or(&[]);
        if first.is_empty() {
            return vec![(String::new(), "Ban Chấp hành Công đoàn cơ sở".to_owned())];
        }
        let a = (1 + 2 * k) % first.len();
        let b = (2 + 2 * k) % first.len();
        let mut out = vec![first[a].clone()];
        if b != a {
            out.push(first[b].clone());
        }
        out
    }
}

/// A date of `year` no later than today.
pub(super) fn clamp(today: Date, year: i32, month: u8, day: u8) -> Date {
    let d = Date::new(year, month.clamp(1, 12), day.min(28)).unwrap_or(today);
    if d > today { today } else { d }
}

pub(super) fn person(
    rng: &mut Rng,
    roster: &mut Roster,
    prov: &Province,
    d: &District,
    g: &Grassroots,
    chair: bool,
    today: Date,
) -> pb::MemberInput {
    roster.serial += 1;
    let serial = roster.serial;
    let female = rng.percent(female_percent(g.profile));
    let (full_name, ethnicity, religion) = name(rng, prov.region, female);
    let age = 20 + rng.below(40) as i32;
    let birth = Date::new(
        today.year() - age,
        1 + rng.below(12) as u8,
        1 + rng.below(28) as u8,
    )
    .expect("a valid date");
    let joined_year = (birth.year() + 19 + rng.below(10) as i32).min(today.year());
    let joined = clamp(
        today,
        joined_year,
        1 + rng.below(12) as u8,
        1 + rng.below(28) as u8,
    )
    .max(birth.add_years(18));
    let century = if birth.year() >= 2000 { 2 } else { 0 };
    let national_id = format!(
        "{}{}{:02}{:06}",
        prov.cccd,
        century + usize::from(female),
        birth.year() % 100,
        serial % 1_000_000
    );
    let position = if chair {
        "Chủ tịch Công đoàn cơ sở"
    } else {
        rng.weighted(positions(g.profile))
    };
    pb::MemberInput {
        full_name,
        birth_date: birth.to_string(),
        gender: if female {
            pb::Gender::Female
        } else {
            pb::Gender::Male
        } as i32,
        card_number: format!("{}-{}-{serial:06}", prov.code, d.code),
        joined_on: joined.to_string(),
        position: position.into(),
        national_id,
        ethnicity: ethnicity.into(),
        religion: religion.into(),
    }
}
