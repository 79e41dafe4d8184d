//! The decision `hopluu reorg apply FILE` sends: a TOML plan, or a sheet
//! of unit moves (`.csv`, `.xlsx`, read by `hopluu-sheet`) whose rows
//! become `move` steps, one per new parent in order of first appearance,
//! with the decision's header from the command line.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use hopluu_proto::v1 as pb;
use serde::{Deserialize, Deserializer};

/// The decision's header, for a sheet of moves (a TOML plan carries its
/// own).
#[derive(Args, Debug, Default, Clone)]
pub struct HeaderFlags {
    /// The decision's number (số quyết định), e.g. 125/QĐ-LĐLĐ.
    #[arg(long)]
    pub number: Option<String>,
    /// What the decision is about.
    #[arg(long)]
    pub title: Option<String>,
    /// The day it was decided: YYYY-MM-DD or dd/mm/yyyy.
    #[arg(long)]
    pub decided_on: Option<String>,
    /// The day it takes effect (may lie in the past): YYYY-MM-DD or
    /// dd/mm/yyyy.
    #[arg(long)]
    pub effective_on: Option<String>,
    /// The unit that issues it; every unit it changes lies below it.
    #[arg(long)]
    pub issuing_unit: Option<String>,
}

impl HeaderFlags {
    /// The flags given, by name.
    fn given(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("--number", self.number.as_ref()),
            ("--title", self.title.as_ref()),
            ("--decided-on", self.decided_on.as_ref()),
            ("--effective-on", self.effective_on.as_ref()),
            ("--issuing-unit", self.issuing_unit.as_ref()),
        ]
    }
}

/// A plan as sent, and for a sheet the line of each unit it moves
/// (`lines[i][j]` is the row of `steps[i].units[j]`), so that a refusal
/// naming a step can name the row.
#[derive(Debug)]
pub struct Loaded {
    pub plan: pb::ReorgPlan,
    pub lines: Option<Vec<Vec<usize>>>,
}

/// Reads FILE: `.toml` a plan, `.csv` or `.xlsx` a sheet of moves.
pub fn load(file: &Path, header: &HeaderFlags) -> anyhow::Result<Loaded> {
    let extension = file
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "toml" => {
            if let Some((flag, _)) = header.given().into_iter().find(|(_, v)| v.is_some()) {
                bail!(
                    "{flag}: a TOML plan carries its own header (number, title, decided_on, \
                     effective_on, issuing_unit); the flags are for a sheet of moves"
                );
            }
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let plan = from_toml(&text).with_context(|| format!("{}", file.display()))?;
            Ok(Loaded { plan, lines: None })
        }
        "csv" | "xlsx" => {
            let missing: Vec<&str> = header
                .given()
                .into_iter()
                .filter(|(_, v)| v.is_none_or(|s| s.trim().is_empty()))
                .map(|(flag, _)| flag)
                .collect();
            if !missing.is_empty() {
                bail!(
                    "a sheet of moves carries no decision header: give --number, --title, \
                     --decided-on, --effective-on and --issuing-unit (missing: {})",
                    missing.join(", ")
                );
            }
            let moves = hopluu_sheet::read_moves_file(file)
                .with_context(|| format!("{}", file.display()))?;
            Ok(from_moves(&moves, header))
        }
        _ => bail!(
            "{}: expected a TOML plan (.toml) or a sheet of moves (.csv, .xlsx)",
            file.display()
        ),
    }
}

/// A date as the node takes it: `dd/mm/yyyy` (or `d/m/yyyy`) becomes
/// `yyyy-mm-dd`; anything else is sent as written, for the node to judge.
pub fn iso_date(s: &str) -> String {
    let s = s.trim();
    let parts: Vec<&str> = s.split('/').collect();
    if let [d, m, y] = parts[..]
        && let (Ok(d), Ok(m), Ok(y)) = (d.parse::<u32>(), m.parse::<u32>(), y.parse::<u32>())
        && y >= 1000
    {
        return format!("{y:04}-{m:02}-{d:02}");
    }
    s.to_owned()
}

