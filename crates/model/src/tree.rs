//! The unit tree and the two rules everything else follows (DESIGN §3), as
//! pure functions of the tree:
//!
//! - **Authority = subtree.** A node hosting unit `H` may write a document
//!   iff the document's owner is `H` or lies below `H`.
//! - **Scope.** A node hosting `H` holds every document owned inside its
//!   subtree, plus documents addressed into its subtree from outside
//!   (campaigns whose scope covers it, awards to its units and members) and
//!   the unit records of its ancestors and of their children. Private rosters are held only at or
//!   below the configured level.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::doc::{DocId, DocKind, DocMeta};
use crate::error::ModelError;
use crate::ids::{KindId, UnitId};
use crate::unit::{Unit, UnitStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    pub parent: Option<UnitId>,
    pub kind: KindId,
    pub status: UnitStatus,
    pub name: String,
}

/// The units a node knows, as parent links. Depth in the federation is at
/// most five or six levels, so walking up is cheap and needs no index.
#[derive(Debug, Clone, Default)]
pub struct UnitTree {
    nodes: HashMap<UnitId, TreeNode>,
    children: HashMap<UnitId, Vec<UnitId>>,
}

impl UnitTree {
    pub fn new() -> Self {
        UnitTree::default()
    }

    /// Inserts or replaces a unit (after a create, move or close).
    pub fn upsert(&mut self, id: UnitId, node: TreeNode) {
        if let Some(old) = self.nodes.get(&id)
            && let Some(p) = &old.parent
            && let Some(siblings) = self.children.get_mut(p)
        {
            siblings.retain(|c| *c != id);
        }
        if let Some(p) = &node.parent {
            let siblings = self.children.entry(p.clone()).or_default();
            if !siblings.contains(&id) {
                siblings.push(id.clone());
            }
        }
        self.nodes.insert(id, node);
    }

    pub fn upsert_unit(&mut self, unit: &Unit) {
        self.upsert(
            unit.id.clone(),
            TreeNode {
                parent: unit.parent.clone(),
                kind: unit.kind.clone(),
                status: unit.status,
                name: unit.name.clone(),
            },
        );
    }

    pub fn get(&self, id: &UnitId) -> Option<&TreeNode> {
        self.nodes.get(id)
    }

