//! `hopluu reorg apply|list|show`: reorganisation decisions (the
//! `ReorgService`). A decision is one dated document with many steps,
//! applied whole or not at all; `apply --dry-run` prints what it would do
//! and writes nothing.
//!
//! # Layout
//! - this module: the commands, and the impact, list and decision as text;
//! - [`plan`]: the decision read from a TOML plan or a sheet of moves.

mod plan;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::reorg_service_client::ReorgServiceClient;

use crate::client::{Target, channel};
use crate::output::{self, Table, kv, print};

#[derive(Subcommand, Debug)]
pub enum ReorgCmd {
    /// Apply a decision: a TOML plan (FILE.toml), or a sheet of unit moves
    /// (FILE.csv, FILE.xlsx: unit, new parent) with the decision's header
    /// in flags. A bad plan is refused whole, naming the step.
    Apply(ApplyArgs),
    /// Decisions held here, newest effective date first.
    List {
        /// Only decisions issued in this unit's subtree.
        #[arg(long)]
        unit: Option<String>,
    },
    /// One decision: its header and every step, numbered from 0 as
    /// refusals name them (`steps[2]`).
    Show {
        /// The decision's id, or its number.
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A TOML plan (.toml) or a sheet of moves (.csv, .xlsx).
    file: PathBuf,
    /// Only report the impact; write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    header: plan::HeaderFlags,
}

pub async fn run(cmd: ReorgCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    match cmd {
        ReorgCmd::Apply(args) => apply(args, addr, json).await,
        ReorgCmd::List { unit } => {
            let mut c = ReorgServiceClient::new(channel(addr).await?);
            let r = c
                .list_decisions(pb::ListDecisionsRequest {
                    unit_id: unit.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListDecisionsResponse", || {
                list_table(&r.decisions)
            })
        }
        ReorgCmd::Show { id } => {
            let mut c = ReorgServiceClient::new(channel(addr).await?);
            let r = c
                .get_decision(pb::GetDecisionRequest { id })
                .await?
                .into_inner();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&output::to_json(
                        &r,
                        "hopluu.v1.DecisionRecord"
                    )?)?
                );
            } else {
                print!("{}", show_text(&r));
            }
            Ok(())
        }
    }
}

async fn apply(args: ApplyArgs, addr: &Target, json: bool) -> anyhow::Result<()> {
    let loaded = plan::load(&args.file, &args.header)?;
    let mut c = ReorgServiceClient::new(channel(addr).await?);
    let r = match c
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(loaded.plan),
            dry_run: args.dry_run,
        })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => {
            // A refusal naming a step of a sheet also names its rows.
            let rows = loaded
                .lines
                .as_deref()
                .and_then(|l| plan::rows_named(status.message(), l));
            return Err(match rows {
                Some(rows) => {
                    let rows: Vec<String> = rows.iter().map(ToString::to_string).collect();
                    let which = if rows.len() == 1 { "row" } else { "rows" };
                    tonic::Status::new(
                        status.code(),
                        format!(
                            "{} ({which} {} of {})",
                            status.message(),
                            rows.join(", "),
                            args.file.display()
                        ),
                    )
                    .into()
                }
                None => status.into(),
            });
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::to_json(&r, "hopluu.v1.ApplyDecisionResponse")?)?
        );
    } else {
        print!("{}", applied_text(&r));
    }
    Ok(())
}

