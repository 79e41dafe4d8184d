//! The node's operations: each request checked against the domain rules,
//! the unit tree and authority, then written as one store transaction.
//! Protobuf-free: the gRPC layer converts at the edge. [`App`] is the one
//! door to the store: its store is private, and every operation a request
//! can make is a method here, in the module of its domain.
//!
//! # Layout
//! - `mod.rs`: [`App`], its start-up, and the checks every domain shares
//!   (the unit is known, active, writable, keeps a roster).
//! - `units`, `members`, `campaigns`, `emulation`, `awards`: the offices'
//!   records, one module per domain.
//! - [`reorg`]: reorganisation decisions: checked whole, their impact, and
//!   applied in one transaction (a dry run drops it).
//! - [`reports`]: the report rows, and who owns a record (for the role check).
//! - [`hosting`]: this node's own record, its seals of handovers, what it
//!   owes new hosts, retirement, and refusing writes for units that left;
//!   [`handovers`]: where a decision's handovers stand; `give_up`: a
//!   decision's seal step, giving up an old host that will not return.
//! - [`admin`]: the node's counts and the quarantine (list, release, discard).
//! - [`quarantine`]: held changes selected by filter, released or
//!   discarded together.
//! - [`docs`]: documents for the administrator, and compaction.
//! - [`conflicts`]: conflicts with their values now, and resolving them.
//! - [`trace`]: where a record's latest change has reached.
//! - `peers`: the convergence check's two sides ([`crate::check`]).

use std::sync::Arc;
use std::time::Instant;

use automerge::ActorId;
use hopluu_model::award::AwardCatalogue;
use hopluu_model::member::MemberInput;
use hopluu_model::member::NewMember;
use hopluu_model::tree::UnitTree;
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit};
use hopluu_model::{Clock, Date, DocId, MemberId, ModelError, UnitId};
use hopluu_store::Store;

use crate::NodeError;

pub mod admin;
mod awards;
pub mod campaigns;
pub mod conflicts;
pub mod docs;
mod emulation;
mod give_up;
pub mod handovers;
pub mod hosting;
pub mod members;
mod peers;
pub mod quarantine;
pub mod reorg;
pub mod reports;
pub mod trace;
pub mod units;

pub use awards::RawRecipient;
pub use members::Deidentification;

/// An operation's result: a refusal, a storage failure and (at the gRPC
/// edge) a denial stay apart ([`NodeError`]).
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

fn invalid(field: &str, reason: impl Into<String>) -> NodeError {
    NodeError::Refused(ModelError::invalid(field, reason))
}

/// What one row of an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Created(MemberId),
    Updated(MemberId),
    Unchanged(MemberId),
    Rejected(Vec<ModelError>),
}

/// An import row after validation: its unit and member, or every error.
type ParsedRow = Result<(UnitId, NewMember), Vec<ModelError>>;

/// One row of an import: its line in the file, its unit, its fields.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u32,
    pub unit: String,
    pub member: MemberInput,
}

/// The node's state shared by every service.
pub struct App {
    /// Private: every operation is a method of `App`; the gRPC layer only
    /// converts. [`App::store`] serves replication and the tools.
    store: Store,
    pub node_id: String,
    pub unit: UnitId,
    /// `[replication] private_depth`: a node whose unit lies above this
    /// depth holds no personal data (CCCD, ethnicity, religion), so it
    /// refuses requests that carry or ask for them.
    pub private_depth: usize,
    pub kinds: KindCatalogue,
    pub awards: AwardCatalogue,
    pub clock: Arc<dyn Clock>,
    actor: ActorId,
    started: Instant,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("node_id", &self.node_id)
            .field("unit", &self.unit)
            .field("private_depth", &self.private_depth)
            .finish_non_exhaustive()
    }
}

/// What a node does the first time it starts without its unit's record.
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// Creates the record itself (the root of the federation, or a node
    /// running alone).
    Create {
        name: String,
        kind: String,
        parent: Option<UnitId>,
    },
    /// Waits for the record from its upstream, which decides it.
    FromUpstream,
}

