//! The tonic services. Each method checks its caller's role ([`auth`]),
//! converts its request at the edge, calls one [`App`] operation and
//! converts the result; errors go through [`crate::error::to_status`].
//!
//! # Layout
//! - [`auth`]: who may call what (administrators, staff of a unit, nodes),
//!   and how often (each caller's budget of requests).
//! - [`admin`]: the `AdminService` (status, quarantine).
//! - [`convert`]: protobuf <-> domain conversions.

pub mod admin;
pub mod auth;
pub mod conflicts;
pub mod convert;
pub mod docs;
pub mod peers;
pub mod trace;

use std::sync::Arc;

use hopluu_model::Date;
use hopluu_model::campaign::Plan;
use hopluu_model::member::{MemberInput, MemberUpdate};
use hopluu_proto::v1 as pb;
use hopluu_store::StoreError;
use tonic::{Request, Response, Status};

use crate::NodeError;
use crate::app::{App, ImportOutcome, ImportRow};
use crate::error::to_status;

fn st(e: StoreError) -> Status {
    to_status(&NodeError::Store(e))
}

fn bad(field: &str, reason: &str) -> Status {
    st(StoreError::Model(hopluu_model::ModelError::invalid(
        field, reason,
    )))
}

type R<T> = Result<Response<T>, Status>;

fn member_input(m: Option<pb::MemberInput>) -> Result<MemberInput, Status> {
    let m = m.ok_or_else(|| bad("member", "is required"))?;
    Ok(MemberInput {
        full_name: m.full_name,
        birth_date: m.birth_date,
        gender: convert::gender_str(m.gender).to_owned(),
        card_number: m.card_number,
        joined_on: m.joined_on,
        position: m.position,
        national_id: m.national_id,
        ethnicity: m.ethnicity,
        religion: m.religion,
    })
}

fn opt_date(field: &str, s: Option<String>) -> Result<Option<Date>, Status> {
    s.map(|s| Date::parse(field, &s))
        .transpose()
        .map_err(|e| st(e.into()))
}

