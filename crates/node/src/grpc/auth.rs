//! Who may call what: the roles of the client API, in one place.
//!
//! The caller is read from the request's client certificate
//! ([`Identity::of`]); the [`App`] never sees it. Every RPC starts with one
//! of [`client`], [`anyone`] or [`admin`], then states what it touches
//! ([`Caller::writes`], [`Caller::reads`], …); the checks are no-ops for an
//! administrator, so the App's own rules (the node's authority, validation)
//! answer as before.
//!
//! | caller | may |
//! |---|---|
//! | administrator | everything, including the `AdminService` |
//! | staff of unit U | write records owned inside U's subtree (the node's own authority rule, [`hopluu_model::UnitTree::has_authority`], with U for the node's unit); read rosters, members, emulation records, proposals, awards and reports inside it; read the unit tree, unit kinds, campaigns, the award catalogue and node info |
//! | a node | replication and node info only: node certificates are for peers, not for the client API |
//! | nobody (`--insecure-plaintext`, development) | as an administrator |
//!
//! A denied request is `PERMISSION_DENIED` with a message naming the
//! operation and the units, and a `warn` log line with the caller's
//! identity, the RPC and the unit ids; never member names or CCCD numbers.
//! Nothing is written before the check.

use hopluu_model::{AwardId, CampaignId, MemberId, ProposalId, UnitId};
use tonic::{Request, Status};

use crate::NodeError;
use crate::app::App;
use crate::error::to_status;
use crate::tls::Identity;

/// The caller of one RPC.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// The RPC's name, e.g. `AddMember`, for messages and logs.
    pub rpc: &'static str,
}

/// What a staff member is about to do with a unit's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl Access {
    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

fn identity<T>(req: &Request<T>, rpc: &'static str) -> Result<Identity, Status> {
    Identity::of(req).map_err(|e| {
        tracing::warn!(rpc, remote = ?req.remote_addr(), error = %e, "request refused: no identity");
        Status::unauthenticated(format!("certificate: {e}"))
    })
}

/// A caller of the client API: an administrator, staff, or anyone on a
/// plaintext node. A node's certificate is refused.
pub fn client<T>(req: Request<T>, rpc: &'static str) -> Result<(Caller, T), Status> {
    let identity = identity(&req, rpc)?;
    let caller = Caller { identity, rpc };
    if let Identity::Node { node_id, unit } = &caller.identity {
        tracing::warn!(caller = %caller.identity, rpc, "permission denied: a node certificate on the client API");
        return Err(denied(format!(
            "{rpc}: the certificate of node {node_id} (unit {unit}) is for replication only; \
             the client API takes an administrator's or a staff member's certificate"
        )));
    }
    Ok((caller, req.into_inner()))
}

/// Any authenticated caller, nodes included (node info).
pub fn anyone<T>(req: Request<T>, rpc: &'static str) -> Result<(Caller, T), Status> {
    let identity = identity(&req, rpc)?;
    Ok((Caller { identity, rpc }, req.into_inner()))
}

/// An administrator (or anyone on a plaintext node): the admin service.
pub fn admin<T>(req: Request<T>, rpc: &'static str) -> Result<(Caller, T), Status> {
    let identity = identity(&req, rpc)?;
    let caller = Caller { identity, rpc };
    if !caller.is_admin() {
        tracing::warn!(caller = %caller.identity, rpc, "permission denied: not an administrator");
        return Err(denied(format!(
            "{rpc}: only administrators may use the admin service, and this is {}",
            caller.role()
        )));
    }
    Ok((caller, req.into_inner()))
}

fn denied(message: String) -> Status {
    to_status(&NodeError::Denied(message))
}

fn invalid(e: hopluu_model::ModelError) -> Status {
    to_status(&NodeError::from(e))
}

impl Caller {
    /// Administrators, and everyone on a plaintext node, may do anything.
    pub fn is_admin(&self) -> bool {
        matches!(self.identity, Identity::Admin { .. } | Identity::Insecure)
    }

    /// The unit a staff member works on; `None` for everyone else.
    pub fn staff_unit(&self) -> Option<&UnitId> {
        match &self.identity {
            Identity::Staff { unit, .. } => Some(unit),
            _ => None,
        }
    }

    /// The caller's role, without the account name (for messages).
    fn role(&self) -> String {
        match &self.identity {
            Identity::Admin { .. } => "an administrator".to_owned(),
            Identity::Staff { unit, .. } => format!("staff of unit {unit}"),
            Identity::Node { node_id, .. } => format!("node {node_id}"),
            Identity::Insecure => "an unauthenticated caller".to_owned(),
        }
    }

    /// For staff, an omitted unit (`""`) means their own unit rather than
    /// the node's; for everyone else the request is left as it is.
    pub fn or_own(&self, unit: String) -> String {
        match self.staff_unit() {
            Some(own) if unit.trim().is_empty() => own.to_string(),
            _ => unit,
        }
    }

    /// The caller writes records owned by `unit` (the request's `field`).
    pub fn writes(&self, app: &App, field: &str, unit: &str) -> Result<(), Status> {
        self.check_str(app, Access::Write, field, unit)
    }

    /// The caller reads records of `unit` (rosters, members, emulation,
    /// proposals, awards, reports).
    pub fn reads(&self, app: &App, field: &str, unit: &str) -> Result<(), Status> {
        self.check_str(app, Access::Read, field, unit)
    }

