//! Documents: their ids, kinds, owners and the units they are addressed to.
//!
//! Every record lives in an automerge document with exactly one owner unit
//! (DESIGN §3). The id says what the document is; the owner and the
//! addressed units are read from its content (for kinds whose id does not
//! already name them), so that authority and scope can be decided from
//! [`DocMeta`] alone.
//!
//! | id | owner |
//! |---|---|
//! | `unit/{unit}` | the parent unit (the unit itself for the root) |
//! | `roster/{unit}[/{bucket}]` | the grassroots unit |
//! | `roster-private/{unit}[/{bucket}]` | the grassroots unit |
//! | `campaign/{id}` | the launching unit |
//! | `emulation/{unit}/{campaign}` | the unit |
//! | `proposal/{id}` | the proposing unit |
//! | `award/{id}` | the deciding unit |
//! | `decision/{id}` | the issuing unit (a reorganisation decision) |
//! | `node/{id}` | the unit the node hosts (held by every node) |

use std::fmt;
use std::str::FromStr;

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge};

use crate::am::Obj;
use crate::error::ModelError;
use crate::ids::{AwardId, CampaignId, DecisionId, NodeId, ProposalId, UnitId};

/// The schema version written into every document's root (`v`). A reader
/// refuses documents from a newer major schema instead of misreading them.
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocKind {
    Unit,
    Roster,
    RosterPrivate,
    Campaign,
    Emulation,
    Proposal,
    Award,
    Decision,
    Node,
}

impl DocKind {
    pub const ALL: [DocKind; 9] = [
        DocKind::Unit,
        DocKind::Roster,
        DocKind::RosterPrivate,
        DocKind::Campaign,
        DocKind::Emulation,
        DocKind::Proposal,
        DocKind::Award,
        DocKind::Decision,
        DocKind::Node,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Unit => "unit",
            DocKind::Roster => "roster",
            DocKind::RosterPrivate => "roster-private",
            DocKind::Campaign => "campaign",
            DocKind::Emulation => "emulation",
            DocKind::Proposal => "proposal",
            DocKind::Award => "award",
            DocKind::Decision => "decision",
            DocKind::Node => "node",
        }
    }

    pub fn parse(s: &str) -> Option<DocKind> {
        DocKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A document's id. Its string form is stable and is what is stored and sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DocId {
    Unit(UnitId),
    Roster { unit: UnitId, bucket: u32 },
    RosterPrivate { unit: UnitId, bucket: u32 },
    Campaign(CampaignId),
    Emulation { unit: UnitId, campaign: CampaignId },
    Proposal(ProposalId),
    Award(AwardId),
    Decision(DecisionId),
    Node(NodeId),
}

impl DocId {
    pub fn kind(&self) -> DocKind {
        match self {
            DocId::Unit(_) => DocKind::Unit,
            DocId::Roster { .. } => DocKind::Roster,
            DocId::RosterPrivate { .. } => DocKind::RosterPrivate,
            DocId::Campaign(_) => DocKind::Campaign,
            DocId::Emulation { .. } => DocKind::Emulation,
            DocId::Proposal(_) => DocKind::Proposal,
            DocId::Award(_) => DocKind::Award,
            DocId::Decision(_) => DocKind::Decision,
            DocId::Node(_) => DocKind::Node,
        }
    }

