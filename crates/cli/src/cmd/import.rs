//! `hopluu import members`: a roster spreadsheet (CSV or XLSX) sent to the
//! node in batches, with the rows it refused listed by line.

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use hopluu_proto::v1 as pb;
use hopluu_sheet as import;

use crate::client::{Target, channel};
use crate::output::{self, Table};

#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Import a roster file (.csv or .xlsx). Re-running is safe: the card
    /// number is the key.
    Members {
        file: PathBuf,
        /// The unit for rows without a unit column.
        #[arg(long)]
        unit: Option<String>,
        /// Rows per request (one transaction each).
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

async fn import_members(
    addr: &Target,
    json: bool,
    file: &std::path::Path,
    unit: Option<String>,
    batch: usize,
) -> anyhow::Result<()> {
    use import::Column;
    let sheet = import::read_file(file)?;
    if unit.is_none() && !sheet.columns.contains(&Column::UnitId) {
        bail!("the file has no unit column (\"Mã đơn vị\"): name the unit with --unit");
    }
    let mut c = pb::member_service_client::MemberServiceClient::new(channel(addr).await?);
    let get = |r: &import::RawRow, col: Column| r.values.get(&col).cloned().unwrap_or_default();
    let rows: Vec<pb::ImportRow> = sheet
        .rows
        .iter()
        .map(|r| pb::ImportRow {
            line: r.line as u32,
            unit_id: r
                .values
                .get(&Column::UnitId)
                .cloned()
                .or_else(|| unit.clone())
                .unwrap_or_default(),
            member: Some(pb::MemberInput {
                full_name: get(r, Column::FullName),
                birth_date: get(r, Column::BirthDate),
                gender: match get(r, Column::Gender).as_str() {
                    "male" => pb::Gender::Male as i32,
                    "female" => pb::Gender::Female as i32,
                    "other" => pb::Gender::Other as i32,
                    _ => pb::Gender::Unspecified as i32,
                },
                card_number: get(r, Column::CardNumber),
                joined_on: get(r, Column::JoinedOn),
                position: get(r, Column::Position),
                national_id: get(r, Column::NationalId),
                ethnicity: get(r, Column::Ethnicity),
                religion: get(r, Column::Religion),
            }),
        })
        .collect();
    // Gender words the reader did not recognise are reported with the row.
    let bad_gender: std::collections::HashMap<u32, String> = sheet
        .rows
        .iter()
        .filter_map(|r| {
            let g = get(r, Column::Gender);
            (!["male", "female", "other", ""].contains(&g.as_str())).then_some((r.line as u32, g))
        })
        .collect();
    let progress = if json || rows.len() < 2000 {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(rows.len() as u64)
    };
    let mut results = Vec::new();
    for chunk in rows.chunks(batch.clamp(1, 5000)) {
        let r = c
            .import_members(pb::ImportMembersRequest {
                rows: chunk.to_vec(),
            })
            .await?
            .into_inner();
        progress.inc(chunk.len() as u64);
        results.extend(r.results);
    }
    progress.finish_and_clear();
    for r in &mut results {
        if let Some(g) = bad_gender.get(&r.line) {
            for e in &mut r.errors {
                if e.field == "gender" {
                    e.reason = format!("expected Nam, Nữ or Khác, got {g:?}");
                }
            }
        }
    }
    let resp = pb::ImportMembersResponse { results };
    let count = |o: pb::ImportOutcome| {
        resp.results
            .iter()
            .filter(|r| r.outcome == o as i32)
            .count()
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::to_json(
                &resp,
                "hopluu.v1.ImportMembersResponse"
            )?)?
        );
    } else {
        let mut t = Table::new(&["line", "field", "reason"]);
        for r in resp
            .results
            .iter()
            .filter(|r| r.outcome == pb::ImportOutcome::Rejected as i32)
        {
            for e in &r.errors {
                t.row(vec![r.line.to_string(), e.field.clone(), e.reason.clone()]);
            }
        }
        if !t.rows.is_empty() {
            println!("Rows not imported:");
            print!("{}", t.render());
        }
        println!(
            "{} rows: {} created, {} updated, {} unchanged, {} rejected",
            resp.results.len(),
            count(pb::ImportOutcome::Created),
            count(pb::ImportOutcome::Updated),
            count(pb::ImportOutcome::Unchanged),
            count(pb::ImportOutcome::Rejected)
        );
    }
    Ok(())
}

pub async fn run(cmd: ImportCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    match cmd {
        ImportCmd::Members { file, unit, batch } => {
            import_members(addr, json, &file, unit, batch).await
        }
    }
}