    pub fn contains(&self, id: &UnitId) -> bool {
        self.nodes.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every unit known, in no particular order.
    pub fn units(&self) -> impl Iterator<Item = &UnitId> {
        self.nodes.keys()
    }

    pub fn children(&self, id: &UnitId) -> &[UnitId] {
        self.children.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The unit's ancestors, nearest first. Stops at a unit not in the tree
    /// and at a cycle (which the move rule prevents, but data from outside
    /// is not trusted to be acyclic).
    pub fn ancestors(&self, id: &UnitId) -> Vec<UnitId> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = self.nodes.get(id).and_then(|n| n.parent.clone());
        while let Some(p) = cur {
            if !seen.insert(p.clone()) || p == *id {
                break;
            }
            cur = self.nodes.get(&p).and_then(|n| n.parent.clone());
            out.push(p);
        }
        out
    }

    /// Whether `id` and every unit above it up to a root (a unit with no
    /// parent) are known: only then is its [`UnitTree::depth`] its place in
    /// the federation, and not a count of the ancestors known so far.
    pub fn is_rooted(&self, id: &UnitId) -> bool {
        let top = self.ancestors(id).pop().unwrap_or_else(|| id.clone());
        self.nodes.get(&top).is_some_and(|n| n.parent.is_none())
    }

    /// Levels below the root: the root is 0.
    pub fn depth(&self, id: &UnitId) -> usize {
        self.ancestors(id).len()
    }

    /// Whether `unit` is `ancestor` or lies below it.
    pub fn is_within(&self, unit: &UnitId, ancestor: &UnitId) -> bool {
        unit == ancestor || self.ancestors(unit).contains(ancestor)
    }

    /// Every unit in `root`'s subtree, `root` first, breadth first.
    pub fn subtree(&self, root: &UnitId) -> Vec<UnitId> {
        let mut out = Vec::new();
        if !self.contains(root) {
            return out;
        }
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([root.clone()]);
        while let Some(u) = queue.pop_front() {
            if !seen.insert(u.clone()) {
                continue;
            }
            queue.extend(self.children(&u).iter().cloned());
            out.push(u);
        }
        out
    }

    /// An active unit that the request names, or a clear error.
    pub fn require_active(&self, field: &str, id: &UnitId) -> Result<&TreeNode, ModelError> {
        let node = self
            .nodes
            .get(id)
            .ok_or_else(|| ModelError::invalid(field, format!("unit {id} does not exist")))?;
        if node.status != UnitStatus::Active {
            return Err(ModelError::invalid(
                field,
                format!("unit {id} is {}", node.status.as_str()),
            ));
        }
        Ok(node)
    }

    /// Authority = subtree: may the node hosting `node_unit` write documents
    /// owned by `owner`?
    pub fn has_authority(&self, node_unit: &UnitId, owner: &UnitId) -> bool {
        self.is_within(owner, node_unit)
    }

    /// Like [`UnitTree::has_authority`], as an error naming both units.
    pub fn check_authority(&self, node_unit: &UnitId, owner: &UnitId) -> Result<(), ModelError> {
        if self.has_authority(node_unit, owner) {
            Ok(())
        } else {
            Err(ModelError::NoAuthority {
                node_unit: node_unit.to_string(),
                target: format!("unit {owner}"),
            })
        }
    }

    /// Authority over a move: the deciding node must hold authority over
    /// the unit, its old parent's record and its new parent.
    pub fn check_move(
        &self,
        node_unit: &UnitId,
        unit: &UnitId,
        new_parent: &UnitId,
    ) -> Result<(), ModelError> {
        if self.is_within(new_parent, unit) {
            return Err(ModelError::invalid(
                "new_parent_id",
                format!(
                    "{new_parent} lies inside {unit}'s own subtree: the move would make a cycle"
                ),
            ));
        }
        let old_owner = self
            .get(unit)
            .and_then(|n| n.parent.clone())
            .unwrap_or_else(|| unit.clone());
        self.check_authority(node_unit, &old_owner)?;
        self.check_authority(node_unit, new_parent)
    }

    /// Personal data: may the node hosting `node_unit` hold private rosters
    /// (CCCD, ethnicity, religion)? Only at or below `private_depth` (0 is
    /// the national federation, 1 the provinces), and only once the node
    /// knows where its unit stands. A node that may not hold them neither
    /// writes nor reads them: they reach it from nowhere, since replication
    /// applies the same depth ([`UnitTree::in_scope`]).
    pub fn holds_private(&self, node_unit: &UnitId, private_depth: usize) -> bool {
        self.contains(node_unit) && self.depth(node_unit) >= private_depth
    }

    /// Like [`UnitTree::holds_private`], as a `Precondition` error naming
    /// `field` (the request field that carries or asks for personal data).
    pub fn check_holds_private(
        &self,
        node_unit: &UnitId,
        private_depth: usize,
        field: &str,
    ) -> Result<(), ModelError> {
        if self.holds_private(node_unit, private_depth) {
            return Ok(());
        }
        let reason = if self.contains(node_unit) {
            format!(
                "this node (depth {}) does not hold personal data; private_depth is {private_depth}",
                self.depth(node_unit)
            )
        } else {
            format!(
                "this node does not know its unit {node_unit} yet, so it holds no personal data"
            )
        };
        Err(ModelError::precondition(field, reason))
    }

    /// Scope: should the node hosting `node_unit` hold this document?
    /// `private_depth` is the shallowest depth allowed to hold private
    /// rosters (1 = provinces and below).
    pub fn in_scope(&self, node_unit: &UnitId, meta: &DocMeta, private_depth: usize) -> bool {
        self.in_scope_at(node_unit, self.depth(node_unit), meta, private_depth)
    }

    /// [`UnitTree::in_scope`] for a node at `depth`, told rather than
    /// found in this tree: the new host of a handover, whose unit's place
    /// lies in a subtree this node does not hold (its node record says
    /// where it sits).
    pub fn in_scope_at(
        &self,
        node_unit: &UnitId,
        depth: usize,
        meta: &DocMeta,
        private_depth: usize,
    ) -> bool {
        let owned_below = self.is_within(&meta.owner, node_unit);
        match meta.id.kind() {
            DocKind::RosterPrivate => owned_below && depth >= private_depth,
            DocKind::Unit => {
                let DocId::Unit(u) = &meta.id else {
                    return false;
                };
                // Its own subtree's records, its own record, its ancestors',
                // and their children's (owned by an ancestor): a unit that
                // leaves the subtree for one of them is placed in the tree.
                owned_below
                    || self.is_within(node_unit, u)
                    || self.is_within(node_unit, &meta.owner)
                    // The subtrees it was moved out of.
                    || meta.addressed.iter().any(|a| self.is_within(a, node_unit))
            }
            DocKind::Campaign | DocKind::Decision => {
                // Covers the node when the scope is above it or inside it.
                owned_below
                    || meta
                        .addressed
                        .iter()
                        .any(|s| self.is_within(node_unit, s) || self.is_within(s, node_unit))
            }
            DocKind::Award | DocKind::Proposal => {
                owned_below || meta.addressed.iter().any(|u| self.is_within(u, node_unit))
            }
            DocKind::Roster | DocKind::Emulation => owned_below,
            // Every node knows every node: which unit it hosts, whether
            // it serves, and what it sealed.
            DocKind::Node => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AwardId, CampaignId};

    fn u(s: &str) -> UnitId {
        UnitId::parse("u", s).unwrap()
    }

    /// vn -> {hg, lc}; hg -> {hg-d1, hg-d2}; hg-d1 -> {g1}; lc -> {lc-d1}
    fn tree() -> UnitTree {
        let mut t = UnitTree::new();
        for (id, parent) in [
            ("vn", None),
            ("hg", Some("vn")),
            ("lc", Some("vn")),
            ("hg-d1", Some("hg")),
            ("hg-d2", Some("hg")),
            ("g1", Some("hg-d1")),
            ("lc-d1", Some("lc")),
        ] {
            t.upsert(
                u(id),
                TreeNode {
                    parent: parent.map(u),
                    kind: KindId::parse("k", "grassroots").unwrap(),
                    status: UnitStatus::Active,
                    name: id.to_owned(),
                },
            );
        }
        t
    }

    fn meta(id: DocId, owner: &str, addressed: &[&str]) -> DocMeta {
        DocMeta {
            id,
            owner: u(owner),
            addressed: addressed.iter().map(|s| u(s)).collect(),
        }
    }

    #[test]
    fn ancestors_and_subtree() {
        let t = tree();
        assert_eq!(t.ancestors(&u("g1")), vec![u("hg-d1"), u("hg"), u("vn")]);
        assert_eq!(t.depth(&u("vn")), 0);
        assert_eq!(t.depth(&u("g1")), 3);
        assert_eq!(
            t.subtree(&u("hg")),
            vec![u("hg"), u("hg-d1"), u("hg-d2"), u("g1")]
        );
        assert!(t.subtree(&u("nowhere")).is_empty());
    }

    #[test]
    fn authority_is_the_subtree() {
        let t = tree();
        assert!(
            t.has_authority(&u("vn"), &u("g1")),
            "national corrects down"
        );
        assert!(t.has_authority(&u("hg-d1"), &u("g1")));
        assert!(t.has_authority(&u("hg-d1"), &u("hg-d1")));
        assert!(!t.has_authority(&u("hg-d1"), &u("hg-d2")), "sibling");
        assert!(!t.has_authority(&u("hg-d1"), &u("hg")), "parent");
        assert!(!t.has_authority(&u("hg"), &u("lc-d1")), "other province");
        let e = t.check_authority(&u("hg-d1"), &u("hg")).unwrap_err();
        assert_eq!(e.to_string(), "unit hg-d1 has no authority over unit hg");
    }

    #[test]
    fn moves_need_authority_over_both_ends_and_no_cycle() {
        let t = tree();
        // g1 from hg-d1 to hg-d2: the province decides, not a district.
        assert!(t.check_move(&u("hg"), &u("g1"), &u("hg-d2")).is_ok());
        assert!(t.check_move(&u("hg-d1"), &u("g1"), &u("hg-d2")).is_err());
        // Across provinces only the national level decides.
        assert!(t.check_move(&u("hg"), &u("g1"), &u("lc-d1")).is_err());
        assert!(t.check_move(&u("vn"), &u("g1"), &u("lc-d1")).is_ok());
        // No cycles.
        let e = t.check_move(&u("vn"), &u("hg"), &u("g1")).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
    }

    #[test]
    fn rosters_flow_up_never_sideways() {
        let t = tree();
        let roster = meta(
            DocId::Roster {
                unit: u("g1"),
                bucket: 0,
            },
            "g1",
            &[],
        );
        for holder in ["vn", "hg", "hg-d1"] {
            assert!(t.in_scope(&u(holder), &roster, 1), "{holder}");
        }
        for other in ["hg-d2", "lc", "lc-d1"] {
            assert!(!t.in_scope(&u(other), &roster, 1), "{other}");
        }
    }

    /// A unit record moved from hg-d1 to lc-d1 names hg-d1 among its
    /// addressees: the old host's branch holds it as it stands (so its
    /// nodes learn the unit left), the sibling branches do not.
    #[test]
    fn a_moved_units_record_stays_with_the_subtrees_it_left() {
        let t = tree();
        let moved = meta(DocId::Unit(u("g1")), "lc-d1", &["hg-d1"]);
        for holder in ["vn", "hg", "hg-d1", "lc", "lc-d1"] {
            assert!(t.in_scope(&u(holder), &moved, 1), "{holder}");
        }
        assert!(
            !t.in_scope(&u("hg-d2"), &moved, 1),
            "a sibling it never was under"
        );
    }

    #[test]
    fn private_rosters_stop_at_the_configured_level() {
        let t = tree();
        let private = meta(
            DocId::RosterPrivate {
                unit: u("g1"),
                bucket: 0,
            },
            "g1",
            &[],
        );
        assert!(t.in_scope(&u("hg"), &private, 1));
        assert!(t.in_scope(&u("hg-d1"), &private, 1));
        assert!(!t.in_scope(&u("vn"), &private, 1), "above the level");
        assert!(
            t.in_scope(&u("vn"), &private, 0),
            "national when configured"
        );
        assert!(!t.in_scope(&u("hg-d2"), &private, 1), "sibling");
        assert!(
            !t.in_scope(&u("hg"), &private, 2),
            "province when level is 2"
        );
    }

    #[test]
    fn campaigns_flow_down_to_their_scope_and_up_to_ancestors() {
        let t = tree();
        let c = CampaignId::parse("c", "c1").unwrap();
        let national = meta(DocId::Campaign(c.clone()), "vn", &["vn"]);
        for n in ["vn", "hg", "hg-d1", "lc-d1"] {
            assert!(t.in_scope(&u(n), &national, 1), "{n}");
        }
        let provincial = meta(DocId::Campaign(c), "hg", &["hg"]);
        assert!(t.in_scope(&u("hg-d2"), &provincial, 1), "down");
        assert!(t.in_scope(&u("vn"), &provincial, 1), "up");
        assert!(!t.in_scope(&u("lc"), &provincial, 1), "other province");
    }

    #[test]
    fn awards_reach_the_recipients_units() {
        let t = tree();
        let a = meta(
            DocId::Award(AwardId::parse("a", "a1").unwrap()),
            "hg",
            &["g1"],
        );
        assert!(t.in_scope(&u("hg-d1"), &a, 1));
        assert!(t.in_scope(&u("vn"), &a, 1));
        assert!(!t.in_scope(&u("hg-d2"), &a, 1));
        assert!(!t.in_scope(&u("lc"), &a, 1));
    }

    #[test]
    fn unit_records_of_ancestors_their_children_and_subtree() {
        let t = tree();
        let hg = meta(DocId::Unit(u("hg")), "vn", &[]);
        assert!(t.in_scope(&u("hg"), &hg, 1), "own record");
        assert!(t.in_scope(&u("hg-d1"), &hg, 1), "ancestor's record");
        // A sibling is a child of an ancestor: where a move may lead.
        assert!(t.in_scope(&u("lc"), &hg, 1), "sibling's record");
        let g1 = meta(DocId::Unit(u("g1")), "hg-d1", &[]);
        assert!(t.in_scope(&u("hg"), &g1, 1), "in the subtree");
        assert!(!t.in_scope(&u("hg-d2"), &g1, 1), "a cousin's child");
        assert!(!t.in_scope(&u("lc"), &g1, 1), "deeper in another subtree");
    }

    #[test]
    fn cycles_in_foreign_data_do_not_hang() {
        let mut t = tree();
        let k = KindId::parse("k", "grassroots").unwrap();
        t.upsert(
            u("x"),
            TreeNode {
                parent: Some(u("y")),
                kind: k.clone(),
                status: UnitStatus::Active,
                name: "x".into(),
            },
        );
        t.upsert(
            u("y"),
            TreeNode {
                parent: Some(u("x")),
                kind: k,
                status: UnitStatus::Active,
                name: "y".into(),
            },
        );
        assert_eq!(t.ancestors(&u("x")), vec![u("y")]);
        assert_eq!(t.subtree(&u("x")).len(), 2);
    }
}