    /// The caller reads a record that turned out to belong to `unit` (a
    /// member found by id or card): the message does not say which unit.
    pub fn reads_found(&self, app: &App, unit: &UnitId, what: &str) -> Result<(), Status> {
        self.check_hidden(app, Access::Read, unit, what)
    }

    /// The caller changes the record of unit `unit` (rename, move, close):
    /// it is owned by the unit's parent, which decides it.
    pub fn writes_unit_record(&self, app: &App, field: &str, unit: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = UnitId::parse(field, unit).map_err(invalid)?;
        let owner = app
            .tree()
            .get(&id)
            .map(|n| n.parent.clone().unwrap_or_else(|| id.clone()));
        match owner {
            // An unknown unit is outside every staff member's subtree.
            None => self.check(app, Access::Write, &id, None),
            Some(owner) => self.check(app, Access::Write, &owner, Some(&id)),
        }
    }

    /// The caller writes a member's records: those of the member's current
    /// unit. An unknown member is left to the App (it answers NOT_FOUND).
    pub async fn writes_member(&self, app: &App, member_id: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = MemberId::parse("member_id", member_id).map_err(invalid)?;
        let loc = app
            .store
            .current_member_loc(&id)
            .await
            .map_err(|e| to_status(&e.into()))?;
        match loc {
            None => Ok(()),
            Some(loc) => self.check_hidden(app, Access::Write, &loc.unit, "member"),
        }
    }

    /// The caller changes a campaign: its launching unit owns it.
    pub async fn writes_campaign(&self, app: &App, campaign_id: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = CampaignId::parse("campaign_id", campaign_id).map_err(invalid)?;
        match app
            .store
            .campaign(&id)
            .await
            .map_err(|e| to_status(&e.into()))?
        {
            None => Ok(()),
            Some(c) => self.check(app, Access::Write, &c.launching_unit, None),
        }
    }

    /// The caller changes an award: its issuing unit owns it.
    pub async fn writes_award(&self, app: &App, award_id: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = AwardId::parse("award_id", award_id).map_err(invalid)?;
        match app
            .store
            .award(&id)
            .await
            .map_err(|e| to_status(&e.into()))?
        {
            None => Ok(()),
            Some(a) => self.check(app, Access::Write, &a.issuing_unit, None),
        }
    }

    /// The caller marks a proposal decided: its proposing unit owns it.
    pub async fn writes_proposal(
        &self,
        app: &App,
        proposal_id: Option<&str>,
    ) -> Result<(), Status> {
        let Some(p) = proposal_id.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = ProposalId::parse("proposal_id", p).map_err(invalid)?;
        match app
            .store
            .proposal(&id)
            .await
            .map_err(|e| to_status(&e.into()))?
        {
            None => Ok(()),
            Some(p) => self.check(app, Access::Write, &p.proposing_unit, None),
        }
    }

    /// The caller imports rows into these units: each must be writable.
    /// Rows whose unit is not a valid id are left to the App, which
    /// rejects them one by one.
    pub fn writes_rows<'a>(
        &self,
        app: &App,
        units: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        for u in units {
            if let Ok(id) = UnitId::parse("unit_id", u) {
                self.check(app, Access::Write, &id, None)?;
            }
        }
        Ok(())
    }

    fn check_str(&self, app: &App, access: Access, field: &str, unit: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = UnitId::parse(field, unit).map_err(invalid)?;
        self.check(app, access, &id, None)
    }

    /// Staff of U may touch `owner`'s records when U holds authority over
    /// it. `about` names the unit whose record it is, when that is not
    /// `owner` itself (a unit record is its parent's).
    fn check(
        &self,
        app: &App,
        access: Access,
        owner: &UnitId,
        about: Option<&UnitId>,
    ) -> Result<(), Status> {
        let Some(own) = self.staff_unit() else {
            return Ok(());
        };
        if app.tree().has_authority(own, owner) {
            return Ok(());
        }
        let rpc = self.rpc;
        tracing::warn!(
            caller = %self.identity,
            rpc,
            unit = %about.unwrap_or(owner),
            owner = %owner,
            own = %own,
            access = access.verb(),
            "permission denied: outside the caller's subtree"
        );
        let verb = access.verb();
        Err(denied(match about {
            Some(u) => format!(
                "{rpc} on unit {u}: its record is kept by unit {owner}, outside unit {own}'s \
                 subtree, and staff of unit {own} may {verb} only within it"
            ),
            None => format!(
                "{rpc} on unit {owner}: outside unit {own}'s subtree, and staff of unit {own} \
                 may {verb} only within it"
            ),
        }))
    }

    /// Like [`Caller::check`], for a unit the caller did not name (a
    /// member's): the message does not say which unit it is.
    fn check_hidden(
        &self,
        app: &App,
        access: Access,
        owner: &UnitId,
        what: &str,
    ) -> Result<(), Status> {
        let Some(own) = self.staff_unit() else {
            return Ok(());
        };
        if app.tree().has_authority(own, owner) {
            return Ok(());
        }
        let rpc = self.rpc;
        tracing::warn!(
            caller = %self.identity,
            rpc,
            unit = %owner,
            own = %own,
            access = access.verb(),
            "permission denied: outside the caller's subtree"
        );
        Err(denied(format!(
            "{rpc}: the {what} is not in unit {own}'s subtree, and staff of unit {own} may {} \
             only within it",
            access.verb()
        )))
    }
}
