use super::*;
use crate::doc::{Author, DocId};
use crate::tree::TreeNode;
use crate::unit::UnitStatus;
use automerge::Automerge;

fn u(s: &str) -> UnitId {
    UnitId::parse("u", s).unwrap()
}

fn d(s: &str) -> Date {
    Date::parse("d", s).unwrap()
}

/// vn ─ hg ─ hg-d1 ─ g1, g2
///    ├ st ─ st-d1 ─ g3
///    └ ct ─ ct-w1
fn tree() -> UnitTree {
    let mut t = UnitTree::new();
    for (id, parent, kind) in [
        ("vn", None, "central"),
        ("hg", Some("vn"), "provincial"),
        ("st", Some("vn"), "provincial"),
        ("ct", Some("vn"), "provincial"),
        ("hg-d1", Some("hg"), "district"),
        ("st-d1", Some("st"), "district"),
        ("ct-w1", Some("ct"), "commune"),
        ("g1", Some("hg-d1"), "grassroots"),
        ("g2", Some("hg-d1"), "grassroots"),
        ("g3", Some("st-d1"), "grassroots"),
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

fn facts() -> Facts {
    let mut f = Facts::default();
    for id in ["vn", "hg", "st", "ct", "hg-d1", "st-d1", "g1", "g2", "g3"] {
        f.created_on.insert(u(id), d("2010-01-01"));
    }
    f.created_on.insert(u("ct-w1"), d("2025-07-01"));
    f.active_members.insert(u("g1"), 30);
    f.active_members.insert(u("g2"), 12);
    f.active_members.insert(u("g3"), 5);
    f.member_units
        .insert(MemberId::parse("m", "m1").unwrap(), u("g3"));
    f
}

fn step(kind: &str) -> StepInput {
    StepInput {
        kind: kind.to_owned(),
        ..StepInput::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn plan(steps: Vec<StepInput>) -> PlanInput {
    PlanInput {
        id: "d1".to_owned(),
        number: "759/QĐ-TLĐ".to_owned(),
        title: "Sắp xếp tổ chức".to_owned(),
        decided_on: "2025-08-27".to_owned(),
        effective_on: "2025-07-01".to_owned(),
        issuing_unit: "vn".to_owned(),
        steps,
    }
}

fn run(input: &PlanInput, node: &str) -> Result<Effects, ModelError> {
    let kinds = KindCatalogue::default();
    let plan = Plan::parse(input, &kinds, d("2025-12-01"))?;
    simulate(&plan, &tree(), &kinds, &u(node), &facts())
}

fn refused(input: &PlanInput) -> (String, String) {
    match run(input, "vn") {
        Err(ModelError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn merger() -> Vec<StepInput> {
    vec![StepInput {
        units: strings(&["hg", "st"]),
        to: "ct".to_owned(),
        ..step("merge")
    }]
}

#[test]
fn a_province_merger_moves_the_children_and_closes_the_sources() {
    let fx = run(&plan(merger()), "vn").unwrap();
    let moved: Vec<(&str, &str)> = fx
        .moves
        .iter()
        .map(|m| (m.unit.as_str(), m.to.as_str()))
        .collect();
    assert_eq!(moved, [("hg-d1", "ct"), ("st-d1", "ct")]);
    let closed: Vec<(&str, UnitStatus)> = fx
        .closes
        .iter()
        .map(|c| (c.unit.as_str(), c.status))
        .collect();
    assert_eq!(
        closed,
        [("hg", UnitStatus::Merged), ("st", UnitStatus::Merged)]
    );
    assert_eq!(fx.closes[0].successors, [u("ct")]);
    assert!(fx.transfers.is_empty(), "provinces keep no roster");
    let t = &fx.tree_after;
    assert!(t.is_within(&u("g1"), &u("ct")));
    assert!(t.is_within(&u("g3"), &u("ct")));
    assert_eq!(t.get(&u("hg")).unwrap().status, UnitStatus::Merged);
}

#[test]
fn merging_grassroots_unions_transfers_their_members() {
    let fx = run(
        &plan(vec![StepInput {
            units: strings(&["g2"]),
            to: "g1".to_owned(),
            ..step("merge")
        }]),
        "vn",
    )
    .unwrap();
    assert_eq!(fx.transfers, [(u("g2"), u("g1"))]);
    assert_eq!(fx.closes[0].unit, u("g2"));
}

#[test]
fn a_district_abolished_its_unions_moved_to_a_ward_then_closed() {
    let fx = run(
        &plan(vec![
            StepInput {
                units: strings(&["g1", "g2"]),
                to: "ct-w1".to_owned(),
                ..step("move")
            },
            StepInput {
                unit: "hg-d1".to_owned(),
                successors: strings(&["ct-w1"]),
                reason: "Bãi bỏ cấp huyện".to_owned(),
                ..step("close")
            },
        ]),
        "vn",
    )
    .unwrap();
    assert_eq!(fx.moves.len(), 2);
    assert_eq!(fx.closes[0].status, UnitStatus::Closed);
}

#[test]
fn create_rename_split_and_cease_are_planned() {
    let fx = run(
        &plan(vec![
            StepInput {
                unit: "ct-w2".to_owned(),
                name: "Công đoàn phường Vị Tân".to_owned(),
                unit_kind: "commune".to_owned(),
                to: "ct".to_owned(),
                ..step("create")
            },
            StepInput {
                unit: "ct".to_owned(),
                name: "LĐLĐ thành phố Cần Thơ".to_owned(),
                ..step("rename")
            },
            StepInput {
                unit: "hg-d1".to_owned(),
                successors: strings(&["ct-w1", "ct-w2"]),
                parts: vec![strings(&["g1"]), strings(&["g2"])],
                ..step("split")
            },
            StepInput {
                units: strings(&["g1"]),
                members: strings(&["m1"]),
                reason: "Giải thể công đoàn cơ sở".to_owned(),
                ..step("cease")
            },
        ]),
        "vn",
    )
    .unwrap();
    assert_eq!(fx.creates[0].0, u("ct-w2"));
    assert_eq!(fx.renames[0].0, u("ct"));
    assert_eq!(fx.moves.len(), 2);
    assert_eq!(
        fx.tree_after.get(&u("g2")).unwrap().parent,
        Some(u("ct-w2"))
    );
    assert_eq!(fx.closes[0].successors, [u("ct-w1"), u("ct-w2")]);
    let c = &fx.ceases[0];
    assert_eq!(c.units, [u("g1")]);
    assert_eq!(c.members[&u("g3")], [MemberId::parse("m", "m1").unwrap()]);
    assert_eq!(c.on, d("2025-07-01"), "the effective date by default");
}

#[test]
fn a_cycle_is_refused_naming_the_step() {
    let (field, reason) = refused(&plan(vec![StepInput {
        units: strings(&["hg"]),
        to: "g1".to_owned(),
        ..step("move")
    }]));
    // g1 is a grassroots union: the kind is checked first.
    assert_eq!(field, "steps[0].to");
    assert!(reason.contains("cannot hold child units"), "{reason}");
    let (field, reason) = refused(&plan(vec![StepInput {
        units: strings(&["hg"]),
        to: "hg-d1".to_owned(),
        ..step("move")
    }]));
    assert_eq!(field, "steps[0].units[0]");
    assert!(reason.contains("cycle"), "{reason}");
}

#[test]
fn a_closed_target_is_refused() {
    let mut steps = merger();
    steps.push(StepInput {
        units: strings(&["ct-w1"]),
        to: "hg".to_owned(),
        ..step("move")
    });
    let (field, reason) = refused(&plan(steps));
    assert_eq!(field, "steps[1].to");
    assert!(reason.contains("merged"), "{reason}");
}

#[test]
fn a_unit_named_twice_is_refused() {
    let (field, reason) = refused(&plan(vec![
        StepInput {
            units: strings(&["g1"]),
            to: "ct-w1".to_owned(),
            ..step("move")
        },
        StepInput {
            units: strings(&["g1"]),
            to: "hg-d1".to_owned(),
            ..step("move")
        },
    ]));
    assert_eq!(field, "steps[1].units[0]");
    assert!(reason.contains("named twice"), "{reason}");
    let input = plan(vec![StepInput {
        units: strings(&["g1", "g1"]),
        to: "ct-w1".to_owned(),
        ..step("move")
    }]);
    let e = Plan::parse(&input, &KindCatalogue::default(), d("2025-12-01")).unwrap_err();
    assert_eq!(
        e,
        ModelError::invalid(
            "steps[0].units[1]",
            "unit g1 is named twice (also units[0])"
        )
    );
}

#[test]
fn a_date_before_the_unit_existed_is_refused() {
    let mut input = plan(vec![StepInput {
        units: strings(&["g1"]),
        to: "ct-w1".to_owned(),
        ..step("move")
    }]);
    input.effective_on = "2025-06-30".to_owned();
    let (field, reason) = refused(&input);
    assert_eq!(field, "steps[0].to");
    assert!(reason.contains("before unit ct-w1 existed"), "{reason}");
}

#[test]
fn closing_a_unit_that_still_has_members_or_children_is_refused() {
    let (field, reason) = refused(&plan(vec![StepInput {
        unit: "g1".to_owned(),
        reason: "x".to_owned(),
        ..step("close")
    }]));
    assert_eq!(field, "steps[0].unit");
    assert!(reason.contains("30 active members"), "{reason}");
    // Ceased in an earlier step, it may close.
    run(
        &plan(vec![
            StepInput {
                units: strings(&["g1"]),
                reason: "Giải thể".to_owned(),
                ..step("cease")
            },
            StepInput {
                unit: "g1".to_owned(),
                reason: "Giải thể".to_owned(),
                ..step("close")
            },
        ]),
        "vn",
    )
    .unwrap();
    let (_, reason) = refused(&plan(vec![StepInput {
        unit: "hg-d1".to_owned(),
        reason: "x".to_owned(),
        ..step("close")
    }]));
    assert!(reason.contains("active child units (g1, g2)"), "{reason}");
}

#[test]
fn a_split_must_give_every_child_to_a_successor() {
    let (field, reason) = refused(&plan(vec![StepInput {
        unit: "hg-d1".to_owned(),
        successors: strings(&["ct-w1"]),
        parts: vec![strings(&["g1"])],
        ..step("split")
    }]));
    assert_eq!(field, "steps[0].parts");
    assert!(reason.contains("g2"), "{reason}");
}

#[test]
fn a_node_without_authority_is_refused_and_told_where_to_apply() {
    let e = run(&plan(merger()), "hg").unwrap_err();
    assert!(matches!(e, ModelError::NoAuthority { .. }), "{e}");
    let kinds = KindCatalogue::default();
    let p = Plan::parse(&plan(merger()), &kinds, d("2025-12-01")).unwrap();
    assert_eq!(applying_unit(&p, &tree()), Some(u("vn")));
    let mut within = plan(vec![StepInput {
        units: strings(&["g1"]),
        to: "g2".to_owned(),
        ..step("merge")
    }]);
    within.issuing_unit = "hg-d1".to_owned();
    let p = Plan::parse(&within, &kinds, d("2025-12-01")).unwrap();
    assert_eq!(applying_unit(&p, &tree()), Some(u("hg-d1")));
    // At the district's own node it applies.
    run(&within, "hg-d1").unwrap();
}

#[test]
fn a_unit_outside_the_issuing_units_subtree_is_refused() {
    let mut input = plan(vec![StepInput {
        units: strings(&["g3"]),
        to: "hg-d1".to_owned(),
        ..step("move")
    }]);
    input.issuing_unit = "hg".to_owned();
    let (field, reason) = refused(&input);
    assert_eq!(field, "steps[0].units[0]");
    assert!(
        reason.contains("outside the subtree of the issuing unit hg"),
        "{reason}"
    );
}

#[test]
fn fields_a_step_does_not_take_are_refused() {
    let e = Plan::parse(
        &plan(vec![StepInput {
            units: strings(&["g1"]),
            to: "ct-w1".to_owned(),
            members: strings(&["m1"]),
            ..step("move")
        }]),
        &KindCatalogue::default(),
        d("2025-12-01"),
    )
    .unwrap_err();
    assert_eq!(
        e,
        ModelError::invalid("steps[0].members", "a move step takes no members")
    );
    let e = Plan::parse(
        &plan(vec![step("dissolve")]),
        &KindCatalogue::default(),
        d("2025-12-01"),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("steps[0].kind: unknown step"),
        "{e}"
    );
}

#[test]
fn a_cessation_after_a_merge_moved_the_members_is_refused() {
    let (field, reason) = refused(&plan(vec![
        StepInput {
            units: strings(&["g2"]),
            to: "g1".to_owned(),
            ..step("merge")
        },
        StepInput {
            units: strings(&["g2"]),
            reason: "x".to_owned(),
            ..step("cease")
        },
    ]));
    assert_eq!(field, "steps[1].units[0]");
    assert!(reason.contains("merged"), "{reason}");
}

#[test]
fn the_document_keeps_the_plan_and_its_outcome() {
    let kinds = KindCatalogue::default();
    let p = Plan::parse(&plan(merger()), &kinds, d("2025-12-01")).unwrap();
    let rec = Recorded {
        plan: normal_input(&p),
        id: p.id.clone(),
        applied_at: "2025-08-27T09:00:00Z".to_owned(),
        applied_by: "vn".to_owned(),
        outcome: Outcome {
            units_moved: 2,
            units_closed: 2,
            ..Outcome::default()
        },
        seals: vec![Seal {
            doc: "roster/g1".to_owned(),
            heads: vec!["ab".repeat(32)],
        }],
        given_up: vec![super::GivenUp {
            node: "hg-node".to_owned(),
            reason: "máy chủ hỏng, không khôi phục được".to_owned(),
            units: 3,
            members: 40,
            personal_data_here: false,
            held_discarded: 2,
        }],
    };
    let mut doc = Automerge::new();
    let author = Author {
        actor: automerge::ActorId::random(),
        time_millis: 0,
    };
    write(&mut doc, &author, &rec).unwrap();
    let id = DocId::Decision(p.id.clone());
    assert_eq!(read(&id, &doc).unwrap(), rec);
    crate::shape::check(&id, &doc, &[]).expect("the decision as written has its kind's shape");
    let meta = crate::DocMeta::read(id, &doc).unwrap();
    assert_eq!(meta.owner, u("vn"));
    // A plan read back parses to the same plan.
    assert_eq!(Plan::parse(&rec.plan, &kinds, d("2025-12-01")).unwrap(), p);
    assert!(write(&mut doc, &author, &rec).is_err(), "written once");
}
