//! `hopluu campaigns`: launch, show, list, plan and close emulation
//! campaigns (phong trào thi đua).

use clap::Subcommand;
use hopluu_proto::v1 as pb;

use crate::client::{Target, channel};
use crate::output::{Table, print};

#[derive(Subcommand, Debug)]
pub enum CampaignsCmd {
    Launch {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        theme: String,
        #[arg(long)]
        starts_on: String,
        #[arg(long)]
        ends_on: String,
        /// The scope subtree (the launching unit by default).
        #[arg(long, default_value = "")]
        scope: String,
        #[arg(long)]
        id: Option<String>,
    },
    Show {
        id: String,
    },
    /// Campaigns that cover a unit.
    List {
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// Set a unit's quotas in a campaign.
    Plan {
        id: String,
        #[arg(long)]
        unit: String,
        #[arg(long, default_value_t = 0)]
        initiatives: u32,
        #[arg(long, default_value_t = 0)]
        works: u32,
    },
    Close {
        id: String,
        #[arg(long, default_value = "")]
        on: String,
    },
}

fn campaign_table(cs: &[pb::Campaign]) -> Table {
    let mut t = Table::new(&[
        "id",
        "title",
        "launched by",
        "scope",
        "from",
        "to",
        "status",
        "plans",
    ]);
    for c in cs {
        t.row(vec![
            c.id.clone(),
            c.title.clone(),
            c.launching_unit_id.clone(),
            c.scope_unit_id.clone(),
            c.starts_on.clone(),
            c.ends_on.clone(),
            if c.status == pb::CampaignStatus::Closed as i32 {
                "closed"
            } else {
                "active"
            }
            .into(),
            c.plans.len().to_string(),
        ]);
    }
    t
}

pub async fn run(cmd: CampaignsCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::campaign_service_client::CampaignServiceClient::new(channel(addr).await?);
    let one = |x: pb::Campaign| {
        print(json, &x, "hopluu.v1.Campaign", || {
            campaign_table(std::slice::from_ref(&x))
        })
    };
    match cmd {
        CampaignsCmd::Launch {
            unit,
            title,
            theme,
            starts_on,
            ends_on,
            scope,
            id,
        } => one(c
            .launch_campaign(pb::LaunchCampaignRequest {
                id,
                launching_unit_id: unit,
                title,
                theme,
                starts_on,
                ends_on,
                scope_unit_id: scope,
            })
            .await?
            .into_inner()),
        CampaignsCmd::Show { id } => {
            let x = c
                .get_campaign(pb::GetCampaignRequest { campaign_id: id })
                .await?
                .into_inner();
            print(json, &x, "hopluu.v1.Campaign", || {
                let mut t = campaign_table(std::slice::from_ref(&x));
                for p in &x.plans {
                    t.row(vec![
                        String::new(),
                        format!(
                            "plan {}: {} initiatives, {} works",
                            p.unit_id, p.initiative_quota, p.works_quota
                        ),
                    ]);
                }
                t
            })
        }
        CampaignsCmd::List { unit } => {
            let r = c
                .list_campaigns(pb::ListCampaignsRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListCampaignsResponse", || {
                campaign_table(&r.campaigns)
            })
        }
        CampaignsCmd::Plan {
            id,
            unit,
            initiatives,
            works,
        } => one(c
            .set_plans(pb::SetPlansRequest {
                campaign_id: id,
                plans: vec![pb::Plan {
                    unit_id: unit,
                    initiative_quota: initiatives,
                    works_quota: works,
                }],
            })
            .await?
            .into_inner()),
        CampaignsCmd::Close { id, on } => one(c
            .close_campaign(pb::CloseCampaignRequest {
                campaign_id: id,
                closed_on: on,
            })
            .await?
            .into_inner()),
    }
}