    /// The owner, where the id alone says it.
    pub fn owner_from_id(&self) -> Option<&UnitId> {
        match self {
            DocId::Roster { unit, .. }
            | DocId::RosterPrivate { unit, .. }
            | DocId::Emulation { unit, .. } => Some(unit),
            _ => None,
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<DocId, ModelError> {
        let bad = || {
            ModelError::invalid(
                field,
                format!("{s:?} is not a document id (e.g. unit/vn, roster/u1/2, campaign/c1)"),
            )
        };
        let mut parts = s.split('/');
        let kind = parts.next().and_then(DocKind::parse).ok_or_else(bad)?;
        let rest: Vec<&str> = parts.collect();
        let bucket = |p: Option<&&str>| -> Result<u32, ModelError> {
            match p {
                None => Ok(0),
                Some(b) if !b.starts_with('0') || *b == "0" => b.parse().map_err(|_| bad()),
                Some(_) => Err(bad()),
            }
        };
        let id = match (kind, rest.len()) {
            (DocKind::Unit, 1) => DocId::Unit(UnitId::parse(field, rest[0])?),
            (DocKind::Roster, 1 | 2) => DocId::Roster {
                unit: UnitId::parse(field, rest[0])?,
                bucket: bucket(rest.get(1))?,
            },
            (DocKind::RosterPrivate, 1 | 2) => DocId::RosterPrivate {
                unit: UnitId::parse(field, rest[0])?,
                bucket: bucket(rest.get(1))?,
            },
            (DocKind::Campaign, 1) => DocId::Campaign(CampaignId::parse(field, rest[0])?),
            (DocKind::Emulation, 2) => DocId::Emulation {
                unit: UnitId::parse(field, rest[0])?,
                campaign: CampaignId::parse(field, rest[1])?,
            },
            (DocKind::Proposal, 1) => DocId::Proposal(ProposalId::parse(field, rest[0])?),
            (DocKind::Award, 1) => DocId::Award(AwardId::parse(field, rest[0])?),
            (DocKind::Decision, 1) => DocId::Decision(DecisionId::parse(field, rest[0])?),
            (DocKind::Node, 1) => DocId::Node(NodeId::parse(field, rest[0])?),
            _ => return Err(bad()),
        };
        // Only the canonical form is an id: `roster/u/0` is spelled `roster/u`.
        if id.to_string() != s {
            return Err(bad());
        }
        Ok(id)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Unit(u) => write!(f, "unit/{u}"),
            DocId::Roster { unit, bucket: 0 } => write!(f, "roster/{unit}"),
            DocId::Roster { unit, bucket } => write!(f, "roster/{unit}/{bucket}"),
            DocId::RosterPrivate { unit, bucket: 0 } => write!(f, "roster-private/{unit}"),
            DocId::RosterPrivate { unit, bucket } => write!(f, "roster-private/{unit}/{bucket}"),
            DocId::Campaign(c) => write!(f, "campaign/{c}"),
            DocId::Emulation { unit, campaign } => write!(f, "emulation/{unit}/{campaign}"),
            DocId::Proposal(p) => write!(f, "proposal/{p}"),
            DocId::Award(a) => write!(f, "award/{a}"),
            DocId::Decision(d) => write!(f, "decision/{d}"),
            DocId::Node(n) => write!(f, "node/{n}"),
        }
    }
}

impl FromStr for DocId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<DocId, ModelError> {
        DocId::parse("doc_id", s)
    }
}

/// What authority and scope are decided on: a document's id, its owner and
/// the units it is addressed to from outside its owner's subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocMeta {
    pub id: DocId,
    pub owner: UnitId,
    /// Campaigns: the scope unit. Awards: the recipients' units.
    /// Decisions: the issuing unit (they flow down its subtree).
    /// Proposals: the unit the proposal is addressed to.
    pub addressed: Vec<UnitId>,
}

