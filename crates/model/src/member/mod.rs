//! Members and the roster documents that hold them.
//!
//! A grassroots union's members live in `roster/{unit}` (about 80 members on
//! average). Above a configurable size the roster continues in hash buckets
//! `roster/{unit}/{b}` ([`choose_bucket`]); a member is placed once and never
//! moved between documents, so no concurrent edit can be lost by a move.
//! Sensitive fields (CCCD, ethnicity, religion) live in the matching
//! `roster-private/...` document, which replicates only as far up as the
//! federation allows (Decree 13/2023, Law 91/2025).
//!
//! Document shape (`members` is a map keyed by member id):
//! ```text
//! { v, owner, addressed: [], unit, bucket,
//!   members: { m…: { full_name, birth_date, gender, card_number, joined_on,
//!                    position, status, status_reason, status_on,
//!                    history: [ { kind, on, reason, unit, other_unit } ],
//!                    deidentified?: { at, by, operator, reason, reference } } } }
//! ```
//!
//! # Personal data
//!
//! A member's name and birth date (in the roster) and CCCD, ethnicity and
//! religion (in the private roster) are personal data. They never appear
//! in an error message or a `Debug` output of this crate's types.
//! [`deidentify`] and [`forget_private`] remove them from a member's
//! current state on request (Law 91/2025), keeping what the federation's
//! statistics need (unit, gender, card number, membership dates and
//! status) and recording the request in the record itself. Automerge keeps
//! every change, so the removed values stay in the documents' history.
//!
//! # Layout
//! - [`types`]: the member record, its status and history, private data.
//! - [`input`]: new members and updates, validated.
//! - [`roster`]: buckets, documents, and the record's life in a roster.
//! - [`private`]: the private roster's sensitive fields.
//! - [`deidentify`]: removing personal data on request.

mod deidentify;
mod input;
mod private;
mod roster;
mod types;

pub use deidentify::*;
pub use input::*;
pub use private::*;
pub use roster::*;
pub use types::*;
