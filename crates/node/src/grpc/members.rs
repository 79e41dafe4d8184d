//! The `MemberService`: rosters (add, import, update, transfer, end, de-identify, read, find).

use hopluu_model::member::MemberUpdate;
use hopluu_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{R, Services, auth};
use crate::NodeError;
use crate::app::members::Change;
use crate::app::{ImportOutcome, ImportRow};
use crate::convert::records::{self as convert, bad, member_input, opt_date};

#[tonic::async_trait]
impl pb::member_service_server::MemberService for Services {
    async fn add_member(&self, req: Request<pb::AddMemberRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "AddMember")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let input = member_input(r.member)?;
        let m = self.app.add_member(&r.unit_id, &input).await?;
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
        let out = self.app.import_members(&rows).await?;
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
                        .map_err(NodeError::from)?,
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
            .await?;
        Ok(Response::new(convert::member(&m, None)))
    }

    async fn transfer_member(&self, req: Request<pb::TransferMemberRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "TransferMember")?;
        who.writes_member(&self.app, &r.member_id).await?;
        who.writes(&self.app, "to_unit_id", &r.to_unit_id)?;
        let m = self
            .app
            .transfer_member(
                &r.member_id,
                &r.to_unit_id,
                &Change {
                    effective_on: &r.effective_on,
                    reason: &r.reason,
                },
            )
            .await?;
        Ok(Response::new(convert::member(&m, None)))
    }

    async fn end_membership(&self, req: Request<pb::EndMembershipRequest>) -> R<pb::Member> {
        let (who, r) = auth::client(req, "EndMembership")?;
        who.writes_member(&self.app, &r.member_id).await?;
        let status = convert::member_status_from(r.status)
            .ok_or_else(|| bad("status", "expected LEFT or CEASED"))?;
        let m = self
            .app
            .end_membership(
                &r.member_id,
                status,
                &Change {
                    effective_on: &r.effective_on,
                    reason: &r.reason,
                },
            )
            .await?;
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
            .await?;
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
                Ok(card) => self.app.card_member(&card).await?.map(|m| m.to_string()),
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
            .await?;
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
            .await?;
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
        let members = self.app.find_members(&r.query, &scope, r.limit).await?;
        Ok(Response::new(pb::ListMembersResponse {
            total: members.len() as u64,
            members: members.iter().map(|m| convert::member(m, None)).collect(),
        }))
    }
}