fn from_moves(moves: &hopluu_sheet::Moves, h: &HeaderFlags) -> Loaded {
    let flag = |v: &Option<String>| v.clone().unwrap_or_default().trim().to_owned();
    let groups = moves.by_parent();
    let lines = groups.iter().map(|g| g.lines.clone()).collect();
    let steps = groups
        .into_iter()
        .map(|g| pb::ReorgStep {
            kind: "move".into(),
            units: g.units,
            to: g.to,
            ..Default::default()
        })
        .collect();
    Loaded {
        plan: pb::ReorgPlan {
            id: String::new(),
            number: flag(&h.number),
            title: flag(&h.title),
            decided_on: iso_date(&flag(&h.decided_on)),
            effective_on: iso_date(&flag(&h.effective_on)),
            issuing_unit: flag(&h.issuing_unit),
            steps,
        },
        lines: Some(lines),
    }
}

/// A TOML plan: the header at the top level, a `[[steps]]` table per step
/// with the proto step's fields. Unknown keys are refused, naming them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanToml {
    #[serde(default)]
    id: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    title: String,
    #[serde(default, deserialize_with = "date")]
    decided_on: String,
    #[serde(default, deserialize_with = "date")]
    effective_on: String,
    #[serde(default)]
    issuing_unit: String,
    #[serde(default)]
    steps: Vec<StepToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepToml {
    kind: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    unit_kind: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    units: Vec<String>,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    successors: Vec<String>,
    #[serde(default)]
    parts: Vec<Vec<String>>,
    #[serde(default)]
    reason: String,
    #[serde(default, deserialize_with = "date")]
    on: String,
    #[serde(default)]
    node: String,
}

/// A date written as a string (`"2025-07-01"`, `"01/07/2025"`) or as a
/// TOML date (`2025-07-01`).
fn date<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(iso_date(&s)),
        toml::Value::Datetime(dt) => match (dt.date, dt.time) {
            (Some(date), None) => Ok(date.to_string()),
            _ => Err(serde::de::Error::custom(format!(
                "expected a day, e.g. 2025-07-01, got {dt}"
            ))),
        },
        other => Err(serde::de::Error::custom(format!(
            "expected a date, e.g. \"2025-07-01\", got {other}"
        ))),
    }
}

/// Parses a TOML plan.
pub fn from_toml(text: &str) -> anyhow::Result<pb::ReorgPlan> {
    let p: PlanToml = toml::from_str(text)?;
    Ok(pb::ReorgPlan {
        id: p.id,
        number: p.number,
        title: p.title,
        decided_on: p.decided_on,
        effective_on: p.effective_on,
        issuing_unit: p.issuing_unit,
        steps: p
            .steps
            .into_iter()
            .map(|s| pb::ReorgStep {
                kind: s.kind,
                unit: s.unit,
                name: s.name,
                unit_kind: s.unit_kind,
                to: s.to,
                units: s.units,
                members: s.members,
                successors: s.successors,
                parts: s
                    .parts
                    .into_iter()
                    .map(|unit_ids| pb::UnitList { unit_ids })
                    .collect(),
                reason: s.reason,
                on: s.on,
                node: s.node,
            })
            .collect(),
    })
}

