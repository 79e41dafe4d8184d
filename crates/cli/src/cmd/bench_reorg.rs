//! `hopluu bench-reorg`: reorganisation decisions at the scale of 2025,
//! through the gRPC API of one node (SQLite and PostgreSQL): a decision
//! creating the units, a decision moving every grassroots union (900 by
//! default) from the districts to the commune unions, and one ceasing the
//! members of 800 grassroots unions (30,000 members). Each decision is
//! timed as a dry run and as applied.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Args;
use hopluu_proto::v1 as pb;
use tonic::transport::Channel;

use super::bench_common::{Backends, BenchNode, member_input};

#[derive(Args, Debug)]
pub struct BenchReorgArgs {
    /// Grassroots unions, all moved by one decision.
    #[arg(long, default_value_t = 900)]
    units: usize,
    /// Of those, how many hold members (all ceased by one decision).
    #[arg(long, default_value_t = 800)]
    ceased_units: usize,
    /// Members in those unions.
    #[arg(long, default_value_t = 30_000)]
    members: usize,
    #[command(flatten)]
    db: Backends,
}

/// Districts and commune unions the grassroots unions are spread over.
const DISTRICTS: usize = 10;

struct Figures {
    backend: String,
    create: Duration,
    move_dry: Duration,
    move_apply: Duration,
    moved: u64,
    cease_dry: Duration,
    cease_apply: Duration,
    ceased: u64,
}

