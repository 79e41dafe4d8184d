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
