//! `hopluu emulation`: a unit's part in a campaign: its registration,
//! initiatives and their review, dedicated works.

use clap::{Subcommand, ValueEnum};
use hopluu_proto::v1 as pb;

use crate::client::{Target, channel};
use crate::output::{Table, kv, print, vnd};

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum InitiativeStatusArg {
    Submitted,
    UnderReview,
    Valid,
    Rejected,
    Recognised,
}

#[derive(Subcommand, Debug)]
pub enum EmulationCmd {
    Register {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long, default_value = "")]
        pledge: String,
        #[arg(long, default_value = "")]
        on: String,
    },
    Initiative {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        title: String,
        #[arg(long = "author", required = true)]
        authors: Vec<String>,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        value_vnd: i64,
        #[arg(long, default_value = "")]
        submitted_on: String,
    },
    /// Move an initiative through review.
    Review {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        initiative: String,
        #[arg(long, value_enum)]
        status: InitiativeStatusArg,
        #[arg(long, default_value = "")]
        level: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    Work {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        name: String,
        #[arg(long, allow_negative_numbers = true)]
        value_vnd: i64,
        #[arg(long)]
        plaque: bool,
        #[arg(long, default_value = "")]
        completed_on: String,
    },
    Show {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
    },
}

fn initiative_status(s: i32) -> &'static str {
    match pb::InitiativeStatus::try_from(s) {
        Ok(pb::InitiativeStatus::Submitted) => "submitted",
        Ok(pb::InitiativeStatus::UnderReview) => "under review",
        Ok(pb::InitiativeStatus::Valid) => "valid",
        Ok(pb::InitiativeStatus::Rejected) => "rejected",
        Ok(pb::InitiativeStatus::Recognised) => "recognised",
        _ => "?",
    }
}

pub async fn run(cmd: EmulationCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::emulation_service_client::EmulationServiceClient::new(channel(addr).await?);
    let initiative = |i: pb::Initiative| {
        print(json, &i, "hopluu.v1.Initiative", || {
            kv(&[
                ("id", i.id.clone()),
                ("title", i.title.clone()),
                ("authors", i.authors.join(", ")),
                (
                    "status",
                    format!("{} {}", initiative_status(i.status), i.recognised_level)
                        .trim()
                        .to_owned(),
                ),
                ("value", vnd(i.value_vnd)),
                ("submitted on", i.submitted_on.clone()),
            ])
        })
    };
    let emulation_view = |e: pb::Emulation| {
        print(json, &e, "hopluu.v1.Emulation", || {
            let mut t = Table::new(&["kind", "id", "title / name", "status", "value"]);
            t.row(vec![
                "registration".into(),
                String::new(),
                e.pledge.clone(),
                if e.registered {
                    format!("registered {}", e.registered_on)
                } else {
                    "not registered".into()
                },
                String::new(),
            ]);
            for i in &e.initiatives {
                t.row(vec![
                    "initiative".into(),
                    i.id.clone(),
                    i.title.clone(),
                    initiative_status(i.status).into(),
                    vnd(i.value_vnd),
                ]);
            }
            for w in &e.works {
                t.row(vec![
                    "work".into(),
                    w.id.clone(),
                    w.name.clone(),
                    if w.plaque {
                        "plaque".into()
                    } else {
                        String::new()
                    },
                    vnd(w.value_vnd),
                ]);
            }
            t
        })
    };
    match cmd {
        EmulationCmd::Register {
            unit,
            campaign,
            pledge,
            on,
        } => emulation_view(
            c.register(pb::RegisterRequest {
                unit_id: unit,
                campaign_id: campaign,
                registered_on: on,
                pledge,
            })
            .await?
            .into_inner(),
        ),
        EmulationCmd::Initiative {
            unit,
            campaign,
            title,
            authors,
            value_vnd,
            submitted_on,
        } => initiative(
            c.record_initiative(pb::RecordInitiativeRequest {
                unit_id: unit,
                campaign_id: campaign,
                title,
                authors,
                value_vnd,
                submitted_on,
            })
            .await?
            .into_inner(),
        ),
        EmulationCmd::Review {
            unit,
            campaign,
            initiative: id,
            status,
            level,
            note,
        } => {
            let status = match status {
                InitiativeStatusArg::Submitted => pb::InitiativeStatus::Submitted,
                InitiativeStatusArg::UnderReview => pb::InitiativeStatus::UnderReview,
                InitiativeStatusArg::Valid => pb::InitiativeStatus::Valid,
                InitiativeStatusArg::Rejected => pb::InitiativeStatus::Rejected,
                InitiativeStatusArg::Recognised => pb::InitiativeStatus::Recognised,
            };
            initiative(
                c.set_initiative_status(pb::SetInitiativeStatusRequest {
                    unit_id: unit,
                    campaign_id: campaign,
                    initiative_id: id,
                    status: status as i32,
                    recognised_level: level,
                    note,
                })
                .await?
                .into_inner(),
            )
        }
        EmulationCmd::Work {
            unit,
            campaign,
            name,
            value_vnd,
            plaque,
            completed_on,
        } => {
            let w = c
                .record_work(pb::RecordWorkRequest {
                    unit_id: unit,
                    campaign_id: campaign,
                    name,
                    value_vnd,
                    plaque,
                    completed_on,
                })
                .await?
                .into_inner();
            print(json, &w, "hopluu.v1.Work", || {
                kv(&[
                    ("id", w.id.clone()),
                    ("name", w.name.clone()),
                    ("value", vnd(w.value_vnd)),
                    ("plaque", if w.plaque { "yes" } else { "no" }.into()),
                    ("completed on", w.completed_on.clone()),
                ])
            })
        }
        EmulationCmd::Show { unit, campaign } => emulation_view(
            c.get_emulation(pb::GetEmulationRequest {
                unit_id: unit,
                campaign_id: campaign,
            })
            .await?
            .into_inner(),
        ),
    }
}