/// Every service of the public API, sharing one [`App`].
#[derive(Clone, Debug)]
pub struct Services {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl pb::unit_service_server::UnitService for Services {
    async fn create_unit(&self, req: Request<pb::CreateUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "CreateUnit")?;
        who.writes(&self.app, "parent_id", &r.parent_id)?;
        let u = self
            .app
            .create_unit(
                r.id.as_deref(),
                &r.name,
                &r.kind,
                &r.parent_id,
                &r.effective_on,
                &r.decision_no,
            )
            .await
            .map_err(st)?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn rename_unit(&self, req: Request<pb::RenameUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "RenameUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        let u = self
            .app
            .rename_unit(&r.unit_id, &r.name, &r.effective_on, &r.decision_no)
            .await
            .map_err(st)?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn move_unit(&self, req: Request<pb::MoveUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "MoveUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        who.writes(&self.app, "new_parent_id", &r.new_parent_id)?;
        let u = self
            .app
            .move_unit(
                &r.unit_id,
                &r.new_parent_id,
                &r.decided_on,
                &r.effective_on,
                &r.decision_no,
            )
            .await
            .map_err(st)?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn close_unit(&self, req: Request<pb::CloseUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "CloseUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        let u = self
            .app
            .close_unit(
                &r.unit_id,
                &r.reason,
                &r.effective_on,
                &r.decision_no,
                &r.successor_ids,
                r.merged,
            )
            .await
            .map_err(st)?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn get_unit(&self, req: Request<pb::GetUnitRequest>) -> R<pb::Unit> {
        let (_, r) = auth::client(req, "GetUnit")?;
        let (u, depth) = self.app.get_unit(&r.unit_id).await.map_err(st)?;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn list_units(&self, req: Request<pb::ListUnitsRequest>) -> R<pb::ListUnitsResponse> {
        let (_, r) = auth::client(req, "ListUnits")?;
        let rows = self
            .app
            .list_units(&r.root_id, r.include_closed, r.max_depth)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListUnitsResponse {
            units: rows.iter().map(convert::unit_row).collect(),
        }))
    }

    async fn list_unit_kinds(
        &self,
        req: Request<pb::ListUnitKindsRequest>,
    ) -> R<pb::ListUnitKindsResponse> {
        auth::client(req, "ListUnitKinds")?;
        Ok(Response::new(pb::ListUnitKindsResponse {
            kinds: self
                .app
                .kinds
                .all()
                .iter()
                .map(|k| pb::UnitKind {
                    id: k.id.to_string(),
                    label: k.label.clone(),
                    holds_members: k.holds_members,
                })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl pb::member_service_server::MemberService for Services {
    async fn add_member(&self, req: Request<pb::AddMemberRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "AddMember")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let input = member_input(r.member)?;
        let m = self.app.add_member(&r.unit_id, &input).await.map_err(st)?;
        Ok(Response::new(convert::member(&m, None)))
    }

    async fn import_members(
        &self,
        req: Request<pb::ImportMembersRequest>,
    ) -> R<pb::ImportMembersResponse> {
        let (who, r) = auth::client(req, "ImportMembers")?;
        who.writes_rows(&self.app, r.rows.iter().map(|row| row.unit_id.as_str()))?;
        let rows = r
            .rows
            .into_iter()
            .map(|r| {
                Ok(ImportRow {
                    line: r.line,
                    unit: r.unit_id,
                    member: member_input(r.member)?,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        if rows.len() > 5000 {
            return Err(bad("rows", "at most 5000 rows per request"));
        }
        let out = self.app.import_members(&rows).await.map_err(st)?;
        let results = out
            .into_iter()
            .map(|(line, o)| {
                let (outcome, id, errors) = match o {
                    ImportOutcome::Created(id) => {
                        (pb::ImportOutcome::Created, id.to_string(), vec![])
                    }
                    ImportOutcome::Updated(id) => {
                        (pb::ImportOutcome::Updated, id.to_string(), vec![])
                    }
                    ImportOutcome::Unchanged(id) => {
                        (pb::ImportOutcome::Unchanged, id.to_string(), vec![])
                    }
                    ImportOutcome::Rejected(errs) => (
                        pb::ImportOutcome::Rejected,
                        String::new(),
                        errs.iter()
                            .map(|e| match e {
                                hopluu_model::ModelError::Invalid { field, reason }
                                | hopluu_model::ModelError::Precondition { field, reason } => {
                                    pb::FieldError {
                                        field: field.clone(),
                                        reason: reason.clone(),
                                    }
                                }
                                other => pb::FieldError {
                                    field: String::new(),
                                    reason: other.to_string(),
                                },
                            })
                            .collect(),
                    ),
                };
                pb::ImportResult {
                    line,
                    outcome: outcome as i32,
                    member_id: id,
                    errors,
                }
            })
            .collect();
        Ok(Response::new(pb::ImportMembersResponse { results }))
    }

    async fn update_member(&self, req: Request<pb::UpdateMemberRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "UpdateMember")?;
        who.writes_member(&self.app, &r.member_id).await?;
        let upd = MemberUpdate {
            full_name: r.full_name,
            birth_date: opt_date("birth_date", r.birth_date)?,
            gender: match r.gender {
                None => None,
                Some(g) => Some(
                    hopluu_model::member::Gender::parse("gender", convert::gender_str(g))
                        .map_err(|e| st(e.into()))?,
                ),
            },
            position: r.position,
            joined_on: opt_date("joined_on", r.joined_on)?,
        };
        let m = self
            .app
            .update_member(
                &r.member_id,
                upd,
                r.national_id.as_deref(),
                r.ethnicity.as_deref(),
                r.religion.as_deref(),
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::member(&m, None)))
    }

    async fn transfer_member(&self, req: Request<pb::TransferMemberRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "TransferMember")?;
        who.writes_member(&self.app, &r.member_id).await?;
        who.writes(&self.app, "to_unit_id", &r.to_unit_id)?;
        let m = self
            .app
            .transfer_member(&r.member_id, &r.to_unit_id, &r.effective_on, &r.reason)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::member(&m, None)))
    }

    async fn end_membership(&self, req: Request<pb::EndMembershipRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "EndMembership")?;
        who.writes_member(&self.app, &r.member_id).await?;
        let status = convert::member_status_from(r.status)
            .ok_or_else(|| bad("status", "expected LEFT or CEASED"))?;
        let m = self
            .app
            .end_membership(&r.member_id, status, &r.reason, &r.effective_on)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::member(&m, None)))
    }

    async fn get_member(&self, req: Request<pb::GetMemberRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "GetMember")?;
        let (id, card) = match r.key {
            Some(pb::get_member_request::Key::MemberId(id)) => (Some(id), None),
            Some(pb::get_member_request::Key::CardNumber(c)) => (None, Some(c)),
            None => (None, None),
        };
        let (m, p) = self
            .app
            .get_member(id.as_deref(), card.as_deref(), r.include_private)
            .await
            .map_err(st)?;
        who.reads_found(&self.app, &m.unit, "member")?;
        Ok(Response::new(convert::member(&m, p.as_ref())))
    }

    async fn deidentify_member(
        &self,
        req: Request<pb::DeidentifyMemberRequest>,
    ) -> R<pb::DeidentifyMemberResponse> {
        let (who, r) = auth::client(req, "DeidentifyMember")?;
        let (id, card) = match r.key {
            Some(pb::deidentify_member_request::Key::MemberId(id)) => (Some(id), None),
            Some(pb::deidentify_member_request::Key::CardNumber(c)) => (None, Some(c)),
            None => (None, None),
        };
        // The caller must be allowed to write the member's records (those
        // of the unit a card names, when the card names one member).
        let member = match (&id, &card) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(card)) => match hopluu_model::CardNumber::parse("card_number", card) {
                Ok(card) => {
                    let mut ids: Vec<String> = self
                        .app
                        .store
                        .card_records(&card)
                        .await
                        .map_err(st)?
                        .into_iter()
                        .map(|l| l.member.to_string())
                        .collect();
                    ids.dedup();
                    (ids.len() == 1).then(|| ids.remove(0))
                }
                Err(_) => None,
            },
            (None, None) => None,
        };
        if let Some(m) = member {
            who.writes_member(&self.app, &m).await?;
        }
        let d = self
            .app
            .deidentify_member(
                id.as_deref(),
                card.as_deref(),
                &who.identity.to_string(),
                &r.reason,
                &r.reference,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(pb::DeidentifyMemberResponse {
            member: Some(convert::member(&d.member, None)),
            unit_ids: d.units.iter().map(ToString::to_string).collect(),
            units_elsewhere: d.units_elsewhere.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn list_members(
        &self,
        req: Request<pb::ListMembersRequest>,
    ) -> R<pb::ListMembersResponse> {
        let (who, r) = auth::client(req, "ListMembers")?;
        who.reads(&self.app, "unit_id", &r.unit_id)?;
        let status = match r.status {
            None => None,
            Some(s) => Some(
                convert::member_status_from(s)
                    .ok_or_else(|| bad("status", "unknown member status"))?,
            ),
        };
        let (members, total) = self
            .app
            .list_members(&r.unit_id, r.include_subtree, status, r.limit, r.offset)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListMembersResponse {
            members: members.iter().map(|m| convert::member(m, None)).collect(),
            total,
        }))
    }

    async fn find_members(
        &self,
        req: Request<pb::FindMembersRequest>,
    ) -> R<pb::ListMembersResponse> {
        let (who, r) = auth::client(req, "FindMembers")?;
        let scope = who.or_own(r.scope_unit_id);
        if !scope.trim().is_empty() {
            who.reads(&self.app, "scope_unit_id", &scope)?;
        }
        let members = self
            .app
            .find_members(&r.query, &scope, r.limit)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListMembersResponse {
            total: members.len() as u64,
            members: members.iter().map(|m| convert::member(m, None)).collect(),
        }))
    }
}

