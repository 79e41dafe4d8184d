//! `hopluu units`: create, rename, move, close, show and list union units,
//! and the unit kinds a node knows.

use clap::Subcommand;
use hopluu_proto::v1 as pb;

use crate::client::{Target, channel};
use crate::output::{Table, kv, print};

#[derive(Subcommand, Debug)]
pub enum UnitsCmd {
    /// Create a unit under a parent.
    Create {
        #[arg(long)]
        name: String,
        /// A kind id (see `hopluu units kinds`).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        parent: String,
        /// A stable id; generated when absent.
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    Rename {
        unit: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    /// Re-parent a unit (decided by the level above both ends).
    Move {
        unit: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        decided_on: String,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    /// Close a unit, or record it as merged into its successors.
    Close {
        unit: String,
        #[arg(long)]
        reason: String,
        #[arg(long = "successor")]
        successors: Vec<String>,
        #[arg(long)]
        merged: bool,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    Show {
        unit: String,
    },
    /// A unit's subtree (the node's own unit by default).
    List {
        root: Option<String>,
        /// Include closed and merged units.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        depth: Option<u32>,
    },
    Kinds,
}

fn unit_status(s: i32) -> &'static str {
    match pb::UnitStatus::try_from(s) {
        Ok(pb::UnitStatus::Active) => "active",
        Ok(pb::UnitStatus::Merged) => "merged",
        Ok(pb::UnitStatus::Closed) => "closed",
        _ => "?",
    }
}

fn unit_table(units: &[pb::Unit]) -> Table {
    let top = units.iter().map(|u| u.depth).min().unwrap_or(0);
    let mut t = Table::new(&["id", "name", "kind", "parent", "status", "depth"]);
    for u in units {
        let indent = "  ".repeat((u.depth - top) as usize);
        t.row(vec![
            u.id.clone(),
            format!("{indent}{}", u.name),
            u.kind.clone(),
            u.parent_id.clone(),
            unit_status(u.status).to_owned(),
            u.depth.to_string(),
        ]);
    }
    t
}

pub async fn run(cmd: UnitsCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::unit_service_client::UnitServiceClient::new(channel(addr).await?);
    let one = |u: pb::Unit| {
        print(json, &u, "hopluu.v1.Unit", || {
            unit_table(std::slice::from_ref(&u))
        })
    };
    match cmd {
        UnitsCmd::Create {
            name,
            kind,
            parent,
            id,
            effective_on,
            decision_no,
        } => one(c
            .create_unit(pb::CreateUnitRequest {
                id,
                name,
                kind,
                parent_id: parent,
                effective_on,
                decision_no,
            })
            .await?
            .into_inner()),
        UnitsCmd::Rename {
            unit,
            name,
            effective_on,
            decision_no,
        } => one(c
            .rename_unit(pb::RenameUnitRequest {
                unit_id: unit,
                name,
                effective_on,
                decision_no,
            })
            .await?
            .into_inner()),
        UnitsCmd::Move {
            unit,
            to,
            decided_on,
            effective_on,
            decision_no,
        } => one(c
            .move_unit(pb::MoveUnitRequest {
                unit_id: unit,
                new_parent_id: to,
                decided_on,
                effective_on,
                decision_no,
            })
            .await?
            .into_inner()),
        UnitsCmd::Close {
            unit,
            reason,
            successors,
            merged,
            effective_on,
            decision_no,
        } => one(c
            .close_unit(pb::CloseUnitRequest {
                unit_id: unit,
                reason,
                effective_on,
                decision_no,
                successor_ids: successors,
                merged,
            })
            .await?
            .into_inner()),
        UnitsCmd::Show { unit } => {
            let u = c
                .get_unit(pb::GetUnitRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &u, "hopluu.v1.Unit", || {
                let mut pairs = vec![
                    ("id", u.id.clone()),
                    ("name", u.name.clone()),
                    ("kind", u.kind.clone()),
                    ("parent", u.parent_id.clone()),
                    ("status", unit_status(u.status).to_owned()),
                    ("successors", u.successor_ids.join(", ")),
                    ("closed on", u.closed_on.clone()),
                    ("close reason", u.close_reason.clone()),
                ];
                for n in &u.name_history {
                    pairs.push((
                        "name since",
                        format!("{} {} ({})", n.effective_on, n.name, n.decision_no),
                    ));
                }
                for p in &u.parent_history {
                    pairs.push((
                        "parent since",
                        format!(
                            "{} {} (decided {}, {})",
                            p.effective_on, p.parent_id, p.decided_on, p.decision_no
                        ),
                    ));
                }
                kv(&pairs)
            })
        }
        UnitsCmd::List { root, all, depth } => {
            let r = c
                .list_units(pb::ListUnitsRequest {
                    root_id: root.unwrap_or_default(),
                    include_closed: all,
                    max_depth: depth,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListUnitsResponse", || {
                unit_table(&r.units)
            })
        }
        UnitsCmd::Kinds => {
            let r = c
                .list_unit_kinds(pb::ListUnitKindsRequest {})
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListUnitKindsResponse", || {
                let mut t = Table::new(&["kind", "label", "roster"]);
                for k in &r.kinds {
                    t.row(vec![
                        k.id.clone(),
                        k.label.clone(),
                        if k.holds_members { "yes" } else { "" }.into(),
                    ]);
                }
                t
            })
        }
    }
}
