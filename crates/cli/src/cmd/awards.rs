//! `hopluu awards`: the award catalogue, proposals up the tree, decisions
//! and revocations (khen thưởng).

use clap::Subcommand;
use hopluu_proto::v1 as pb;

use crate::client::{Target, channel};
use crate::output::{Table, print};

#[derive(Subcommand, Debug)]
pub enum AwardsCmd {
    /// The award catalogue.
    Types,
    Propose {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        award_type: String,
        #[arg(long = "member")]
        members: Vec<String>,
        #[arg(long = "collective")]
        units: Vec<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        campaign: Option<String>,
    },
    Proposals {
        #[arg(long)]
        unit: String,
    },
    Decide {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        decision_no: String,
        #[arg(long)]
        award_type: String,
        #[arg(long = "member")]
        members: Vec<String>,
        #[arg(long = "collective")]
        units: Vec<String>,
        #[arg(long, default_value = "")]
        decided_on: String,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        proposal: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "")]
        on: String,
    },
    List {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        year: Option<u32>,
    },
}

fn recipients(members: Vec<String>, units: Vec<String>) -> Vec<pb::Recipient> {
    members
        .into_iter()
        .map(|m| pb::Recipient {
            who: Some(pb::recipient::Who::MemberId(m)),
        })
        .chain(units.into_iter().map(|u| pb::Recipient {
            who: Some(pb::recipient::Who::UnitId(u)),
        }))
        .collect()
}

fn recipient_list(rs: &[pb::Recipient]) -> String {
    rs.iter()
        .filter_map(|r| match &r.who {
            Some(pb::recipient::Who::MemberId(m)) => Some(m.clone()),
            Some(pb::recipient::Who::UnitId(u)) => Some(u.clone()),
            None => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn award_table(awards: &[pb::Award]) -> Table {
    let mut t = Table::new(&[
        "id",
        "decision",
        "decided",
        "by",
        "type",
        "recipients",
        "revoked",
    ]);
    for a in awards {
        t.row(vec![
            a.id.clone(),
            a.decision_no.clone(),
            a.decided_on.clone(),
            a.issuing_unit_id.clone(),
            a.award_type.clone(),
            recipient_list(&a.recipients),
            if a.revoked {
                a.revoked_on.clone()
            } else {
                String::new()
            },
        ]);
    }
    t
}

fn proposal_table(ps: &[pb::Proposal]) -> Table {
    let mut t = Table::new(&["id", "from", "to", "type", "candidates", "status", "award"]);
    for p in ps {
        let status = match pb::ProposalStatus::try_from(p.status) {
            Ok(pb::ProposalStatus::Decided) => "decided",
            Ok(pb::ProposalStatus::Declined) => "declined",
            _ => "pending",
        };
        t.row(vec![
            p.id.clone(),
            p.proposing_unit_id.clone(),
            p.addressed_unit_id.clone(),
            p.award_type.clone(),
            recipient_list(&p.candidates),
            status.into(),
            p.award_id.clone(),
        ]);
    }
    t
}

pub async fn run(cmd: AwardsCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::award_service_client::AwardServiceClient::new(channel(addr).await?);
    match cmd {
        AwardsCmd::Types => {
            let r = c
                .list_award_types(pb::ListAwardTypesRequest {})
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListAwardTypesResponse", || {
                let mut t = Table::new(&["id", "name", "to", "granted by"]);
                for a in &r.types {
                    let to = match pb::RecipientKind::try_from(a.kind) {
                        Ok(pb::RecipientKind::Person) => "person",
                        Ok(pb::RecipientKind::Collective) => "collective",
                        _ => "both",
                    };
                    t.row(vec![
                        a.id.clone(),
                        a.name.clone(),
                        to.into(),
                        a.granting_kinds.join(", "),
                    ]);
                }
                t
            })
        }
        AwardsCmd::Propose {
            unit,
            to,
            award_type,
            members,
            units,
            reason,
            campaign,
        } => {
            let p = c
                .propose_award(pb::ProposeAwardRequest {
                    proposing_unit_id: unit,
                    addressed_unit_id: to,
                    award_type,
                    campaign_id: campaign,
                    candidates: recipients(members, units),
                    reason,
                    proposed_on: String::new(),
                })
                .await?
                .into_inner();
            print(json, &p, "hopluu.v1.Proposal", || {
                proposal_table(std::slice::from_ref(&p))
            })
        }
        AwardsCmd::Proposals { unit } => {
            let r = c
                .list_proposals(pb::ListProposalsRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListProposalsResponse", || {
                proposal_table(&r.proposals)
            })
        }
        AwardsCmd::Decide {
            unit,
            decision_no,
            award_type,
            members,
            units,
            decided_on,
            effective_on,
            campaign,
            proposal,
            reason,
        } => {
            let a = c
                .decide_award(pb::DecideAwardRequest {
                    issuing_unit_id: unit,
                    decision_no,
                    decided_on,
                    effective_on,
                    award_type,
                    recipients: recipients(members, units),
                    campaign_id: campaign,
                    proposal_id: proposal,
                    reason,
                })
                .await?
                .into_inner();
            print(json, &a, "hopluu.v1.Award", || {
                award_table(std::slice::from_ref(&a))
            })
        }
        AwardsCmd::Revoke { id, reason, on } => {
            let a = c
                .revoke_award(pb::RevokeAwardRequest {
                    award_id: id,
                    revoked_on: on,
                    reason,
                })
                .await?
                .into_inner();
            print(json, &a, "hopluu.v1.Award", || {
                award_table(std::slice::from_ref(&a))
            })
        }
        AwardsCmd::List { unit, year } => {
            let r = c
                .list_awards(pb::ListAwardsRequest {
                    unit_id: unit,
                    year,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListAwardsResponse", || {
                award_table(&r.awards)
            })
        }
    }
}