/// The sheet rows a refusal names: `steps[i].units[j]` is one row,
/// `steps[i]` alone (its `to`, say) the rows of that step. `None` when the
/// message names no step of the plan.
pub fn rows_named(message: &str, lines: &[Vec<usize>]) -> Option<Vec<usize>> {
    let rest = &message[message.find("steps[")? + "steps[".len()..];
    let (i, rest) = rest.split_once(']')?;
    let step = lines.get(i.parse::<usize>().ok()?)?;
    let unit = rest
        .strip_prefix(".units[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(j, _)| j.parse::<usize>().ok())
        .and_then(|j| step.get(j));
    Some(match unit {
        Some(line) => vec![*line],
        None => step.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_plan_with_every_field() {
        let p = from_toml(
            r#"
            number = "125/QĐ-TLĐ"
            title = "Hợp nhất"
            decided_on = 2025-06-20
            effective_on = "01/07/2025"
            issuing_unit = "vn"

            [[steps]]
            kind = "split"
            unit = "hg"
            successors = ["ct", "st"]
            parts = [["hg-a"], ["hg-b", "hg-c"]]

            [[steps]]
            kind = "cease"
            units = ["hg-d"]
            members = ["m1"]
            reason = "Doanh nghiệp giải thể"
            on = "15/06/2025"
            "#,
        )
        .unwrap();
        assert_eq!(p.decided_on, "2025-06-20");
        assert_eq!(p.effective_on, "2025-07-01");
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[0].parts[1].unit_ids, ["hg-b", "hg-c"]);
        assert_eq!(p.steps[1].on, "2025-06-15");
        assert_eq!(p.steps[1].members, ["m1"]);
    }

    #[test]
    fn a_seal_step_names_the_node_given_up() {
        let p = from_toml(
            r#"
            number = "761/QĐ-TLĐ"
            issuing_unit = "vn"

            [[steps]]
            kind = "seal"
            node = "hg-node"
            reason = "máy chủ hỏng, không khôi phục được"
            "#,
        )
        .unwrap();
        assert_eq!(p.steps[0].kind, "seal");
        assert_eq!(p.steps[0].node, "hg-node");
        assert_eq!(p.steps[0].reason, "máy chủ hỏng, không khôi phục được");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = from_toml("number = \"1\"\nissuer = \"vn\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `issuer`"), "{err}");
        let err =
            from_toml("number = \"1\"\n[[steps]]\nkind = \"move\"\nparent = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `parent`"), "{err}");
        let err = from_toml("effective_on = 2025-07-01T08:00:00\n").unwrap_err();
        assert!(err.to_string().contains("expected a day"), "{err}");
    }

    #[test]
    fn dates_in_either_form() {
        assert_eq!(iso_date("27/8/2025"), "2025-08-27");
        assert_eq!(iso_date(" 2025-08-27 "), "2025-08-27");
        assert_eq!(iso_date("27/08"), "27/08");
    }

    #[test]
    fn a_sheet_needs_the_header_flags_and_a_plan_refuses_them() {
        let dir = tempfile::TempDir::new().unwrap();
        let sheet = dir.path().join("moves.csv");
        std::fs::write(
            &sheet,
            "Mã đơn vị,Cấp trên mới\nhg-a,p1\nhg-b,p2\nhg-c,p1\n",
        )
        .unwrap();
        let err = load(
            &sheet,
            &HeaderFlags {
                number: Some("12/QĐ".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("missing: --title, --decided-on, --effective-on, --issuing-unit"),
            "{err}"
        );
        let flags = HeaderFlags {
            number: Some("12/QĐ".into()),
            title: Some("Sắp xếp".into()),
            decided_on: Some("27/08/2025".into()),
            effective_on: Some("2025-07-01".into()),
            issuing_unit: Some("hg".into()),
        };
        let loaded = load(&sheet, &flags).unwrap();
        assert_eq!(loaded.plan.decided_on, "2025-08-27");
        let steps: Vec<(&str, &[String])> = loaded
            .plan
            .steps
            .iter()
            .map(|s| (s.to.as_str(), s.units.as_slice()))
            .collect();
        assert_eq!(
            steps,
            [
                ("p1", &["hg-a".to_owned(), "hg-c".to_owned()][..]),
                ("p2", &["hg-b".to_owned()][..])
            ]
        );
        let lines = loaded.lines.unwrap();
        assert_eq!(lines, [vec![2, 4], vec![3]]);
        assert_eq!(
            rows_named("steps[0].units[1]: unit hg-c is closed", &lines),
            Some(vec![4])
        );
        assert_eq!(
            rows_named("no authority over unit x (steps[0].to)", &lines),
            Some(vec![2, 4])
        );
        assert_eq!(rows_named("number: already applied", &lines), None);

        let plan = dir.path().join("plan.toml");
        std::fs::write(&plan, "number = \"1\"\n").unwrap();
        let err = load(&plan, &flags).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--number: a TOML plan carries its own header"),
            "{err}"
        );
        let err = load(&dir.path().join("plan.pdf"), &HeaderFlags::default()).unwrap_err();
        assert!(err.to_string().contains("expected a TOML plan"), "{err}");
    }
}
