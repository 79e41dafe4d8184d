//! Writes the steps share: importing rosters, reviewing initiatives,
//! waiting for a node to receive its unit record.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use hopluu_devcluster::federation::{Federation, LocalNode};
use hopluu_proto::v1 as pb;

use super::{Grassroots, Recorded, Roster};

/// Imports `rows` at `node` in requests of 500 rows; every row must be
/// created.
pub(super) async fn import(
    node: &LocalNode,
    rows: Vec<(&'static Grassroots, pb::MemberInput)>,
    roster: &mut Roster,
) -> Result<()> {
    for chunk in rows.chunks(500) {
        let request = pb::ImportMembersRequest {
            rows: chunk
                .iter()
                .enumerate()
                .map(|(i, (g, m))| pb::ImportRow {
                    line: i as u32 + 1,
                    unit_id: g.id.into(),
                    member: Some(m.clone()),
                })
                .collect(),
        };
        let results = node
            .members()
            .import_members(request)
            .await
            .with_context(|| format!("importing members at {}", node.id))?
            .into_inner()
            .results;
        for (r, (g, m)) in results.iter().zip(chunk) {
            if r.outcome != pb::ImportOutcome::Created as i32 {
                let outcome = pb::ImportOutcome::try_from(r.outcome)
                    .map(|o| o.as_str_name())
                    .unwrap_or("unknown outcome");
                let errors: Vec<String> = r
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.reason))
                    .collect();
                bail!(
                    "importing card {} at {}: {outcome} {}",
                    m.card_number,
                    node.id,
                    errors.join("; ")
                );
            }
            roster.created += 1;
            let first = roster.first.entry(g.id).or_default();
            if first.len() < 8 {
                first.push((r.member_id.clone(), m.full_name.clone()));
            }
        }
    }
    Ok(())
}

pub(super) async fn set_status(
    node: &LocalNode,
    campaign: &str,
    i: &Recorded,
    status: pb::InitiativeStatus,
    level: &str,
    note: &str,
) -> Result<()> {
    node.emulation()
        .set_initiative_status(pb::SetInitiativeStatusRequest {
            unit_id: i.unit.into(),
            campaign_id: campaign.into(),
            initiative_id: i.id.clone(),
            status: status as i32,
            recognised_level: level.into(),
            note: note.into(),
        })
        .await
        .with_context(|| format!("{} reviewing initiative \"{}\"", node.id, i.title))?;
    Ok(())
}

pub(super) async fn initiative_status(
    node: &LocalNode,
    unit: &str,
    campaign: &str,
    id: &str,
) -> Result<pb::InitiativeStatus> {
    let e = node
        .emulation()
        .get_emulation(pb::GetEmulationRequest {
            unit_id: unit.into(),
            campaign_id: campaign.into(),
        })
        .await?
        .into_inner();
    let i = e
        .initiatives
        .iter()
        .find(|i| i.id == id)
        .with_context(|| format!("initiative {id} is not at {}", node.id))?;
    Ok(pb::InitiativeStatus::try_from(i.status).unwrap_or(pb::InitiativeStatus::Unspecified))
}

pub(super) async fn wait_knows_unit(fed: &Federation, id: &str, limit: Duration) -> Result<()> {
    let node = fed.node(id);
    Federation::until(
        &format!("node {id} receiving its unit record from its parent"),
        limit,
        || async { Ok(node.knows_unit(&node.unit)) },
    )
    .await
}