pub async fn run(args: BenchReorgArgs) -> anyhow::Result<()> {
    ensure!(
        args.ceased_units <= args.units,
        "--ceased-units {} is more than --units {}",
        args.ceased_units,
        args.units
    );
    let mut all = Vec::new();
    for backend in &args.db.backends {
        eprintln!(
            "bench-reorg: {backend}, {} units, {} members ...",
            args.units, args.members
        );
        all.push(
            run_one(&args, backend)
                .await
                .with_context(|| format!("bench-reorg on {backend}"))?,
        );
    }
    println!(
        "hopluu bench-reorg: one decision moving {} grassroots unions; one ceasing {} members of {} unions",
        args.units, args.members, args.ceased_units
    );
    let mut t = crate::output::Table::new(&[
        "backend",
        "create units",
        "move: dry run",
        "move: apply",
        "units moved",
        "cease: dry run",
        "cease: apply",
        "members ceased",
    ]);
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    for f in &all {
        t.row(vec![
            f.backend.clone(),
            s(f.create),
            s(f.move_dry),
            s(f.move_apply),
            f.moved.to_string(),
            s(f.cease_dry),
            s(f.cease_apply),
            f.ceased.to_string(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

fn step(kind: &str) -> pb::ReorgStep {
    pb::ReorgStep {
        kind: kind.to_owned(),
        ..pb::ReorgStep::default()
    }
}

fn plan(number: &str, effective_on: &str, steps: Vec<pb::ReorgStep>) -> pb::ReorgPlan {
    pb::ReorgPlan {
        number: number.to_owned(),
        title: "bench-reorg".to_owned(),
        decided_on: "2025-08-27".to_owned(),
        effective_on: effective_on.to_owned(),
        issuing_unit: "vn".to_owned(),
        steps,
        ..pb::ReorgPlan::default()
    }
}

/// Applies `plan` (or only dry-runs it), timed.
async fn apply(
    c: &mut pb::reorg_service_client::ReorgServiceClient<Channel>,
    plan: pb::ReorgPlan,
    dry_run: bool,
) -> anyhow::Result<(Duration, pb::ReorgImpact)> {
    let t = Instant::now();
    let r = c
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(plan),
            dry_run,
        })
        .await?
        .into_inner();
    let took = t.elapsed();
    ensure!(
        r.applied != dry_run,
        "applied is {} for dry_run {dry_run}",
        r.applied
    );
    Ok((took, r.impact.unwrap_or_default()))
}

async fn run_one(args: &BenchReorgArgs, backend: &str) -> anyhow::Result<Figures> {
    let today = hopluu_model::Date::new(2026, 11, 22).expect("valid date");
    let node = BenchNode::start(backend, &args.db.postgres, today).await?;
    let mut reorg = pb::reorg_service_client::ReorgServiceClient::new(node.channel.clone());

    // The 2024 tree, created by one decision: a province, its districts,
    // the grassroots unions spread over them; and the commune unions of
    // 1 July 2025.
    let grassroots: Vec<String> = (0..args.units).map(|g| format!("g{g:04}")).collect();
    let mut steps = vec![pb::ReorgStep {
        unit: "p1".into(),
        name: "LĐLĐ tỉnh".into(),
        unit_kind: "provincial".into(),
        to: "vn".into(),
        ..step("create")
    }];
    for d in 0..DISTRICTS {
        steps.push(pb::ReorgStep {
            unit: format!("d{d}"),
            name: format!("LĐLĐ huyện {d}"),
            unit_kind: "district".into(),
            to: "p1".into(),
            ..step("create")
        });
    }
    for (i, g) in grassroots.iter().enumerate() {
        steps.push(pb::ReorgStep {
            unit: g.clone(),
            name: format!("CĐCS {g}"),
            unit_kind: "grassroots".into(),
            to: format!("d{}", i % DISTRICTS),
            ..step("create")
        });
    }
    let t = Instant::now();
    apply(&mut reorg, plan("1/QĐ-2024", "2024-01-01", steps), false).await?;
    let create = t.elapsed();
    let wards: Vec<pb::ReorgStep> = (0..DISTRICTS)
        .map(|w| pb::ReorgStep {
            unit: format!("w{w}"),
            name: format!("Công đoàn phường {w}"),
            unit_kind: "commune".into(),
            to: "p1".into(),
            ..step("create")
        })
        .collect();
    apply(&mut reorg, plan("2/QĐ-2025", "2025-07-01", wards), false).await?;

    // The members, through imports as offices send them.
    let mut members = pb::member_service_client::MemberServiceClient::new(node.channel.clone());
    let per_unit = args.members.div_ceil(args.ceased_units.max(1)).max(1);
    let mut i = 0;
    while i < args.members {
        let end = (i + 1000).min(args.members);
        let rows = (i..end)
            .map(|k| pb::ImportRow {
                line: (k + 1) as u32,
                unit_id: grassroots[k / per_unit].clone(),
                member: Some(member_input(k, "Đoàn viên")),
            })
            .collect();
        members
            .import_members(pb::ImportMembersRequest { rows })
            .await?;
        i = end;
    }

    // Every grassroots union to the commune union of its district, with
    // an effective date in the past.
    let moves: Vec<pb::ReorgStep> = (0..DISTRICTS)
        .map(|w| pb::ReorgStep {
            units: grassroots
                .iter()
                .enumerate()
                .filter(|(i, _)| i % DISTRICTS == w)
                .map(|(_, g)| g.clone())
                .collect(),
            to: format!("w{w}"),
            ..step("move")
        })
        .collect();
    let moving = plan("3/QĐ-2025", "2025-07-01", moves);
    let (move_dry, dry) = apply(&mut reorg, moving.clone(), true).await?;
    let (move_apply, done) = apply(&mut reorg, moving, false).await?;
    ensure!(
        dry.moved.len() == args.units && done.moved.len() == args.units,
        "moved {} (dry run {}) of {} units",
        done.moved.len(),
        dry.moved.len(),
        args.units
    );
    let moved = done.moved.len() as u64;

    let cease = pb::ReorgStep {
        units: grassroots[..args.ceased_units].to_vec(),
        reason: "Giải thể công đoàn cơ sở khối cơ quan nhà nước".into(),
        on: "2025-06-01".into(),
        ..step("cease")
    };
    let ceasing = plan("4/QĐ-2025", "2025-06-01", vec![cease]);
    let (cease_dry, dry) = apply(&mut reorg, ceasing.clone(), true).await?;
    let (cease_apply, done) = apply(&mut reorg, ceasing, false).await?;
    ensure!(
        dry.members_ceased == done.members_ceased && done.members_ceased == args.members as u64,
        "ceased {} (dry run {}) of {} members",
        done.members_ceased,
        dry.members_ceased,
        args.members
    );
    node.stop().await?;
    Ok(Figures {
        backend: backend.to_owned(),
        create,
        move_dry,
        move_apply,
        moved,
        cease_dry,
        cease_apply,
        ceased: done.members_ceased,
    })
}