fn ids(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// `active 12, left 1`, or `none`.
fn by_status(v: &[pb::StatusCount]) -> String {
    let parts: Vec<String> = v
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| format!("{} {}", c.status, c.count))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// An apply's (or a dry run's) answer: what was (or would be) done.
fn applied_text(r: &pb::ApplyDecisionResponse) -> String {
    let mut out = String::new();
    let summary = r
        .decision
        .as_ref()
        .and_then(|d| d.summary.clone())
        .unwrap_or_default();
    if r.applied {
        out.push_str(&format!(
            "Applied decision {} (id {}) at {} by {}\n",
            summary.number, summary.id, summary.applied_at, summary.applied_by
        ));
    } else {
        out.push_str("DRY RUN: nothing was written\n");
        out.push_str(&format!("Decision {}\n", summary.number));
    }
    out.push_str(&format!(
        "  {}; issued by {}, decided {}, effective {}; {} step{}\n\n",
        summary.title,
        summary.issuing_unit,
        summary.decided_on,
        summary.effective_on,
        summary.steps,
        if summary.steps == 1 { "" } else { "s" }
    ));
    let i = r.impact.clone().unwrap_or_default();
    let head = if r.applied { "" } else { "would be " };
    out.push_str(&format!(
        "Units {head}created ({}): {}\n",
        i.created.len(),
        ids(&i.created)
    ));
    out.push_str(&format!(
        "Units {head}renamed ({}): {}\n",
        i.renamed.len(),
        ids(&i.renamed)
    ));
    out.push_str(&format!("Units {head}moved ({}):", i.moved.len()));
    if i.moved.is_empty() {
        out.push_str(" none\n");
    } else {
        out.push('\n');
        for m in &i.moved {
            out.push_str(&format!("  {}: {} -> {}\n", m.unit_id, m.from_id, m.to_id));
        }
    }
    out.push_str(&format!("Units {head}closed ({}):", i.closed.len()));
    if i.closed.is_empty() {
        out.push_str(" none\n");
    } else {
        out.push('\n');
        for c in &i.closed {
            out.push_str(&format!(
                "  {}: {}, successors {}\n",
                c.unit_id,
                c.status,
                ids(&c.successor_ids)
            ));
        }
    }
    out.push_str(&format!(
        "Member records moving with their units: {}\n",
        by_status(&i.members_moved)
    ));
    out.push_str(&format!("Members transferred: {}\n", i.members_transferred));
    out.push_str(&format!("Members ceased: {}\n", i.members_ceased));
    out.push_str(&format!(
        "Unit records whose owner changes: {}\n",
        i.docs_owner_changed
    ));
    let rehomed: Vec<String> = i
        .docs_rehomed
        .iter()
        .map(|k| format!("{} {}", k.kind, k.count))
        .collect();
    out.push_str(&format!(
        "Documents rehomed (their holders change): {}\n",
        if rehomed.is_empty() {
            "none".to_owned()
        } else {
            rehomed.join(", ")
        }
    ));
    if i.nodes.is_empty() {
        out.push_str("Nodes whose subtree changes: none\n");
    } else {
        out.push_str("\nNodes whose subtree changes:\n");
        let mut t = Table::new(&[
            "node",
            "unit",
            "units",
            "gained",
            "lost",
            "members gained",
            "members lost",
        ]);
        for n in &i.nodes {
            t.row(vec![
                n.node_id.clone(),
                n.unit_id.clone(),
                format!("{} -> {}", n.units_before, n.units_after),
                n.units_gained.join(", "),
                n.units_lost.join(", "),
                n.members_gained.to_string(),
                n.members_lost.to_string(),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

fn list_table(decisions: &[pb::DecisionSummary]) -> Table {
    let mut t = Table::new(&[
        "number",
        "effective",
        "issuing unit",
        "title",
        "steps",
        "units moved",
        "units closed",
        "members ceased",
        "id",
    ]);
    for d in decisions {
        t.row(vec![
            d.number.clone(),
            d.effective_on.clone(),
            d.issuing_unit.clone(),
            d.title.clone(),
            d.steps.to_string(),
            d.units_moved.to_string(),
            d.units_closed.to_string(),
            d.members_ceased.to_string(),
            d.id.clone(),
        ]);
    }
    t
}

/// A step's fields, those its kind takes: `units a, b; to x`.
fn step_details(s: &pb::ReorgStep) -> String {
    let mut parts = Vec::new();
    let mut one = |k: &str, v: &str| {
        if !v.is_empty() {
            parts.push(format!("{k} {v}"));
        }
    };
    one("unit", &s.unit);
    one("name", &s.name);
    one("unit kind", &s.unit_kind);
    one("units", &s.units.join(", "));
    one("members", &s.members.join(", "));
    one("to", &s.to);
    one("successors", &s.successors.join(", "));
    let split: Vec<String> = s
        .parts
        .iter()
        .zip(&s.successors)
        .map(|(p, to)| format!("{} -> {to}", p.unit_ids.join(", ")))
        .collect();
    one("parts", &split.join("; "));
    one("reason", &s.reason);
    one("on", &s.on);
    parts.join("; ")
}

fn show_text(r: &pb::DecisionRecord) -> String {
    let s = r.summary.clone().unwrap_or_default();
    let p = r.plan.clone().unwrap_or_default();
    let mut out = kv(&[
        ("id", s.id.clone()),
        ("number", s.number.clone()),
        ("title", s.title.clone()),
        ("issuing unit", s.issuing_unit.clone()),
        ("decided on", s.decided_on.clone()),
        ("effective on", s.effective_on.clone()),
        ("applied at", s.applied_at.clone()),
        ("applied by", s.applied_by.clone()),
        ("units created", s.units_created.to_string()),
        ("units moved", s.units_moved.to_string()),
        ("units closed", s.units_closed.to_string()),
        ("members transferred", s.members_transferred.to_string()),
        ("members ceased", s.members_ceased.to_string()),
    ])
    .render();
    out.push_str(&format!("\nSteps ({}):\n", p.steps.len()));
    let mut t = Table::new(&["step", "kind", "what"]);
    for (i, step) in p.steps.iter().enumerate() {
        t.row(vec![i.to_string(), step.kind.clone(), step_details(step)]);
    }
    out.push_str(&t.render());
    if !r.handovers.is_empty() {
        out.push_str(&format!("\nHandovers ({}):\n", r.handovers.len()));
        let mut t = Table::new(&[
            "old host",
            "sealed at",
            "status",
            "docs",
            "missing",
            "detail",
        ]);
        for h in &r.handovers {
            t.row(vec![
                h.from_node.clone(),
                h.sealed_at.clone(),
                h.status.clone(),
                h.docs.to_string(),
                h.docs_missing.to_string(),
                h.detail.clone(),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `reorg show` lists each old host's handover with its status and why.
    #[test]
    fn the_handovers_are_shown_with_their_status() {
        let r = pb::DecisionRecord {
            handovers: vec![
                pb::Handover {
                    from_node: "hg-node".into(),
                    sealed_at: "2025-07-01T08:00:00Z".into(),
                    status: "complete".into(),
                    docs: 12,
                    docs_missing: 0,
                    detail: "every sealed head of 12 documents is here".into(),
                },
                pb::Handover {
                    from_node: "st-node".into(),
                    status: "pending".into(),
                    detail: "node st-node has not sealed yet".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let text = show_text(&r);
        assert!(text.contains("Handovers (2):"), "{text}");
        for want in [
            "hg-node",
            "complete",
            "12",
            "st-node",
            "pending",
            "has not sealed",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        let none = show_text(&pb::DecisionRecord::default());
        assert!(!none.contains("Handovers"), "{none}");
    }
}
