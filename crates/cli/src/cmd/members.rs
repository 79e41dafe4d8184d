//! `hopluu members`: add, update, transfer, end, show, list, find and
//! de-identify members.

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use hopluu_proto::v1 as pb;

use crate::client::{Target, channel};
use crate::output::{Table, kv, print};

#[derive(Args, Debug, Clone)]
pub struct MemberFields {
    #[arg(long)]
    name: String,
    /// YYYY-MM-DD
    #[arg(long)]
    birth_date: String,
    #[arg(long, value_enum)]
    gender: GenderArg,
    #[arg(long)]
    card: String,
    /// YYYY-MM-DD
    #[arg(long)]
    joined_on: String,
    #[arg(long, default_value = "")]
    position: String,
    /// 12-digit CCCD (kept in the private roster).
    #[arg(long, default_value = "")]
    national_id: String,
    #[arg(long, default_value = "")]
    ethnicity: String,
    #[arg(long, default_value = "")]
    religion: String,
}

impl MemberFields {
    fn input(self) -> pb::MemberInput {
        pb::MemberInput {
            full_name: self.name,
            birth_date: self.birth_date,
            gender: self.gender.pb() as i32,
            card_number: self.card,
            joined_on: self.joined_on,
            position: self.position,
            national_id: self.national_id,
            ethnicity: self.ethnicity,
            religion: self.religion,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum GenderArg {
    Male,
    Female,
    Other,
}

impl GenderArg {
    fn pb(self) -> pb::Gender {
        match self {
            GenderArg::Male => pb::Gender::Male,
            GenderArg::Female => pb::Gender::Female,
            GenderArg::Other => pb::Gender::Other,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StatusArg {
    Active,
    Transferred,
    Left,
    Ceased,
}

impl StatusArg {
    fn pb(self) -> pb::MemberStatus {
        match self {
            StatusArg::Active => pb::MemberStatus::Active,
            StatusArg::Transferred => pb::MemberStatus::Transferred,
            StatusArg::Left => pb::MemberStatus::Left,
            StatusArg::Ceased => pb::MemberStatus::Ceased,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum MembersCmd {
    Add {
        #[arg(long)]
        unit: String,
        #[command(flatten)]
        fields: MemberFields,
    },
    /// A member by id, or by --card.
    Show {
        id: Option<String>,
        #[arg(long)]
        card: Option<String>,
        /// Include CCCD, ethnicity and religion (where this node holds them).
        #[arg(long)]
        private: bool,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        birth_date: Option<String>,
        #[arg(long, value_enum)]
        gender: Option<GenderArg>,
        #[arg(long)]
        position: Option<String>,
        #[arg(long)]
        joined_on: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        #[arg(long)]
        ethnicity: Option<String>,
        #[arg(long)]
        religion: Option<String>,
    },
    Transfer {
        id: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        on: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a membership: left, or ceased (with a reason).
    End {
        id: String,
        #[arg(long, value_enum)]
        status: StatusArg,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long, default_value = "")]
        on: String,
    },
    List {
        #[arg(long)]
        unit: String,
        /// Include the unit's whole subtree.
        #[arg(long)]
        subtree: bool,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Search by name (diacritics optional) or card number.
    Find {
        query: String,
        #[arg(long, default_value = "")]
        scope: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// De-identify a member on request (Law 91/2025): removes their CCCD,
    /// ethnicity and religion, and the name, birth date, position and
    /// reasons of every record this node holds; keeps unit, gender, card
    /// number and membership dates; records the request. Run it at the
    /// member's province node or below (a node that holds personal data).
    /// Earlier values stay in the documents' change history.
    Deidentify {
        /// The member's card number (or --id).
        #[arg(required_unless_present = "id")]
        card: Option<String>,
        /// The member id instead of a card number.
        #[arg(long, conflicts_with = "card")]
        id: Option<String>,
        /// Why: the member's request, a decision. Kept and replicated with
        /// the record: do not repeat the member's personal data here.
        #[arg(long)]
        reason: String,
        /// The request's document number.
        #[arg(long, default_value = "")]
        reference: String,
    },
}

fn member_status(s: i32) -> &'static str {
    match pb::MemberStatus::try_from(s) {
        Ok(pb::MemberStatus::Active) => "active",
        Ok(pb::MemberStatus::Transferred) => "transferred",
        Ok(pb::MemberStatus::Left) => "left",
        Ok(pb::MemberStatus::Ceased) => "ceased",
        _ => "?",
    }
}

fn gender(g: i32) -> &'static str {
    match pb::Gender::try_from(g) {
        Ok(pb::Gender::Male) => "nam",
        Ok(pb::Gender::Female) => "nữ",
        Ok(pb::Gender::Other) => "khác",
        _ => "?",
    }
}

fn member_table(ms: &[pb::Member]) -> Table {
    let mut t = Table::new(&[
        "id", "unit", "name", "born", "gender", "card", "joined", "position", "status",
    ]);
    for m in ms {
        t.row(vec![
            m.id.clone(),
            m.unit_id.clone(),
            m.full_name.clone(),
            m.birth_date.clone(),
            gender(m.gender).into(),
            m.card_number.clone(),
            m.joined_on.clone(),
            m.position.clone(),
            member_status(m.status).into(),
        ]);
    }
    t
}

fn member_detail(m: &pb::Member) -> Table {
    let mut pairs = vec![
        ("id", m.id.clone()),
        ("unit", m.unit_id.clone()),
        ("name", m.full_name.clone()),
        ("birth date", m.birth_date.clone()),
        ("gender", gender(m.gender).into()),
        ("card", m.card_number.clone()),
        ("joined on", m.joined_on.clone()),
        ("position", m.position.clone()),
        (
            "status",
            format!(
                "{} {} {}",
                member_status(m.status),
                m.status_on,
                m.status_reason
            )
            .trim()
            .to_owned(),
        ),
    ];
    if let Some(p) = &m.private {
        pairs.push(("CCCD", p.national_id.clone()));
        pairs.push(("ethnicity", p.ethnicity.clone()));
        pairs.push(("religion", p.religion.clone()));
    }
    if let Some(d) = &m.deidentified {
        pairs.push((
            "de-identified",
            format!(
                "{} by {} ({}): {} {}",
                d.at, d.by, d.operator, d.reason, d.reference
            )
            .trim()
            .to_owned(),
        ));
    }
    for e in &m.history {
        pairs.push((
            "history",
            format!("{} {} {} {}", e.on, e.kind, e.other_unit_id, e.reason)
                .trim()
                .to_owned(),
        ));
    }
    kv(&pairs)
}

pub async fn run(cmd: MembersCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::member_service_client::MemberServiceClient::new(channel(addr).await?);
    let one = |m: pb::Member| print(json, &m, "hopluu.v1.Member", || member_detail(&m));
    let list = |r: pb::ListMembersResponse| {
        print(json, &r, "hopluu.v1.ListMembersResponse", || {
            let mut t = member_table(&r.members);
            t.row(vec![format!("({} of {})", r.members.len(), r.total)]);
            t
        })
    };
    match cmd {
        MembersCmd::Add { unit, fields } => one(c
            .add_member(pb::AddMemberRequest {
                unit_id: unit,
                member: Some(fields.input()),
            })
            .await?
            .into_inner()),
        MembersCmd::Show { id, card, private } => {
            let key = match (id, card) {
                (Some(id), None) => pb::get_member_request::Key::MemberId(id),
                (None, Some(card)) => pb::get_member_request::Key::CardNumber(card),
                _ => bail!("give a member id or --card, not both"),
            };
            one(c
                .get_member(pb::GetMemberRequest {
                    key: Some(key),
                    include_private: private,
                })
                .await?
                .into_inner())
        }
        MembersCmd::Update {
            id,
            name,
            birth_date,
            gender,
            position,
            joined_on,
            national_id,
            ethnicity,
            religion,
        } => one(c
            .update_member(pb::UpdateMemberRequest {
                member_id: id,
                full_name: name,
                birth_date,
                gender: gender.map(|g| g.pb() as i32),
                position,
                joined_on,
                national_id,
                ethnicity,
                religion,
            })
            .await?
            .into_inner()),
        MembersCmd::Transfer { id, to, on, reason } => one(c
            .transfer_member(pb::TransferMemberRequest {
                member_id: id,
                to_unit_id: to,
                effective_on: on,
                reason,
            })
            .await?
            .into_inner()),
        MembersCmd::End {
            id,
            status,
            reason,
            on,
        } => one(c
            .end_membership(pb::EndMembershipRequest {
                member_id: id,
                status: status.pb() as i32,
                reason,
                effective_on: on,
            })
            .await?
            .into_inner()),
        MembersCmd::List {
            unit,
            subtree,
            status,
            limit,
            offset,
        } => list(
            c.list_members(pb::ListMembersRequest {
                unit_id: unit,
                include_subtree: subtree,
                status: status.map(|s| s.pb() as i32),
                limit,
                offset,
            })
            .await?
            .into_inner(),
        ),
        MembersCmd::Find {
            query,
            scope,
            limit,
        } => list(
            c.find_members(pb::FindMembersRequest {
                query,
                scope_unit_id: scope,
                limit,
            })
            .await?
            .into_inner(),
        ),
        MembersCmd::Deidentify {
            card,
            id,
            reason,
            reference,
        } => {
            let key = match (id, card) {
                (Some(id), None) => pb::deidentify_member_request::Key::MemberId(id),
                (None, Some(card)) => pb::deidentify_member_request::Key::CardNumber(card),
                _ => bail!("give a card number or --id, not both"),
            };
            let r = c
                .deidentify_member(pb::DeidentifyMemberRequest {
                    key: Some(key),
                    reason,
                    reference,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.DeidentifyMemberResponse", || {
                let mut t = r.member.as_ref().map_or_else(|| kv(&[]), member_detail);
                t.row(vec!["changed here".into(), r.unit_ids.join(", ")]);
                if !r.units_elsewhere.is_empty() {
                    t.row(vec![
                        "not changed".into(),
                        format!(
                            "{}: held outside this node's subtree; de-identify there too",
                            r.units_elsewhere.join(", ")
                        ),
                    ]);
                }
                t
            })
        }
    }
}
