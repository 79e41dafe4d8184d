//! The receiver's gate: every change that arrives on a stream is checked
//! against the authority rule before it is applied.
//!
//! A change's actor names the node that made it and the unit that node
//! hosts ([`hopluu_model::Author::origin`]). The change passes when
//! - the actor names a node at all (or it is exactly the document's
//!   deterministic skeleton change, which belongs to no node);
//! - coming from a child, the node that made it is in the child's subtree:
//!   a district cannot pass off a change as its province's, and a change it
//!   relays from elsewhere must come by a path that can vouch for it;
//! - the maker's unit holds authority over the document's owner unit
//!   (DESIGN §3: authority = subtree), both before the change and after
//!   it, so a unit record cannot be moved out of the maker's reach.
//!
//! A change that fails is quarantined with the reason (code and text),
//! and so is every change that depends on a quarantined one (code
//! `waits`). Neither is applied nor acknowledged as applied; the sender
//! is told their hashes, so it does not send them again, and unrelated
//! documents and changes go on. A quarantined change that later arrives
//! by a path that vouches for it (from the child whose subtree made it,
//! say) is applied then, and what waited on it follows.
//!
//! # Layout
//! - `policy`: the rule itself ([`check`], [`private_allowed`]) and who
//!   sent the changes ([`Sender`]).
//! - `payload`: automerge bytes from a peer read into changes
//!   ([`Incoming`]).
//! - `guard`: automerge run on a peer's bytes with its panics caught
//!   ([`guarded`]).
//! - `admit`: the pipeline that judges one update ([`Gate::admit`]).
//! - `quarantine`: held changes settled, released and discarded
//!   ([`settle`], [`settle_all`], [`release`], [`discard`]).
//! - `decide`: an administrator's decision on every held change a
//!   filter selects ([`release_all`], [`discard_all`]).

mod admit;
mod decide;
mod guard;
mod payload;
mod policy;
mod quarantine;

pub use admit::{Admitted, Gate, Held};
pub use decide::{Discarded, Left, Released, StillHeld, discard_all, release_all};
pub use guard::guarded;
pub use payload::Incoming;
pub use policy::{HOLD_CODES, Hold, Sender, check, private_allowed};
pub use quarantine::{discard, release, settle, settle_all};
