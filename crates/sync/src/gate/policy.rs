//! Who may write what: the authority rule a change's maker must meet
//! (DESIGN §3), and whether a private roster may be held here at all.

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, ChangeHash};
use hopluu_model::doc::{Origin, skeleton_actor, skeleton_hash};
use hopluu_model::{Author, DocId, DocKind, UnitId, UnitTree};
use hopluu_store::decisions::SealHeads;

/// Who sent the changes, as the session knows it.
#[derive(Debug, Clone)]
pub struct Sender {
    pub node: String,
    pub unit: UnitId,
    /// The sender is a child of this node (it dialled in): what it sends
    /// must be made inside its subtree. Changes from an upstream may come
    /// from anywhere above or beside, and are held to authority only.
    pub is_child: bool,
}

/// Every reason code a held change can carry: those of [`Hold`],
/// `invalid-value` (it breaks the shape of its document's kind:
/// [`hopluu_model::shape`]), and `refused` (automerge would not apply it
/// when what it waited for came).
/// An administrator's filter names one of them.
pub const HOLD_CODES: [&str; 8] = [
    "not-authorised",
    "outside-sender",
    "unknown-unit",
    "unknown-actor",
    "forged-skeleton",
    "invalid-value",
    "waits",
    "refused",
];

/// Why a change is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Stable code: `unknown-actor`, `unknown-unit`, `forged-skeleton`,
    /// `outside-sender`, `not-authorised`, `waits` (all in [`HOLD_CODES`]).
    pub code: &'static str,
    pub reason: String,
    pub origin: Option<Origin>,
}

/// Checks one change's maker against the rule, for a document owned by
/// `owner` (`None` while the document's owner is not known yet).
pub fn check(
    tree: &UnitTree,
    sender: &Sender,
    doc: &DocId,
    owner: Option<&UnitId>,
    actor: &ActorId,
    hash: &ChangeHash,
) -> Result<(), Hold> {
    if *actor == skeleton_actor() {
        return if skeleton_hash(doc).as_ref() == Some(hash) {
            Ok(())
        } else {
            Err(Hold {
                code: "forged-skeleton",
                reason: format!("a change under the skeleton actor that is not {doc}'s skeleton"),
                origin: None,
            })
        };
    }
    let Some(origin) = Author::origin(actor) else {
        return Err(Hold {
            code: "unknown-actor",
            reason: "the change's actor names no node and unit".to_owned(),
            origin: None,
        });
    };
    // A node's own record: written by that node, whose unit may lie in a
    // subtree this node knows nothing of (every node holds every node's
    // record). A node above it may write it too (by authority, below).
    if matches!(doc, DocId::Node(n) if n.as_str() == origin.node) {
        return Ok(());
    }
    // The root's record is its own owner: only the root's node writes it.
    let self_owned = matches!(doc, DocId::Unit(u) if Some(u) == owner && !tree.contains(u));
    if self_owned {
        return if owner == Some(&origin.unit) {
            Ok(())
        } else {
            Err(Hold {
                code: "not-authorised",
                reason: format!(
                    "node {} (unit {}) cannot write the record of unit {doc}, which owns itself",
                    origin.node, origin.unit
                ),
                origin: Some(origin),
            })
        };
    }
    if !tree.contains(&origin.unit) {
        return Err(Hold {
            code: "unknown-unit",
            reason: format!(
                "made by node {} for unit {}, which this node does not know (yet)",
                origin.node, origin.unit
            ),
            origin: Some(origin),
        });
    }
    // The federation's root holds authority over every unit: a unit record
    // it moved passes through parents this node may not know (a union
    // moved twice, from one province to another).
    let root_maker = tree.get(&origin.unit).is_some_and(|n| n.parent.is_none());
    if let Some(owner) = owner
        && !tree.contains(owner)
        && !root_maker
    {
        return Err(Hold {
            code: "unknown-unit",
            reason: format!("{doc} is owned by unit {owner}, which this node does not know (yet)"),
            origin: Some(origin),
        });
    }
    if sender.is_child && !tree.is_within(&origin.unit, &sender.unit) {
        return Err(Hold {
            code: "outside-sender",
            reason: format!(
                "made by node {} for unit {}, outside the subtree of the sending child {} ({})",
                origin.node, origin.unit, sender.node, sender.unit
            ),
            origin: Some(origin),
        });
    }
    if let Some(owner) = owner
        && !(root_maker || tree.has_authority(&origin.unit, owner))
    {
        return Err(Hold {
            code: "not-authorised",
            reason: format!(
                "node {} (unit {}) holds no authority over {doc}, owned by unit {owner}",
                origin.node, origin.unit
            ),
            origin: Some(origin),
        });
    }
    Ok(())
}

