//! Nodes and hosting as data (DESIGN §6): the `node/{id}` document each
//! node writes about itself, which every node of the federation holds.
//!
//! It says which unit the node hosts, which node it dials (its upstream),
//! the address other nodes reach it at, whether it still serves or is
//! retired (an archive whose units all moved away), and its **seals**: for
//! each reorganisation decision that moved documents out of its subtree,
//! its heads of each of them when it learnt of the decision. The changes a
//! seal covers were made with authority before the move; every node keeps
//! accepting them after it (the replication gate), and the new host's copy
//! is complete once it holds every sealed head.
//!
//! The document is owned by the hosted unit: the node writes it, and so may
//! a node above it (an administrator retiring a node that never comes
//! back). Its id names the node, so a record cannot be passed off for
//! another node.

use std::collections::BTreeMap;

use automerge::Automerge;

use crate::am::{self, Obj, Record};
use crate::doc::{Author, DocId, SCHEMA_VERSION, edit};
use crate::error::ModelError;
use crate::ids::{DecisionId, UnitId};
use crate::reorg::Seal;

/// Whether a node still serves its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Active,
    /// Every unit it hosted moved away or closed: it keeps its database,
    /// answers reads and reports of past dates, and refuses writes.
    Retired,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Active => "active",
            NodeStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<NodeStatus> {
        match s {
            "active" => Some(NodeStatus::Active),
            "retired" => Some(NodeStatus::Retired),
            _ => None,
        }
    }
}

/// What a node says of itself (the seals apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub unit: UnitId,
    /// The hosted unit's ancestors, the root first, as the node knew them
    /// when it wrote its record (empty for the root, or while its place
    /// was not known): where a node that knows nothing of that subtree
    /// (an old host handing documents over) finds the new host's depth.
    pub path: Vec<UnitId>,
    /// The node it dials first (empty for the root).
    pub upstream: String,
    /// Where other nodes reach it (`https://host:port`; empty: not
    /// reachable by nodes other than its children).
    pub address: String,
    pub status: NodeStatus,
    /// When it retired, UTC `YYYY-MM-DDTHH:MM:SSZ` (empty while active).
    pub retired_at: String,
}

/// One node's seal of what a decision moved out of its subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSeal {
    pub decision: DecisionId,
    /// When the node sealed, UTC `YYYY-MM-DDTHH:MM:SSZ`.
    pub at: String,
    pub docs: Vec<Seal>,
}

/// A node's record: what it says of itself and its seals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub info: NodeInfo,
    pub seals: Vec<HostSeal>,
}

impl NodeRecord {
    /// The decisions this node has sealed.
    pub fn sealed(&self, decision: &DecisionId) -> Option<&HostSeal> {
        self.seals.iter().find(|s| s.decision == *decision)
    }
}

/// Writes what the node says of itself into `node/{id}`, creating the
/// document the first time; fields that did not change are not written
/// (a restart with the same configuration makes no change).
pub fn publish(doc: &mut Automerge, author: &Author, info: &NodeInfo) -> Result<(), ModelError> {
    let root = Obj::root(&*doc);
    if root.str("id").is_empty() {
        return edit(doc, author, "node record", |tx| {
            Record::new()
                .int("v", SCHEMA_VERSION)
                .str("id", &info.id)
                .str("owner", &info.unit)
                .strings("addressed", &[])
                .str("unit", &info.unit)
                .strings("path", &path_strings(info))
                .str("upstream", &info.upstream)
                .str("address", &info.address)
                .str("status", info.status.as_str())
                .str("retired_at", &info.retired_at)
                .map("seals")
                .init_root(tx)
        });
    }
    if root.str("id") != info.id {
        return Err(ModelError::invalid(
            "node.id",
            format!("the record is node {}'s, not {}'s", root.str("id"), info.id),
        ));
    }
    let current = read_info(doc);
    if current.as_ref() == Some(info) {
        return Ok(());
    }
    edit(doc, author, "node record", |tx| {
        let r = automerge::ROOT;
        am::put_str(tx, &r, "owner", info.unit.as_str())?;
        am::put_str(tx, &r, "unit", info.unit.as_str())?;
        am::put_strings(tx, &r, "path", &path_strings(info))?;
        am::put_str(tx, &r, "upstream", &info.upstream)?;
        am::put_str(tx, &r, "address", &info.address)?;
        am::put_str(tx, &r, "status", info.status.as_str())?;
        am::put_str(tx, &r, "retired_at", &info.retired_at)
    })
}

/// Adds the node's seal for `seal.decision` (a decision is sealed once:
/// a second seal for it is refused, so what was sealed never moves).
pub fn seal(doc: &mut Automerge, author: &Author, seal: &HostSeal) -> Result<(), ModelError> {
    if Obj::root(&*doc).str("id").is_empty() {
        return Err(ModelError::invalid(
            "node",
            "the node record must exist before it seals",
        ));
    }
    if read_seals(doc).iter().any(|s| s.decision == seal.decision) {
        return Err(ModelError::AlreadyExists {
            what: "seal of decision",
            id: seal.decision.to_string(),
        });
    }
    edit(doc, author, "seal of a handover", |tx| {
        let seals = am::ensure_map(tx, &automerge::ROOT, "seals")?;
        let docs: BTreeMap<&str, &Vec<String>> = seal
            .docs
            .iter()
            .map(|s| (s.doc.as_str(), &s.heads))
            .collect();
        let mut heads = Record::new();
        for (d, h) in docs {
            heads = heads.strings(d, h);
        }
        Record::new()
            .str("at", &seal.at)
            .record("docs", heads)
            .create(tx, &seals, seal.decision.as_str())?;
        Ok(())
    })
}

