//! hopluu's domain: what a union office records, how it is validated, and
//! how it lives in automerge documents.
//!
//! Everything here is pure: no SQL, no gRPC, no clock but the one passed in.
//! Constructors check their input (parse, don't validate), so a value of a
//! domain type is valid; errors name the field and the reason.
//!
//! # Layout
//! - [`ids`]: opaque ids, card numbers, the 12-digit national id (CCCD).
//! - [`date`]: civil dates and the injected [`date::Clock`].
//! - [`doc`]: document ids, owners, addressed units, the schema version, and
//!   [`doc::edit`], which turns a closure into one automerge change.
//! - [`unit`] and [`tree`]: units, kinds as data, and the unit tree with the
//!   authority and scope rules.
//! - [`member`]: members, roster documents and their hash buckets, private data.
//! - [`timeline`]: a unit's parent links as dated intervals, and a member's
//!   record on a date: what reports as of a date read.
//! - [`campaign`], [`emulation`], [`award`]: campaigns and plans, initiatives
//!   and works, the award catalogue, proposals and decisions.
//! - [`reorg`]: reorganisation decisions: a plan of steps, checked whole
//!   against the tree ([`reorg::simulate`]), and its `decision/{id}` document.
//! - [`hosting`]: nodes and hosting as data: the `node/{id}` record each
//!   node writes about itself, with its seals of handovers.
//! - [`am`]: small helpers over automerge used by the modules above.
//! - [`error`]: [`ModelError`], naming the field and the reason.

pub mod am;
pub mod award;
pub mod campaign;
pub mod date;
pub mod doc;
pub mod emulation;
pub mod error;
pub mod hosting;
pub mod ids;
pub mod member;
pub mod reorg;
pub mod shape;
pub mod timeline;
pub mod tree;
pub mod unit;

pub use date::{Clock, Date, FixedClock, SystemClock};
pub use doc::{Author, DocId, DocKind, DocMeta};
pub use error::ModelError;
pub use ids::{
    AwardId, CampaignId, CardNumber, DecisionId, InitiativeId, KindId, MemberId, NationalId,
    NodeId, ProposalId, UnitId, WorkId,
};
pub use tree::UnitTree;