impl DocMeta {
    /// Reads the meta of a stored document (root fields `owner`, `addressed`).
    pub fn read(id: DocId, doc: &Automerge) -> Result<DocMeta, ModelError> {
        let root = Obj::root(doc);
        check_version(&id, doc)?;
        let owner = UnitId::parse("owner", &root.str("owner"))
            .map_err(|e| ModelError::document(&id, format!("bad owner: {e}")))?;
        if let Some(expected) = id.owner_from_id()
            && *expected != owner
        {
            return Err(ModelError::document(
                &id,
                format!("owner {owner} does not match the id's unit {expected}"),
            ));
        }
        let addressed = root
            .strings("addressed")
            .iter()
            .map(|s| UnitId::parse("addressed", s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ModelError::document(&id, e.to_string()))?;
        Ok(DocMeta {
            id,
            owner,
            addressed,
        })
    }
}

/// Refuses a document written with a newer schema than this build knows.
pub fn check_version(id: &DocId, doc: &Automerge) -> Result<(), ModelError> {
    let v = Obj::root(doc).i64("v");
    if v > SCHEMA_VERSION {
        return Err(ModelError::document(
            id,
            format!(
                "schema version {v} is newer than this node's {SCHEMA_VERSION}: upgrade hopluu"
            ),
        ));
    }
    Ok(())
}

/// Who makes a change: the node's automerge actor and the clock's time.
#[derive(Debug, Clone)]
pub struct Author {
    pub actor: ActorId,
    pub time_millis: i64,
}

impl Author {
    /// The actor of a node: its id's bytes, a zero byte, the hosted unit's
    /// id, a zero byte, then an incarnation (random per database, so a node
    /// restored from scratch never reuses sequence numbers under an old
    /// actor). Who made a change, and for which subtree, is readable from
    /// the actor alone ([`Author::origin`]): every hop checks it against the
    /// authority rule.
    pub fn actor_for(node_id: &str, unit: &UnitId, incarnation: &[u8]) -> ActorId {
        let mut bytes = node_id.as_bytes().to_vec();
        bytes.push(0);
        bytes.extend_from_slice(unit.as_str().as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(incarnation);
        ActorId::from(bytes)
    }

    /// The node and hosted unit an actor was made for (`None` for foreign
    /// or malformed actors).
    pub fn origin(actor: &ActorId) -> Option<Origin> {
        let bytes = actor.to_bytes();
        let end = bytes.iter().position(|b| *b == 0)?;
        let rest = &bytes[end + 1..];
        let unit_end = rest.iter().position(|b| *b == 0)?;
        let node = std::str::from_utf8(&bytes[..end]).ok()?;
        let unit = std::str::from_utf8(&rest[..unit_end]).ok()?;
        if node.is_empty() || node.len() > 64 {
            return None;
        }
        Some(Origin {
            node: node.to_owned(),
            unit: UnitId::parse("actor", unit).ok()?,
        })
    }

    /// The node id an actor was made for (`None` for foreign actors).
    pub fn node_of(actor: &ActorId) -> Option<String> {
        Author::origin(actor).map(|o| o.node)
    }
}

/// Who made a change, read from its actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub node: String,
    /// The unit the node hosted when it made the change: the subtree it
    /// holds authority over.
    pub unit: UnitId,
}

/// Automerge change times at and above this are milliseconds (1e11 ms is
/// March 1973; 1e11 s is the year 5138).
const MILLIS_FROM: i64 = 100_000_000_000;

/// A change's time (automerge's `timestamp`) in milliseconds since the
/// epoch, 0 when it names none. Automerge means seconds (its JavaScript
/// library writes them, and Rust's `with_time` documents them), and so
/// does hopluu now; changes hopluu wrote before carry milliseconds. The
/// two never overlap: a time in seconds is below [`MILLIS_FROM`] until
/// the year 5138, one in milliseconds above it after March 1973.
pub fn change_time_millis(timestamp: i64) -> i64 {
    if timestamp.abs() >= MILLIS_FROM {
        timestamp
    } else {
        timestamp.saturating_mul(1000)
    }
}

/// Runs `f` as one automerge change by `author`, timed in seconds as
/// automerge means it; on error the change is rolled back and the
/// document is as it was.
pub fn edit<T>(
    doc: &mut Automerge,
    author: &Author,
    message: &str,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    doc.set_actor(author.actor.clone());
    let opts = CommitOptions::default()
        .with_time(author.time_millis.div_euclid(1000))
        .with_message(message);
    doc.transact_with(|_| opts, f)
        .map(|ok| ok.result)
        .map_err(|failure| failure.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_times_read_as_seconds_or_older_milliseconds() {
        // Seconds, as automerge means them (now, and the year 5000).
        assert_eq!(change_time_millis(1_796_000_000), 1_796_000_000_000);
        assert_eq!(change_time_millis(95_617_584_000), 95_617_584_000_000);
        // Milliseconds, as hopluu wrote them before.
        assert_eq!(change_time_millis(1_756_684_800_123), 1_756_684_800_123);
        assert_eq!(change_time_millis(0), 0);
    }

    #[test]
    fn doc_ids_round_trip() {
        for s in [
            "unit/vn",
            "roster/hg-1",
            "roster/hg-1/3",
            "roster-private/hg-1",
            "roster-private/hg-1/12",
            "campaign/c1",
            "emulation/hg-1/c1",
            "proposal/p1",
            "award/a1",
        ] {
            let id: DocId = s.parse().unwrap();
            assert_eq!(id.to_string(), s);
        }
        for bad in [
            "",
            "unit",
            "unit/",
            "unit/a/b",
            "roster/u/0",
            "roster/u/01",
            "roster/u/x",
            "member/x",
            "emulation/u",
            "campaign/Bad Id",
        ] {
            assert!(bad.parse::<DocId>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn actor_names_its_node() {
        let unit = UnitId::parse("unit", "hg").unwrap();
        let a = Author::actor_for("hau-giang", &unit, &[1, 0, 3, 4]);
        assert_eq!(Author::node_of(&a).as_deref(), Some("hau-giang"));
        assert_eq!(Author::origin(&a).unwrap().unit, unit);
        assert_eq!(Author::node_of(&ActorId::from(vec![7u8; 16])), None);
        // The pre-unit layout (node, zero, random bytes) names no unit.
        assert_eq!(
            Author::origin(&ActorId::from(b"hau-giang\0\x9f\x01".to_vec())),
            None
        );
        assert_eq!(Author::origin(&ActorId::from(b"\0hg\0x".to_vec())), None);
    }
}

/// A value of a document skeleton.
#[derive(Debug, Clone)]
pub enum Skel {
    Int(i64),
    Str(String),
    Map,
    List,
}

/// The actor of skeleton changes: not a node. Its changes are identical
/// wherever they are made, so they merge as one.
pub fn skeleton_actor() -> ActorId {
    ActorId::from(b"hopluu-skeleton".to_vec())
}

/// The hash of the one skeleton change a document may hold, for the kinds
/// that have one. Anyone can make a change under the skeleton actor, so a
/// receiver accepts such a change only if it is exactly this one.
pub fn skeleton_hash(id: &DocId) -> Option<automerge::ChangeHash> {
    let mut doc = Automerge::new();
    match id {
        DocId::Roster { unit, bucket } | DocId::RosterPrivate { unit, bucket } => {
            crate::member::init_roster_skeleton(&mut doc, unit, *bucket).ok()?
        }
        DocId::Emulation { unit, campaign } => {
            crate::emulation::init_emulation_skeleton(&mut doc, unit, campaign).ok()?
        }
        _ => return None,
    }
    doc.get_heads().first().copied()
}

/// Writes a document's skeleton (root fields and empty containers) as one
/// deterministic change: fixed actor, time 0, fields in the given order.
/// Two nodes that create the same document concurrently produce the same
/// change hash, so their containers are the same objects after a merge
/// rather than two conflicting maps. Does nothing if the document already
/// has changes.
pub fn init_skeleton(doc: &mut Automerge, fields: &[(&str, Skel)]) -> Result<(), ModelError> {
    if !doc.get_heads().is_empty() {
        return Ok(());
    }
    let previous = doc.get_actor().clone();
    doc.set_actor(skeleton_actor());
    let result = doc.transact_with(
        |_| CommitOptions::default().with_time(0),
        |tx| -> Result<(), ModelError> {
            use automerge::transaction::Transactable;
            for (key, value) in fields {
                match value {
                    Skel::Int(i) => tx.put(automerge::ROOT, *key, *i)?,
                    Skel::Str(s) => tx.put(automerge::ROOT, *key, s.as_str())?,
                    Skel::Map => {
                        tx.put_object(automerge::ROOT, *key, automerge::ObjType::Map)?;
                    }
                    Skel::List => {
                        tx.put_object(automerge::ROOT, *key, automerge::ObjType::List)?;
                    }
                }
            }
            Ok(())
        },
    );
    doc.set_actor(previous);
    result.map(|_| ()).map_err(|f| f.error)
}
