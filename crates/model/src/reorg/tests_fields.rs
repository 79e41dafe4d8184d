//! The plan model on a small tree: where a refused plan can be applied.

use super::*;
use crate::tree::TreeNode;

fn u(s: &str) -> UnitId {
    UnitId::parse("u", s).unwrap()
}

/// vn -> hg -> hg-ct -> {g1, g2}
fn tree() -> UnitTree {
    let mut t = UnitTree::new();
    for (id, parent, kind) in [
        ("vn", None, "central"),
        ("hg", Some("vn"), "provincial"),
        ("hg-ct", Some("hg"), "commune"),
        ("g1", Some("hg-ct"), "grassroots"),
        ("g2", Some("hg-ct"), "grassroots"),
    ] {
        t.upsert(
            u(id),
            TreeNode {
                parent: parent.map(u),
                kind: KindId::parse("k", kind).unwrap(),
                status: UnitStatus::Active,
                name: id.to_owned(),
            },
        );
    }
    t
}

fn plan(issuing: &str, steps: Vec<StepInput>) -> Plan {
    let input = PlanInput {
        number: "9/QĐ".into(),
        issuing_unit: issuing.into(),
        steps,
        ..PlanInput::default()
    };
    Plan::parse(
        &input,
        &KindCatalogue::default(),
        Date::new(2026, 11, 22).unwrap(),
    )
    .unwrap()
}

/// A province's decision tried at a commune's node: the province's node
/// applies it, not the one above (the issuing unit's parent).
#[test]
fn the_issuing_units_node_applies_a_plan() {
    let t = tree();
    let p = plan(
        "hg",
        vec![StepInput {
            kind: "move".into(),
            units: vec!["g2".into()],
            to: "hg".into(),
            ..StepInput::default()
        }],
    );
    let refused = simulate(
        &p,
        &t,
        &KindCatalogue::default(),
        &u("hg-ct"),
        &Facts::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&refused, ModelError::NoAuthority { target, .. } if target.contains("issuing unit hg")),
        "{refused}"
    );
    assert_eq!(applying_unit(&p, &t), Some(u("hg")));
    let fx = simulate(
        &p,
        &t,
        &KindCatalogue::default(),
        &u("hg"),
        &Facts::default(),
    )
    .unwrap();
    assert_eq!(fx.moves.len(), 1);
    assert_eq!(applying_unit(&plan("elsewhere", p_steps()), &t), None);
}

fn p_steps() -> Vec<StepInput> {
    vec![StepInput {
        kind: "rename".into(),
        unit: "g1".into(),
        name: "G1".into(),
        ..StepInput::default()
    }]
}

/// Every field a step's kind does not take is refused, naming it.
#[test]
fn a_field_a_kind_does_not_take_is_refused() {
    let kinds = KindCatalogue::default();
    let today = Date::new(2026, 11, 22).unwrap();
    let base = |kind: &str| StepInput {
        kind: kind.into(),
        unit: "g1".into(),
        name: "G1".into(),
        unit_kind: "grassroots".into(),
        to: "hg".into(),
        units: vec!["g1".into()],
        members: vec!["m1".into()],
        successors: vec!["g2".into()],
        parts: vec![vec!["g1".into()]],
        reason: "lý do".into(),
        on: "2026-01-01".into(),
        node: "hg-node".into(),
    };
    let takes: &[(&str, &[&str])] = &[
        ("create", &["unit", "name", "unit_kind", "to"]),
        ("rename", &["unit", "name"]),
        ("move", &["units", "to"]),
        ("merge", &["units", "to"]),
        ("split", &["unit", "successors", "parts"]),
        ("close", &["unit", "successors", "reason"]),
        ("cease", &["units", "members", "reason", "on"]),
        ("seal", &["node", "reason"]),
    ];
    for (kind, fields) in takes {
        // Only the fields it takes: parsed.
        let mut only = StepInput {
            kind: (*kind).into(),
            ..StepInput::default()
        };
        let full = base(kind);
        for f in *fields {
            match *f {
                "unit" => only.unit = full.unit.clone(),
                "name" => only.name = full.name.clone(),
                "unit_kind" => only.unit_kind = full.unit_kind.clone(),
                "to" => only.to = full.to.clone(),
                "units" => only.units = full.units.clone(),
                "members" => only.members = full.members.clone(),
                "successors" => only.successors = full.successors.clone(),
                "parts" => only.parts = full.parts.clone(),
                "reason" => only.reason = full.reason.clone(),
                "on" => only.on = full.on.clone(),
                "node" => only.node = full.node.clone(),
                other => panic!("{other}"),
            }
        }
        only.parse(&kinds, today)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        // Every field: the first one it does not take is named.
        let err = full.parse(&kinds, today).unwrap_err().to_string();
        assert!(
            err.contains(&format!("a {kind} step takes no ")),
            "{kind}: {err}"
        );
        let named = err.split(':').next().unwrap();
        assert!(!fields.contains(&named), "{kind}: {err}");
    }
}
