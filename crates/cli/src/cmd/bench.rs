//! `hopluu bench`: members written per second through the gRPC API (one
//! member per request, and imports in batches), bytes stored per member,
//! and report latency, on SQLite and on PostgreSQL. Each run starts its own
//! node in-process on loopback with a fresh database, so figures are
//! comparable between machines and runs. It serves mutual TLS, as every
//! node does (a CA and certificates made for the run).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hopluu_proto::v1 as pb;
use tonic::transport::Channel;

use super::bench_common::{Backends, BenchNode, member_input};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Members in the federation at the end of a run.
    #[arg(long, default_value_t = 100_000)]
    members: usize,
    /// Of those, how many are added one per AddMember request.
    #[arg(long, default_value_t = 5_000)]
    single: usize,
    /// Concurrent AddMember requests.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Rows per ImportMembers request.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    #[command(flatten)]
    db: Backends,
}

const PROVINCES: usize = 10;
const COMMUNES: usize = 5;
const GRASSROOTS: usize = 10;

struct Figures {
    backend: String,
    single_per_sec: f64,
    batch_per_sec: f64,
    bytes_per_member: f64,
    file_bytes_per_member: Option<f64>,
    report_p50: Duration,
    report_p95: Duration,
    province_report_p50: Duration,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for backend in &args.db.backends {
        eprintln!("bench: {backend}, {} members ...", args.members);
        all.push(
            run_one(&args, backend)
                .await
                .with_context(|| format!("bench on {backend}"))?,
        );
    }
    println!(
        "hopluu bench: {} members in {} grassroots unions ({} single AddMember requests x{} concurrent, the rest ImportMembers x{})",
        args.members,
        PROVINCES * COMMUNES * GRASSROOTS,
        args.single.min(args.members),
        args.concurrency,
        args.batch
    );
    let mut t = crate::output::Table::new(&[
        "backend",
        "AddMember/s",
        "import members/s",
        "doc bytes/member",
        "file bytes/member",
        "national report p50",
        "p95",
        "province report p50",
    ]);
    for f in &all {
        t.row(vec![
            f.backend.clone(),
            format!("{:.0}", f.single_per_sec),
            format!("{:.0}", f.batch_per_sec),
            format!("{:.0}", f.bytes_per_member),
            f.file_bytes_per_member
                .map(|b| format!("{b:.0}"))
                .unwrap_or_else(|| "-".into()),
            format!("{:.1} ms", ms(f.report_p50)),
            format!("{:.1} ms", ms(f.report_p95)),
            format!("{:.1} ms", ms(f.province_report_p50)),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run_one(args: &BenchArgs, backend: &str) -> anyhow::Result<Figures> {
    let today = hopluu_model::Date::new(2026, 11, 22).expect("valid date");
    let node = BenchNode::start(backend, &args.db.postgres, today).await?;
    let (app, channel) = (node.app.clone(), node.channel.clone());

    // The tree: vn -> provinces -> communes -> grassroots.
    let mut units = pb::unit_service_client::UnitServiceClient::new(channel.clone());
    let mut grassroots = Vec::new();
    for p in 0..PROVINCES {
        let pid = format!("p{p:02}");
        create(&mut units, &pid, "provincial", "vn").await?;
        for c in 0..COMMUNES {
            let cid = format!("{pid}-c{c}");
            create(&mut units, &cid, "commune", &pid).await?;
            for g in 0..GRASSROOTS {
                let gid = format!("{cid}-g{g}");
                create(&mut units, &gid, "grassroots", &cid).await?;
                grassroots.push(gid);
            }
        }
    }

    let member = |i: usize| member_input(i, "Đoàn viên");

    // One member per request, `concurrency` requests in flight.
    let single = args.single.min(args.members);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..args.concurrency.max(1) {
        let mut client = pb::member_service_client::MemberServiceClient::new(channel.clone());
        let grassroots = grassroots.clone();
        let step = args.concurrency.max(1);
        let inputs: Vec<(String, pb::MemberInput)> = (w..single)
            .step_by(step)
            .map(|i| (grassroots[i % grassroots.len()].clone(), member(i)))
            .collect();
        tasks.spawn(async move {
            for (unit, m) in inputs {
                client
                    .add_member(pb::AddMemberRequest {
                        unit_id: unit,
                        member: Some(m),
                    })
                    .await?;
            }
            Ok::<_, tonic::Status>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let single_secs = started.elapsed().as_secs_f64();

    // The rest through imports, as offices send them: each unit's roster
    // together, several units per request.
    let per_unit = args.members.div_ceil(grassroots.len()).max(1);
    let mut client = pb::member_service_client::MemberServiceClient::new(channel.clone());
    let started = Instant::now();
    let mut i = single;
    while i < args.members {
        let end = (i + args.batch.max(1)).min(args.members);
        let rows = (i..end)
            .map(|k| pb::ImportRow {
                line: (k + 1) as u32,
                unit_id: grassroots[(k / per_unit) % grassroots.len()].clone(),
                member: Some(member(k)),
            })
            .collect();
        let r = client
            .import_members(pb::ImportMembersRequest { rows })
            .await?
            .into_inner();
        if let Some(bad) = r
            .results
            .iter()
            .find(|r| r.outcome == pb::ImportOutcome::Rejected as i32)
        {
            anyhow::bail!("bench row {} rejected: {:?}", bad.line, bad.errors);
        }
        i = end;
    }
    let batch_secs = started.elapsed().as_secs_f64();

    let doc_bytes = app.store().stored_doc_bytes().await? as f64;
    let file_bytes = node.sqlite_file_bytes().map(|b| b as f64);

    let mut reports = pb::report_service_client::ReportServiceClient::new(channel.clone());
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = reports
            .members_report(pb::MembersReportRequest {
                unit_id: "vn".into(),
                as_of: String::new(),
            })
            .await?
            .into_inner();
        times.push(t.elapsed());
        let total = r.total.map(|t| t.active).unwrap_or(0);
        anyhow::ensure!(
            total as usize == args.members,
            "report counted {total} of {} members",
            args.members
        );
    }
    times.sort();
    let mut province_times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        reports
            .members_report(pb::MembersReportRequest {
                unit_id: "p03".into(),
                as_of: String::new(),
            })
            .await?;
        province_times.push(t.elapsed());
    }
    province_times.sort();

    node.stop().await?;
    let n = args.members.max(1) as f64;
    Ok(Figures {
        backend: backend.to_owned(),
        single_per_sec: single as f64 / single_secs.max(1e-9),
        batch_per_sec: (args.members - single) as f64 / batch_secs.max(1e-9),
        bytes_per_member: doc_bytes / n,
        file_bytes_per_member: file_bytes.map(|b| b / n),
        report_p50: times[times.len() / 2],
        report_p95: times[times.len() * 95 / 100],
        province_report_p50: province_times[province_times.len() / 2],
    })
}

async fn create(
    c: &mut pb::unit_service_client::UnitServiceClient<Channel>,
    id: &str,
    kind: &str,
    parent: &str,
) -> anyhow::Result<()> {
    c.create_unit(pb::CreateUnitRequest {
        id: Some(id.to_owned()),
        name: format!("Công đoàn {id}"),
        kind: kind.to_owned(),
        parent_id: parent.to_owned(),
        effective_on: String::new(),
        decision_no: String::new(),
    })
    .await?;
    Ok(())
}