#[tonic::async_trait]
impl pb::campaign_service_server::CampaignService for Services {
    async fn launch_campaign(&self, req: Request<pb::LaunchCampaignRequest>) -> R<pb::Campaign> {
        let (who, r) = auth::client(req, "LaunchCampaign")?;
        who.writes(&self.app, "launching_unit_id", &r.launching_unit_id)?;
        let c = self
            .app
            .launch_campaign(
                r.id.as_deref(),
                &r.launching_unit_id,
                &r.title,
                &r.theme,
                &r.starts_on,
                &r.ends_on,
                &r.scope_unit_id,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::campaign(&c)))
    }

    async fn get_campaign(&self, req: Request<pb::GetCampaignRequest>) -> R<pb::Campaign> {
        let (_, r) = auth::client(req, "GetCampaign")?;
        let c = self.app.get_campaign(&r.campaign_id).await.map_err(st)?;
        Ok(Response::new(convert::campaign(&c)))
    }

    async fn list_campaigns(
        &self,
        req: Request<pb::ListCampaignsRequest>,
    ) -> R<pb::ListCampaignsResponse> {
        let (who, r) = auth::client(req, "ListCampaigns")?;
        let cs = self
            .app
            .list_campaigns(&who.or_own(r.unit_id))
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListCampaignsResponse {
            campaigns: cs.iter().map(convert::campaign).collect(),
        }))
    }

    async fn set_plans(&self, req: Request<pb::SetPlansRequest>) -> R<pb::Campaign> {
        let (who, r) = auth::client(req, "SetPlans")?;
        who.writes_campaign(&self.app, &r.campaign_id).await?;
        let plans: Vec<(String, Plan)> = r
            .plans
            .into_iter()
            .map(|p| {
                (
                    p.unit_id,
                    Plan {
                        initiative_quota: p.initiative_quota,
                        works_quota: p.works_quota,
                    },
                )
            })
            .collect();
        let c = self
            .app
            .set_plans(&r.campaign_id, &plans)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::campaign(&c)))
    }

    async fn close_campaign(&self, req: Request<pb::CloseCampaignRequest>) -> R<pb::Campaign> {
        let (who, r) = auth::client(req, "CloseCampaign")?;
        who.writes_campaign(&self.app, &r.campaign_id).await?;
        let c = self
            .app
            .close_campaign(&r.campaign_id, &r.closed_on)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::campaign(&c)))
    }
}

