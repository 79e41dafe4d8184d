//! Output: a readable table by default, JSON (the protobuf JSON mapping,
//! with proto field names and enum names) with `--json`.

use std::sync::OnceLock;

use hopluu_proto::v1 as pb;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(hopluu_proto::FILE_DESCRIPTOR_SET)
            .expect("the built-in descriptor set decodes")
    })
}

/// A message as JSON, e.g. `to_json(&unit, "hopluu.v1.Unit")`.
pub fn to_json<M: prost::Message>(msg: &M, name: &str) -> anyhow::Result<serde_json::Value> {
    let desc = pool()
        .get_message_by_name(name)
        .ok_or_else(|| anyhow::anyhow!("unknown message {name}"))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())?;
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    Ok(dynamic.serialize_with_options(serde_json::value::Serializer, &opts)?)
}

/// A simple left-aligned text table.
#[derive(Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |row: &Vec<String>, out: &mut String| {
            let cells: Vec<String> = (0..cols)
                .map(|i| {
                    let c = row.get(i).map(String::as_str).unwrap_or("");
                    format!("{c}{}", " ".repeat(width[i] - c.chars().count()))
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        };
        line(&self.header, &mut out);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&rule.join("  "));
        out.push('\n');
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

/// Prints a response: JSON when asked, else the table `table` builds.
pub fn print<M: prost::Message>(
    json: bool,
    msg: &M,
    name: &str,
    table: impl FnOnce() -> Table,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&to_json(msg, name)?)?);
    } else {
        print!("{}", table().render());
    }
    Ok(())
}

/// Like [`print`], with a heading line above the table (a report's title
/// and date); the JSON carries the same facts in its fields.
pub fn print_headed<M: prost::Message>(
    json: bool,
    msg: &M,
    name: &str,
    heading: &str,
    table: impl FnOnce() -> Table,
) -> anyhow::Result<()> {
    if !json {
        println!("{heading}");
    }
    print(json, msg, name, table)
}

/// Prints key/value pairs as a two-column table.
pub fn kv(pairs: &[(&str, String)]) -> Table {
    let mut t = Table::new(&["field", "value"]);
    for (k, v) in pairs {
        t.row(vec![(*k).to_owned(), v.clone()]);
    }
    t
}

/// The initiatives-against-plan report as a table: rank, unit, name,
/// recorded, valid, plan and percent of plan, then the total row.
pub fn initiatives_table(r: &pb::InitiativesReportResponse) -> Table {
    let mut t = Table::new(&[
        "rank",
        "unit",
        "name",
        "recorded",
        "valid",
        "plan",
        "% of plan",
    ]);
    for row in r.rows.iter().chain(r.total.as_ref()) {
        t.row(vec![
            if row.rank == 0 {
                String::new()
            } else {
                row.rank.to_string()
            },
            row.unit_id.clone(),
            row.unit_name.clone(),
            row.recorded.to_string(),
            row.valid.to_string(),
            row.plan.to_string(),
            format!("{:.2}%", row.percent_of_plan),
        ]);
    }
    t
}

/// The members report as a table, a row per unit and the total row:
/// every count for `hopluu report members`, the active ones only where a
/// narrower table reads better (the demo).
pub fn members_report_table(r: &pb::MembersReportResponse, counts: MemberCounts) -> Table {
    let every = counts == MemberCounts::Every;
    let mut header = vec!["unit", "name", "active", "nam", "nữ"];
    if every {
        header.extend(["khác", "transferred", "left", "ceased"]);
    }
    header.push("records");
    let mut t = Table::new(&header);
    for row in r.rows.iter().chain(r.total.as_ref()) {
        let mut cells = vec![
            row.unit_id.clone(),
            row.unit_name.clone(),
            row.active.to_string(),
            row.male.to_string(),
            row.female.to_string(),
        ];
        if every {
            cells.extend([
                row.other_gender.to_string(),
                row.transferred.to_string(),
                row.left.to_string(),
                row.ceased.to_string(),
            ]);
        }
        cells.push(row.total.to_string());
        t.row(cells);
    }
    t
}

/// The counts [`members_report_table`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberCounts {
    /// Active by gender, transferred, left, ceased and every record.
    Every,
    /// Active, men and women, and every record.
    Active,
}

/// A byte count for people: `812 B`, `14.2 KiB`, `3.1 MiB`.
pub fn bytes(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

/// Formats a VND amount with thousands separators ("1.234.000 đ").
pub fn vnd(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    format!("{}{out} đ", if v < 0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_vietnamese_text() {
        let mut t = Table::new(&["id", "name"]);
        t.row(vec!["hg".into(), "Hậu Giang".into()]);
        t.row(vec!["lai-chau".into(), "Lai Châu".into()]);
        let s = t.render();
        assert_eq!(s.lines().nth(2).unwrap(), "hg        Hậu Giang");
        assert_eq!(s.lines().nth(1).unwrap(), "--------  ---------");
    }

    #[test]
    fn money() {
        assert_eq!(vnd(0), "0 đ");
        assert_eq!(vnd(1_234_000), "1.234.000 đ");
        assert_eq!(vnd(-5_000), "-5.000 đ");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(14_540), "14.2 KiB");
        assert_eq!(bytes(3_250_586), "3.1 MiB");
    }

    #[test]
    fn json_uses_enum_names() {
        let u = hopluu_proto::v1::Unit {
            id: "vn".into(),
            status: hopluu_proto::v1::UnitStatus::Active as i32,
            ..Default::default()
        };
        let j = to_json(&u, "hopluu.v1.Unit").unwrap();
        assert_eq!(j["status"], "UNIT_STATUS_ACTIVE");
        assert_eq!(j["id"], "vn");
    }
}