/// The changes seals vouch for in one document: those in the past of a
/// decision's own seal, whoever made them (the applier held authority
/// over all of it), and those in the past of an old host's seal that the
/// old host made itself (a node vouches for its own changes only, so a
/// faulty node cannot pass off anyone else's).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Covered {
    any: HashSet<ChangeHash>,
    own: HashMap<String, HashSet<ChangeHash>>,
}

impl Covered {
    /// What `seals` cover, following the dependencies `deps` gives of each
    /// change at hand.
    pub fn of<'a>(
        seals: &[SealHeads],
        deps: impl IntoIterator<Item = (ChangeHash, &'a [ChangeHash])>,
    ) -> Covered {
        if seals.is_empty() {
            return Covered::default();
        }
        let deps: HashMap<ChangeHash, &[ChangeHash]> = deps.into_iter().collect();
        let mut out = Covered::default();
        for s in seals {
            let past = sealed_past(&s.heads, deps.iter().map(|(h, d)| (*h, *d)));
            match &s.by {
                None => out.any.extend(past),
                Some(node) => out.own.entry(node.clone()).or_default().extend(past),
            }
        }
        out
    }

    /// Whether a seal vouches for change `hash` made by `node`.
    pub fn vouches(&self, hash: &ChangeHash, node: Option<&str>) -> bool {
        self.any.contains(hash)
            || node.is_some_and(|n| self.own.get(n).is_some_and(|s| s.contains(hash)))
    }
}

/// [`check`], except that a change a seal vouches for ([`Covered`])
/// passes the authority rule: it lies in the past of the heads recorded
/// for a document a reorganisation decision moved, made by a host that
/// held authority then. So it also passes where its maker's unit is not
/// known here (an old host in another province: its unit's record is not
/// in this node's scope), and when it comes by another path than its
/// maker's subtree (the new host relays what an old host handed over).
pub fn check_sealed(
    tree: &UnitTree,
    sender: &Sender,
    doc: &DocId,
    owner: Option<&UnitId>,
    actor: &ActorId,
    hash: &ChangeHash,
    covered: &Covered,
) -> Result<(), Hold> {
    match check(tree, sender, doc, owner, actor, hash) {
        Err(hold)
            if sealable(&hold)
                && covered.vouches(hash, hold.origin.as_ref().map(|o| o.node.as_str())) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Whether a seal may lift `hold`: a maker without authority now, one
/// whose unit (or whose document's owner, a unit the record passed
/// through) is not known here, or one outside the sending child's
/// subtree; never a change without a maker, nor a forged one.
fn sealable(hold: &Hold) -> bool {
    matches!(
        hold.code,
        "not-authorised" | "outside-sender" | "unknown-unit"
    )
}

/// The changes in the past of `heads` (a seal of a document): the heads
/// and, through the dependencies `deps` gives of each change at hand,
/// everything before them.
pub fn sealed_past<'a>(
    heads: &[ChangeHash],
    deps: impl IntoIterator<Item = (ChangeHash, &'a [ChangeHash])>,
) -> HashSet<ChangeHash> {
    let mut out = HashSet::new();
    if heads.is_empty() {
        return out;
    }
    let deps: HashMap<ChangeHash, &[ChangeHash]> = deps.into_iter().collect();
    let mut stack = heads.to_vec();
    while let Some(h) = stack.pop() {
        if out.insert(h)
            && let Some(d) = deps.get(&h)
        {
            stack.extend(d.iter().copied());
        }
    }
    out
}

/// Whether a private roster may be held here at all: only at or below the
/// configured level, and only inside this node's subtree. `None` while
/// that cannot be told yet: this node's own place in the tree (its depth)
/// or the roster's owner unit has not arrived. Such an update waits (the
/// sender sends it again), where a refusal would be for good: a grassroots
/// node that judged its depth before its ancestors' records came refused
/// its own private roster, and the sender's checkpoint moved past it
/// (simulation seed 302977).
pub fn private_allowed(
    tree: &UnitTree,
    me: &UnitId,
    id: &DocId,
    private_depth: usize,
) -> Option<bool> {
    if id.kind() != DocKind::RosterPrivate {
        return Some(true);
    }
    let owner = id.owner_from_id()?;
    if !tree.is_rooted(me) {
        return None;
    }
    if tree.depth(me) < private_depth {
        return Some(false);
    }
    if tree.is_within(owner, me) {
        return Some(true);
    }
    // Not (yet) below this node: certain only once the owner's own place
    // is known.
    tree.is_rooted(owner).then_some(false)
}
