//! `hopluu bench-writes`: whether a write's cost stays flat as its record
//! grows. One node in-process (as `hopluu bench`): a grassroots union
//! records initiatives one after another in one emulation record, each
//! then marked valid (the pair an office makes), and imports members into
//! one roster in batches; the time of the pair and of the batch is printed
//! at points along the way, with its ratio to the first.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hopluu_proto::v1 as pb;
use tonic::transport::Channel;

use crate::cmd::bench_common::{Backends, BenchNode, member_input};
use crate::output::Table;

#[derive(Args, Debug)]
pub struct BenchWritesArgs {
    /// Initiatives recorded (and each marked valid) in one emulation record.
    #[arg(long, default_value_t = 2_000)]
    initiatives: usize,
    /// Members imported into one grassroots union.
    #[arg(long, default_value_t = 50_000)]
    members: usize,
    /// Rows per ImportMembers request.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    #[command(flatten)]
    db: Backends,
}

/// The grassroots union every write goes to, under `vn`.
const UNIT: &str = "p01-c1-g1";
const CAMPAIGN: &str = "c-bench";

pub async fn run(args: BenchWritesArgs) -> Result<()> {
    println!(
        "hopluu bench-writes: {} initiatives recorded and each marked valid in one emulation record; {} members imported into one grassroots union, {} per request",
        args.initiatives, args.members, args.batch
    );
    for backend in &args.db.backends {
        eprintln!("bench-writes: {backend} ...");
        let (pairs, batches) = run_one(&args, backend)
            .await
            .with_context(|| format!("bench-writes on {backend}"))?;
        println!(
            "\n{backend}: the n-th initiative's record + validate (median of the 10 pairs around it)"
        );
        print!("{}", points(&pairs, "pair"));
        println!(
            "{backend}: the n-th import batch of {} members into one union",
            args.batch
        );
        print!("{}", points(&batches, "batch"));
    }
    println!("\ntarget: the last point costs at most 1.5 times the first");
    Ok(())
}

/// The median of the window of 10 around each checkpoint, with its ratio to
/// the first checkpoint's.
fn points(times: &[Duration], what: &str) -> String {
    let n = times.len();
    let mut marks: Vec<usize> = [10, 100, 500, 1_000, 2_000, 5_000, 10_000]
        .into_iter()
        .filter(|&k| k <= n)
        .collect();
    if n > 0 && marks.last() != Some(&n) {
        marks.push(n);
    }
    if n < 10 {
        marks = (1..=n).collect();
    }
    let median = |k: usize| {
        let from = k.saturating_sub(5).min(n.saturating_sub(10));
        let mut w: Vec<Duration> = times[from..(from + 10).min(n)].to_vec();
        w.sort();
        w[w.len() / 2]
    };
    let first = marks.first().map(|&k| median(k)).unwrap_or_default();
    let mut t = Table::new(&["n", what, "ratio to the first"]);
    for k in marks {
        let m = median(k);
        t.row(vec![
            k.to_string(),
            format!("{:.2} ms", m.as_secs_f64() * 1000.0),
            format!("{:.2}", m.as_secs_f64() / first.as_secs_f64().max(1e-9)),
        ]);
    }
    t.render()
}

async fn run_one(args: &BenchWritesArgs, backend: &str) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let today = hopluu_model::Date::new(2026, 11, 22).expect("valid date");
    let node = BenchNode::start(backend, &args.db.postgres, today).await?;
    let channel = node.channel.clone();
    let mut units = pb::unit_service_client::UnitServiceClient::new(channel.clone());
    for (id, kind, parent) in [
        ("p01", "provincial", "vn"),
        ("p01-c1", "commune", "p01"),
        (UNIT, "grassroots", "p01-c1"),
    ] {
        units
            .create_unit(pb::CreateUnitRequest {
                id: Some(id.to_owned()),
                name: format!("Công đoàn {id}"),
                kind: kind.to_owned(),
                parent_id: parent.to_owned(),
                ..Default::default()
            })
            .await?;
    }
    pb::campaign_service_client::CampaignServiceClient::new(channel.clone())
        .launch_campaign(pb::LaunchCampaignRequest {
            id: Some(CAMPAIGN.into()),
            launching_unit_id: "vn".into(),
            title: "Thi đua lao động giỏi, lao động sáng tạo".into(),
            theme: String::new(),
            starts_on: "2026-01-01".into(),
            ends_on: "2026-12-31".into(),
            scope_unit_id: String::new(),
        })
        .await?;
    let pairs = initiatives(channel.clone(), args.initiatives).await?;
    let batches = imports(channel, args.members, args.batch).await?;
    node.stop().await?;
    Ok((pairs, batches))
}

async fn initiatives(channel: Channel, n: usize) -> Result<Vec<Duration>> {
    let mut c = pb::emulation_service_client::EmulationServiceClient::new(channel);
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let recorded = c
            .record_initiative(pb::RecordInitiativeRequest {
                unit_id: UNIT.into(),
                campaign_id: CAMPAIGN.into(),
                title: format!("Sáng kiến cải tiến quy trình số {i}"),
                authors: vec!["Nguyễn Văn An".into(), "Lê Thị Hoa".into()],
                value_vnd: 12_500_000,
                submitted_on: "2026-03-01".into(),
            })
            .await?
            .into_inner();
        c.set_initiative_status(pb::SetInitiativeStatusRequest {
            unit_id: UNIT.into(),
            campaign_id: CAMPAIGN.into(),
            initiative_id: recorded.id,
            status: pb::InitiativeStatus::Valid as i32,
            recognised_level: String::new(),
            note: "Hội đồng cơ sở đã thẩm định".into(),
        })
        .await?;
        times.push(t.elapsed());
    }
    Ok(times)
}

async fn imports(channel: Channel, n: usize, batch: usize) -> Result<Vec<Duration>> {
    let mut c = pb::member_service_client::MemberServiceClient::new(channel);
    let mut times = Vec::new();
    let mut i = 0;
    while i < n {
        let end = (i + batch.max(1)).min(n);
        let rows = (i..end)
            .map(|k| pb::ImportRow {
                line: (k + 1) as u32,
                unit_id: UNIT.into(),
                member: Some(member_input(k, "Công nhân")),
            })
            .collect();
        let t = Instant::now();
        let r = c
            .import_members(pb::ImportMembersRequest { rows })
            .await?
            .into_inner();
        times.push(t.elapsed());
        if let Some(bad) = r
            .results
            .iter()
            .find(|r| r.outcome == pb::ImportOutcome::Rejected as i32)
        {
            bail!("bench row {} rejected: {:?}", bad.line, bad.errors);
        }
        i = end;
    }
    Ok(times)
}
