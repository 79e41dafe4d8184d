//! `hopluu conflicts list|show|resolve`: fields where concurrent writes
//! (two offices editing the same record while they could not see each
//! other) left more than one value, shown with every value, who wrote it
//! and when; a resolution writes the chosen value as a new change, which
//! replicates like any other write (the admin service of a node).
//!
//! Conflict ids are the node's own: the same conflict has another id at
//! each node that holds the document. Operation ids (`counter@actor`)
//! name a value everywhere.

use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use crate::output::{Table, kv, print};

#[derive(Subcommand, Debug)]
pub enum ConflictsCmd {
    /// Unresolved conflicts, oldest first: each value, who wrote it, when.
    List {
        /// Only conflicts in this document, e.g. roster/hg-truong-a.
        #[arg(long)]
        doc: Option<String>,
        /// Conflicts after this id (paging: the last id shown).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One conflict: every value with its op id (what `resolve --keep`
    /// takes), who wrote it, when and in which change.
    Show { id: i64 },
    /// Write the chosen value as a new change by this node: one of the
    /// values (--keep OP_ID) or a new one (--value TEXT). It replicates,
    /// and each node drops the conflict when it applies it.
    Resolve {
        id: i64,
        /// The op id of the value to keep (see `hopluu conflicts show`), or
        /// its start up to a character that tells it from the others.
        #[arg(long, required_unless_present = "value", conflicts_with = "value")]
        keep: Option<String>,
        /// A new value instead (it takes the type of the value reads show).
        #[arg(long, allow_hyphen_values = true)]
        value: Option<String>,
        /// Why, for the node's log.
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// Milliseconds since the epoch as UTC; empty for 0.
fn when(millis: i64) -> String {
    if millis <= 0 {
        return String::new();
    }
    hopluu_node::tls::utc(UNIX_EPOCH + Duration::from_millis(millis as u64))
}

fn who(v: &pb::ConflictValue) -> String {
    match (v.node_id.is_empty(), v.unit_id.is_empty()) {
        (true, _) => "(unknown actor)".to_owned(),
        (false, true) => v.node_id.clone(),
        _ => format!("{} ({})", v.node_id, v.unit_id),
    }
}

/// One row per value; the conflict's columns on its first row, which is
/// the value reads show.
fn list_table(conflicts: &[pb::Conflict]) -> Table {
    let mut t = Table::new(&[
        "id",
        "doc",
        "record",
        "field",
        "value",
        "written by",
        "written",
        "shown",
    ]);
    for c in conflicts {
        for (i, v) in c.values.iter().enumerate() {
            let first = i == 0;
            let cell = |s: &str| if first { s.to_owned() } else { String::new() };
            t.row(vec![
                cell(&c.id.to_string()),
                cell(&c.doc_id),
                cell(&c.record),
                cell(&c.field),
                v.value.clone(),
                who(v),
                when(v.written_at_millis),
                if first { "yes".into() } else { String::new() },
            ]);
        }
        if c.values.is_empty() {
            t.row(vec![
                c.id.to_string(),
                c.doc_id.clone(),
                c.record.clone(),
                c.field.clone(),
                "(the field is gone)".into(),
            ]);
        }
    }
    t
}

fn conflict_rows(c: &pb::Conflict) -> Vec<(&'static str, String)> {
    vec![
        ("id", c.id.to_string()),
        ("doc", c.doc_id.clone()),
        ("record", c.record.clone()),
        ("field", c.field.clone()),
        ("path", c.path.clone()),
        ("detected", when(c.detected_at_millis)),
        ("values", c.values.len().to_string()),
    ]
}

fn values_table(c: &pb::Conflict) -> Table {
    let mut t = Table::new(&["op id", "value", "written by", "written", "change", "shown"]);
    for (i, v) in c.values.iter().enumerate() {
        t.row(vec![
            v.op_id.clone(),
            v.value.clone(),
            who(v),
            when(v.written_at_millis),
            v.change.clone(),
            if i == 0 { "yes".into() } else { String::new() },
        ]);
    }
    t
}

/// The conflict's fields, then its values.
fn print_conflict(c: &pb::Conflict, extra: &[(&'static str, String)]) {
    let mut rows = conflict_rows(c);
    rows.extend_from_slice(extra);
    print!("{}", kv(&rows).render());
    println!();
    print!("{}", values_table(c).render());
}

/// `hopluu conflicts …`.
pub async fn run(cmd: ConflictsCmd, channel: Channel, json: bool) -> anyhow::Result<()> {
    let mut c = AdminServiceClient::new(channel);
    match cmd {
        ConflictsCmd::List { doc, after, limit } => {
            let r = c
                .list_conflicts(pb::ListConflictsRequest {
                    doc_id: doc.unwrap_or_default(),
                    after_id: after,
                    limit,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListConflictsResponse", || {
                list_table(&r.conflicts)
            })
        }
        ConflictsCmd::Show { id } => {
            let r = c
                .get_conflict(pb::GetConflictRequest { id })
                .await?
                .into_inner();
            if json {
                return print(true, &r, "hopluu.v1.Conflict", Table::default);
            }
            print_conflict(&r, &[]);
            Ok(())
        }
        ConflictsCmd::Resolve {
            id,
            keep,
            value,
            note,
        } => {
            let r = c
                .resolve_conflict(pb::ResolveConflictRequest {
                    id,
                    keep_op_id: keep.unwrap_or_default(),
                    value,
                    note,
                })
                .await?
                .into_inner();
            if json {
                return print(
                    true,
                    &r,
                    "hopluu.v1.ResolveConflictResponse",
                    Table::default,
                );
            }
            let conflict = r.conflict.clone().unwrap_or_default();
            print_conflict(&conflict, &[("change written", r.change.clone())]);
            Ok(())
        }
    }
}