fn path_strings(info: &NodeInfo) -> Vec<String> {
    info.path.iter().map(ToString::to_string).collect()
}

fn read_info(doc: &Automerge) -> Option<NodeInfo> {
    let root = Obj::root(doc);
    Some(NodeInfo {
        id: root.str("id"),
        unit: UnitId::parse("unit", &root.str("unit")).ok()?,
        // A record written before the path was: none known.
        path: root
            .strings("path")
            .iter()
            .map(|u| UnitId::parse("path", u))
            .collect::<Result<_, _>>()
            .unwrap_or_default(),
        upstream: root.str("upstream"),
        address: root.str("address"),
        status: NodeStatus::parse(&root.str("status"))?,
        retired_at: root.str("retired_at"),
    })
}

fn read_seals(doc: &Automerge) -> Vec<HostSeal> {
    let Some(seals) = Obj::root(doc).obj("seals") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for key in seals.keys() {
        let (Ok(decision), Some(s)) = (DecisionId::parse("seals", &key), seals.obj(&key)) else {
            continue;
        };
        let docs = s
            .obj("docs")
            .map(|d| {
                d.keys()
                    .into_iter()
                    .map(|k| Seal {
                        heads: d.strings(&k),
                        doc: k,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(HostSeal {
            decision,
            at: s.str("at"),
            docs,
        });
    }
    out
}

/// Reads the node record in `doc` (`id` is its document id).
pub fn read(id: &DocId, doc: &Automerge) -> Result<NodeRecord, ModelError> {
    crate::doc::check_version(id, doc)?;
    let info = read_info(doc)
        .ok_or_else(|| ModelError::document(id, "not a node record (unit or status missing)"))?;
    if !matches!(id, DocId::Node(n) if n.as_str() == info.id) {
        return Err(ModelError::document(
            id,
            format!("the record names node {}", info.id),
        ));
    }
    Ok(NodeRecord {
        info,
        seals: read_seals(doc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    fn author(node: &str, unit: &str) -> Author {
        Author {
            actor: Author::actor_for(node, &UnitId::parse("u", unit).unwrap(), b"t"),
            time_millis: 1_700_000_000_000,
        }
    }

    fn info(status: NodeStatus) -> NodeInfo {
        NodeInfo {
            id: "hau-giang".into(),
            unit: UnitId::parse("u", "hg").unwrap(),
            path: vec![UnitId::parse("u", "vn").unwrap()],
            upstream: "vn".into(),
            address: "https://hg.example:7400".into(),
            status,
            retired_at: String::new(),
        }
    }

    #[test]
    fn a_node_publishes_itself_once_and_changes_only_what_changed() {
        let id = DocId::Node(NodeId::parse("n", "hau-giang").unwrap());
        let mut doc = Automerge::new();
        let a = author("hau-giang", "hg");
        publish(&mut doc, &a, &info(NodeStatus::Active)).unwrap();
        let heads = doc.get_heads();
        publish(&mut doc, &a, &info(NodeStatus::Active)).unwrap();
        assert_eq!(doc.get_heads(), heads, "no change when nothing changed");
        let mut retired = info(NodeStatus::Retired);
        retired.retired_at = "2025-07-01T00:00:00Z".into();
        publish(&mut doc, &a, &retired).unwrap();
        let r = read(&id, &doc).unwrap();
        assert_eq!(r.info, retired);
        // A unit moved elsewhere: the record says where it sits now.
        let mut moved = retired.clone();
        moved.path = vec![
            UnitId::parse("u", "vn").unwrap(),
            UnitId::parse("u", "ct").unwrap(),
        ];
        publish(&mut doc, &a, &moved).unwrap();
        assert_eq!(read(&id, &doc).unwrap().info.path, moved.path);
        crate::shape::check(&id, &doc, &[]).expect("the record as written has its kind's shape");
        let other = DocId::Node(NodeId::parse("n", "soc-trang").unwrap());
        let e = read(&other, &doc).unwrap_err();
        assert!(e.to_string().contains("names node hau-giang"), "{e}");
    }

    #[test]
    fn a_decision_is_sealed_once() {
        let id = DocId::Node(NodeId::parse("n", "hau-giang").unwrap());
        let mut doc = Automerge::new();
        let a = author("hau-giang", "hg");
        let s = HostSeal {
            decision: DecisionId::parse("d", "d1").unwrap(),
            at: "2025-07-01T00:00:00Z".into(),
            docs: vec![Seal {
                doc: "roster/g1".into(),
                heads: vec!["ab".repeat(32)],
            }],
        };
        assert!(seal(&mut doc, &a, &s).is_err(), "no record yet");
        publish(&mut doc, &a, &info(NodeStatus::Active)).unwrap();
        seal(&mut doc, &a, &s).unwrap();
        let e = seal(&mut doc, &a, &s).unwrap_err();
        assert!(e.to_string().contains("d1"), "{e}");
        let r = read(&id, &doc).unwrap();
        assert_eq!(r.seals, vec![s.clone()]);
        assert_eq!(r.sealed(&s.decision), Some(&s));
        crate::shape::check(&id, &doc, &[]).expect("the seals as written have their shape");
    }
}