#[tonic::async_trait]
impl pb::emulation_service_server::EmulationService for Services {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> R<pb::Emulation> {
        let (who, r) = auth::client(req, "Register")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let e = self
            .app
            .register(&r.unit_id, &r.campaign_id, &r.registered_on, &r.pledge)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::emulation(&e)))
    }

    async fn record_initiative(
        &self,
        req: Request<pb::RecordInitiativeRequest>,
    ) -> R<pb::Initiative> {
        let (who, r) = auth::client(req, "RecordInitiative")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let i = self
            .app
            .record_initiative(
                &r.unit_id,
                &r.campaign_id,
                &r.title,
                &r.authors,
                r.value_vnd,
                &r.submitted_on,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::initiative(&i)))
    }

    async fn set_initiative_status(
        &self,
        req: Request<pb::SetInitiativeStatusRequest>,
    ) -> R<pb::Initiative> {
        let (who, r) = auth::client(req, "SetInitiativeStatus")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let status = convert::initiative_status_from(r.status).ok_or_else(|| {
            bad(
                "status",
                "expected SUBMITTED, UNDER_REVIEW, VALID, REJECTED or RECOGNISED",
            )
        })?;
        let i = self
            .app
            .set_initiative_status(
                &r.unit_id,
                &r.campaign_id,
                &r.initiative_id,
                status,
                &r.recognised_level,
                &r.note,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::initiative(&i)))
    }

    async fn record_work(&self, req: Request<pb::RecordWorkRequest>) -> R<pb::Work> {
        let (who, r) = auth::client(req, "RecordWork")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let w = self
            .app
            .record_work(
                &r.unit_id,
                &r.campaign_id,
                &r.name,
                r.value_vnd,
                r.plaque,
                &r.completed_on,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::work(&w)))
    }

    async fn get_emulation(&self, req: Request<pb::GetEmulationRequest>) -> R<pb::Emulation> {
        let (who, r) = auth::client(req, "GetEmulation")?;
        who.reads(&self.app, "unit_id", &r.unit_id)?;
        let e = self
            .app
            .get_emulation(&r.unit_id, &r.campaign_id)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::emulation(&e)))
    }
}

