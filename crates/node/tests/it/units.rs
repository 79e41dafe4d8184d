//! UnitService: the tree through create, rename, move and close; listing
//! by depth and status; kinds; every refusal names its field.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_and_lists_the_tree() -> Result<()> {
    let node = Node::with_tree().await?;

    for (id, depth, parent, kind) in [
        (VN, 0, "", "central"),
        (HG, 1, VN, "provincial"),
        (HG_CT, 2, HG, "commune"),
        (HG_A, 3, HG_CT, "grassroots"),
        (LC_C, 2, LC, "grassroots"),
    ] {
        let u = node.unit(id).await?;
        assert_eq!(
            (u.depth, u.parent_id.as_str(), u.kind.as_str()),
            (depth, parent, kind),
            "{id}"
        );
        assert_eq!(u.status, pb::UnitStatus::Active as i32, "{id}");
        assert_eq!(u.name_history.len(), 1, "{id}");
        assert_eq!(u.parent_history.len(), 1, "{id}");
        // The node's own unit, recorded at its first start, holds from
        // the beginning of the records: the office existed before its node.
        let since = if id == VN { "1900-01-01" } else { TODAY };
        assert_eq!(u.parent_history[0].effective_on, since, "{id}");
        assert_eq!(u.parent_history[0].decided_on, TODAY, "{id}");
    }

    // Root first, parents before children.
    let all = node
        .units()
        .list_units(pb::ListUnitsRequest::default())
        .await?
        .into_inner()
        .units;
    let ids: Vec<&str> = all.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids.len(), 7, "{ids:?}");
    assert_eq!(ids[0], VN);
    for u in &all[1..] {
        let p = ids.iter().position(|i| *i == u.parent_id).unwrap();
        let me = ids.iter().position(|i| *i == u.id).unwrap();
        assert!(p < me, "{} listed before its parent: {ids:?}", u.id);
    }

    assert_eq!(node.unit_ids(VN, Some(0)).await?, [VN]);
    let mut top = node.unit_ids(VN, Some(1)).await?;
    top.sort();
    assert_eq!(top, [HG, LC, VN]);
    assert_eq!(node.unit_ids(VN, Some(2)).await?.len(), 5);
    let mut hg = node.unit_ids(HG, None).await?;
    hg.sort();
    assert_eq!(hg, [HG, HG_CT, HG_B, HG_A]);
    assert_eq!(node.unit_ids(HG_A, None).await?, [HG_A]);

    // A unit's depth is its depth in the tree wherever the listing starts;
    // max_depth counts from the listing's root.
    for root in [VN, HG, HG_CT] {
        let listed = node
            .units()
            .list_units(pb::ListUnitsRequest {
                root_id: root.into(),
                include_closed: false,
                max_depth: Some(1),
            })
            .await?
            .into_inner()
            .units;
        assert_eq!(listed[0].id, root);
        let base = node.unit(root).await?.depth;
        for u in &listed {
            assert_eq!(
                u.depth,
                node.unit(&u.id).await?.depth,
                "{} listed from {root}",
                u.id
            );
            assert!(u.depth <= base + 1, "{} is deeper than max_depth", u.id);
        }
    }

    // An unknown root names the field.
    expect_invalid(
        node.units()
            .list_units(pb::ListUnitsRequest {
                root_id: "khong-co".into(),
                ..Default::default()
            })
            .await,
        "root_id",
    );
    expect_code(
        node.units()
            .get_unit(pb::GetUnitRequest {
                unit_id: "khong-co".into(),
            })
            .await,
        Code::NotFound,
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_unit_kinds() -> Result<()> {
    let node = Node::start().await?;
    let kinds = node
        .units()
        .list_unit_kinds(pb::ListUnitKindsRequest {})
        .await?
        .into_inner()
        .kinds;
    let get = |id: &str| kinds.iter().find(|k| k.id == id);
    for id in ["central", "provincial", "commune", "district", "grassroots"] {
        assert!(get(id).is_some(), "kind {id} missing from {kinds:?}");
    }
    assert!(get("grassroots").unwrap().holds_members);
    assert!(!get("central").unwrap().holds_members);
    assert!(!get("commune").unwrap().holds_members);
    assert!(kinds.iter().all(|k| !k.label.is_empty()));
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_generates_an_id_when_none_is_given() -> Result<()> {
    let node = Node::with_tree().await?;
    let u = node
        .units()
        .create_unit(pb::CreateUnitRequest {
            id: None,
            name: "CĐCS Bệnh viện C".into(),
            kind: "grassroots".into(),
            parent_id: HG_CT.into(),
            effective_on: "2025-07-01".into(),
            decision_no: "45/QĐ-CĐX".into(),
        })
        .await?
        .into_inner();
    assert!(!u.id.is_empty());
    assert_eq!((u.depth, u.parent_id.as_str()), (3, HG_CT));
    assert_eq!(u.parent_history[0].effective_on, "2025-07-01");
    assert_eq!(u.parent_history[0].decided_on, TODAY);
    assert_eq!(u.name_history[0].decision_no, "45/QĐ-CĐX");
    assert_eq!(node.unit(&u.id).await?.name, "CĐCS Bệnh viện C");
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_bad_requests_and_writes_nothing() -> Result<()> {
    let node = Node::with_tree().await?;
    let mark = node.mark().await?;
    let req = |id: &str, kind: &str, parent: &str| pb::CreateUnitRequest {
        id: Some(id.to_owned()),
        name: "Đơn vị mới".into(),
        kind: kind.to_owned(),
        parent_id: parent.to_owned(),
        ..Default::default()
    };
    let mut units = node.units();

    let m = expect_invalid(units.create_unit(req("moi", "planet", HG)).await, "kind");
    assert!(m.contains("planet"), "{m}");
    expect_invalid(
        units.create_unit(req("moi", "commune", "")).await,
        "parent_id",
    );
    let m = expect_invalid(
        units.create_unit(req("moi", "commune", "khong-co")).await,
        "parent_id",
    );
    assert!(m.contains("does not exist"), "{m}");
    let m = expect_invalid(
        units.create_unit(req("moi", "grassroots", HG_A)).await,
        "parent_id",
    );
    assert!(m.contains("grassroots"), "{m}");
    expect_invalid(units.create_unit(req("Bad Id", "commune", HG)).await, "id");
    let mut no_name = req("moi", "commune", HG);
    no_name.name = "  ".into();
    expect_invalid(units.create_unit(no_name).await, "name");
    let mut bad_date = req("moi", "commune", HG);
    bad_date.effective_on = "22/11/2026".into();
    expect_invalid(units.create_unit(bad_date).await, "effective_on");

    let s = expect_code(
        units.create_unit(req(HG_A, "grassroots", HG_CT)).await,
        Code::AlreadyExists,
    );
    assert!(s.message().contains(HG_A), "{s:?}");
    // The same id under another parent is still a duplicate.
    expect_code(
        units.create_unit(req(HG, "provincial", VN)).await,
        Code::AlreadyExists,
    );

    node.unchanged_since(mark).await?;
    assert_eq!(node.unit(HG_A).await?.parent_id, HG_CT);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_keeps_the_name_history() -> Result<()> {
    let node = Node::with_tree().await?;
    let u = node
        .units()
        .rename_unit(pb::RenameUnitRequest {
            unit_id: HG.into(),
            name: "LĐLĐ thành phố Cần Thơ".into(),
            effective_on: "2025-07-01".into(),
            decision_no: "759/QĐ-TLĐ".into(),
        })
        .await?
        .into_inner();
    assert_eq!(u.name, "LĐLĐ thành phố Cần Thơ");
    let names: Vec<(&str, &str)> = u
        .name_history
        .iter()
        .map(|n| (n.name.as_str(), n.effective_on.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("LĐLĐ tỉnh Hậu Giang", TODAY),
            ("LĐLĐ thành phố Cần Thơ", "2025-07-01")
        ]
    );
    assert_eq!(u.name_history[1].decision_no, "759/QĐ-TLĐ");
    assert_eq!(node.unit(HG).await?.name_history.len(), 2);
    // The listing (a projection) follows.
    let listed = node
        .units()
        .list_units(pb::ListUnitsRequest {
            root_id: HG.into(),
            max_depth: Some(0),
            ..Default::default()
        })
        .await?
        .into_inner()
        .units;
    assert_eq!(listed[0].name, "LĐLĐ thành phố Cần Thơ");

    let mark = node.mark().await?;
    expect_invalid(
        node.units()
            .rename_unit(pb::RenameUnitRequest {
                unit_id: HG.into(),
                name: String::new(),
                ..Default::default()
            })
            .await,
        "name",
    );
    node.unchanged_since(mark).await?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_reparents_the_whole_subtree() -> Result<()> {
    let node = Node::with_tree().await?;
    let m = node
        .add(HG_A, person("Nguyễn Văn An", "HG-0001", pb::Gender::Male))
        .await?;

    // Decided today, effective in the past (the 2025 reform did this).
    let u = node
        .units()
        .move_unit(pb::MoveUnitRequest {
            unit_id: HG_CT.into(),
            new_parent_id: LC.into(),
            decided_on: "2026-11-01".into(),
            effective_on: "2025-08-27".into(),
            decision_no: "12/QĐ-TLĐ".into(),
        })
        .await?
        .into_inner();
    assert_eq!(u.parent_id, LC);
    let parents: Vec<(&str, &str, &str)> = u
        .parent_history
        .iter()
        .map(|p| {
            (
                p.parent_id.as_str(),
                p.decided_on.as_str(),
                p.effective_on.as_str(),
            )
        })
        .collect();
    assert_eq!(
        parents,
        [(HG, TODAY, TODAY), (LC, "2026-11-01", "2025-08-27")]
    );

    // The closure table moved the grandchildren too.
    let mut lc = node.unit_ids(LC, None).await?;
    lc.sort();
    assert_eq!(lc, [HG_CT, HG_B, HG_A, LC, LC_C]);
    assert_eq!(node.unit_ids(HG, None).await?, [HG]);
    assert_eq!(node.unit(HG_A).await?.depth, 3);

    // Members follow their unit in subtree listings and reports.
    let in_lc = node.list(LC, true, None).await?;
    assert_eq!(in_lc.total, 1);
    assert_eq!(in_lc.members[0].id, m.id);
    assert_eq!(node.list(HG, true, None).await?.total, 0);
    let report = node
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: VN.into(),
            as_of: String::new(),
        })
        .await?
        .into_inner();
    let row = |id: &str| report.rows.iter().find(|r| r.unit_id == id).unwrap().active;
    assert_eq!((row(HG), row(LC)), (0, 1));

    // And writes under the moved subtree still work.
    node.add(HG_B, person("Trần Thị Bích", "HG-0002", pb::Gender::Female))
        .await?;
    assert_eq!(node.list(LC, true, None).await?.total, 2);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_refuses_cycles_and_leaf_parents() -> Result<()> {
    let node = Node::with_tree().await?;
    let mark = node.mark().await?;
    let mv = |unit: &str, to: &str| pb::MoveUnitRequest {
        unit_id: unit.to_owned(),
        new_parent_id: to.to_owned(),
        ..Default::default()
    };
    let mut units = node.units();

    let m = expect_invalid(units.move_unit(mv(HG, HG_CT)).await, "new_parent_id");
    assert!(m.contains("cycle"), "{m}");
    expect_invalid(units.move_unit(mv(HG, HG)).await, "new_parent_id");
    expect_invalid(units.move_unit(mv(VN, LC)).await, "new_parent_id");
    let m = expect_invalid(units.move_unit(mv(HG_CT, LC_C)).await, "new_parent_id");
    assert!(m.contains("grassroots"), "{m}");
    expect_invalid(units.move_unit(mv(HG_CT, HG)).await, "new_parent_id");
    expect_invalid(
        units.move_unit(mv(HG_CT, "khong-co")).await,
        "new_parent_id",
    );
    expect_invalid(units.move_unit(mv("khong-co", HG)).await, "unit_id");

    node.unchanged_since(mark).await?;
    assert_eq!(node.unit(HG).await?.parent_id, VN);
    assert_eq!(node.unit(HG_CT).await?.parent_history.len(), 1);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_requires_no_active_members_or_children() -> Result<()> {
    let node = Node::with_tree().await?;
    let m = node
        .add(HG_A, person("Nguyễn Văn An", "HG-0001", pb::Gender::Male))
        .await?;
    let mark = node.mark().await?;

    let m1 = expect_invalid(
        node.units()
            .close_unit(pb::CloseUnitRequest {
                unit_id: HG_CT.into(),
                reason: "sáp nhập".into(),
                ..Default::default()
            })
            .await,
        "unit_id",
    );
    assert!(m1.contains("child units"), "{m1}");
    let m2 = expect_invalid(
        node.units()
            .close_unit(pb::CloseUnitRequest {
                unit_id: HG_A.into(),
                reason: "giải thể".into(),
                ..Default::default()
            })
            .await,
        "unit_id",
    );
    assert!(m2.contains("active members"), "{m2}");
    expect_invalid(
        node.units()
            .close_unit(pb::CloseUnitRequest {
                unit_id: HG_B.into(),
                reason: String::new(),
                ..Default::default()
            })
            .await,
        "reason",
    );
    expect_invalid(
        node.units()
            .close_unit(pb::CloseUnitRequest {
                unit_id: HG_B.into(),
                reason: "sáp nhập".into(),
                merged: true,
                ..Default::default()
            })
            .await,
        "successor_ids",
    );
    node.unchanged_since(mark).await?;

    // Once the member has left and the children are closed, it closes.
    node.end(&m.id, pb::MemberStatus::Left, "nghỉ hưu").await?;
    let a = node.close_unit(HG_A).await?;
    assert_eq!(a.status, pb::UnitStatus::Closed as i32);
    assert_eq!(
        (a.closed_on.as_str(), a.close_reason.as_str()),
        (TODAY, "giải thể")
    );
    let b = node
        .units()
        .close_unit(pb::CloseUnitRequest {
            unit_id: HG_B.into(),
            reason: "sáp nhập vào Trường A".into(),
            effective_on: "2026-07-01".into(),
            decision_no: "7/QĐ".into(),
            successor_ids: vec![LC_C.into()],
            merged: true,
        })
        .await?
        .into_inner();
    assert_eq!(b.status, pb::UnitStatus::Merged as i32);
    assert_eq!(b.successor_ids, [LC_C]);
    assert_eq!(b.closed_on, "2026-07-01");
    let ct = node.close_unit(HG_CT).await?;
    assert_eq!(ct.status, pb::UnitStatus::Closed as i32);

    // Closing twice is refused.
    expect_invalid(
        node.units()
            .close_unit(pb::CloseUnitRequest {
                unit_id: HG_A.into(),
                reason: "lần hai".into(),
                ..Default::default()
            })
            .await,
        "unit_id",
    );

    // Closed units drop out of the listing unless asked for.
    assert_eq!(node.unit_ids(HG, None).await?, [HG]);
    let with_closed = node
        .units()
        .list_units(pb::ListUnitsRequest {
            root_id: HG.into(),
            include_closed: true,
            max_depth: None,
        })
        .await?
        .into_inner()
        .units;
    assert_eq!(with_closed.len(), 4);
    let listed_b = with_closed.iter().find(|u| u.id == HG_B).unwrap();
    assert_eq!(listed_b.status, pb::UnitStatus::Merged as i32);
    assert_eq!(listed_b.successor_ids, [LC_C]);

    // Nothing can be created under a closed or merged unit.
    let mark = node.mark().await?;
    let m = expect_invalid(
        node.units()
            .create_unit(pb::CreateUnitRequest {
                id: Some("moi".into()),
                name: "CĐCS mới".into(),
                kind: "grassroots".into(),
                parent_id: HG_CT.into(),
                ..Default::default()
            })
            .await,
        "parent_id",
    );
    assert!(m.contains("closed"), "{m}");
    node.close_unit(LC_C).await?;
    node.units()
        .close_unit(pb::CloseUnitRequest {
            unit_id: LC.into(),
            reason: "hợp nhất".into(),
            successor_ids: vec![HG.into()],
            merged: true,
            ..Default::default()
        })
        .await?;
    let mark2 = node.mark().await?;
    assert!(mark2.feed > mark.feed);
    let m = expect_invalid(
        node.units()
            .create_unit(pb::CreateUnitRequest {
                id: Some("moi".into()),
                name: "Công đoàn xã mới".into(),
                kind: "commune".into(),
                parent_id: LC.into(),
                ..Default::default()
            })
            .await,
        "parent_id",
    );
    assert!(m.contains("merged"), "{m}");
    // Nor can a unit move under one.
    expect_invalid(
        node.units()
            .move_unit(pb::MoveUnitRequest {
                unit_id: HG.into(),
                new_parent_id: LC.into(),
                ..Default::default()
            })
            .await,
        "new_parent_id",
    );
    node.unchanged_since(mark2).await?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_tree_and_members() -> Result<()> {
    let node = Node::with_tree().await?;
    let m = node
        .add(HG_A, person("Nguyễn Văn An", "HG-0001", pb::Gender::Male))
        .await?;
    let before = node.mark().await?;
    let dir = node.stop_keeping_data().await?;

    let node = Node::start_in(dir).await?;
    // Starting again does not re-create the hosted unit's record. Only the
    // node's own record is written again: this test node listens on a new
    // port, so its address changed.
    let after = node.mark().await?;
    assert_eq!(after.documents, before.documents);
    assert_eq!(after.feed, before.feed + 1);
    let own = node.app.node_record().await?.expect("its record");
    assert_eq!(own.info.address, format!("https://{}", node.addr));
    assert_eq!(node.unit_ids(VN, None).await?.len(), 7);
    assert_eq!(node.member(&m.id, false).await?.full_name, "Nguyễn Văn An");
    node.add(HG_B, person("Trần Thị Bích", "HG-0002", pb::Gender::Female))
        .await?;
    assert!(node.feed().await? > before.feed);
    node.stop().await
}
