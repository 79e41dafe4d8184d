//! The demo's federation: the national node, three provinces and the
//! district or commune nodes below them, with their grassroots unions.

use super::{District, Grassroots, NATIONAL, Profile, Province, Region};

const fn g(id: &'static str, name: &'static str, profile: Profile, weight: usize) -> Grassroots {
    Grassroots {
        id,
        name,
        profile,
        weight,
    }
}

pub(super) const TREE: &[Province] = &[
    Province {
        id: "hau-giang",
        name: "Liên đoàn Lao động tỉnh Hậu Giang",
        cccd: "093",
        code: "HG",
        region: Region::South,
        quota: (12, 4),
        districts: &[
            District {
                id: "hg-chau-thanh-a",
                name: "Liên đoàn Lao động huyện Châu Thành A",
                kind: "district",
                code: "CTA",
                grassroots: &[
                    g(
                        "cta-thpt-chau-thanh-a",
                        "CĐCS Trường THPT Châu Thành A",
                        Profile::School,
                        6,
                    ),
                    g(
                        "cta-ttyt-chau-thanh-a",
                        "CĐCS Trung tâm Y tế huyện Châu Thành A",
                        Profile::Hospital,
                        9,
                    ),
                    g(
                        "cta-giay-da-tan-phu-thanh",
                        "CĐCS Công ty TNHH Giày da Tân Phú Thạnh",
                        Profile::Factory,
                        30,
                    ),
                ],
            },
            District {
                id: "hg-vi-thanh",
                name: "Liên đoàn Lao động thành phố Vị Thanh",
                kind: "district",
                code: "VT",
                grassroots: &[
                    g(
                        "vt-bvdk-hau-giang",
                        "CĐCS Bệnh viện Đa khoa tỉnh Hậu Giang",
                        Profile::Hospital,
                        14,
                    ),
                    g(
                        "vt-thpt-chuyen-vi-thanh",
                        "CĐCS Trường THPT chuyên Vị Thanh",
                        Profile::School,
                        5,
                    ),
                    g(
                        "vt-cap-thoat-nuoc",
                        "CĐCS Công ty Cổ phần Cấp thoát nước Hậu Giang",
                        Profile::Water,
                        5,
                    ),
                ],
            },
        ],
    },
    Province {
        id: "lai-chau",
        name: "Liên đoàn Lao động tỉnh Lai Châu",
        cccd: "012",
        code: "LC",
        region: Region::NorthWest,
        quota: (6, 2),
        districts: &[District {
            id: "lc-than-uyen",
            name: "Liên đoàn Lao động huyện Than Uyên",
            kind: "district",
            code: "TU",
            grassroots: &[
                g(
                    "tu-thuy-dien-huoi-quang",
                    "CĐCS Nhà máy Thủy điện Huội Quảng",
                    Profile::Hydro,
                    6,
                ),
                g(
                    "tu-ptdtbt-thcs-muong-kim",
                    "CĐCS Trường PTDTBT THCS Mường Kim",
                    Profile::School,
                    3,
                ),
                g(
                    "tu-ttyt-than-uyen",
                    "CĐCS Trung tâm Y tế huyện Than Uyên",
                    Profile::Hospital,
                    5,
                ),
            ],
        }],
    },
    Province {
        id: "kien-giang",
        name: "Liên đoàn Lao động tỉnh Kiên Giang",
        cccd: "091",
        code: "KG",
        region: Region::South,
        quota: (8, 3),
        districts: &[District {
            id: "kg-phu-quoc",
            name: "Công đoàn đặc khu Phú Quốc",
            kind: "commune",
            code: "PQ",
            grassroots: &[
                g(
                    "pq-bvdk-phu-quoc",
                    "CĐCS Bệnh viện Đa khoa Phú Quốc",
                    Profile::Hospital,
                    7,
                ),
                g(
                    "pq-thpt-phu-quoc",
                    "CĐCS Trường THPT Phú Quốc",
                    Profile::School,
                    4,
                ),
                g("pq-cang-an-thoi", "CĐCS Cảng An Thới", Profile::Port, 6),
            ],
        }],
    },
];

/// The grassroots unit (of the cut province) whose emulation record both
/// sides edit while the link is cut, and the node that hosts it.
pub(super) const MERGE_UNIT: &str = "pq-bvdk-phu-quoc";

pub(super) const MERGE_UNIT_NODE: &str = "kg-phu-quoc";

pub(super) fn grassroots_count() -> usize {
    TREE.iter()
        .flat_map(|p| p.districts)
        .map(|d| d.grassroots.len())
        .sum()
}

/// Every link as (child, upstream), in tree order.
pub(super) fn links_in_order() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for p in TREE {
        out.push((p.id, NATIONAL));
    }
    for p in TREE {
        for d in p.districts {
            out.push((d.id, p.id));
        }
    }
    out
}