#[tonic::async_trait]
impl pb::award_service_server::AwardService for Services {
    async fn list_award_types(
        &self,
        req: Request<pb::ListAwardTypesRequest>,
    ) -> R<pb::ListAwardTypesResponse> {
        auth::client(req, "ListAwardTypes")?;
        Ok(Response::new(pb::ListAwardTypesResponse {
            types: self
                .app
                .awards
                .all()
                .iter()
                .map(|t| pb::AwardType {
                    id: t.id.to_string(),
                    name: t.name.clone(),
                    kind: convert::recipient_kind(t.recipient) as i32,
                    min_granting_level: t
                        .granting_kinds
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    granting_kinds: t.granting_kinds.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        }))
    }

    async fn propose_award(&self, req: Request<pb::ProposeAwardRequest>) -> R<pb::Proposal> {
        let (who, r) = auth::client(req, "ProposeAward")?;
        who.writes(&self.app, "proposing_unit_id", &r.proposing_unit_id)?;
        let candidates: Vec<_> = r.candidates.iter().map(convert::raw_recipient).collect();
        let p = self
            .app
            .propose_award(
                &r.proposing_unit_id,
                &r.addressed_unit_id,
                &r.award_type,
                r.campaign_id.as_deref(),
                &candidates,
                &r.reason,
                &r.proposed_on,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::proposal(&p)))
    }

    async fn list_proposals(
        &self,
        req: Request<pb::ListProposalsRequest>,
    ) -> R<pb::ListProposalsResponse> {
        let (who, r) = auth::client(req, "ListProposals")?;
        let unit = who.or_own(r.unit_id);
        who.reads(&self.app, "unit_id", &unit)?;
        let ps = self.app.list_proposals(&unit).await.map_err(st)?;
        Ok(Response::new(pb::ListProposalsResponse {
            proposals: ps.iter().map(convert::proposal).collect(),
        }))
    }

    async fn decide_award(&self, req: Request<pb::DecideAwardRequest>) -> R<pb::Award> {
        let (who, r) = auth::client(req, "DecideAward")?;
        who.writes(&self.app, "issuing_unit_id", &r.issuing_unit_id)?;
        who.writes_proposal(&self.app, r.proposal_id.as_deref())
            .await?;
        let recipients: Vec<_> = r.recipients.iter().map(convert::raw_recipient).collect();
        let a = self
            .app
            .decide_award(
                &r.issuing_unit_id,
                &r.decision_no,
                &r.decided_on,
                &r.effective_on,
                &r.award_type,
                &recipients,
                r.campaign_id.as_deref(),
                r.proposal_id.as_deref(),
                &r.reason,
            )
            .await
            .map_err(st)?;
        Ok(Response::new(convert::award(&a)))
    }

    async fn revoke_award(&self, req: Request<pb::RevokeAwardRequest>) -> R<pb::Award> {
        let (who, r) = auth::client(req, "RevokeAward")?;
        who.writes_award(&self.app, &r.award_id).await?;
        let a = self
            .app
            .revoke_award(&r.award_id, &r.revoked_on, &r.reason)
            .await
            .map_err(st)?;
        Ok(Response::new(convert::award(&a)))
    }

    async fn list_awards(&self, req: Request<pb::ListAwardsRequest>) -> R<pb::ListAwardsResponse> {
        let (who, r) = auth::client(req, "ListAwards")?;
        let unit = who.or_own(r.unit_id);
        who.reads(&self.app, "unit_id", &unit)?;
        let a = self.app.list_awards(&unit, r.year).await.map_err(st)?;
        Ok(Response::new(pb::ListAwardsResponse {
            awards: a.iter().map(convert::award).collect(),
        }))
    }
}

impl Services {
    /// The unit a report is of: the request's, else the staff member's own
    /// unit, else the node's; the caller must be allowed to read it.
    fn report_unit(
        &self,
        who: &auth::Caller,
        unit: String,
    ) -> Result<hopluu_model::UnitId, Status> {
        let unit = who.or_own(unit);
        if !unit.trim().is_empty() {
            who.reads(&self.app, "unit_id", &unit)?;
        }
        let id = if unit.trim().is_empty() {
            self.app.unit.clone()
        } else {
            hopluu_model::UnitId::parse("unit_id", &unit).map_err(|e| st(e.into()))?
        };
        // Reports may be asked of closed units too: their history stays.
        if self.app.tree().contains(&id) {
            Ok(id)
        } else {
            Err(st(hopluu_model::ModelError::not_found("unit", &id).into()))
        }
    }
}

fn members_row(r: &hopluu_store::report::MembersRow) -> pb::MembersRow {
    pb::MembersRow {
        unit_id: r.unit_id.clone(),
        unit_name: r.unit_name.clone(),
        total: r.total,
        active: r.active,
        transferred: r.transferred,
        left: r.left,
        ceased: r.ceased,
        male: r.male,
        female: r.female,
        other_gender: r.other_gender,
    }
}

fn initiatives_row(r: &hopluu_store::report::InitiativesRow) -> pb::InitiativesRow {
    pb::InitiativesRow {
        unit_id: r.unit_id.clone(),
        unit_name: r.unit_name.clone(),
        recorded: r.recorded,
        valid: r.valid,
        plan: r.plan,
        percent_of_plan: r.percent_of_plan,
        rank: r.rank,
    }
}

fn works_row(r: &hopluu_store::report::WorksRow) -> pb::WorksRow {
    pb::WorksRow {
        unit_id: r.unit_id.clone(),
        unit_name: r.unit_name.clone(),
        count: r.count,
        value_vnd: r.value_vnd,
        plaques: r.plaques,
    }
}

#[tonic::async_trait]
impl pb::report_service_server::ReportService for Services {
    async fn members_report(
        &self,
        req: Request<pb::MembersReportRequest>,
    ) -> R<pb::MembersReportResponse> {
        let (who, r) = auth::client(req, "MembersReport")?;
        let unit = self.report_unit(&who, r.unit_id)?;
        let (rows, total) = self.app.store.members_report(&unit).await.map_err(st)?;
        Ok(Response::new(pb::MembersReportResponse {
            rows: rows.iter().map(members_row).collect(),
            total: Some(members_row(&total)),
        }))
    }