impl App {
    /// Builds the node's state from its store; creates the hosted unit's
    /// record when the store does not know it yet.
    pub async fn new(
        store: Store,
        node_id: String,
        unit: UnitId,
        private_depth: usize,
        bootstrap: Option<Bootstrap>,
        clock: Arc<dyn Clock>,
    ) -> Result<App> {
        let actor = hopluu_model::Author::actor_for(&node_id, &unit, store.incarnation());
        let app = App {
            store,
            node_id,
            unit,
            private_depth,
            kinds: KindCatalogue::default(),
            awards: AwardCatalogue::default(),
            clock,
            actor,
            started: Instant::now(),
        };
        if !app.tree().contains(&app.unit) {
            let (name, kind, parent) = match bootstrap {
                Some(Bootstrap::Create { name, kind, parent }) => (name, kind, parent),
                Some(Bootstrap::FromUpstream) => {
                    tracing::info!(unit = %app.unit, "waiting for this unit's record from the upstream");
                    return Ok(app);
                }
                None => {
                    return Err(invalid(
                        "node.unit",
                        format!(
                            "this node hosts unit {} but does not know it: set node.unit_name and node.unit_kind to create it",
                            app.unit
                        ),
                    ));
                }
            };
            // The office existed before its node: its record holds from
            // the beginning of the records, so that reports as of earlier
            // dates can be asked of it (a national node first started in
            // 2026 still ranks the 2023 campaign).
            let decision = Decision {
                decision_no: String::new(),
                decided_on: app.clock.today(),
                effective_on: hopluu_model::timeline::beginning(),
            };
            let new = NewUnit::parse(
                &app.kinds,
                Some(app.unit.as_str()),
                &name,
                &kind,
                parent.as_ref().map(|p| p.as_str()),
                decision,
            )?;
            let mut tx = app.store.begin().await?;
            let doc = tx.doc(&DocId::Unit(app.unit.clone())).await?;
            unit::create(doc, &app.author(), &new)?;
            tx.commit().await?;
            tracing::info!(unit = %app.unit, "created the hosted unit's record");
        }
        if !app.holds_private() {
            let rows = app.store.private_rows().await?;
            if rows > 0 {
                // Written before this node refused personal data, or under
                // another private_depth: not removed by itself.
                tracing::warn!(
                    rows,
                    private_depth = app.private_depth,
                    "this node lies above private_depth but its member_private table has rows: \
                     personal data a node at this level must not hold"
                );
            }
        }
        Ok(app)
    }

    /// The node's store, for what is not a request's operation: the
    /// replication sessions, metrics, the development cluster and tests.
    /// gRPC handlers never call it (`grpc` reaches data through `App`).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn author(&self) -> hopluu_model::Author {
        hopluu_model::Author {
            actor: self.actor.clone(),
            time_millis: self.clock.now_millis(),
        }
    }

    pub fn today(&self) -> Date {
        self.clock.today()
    }

    /// The hosted unit's name (empty until its record arrives).
    pub fn unit_name(&self) -> String {
        self.tree()
            .get(&self.unit)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The unit tree as of the last commit (kept by the store).
    pub fn tree(&self) -> Arc<UnitTree> {
        self.store.tree()
    }

    /// Whether this node holds personal data: its unit lies at or below
    /// `private_depth` ([`UnitTree::holds_private`]).
    pub fn holds_private(&self) -> bool {
        self.tree().holds_private(&self.unit, self.private_depth)
    }

    /// Refuses a request whose `field` carries or asks for personal data at
    /// a node that holds none, before anything is read or written.
    fn check_private(&self, field: &str) -> Result<()> {
        Ok(self
            .tree()
            .check_holds_private(&self.unit, self.private_depth, field)?)
    }

    fn parse_unit(&self, field: &str, s: &str) -> Result<UnitId> {
        Ok(UnitId::parse(field, s)?)
    }

    /// The unit must exist, be active, and lie in this node's subtree, and
    /// this node must not be retired. A unit a decision moved away is
    /// refused naming the decision and the node that hosts it now
    /// ([`App::left_here`]): the office learns where to write at once, not
    /// later from a quarantine upstream.
    async fn writable_unit(&self, field: &str, id: &UnitId) -> Result<()> {
        if let Some(refusal) = self.left_here(field, id).await? {
            return Err(refusal);
        }
        let tree = self.tree();
        tree.require_active(field, id)?;
        tree.check_authority(&self.unit, id)?;
        Ok(())
    }

    /// Like [`App::writable_unit`], and the unit keeps a member roster.
    async fn roster_unit(&self, field: &str, id: &UnitId) -> Result<()> {
        self.writable_unit(field, id).await?;
        let kind = self
            .tree()
            .get(id)
            .map(|n| n.kind.clone())
            .expect("checked above");
        if !self
            .kinds
            .get(kind.as_str())
            .is_some_and(|k| k.holds_members)
        {
            return Err(invalid(
                field,
                format!(
                    "unit {id} is of kind {kind}, which keeps no member roster (members belong to grassroots unions)"
                ),
            ));
        }
        Ok(())
    }

    fn known_unit(&self, field: &str, id: &UnitId) -> Result<()> {
        if self.tree().contains(id) {
            Ok(())
        } else {
            Err(NodeError::Refused(ModelError::not_found("unit", id)).tap_field(field))
        }
    }
}

trait TapField {
    fn tap_field(self, field: &str) -> Self;
}

impl TapField for NodeError {
    /// Names the request field in a not-found error about it.
    fn tap_field(self, field: &str) -> Self {
        match self {
            NodeError::Refused(ModelError::NotFound { what, id }) => NodeError::Refused(
                ModelError::invalid(field, format!("{what} {id} does not exist")),
            ),
            other => other,
        }
    }
}