    async fn initiatives_report(
        &self,
        req: Request<pb::InitiativesReportRequest>,
    ) -> R<pb::InitiativesReportResponse> {
        let (who, r) = auth::client(req, "InitiativesReport")?;
        let unit = self.report_unit(&who, r.unit_id)?;
        let c = self.app.get_campaign(&r.campaign_id).await.map_err(st)?;
        let (rows, total) = self
            .app
            .store
            .initiatives_report(&c.id, &unit)
            .await
            .map_err(st)?;
        Ok(Response::new(pb::InitiativesReportResponse {
            rows: rows.iter().map(initiatives_row).collect(),
            total: Some(initiatives_row(&total)),
        }))
    }

    async fn awards_report(
        &self,
        req: Request<pb::AwardsReportRequest>,
    ) -> R<pb::AwardsReportResponse> {
        let (who, r) = auth::client(req, "AwardsReport")?;
        let unit = self.report_unit(&who, r.unit_id.clone())?;
        let rows = self
            .app
            .store
            .awards_report(&unit, r.year)
            .await
            .map_err(st)?;
        let name = |t: &str| {
            self.app
                .awards
                .get(t)
                .map(|a| a.name.clone())
                .unwrap_or_default()
        };
        let total: u64 = rows.iter().map(|r| r.count).sum();
        Ok(Response::new(pb::AwardsReportResponse {
            rows: rows
                .iter()
                .map(|r| pb::AwardsRow {
                    award_type: r.award_type.clone(),
                    award_name: name(&r.award_type),
                    level: r.level.clone(),
                    year: r.year,
                    count: r.count,
                })
                .collect(),
            total: Some(pb::AwardsRow {
                award_type: String::new(),
                award_name: "Tổng cộng".to_owned(),
                level: String::new(),
                year: r.year.unwrap_or(0),
                count: total,
            }),
        }))
    }

    async fn works_report(
        &self,
        req: Request<pb::WorksReportRequest>,
    ) -> R<pb::WorksReportResponse> {
        let (who, r) = auth::client(req, "WorksReport")?;
        let unit = self.report_unit(&who, r.unit_id.clone())?;
        let campaign = match r.campaign_id.as_deref().filter(|c| !c.trim().is_empty()) {
            None => None,
            Some(c) => Some(self.app.get_campaign(c).await.map_err(st)?.id),
        };
        let (rows, total) = self
            .app
            .store
            .works_report(&unit, campaign.as_ref())
            .await
            .map_err(st)?;
        Ok(Response::new(pb::WorksReportResponse {
            rows: rows.iter().map(works_row).collect(),
            total: Some(works_row(&total)),
        }))
    }
}

#[tonic::async_trait]
impl pb::node_service_server::NodeService for Services {
    async fn get_node_info(&self, req: Request<pb::GetNodeInfoRequest>) -> R<pb::NodeInfo> {
        // Any certificate: peers and monitors check a node's id and version.
        auth::anyone(req, "GetNodeInfo")?;
        let app = &self.app;
        let unit_name = app
            .tree()
            .get(&app.unit)
            .map(|n| n.name.clone())
            .unwrap_or_default();
        Ok(Response::new(pb::NodeInfo {
            node_id: app.node_id.clone(),
            unit_id: app.unit.to_string(),
            unit_name,
            database: app.store.backend().as_str().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            feed_position: app.store.feed_position().await.map_err(st)?.max(0) as u64,
            documents: app.store.doc_count().await.map_err(st)?.max(0) as u64,
            uptime_seconds: app.uptime_seconds(),
        }))
    }
}
