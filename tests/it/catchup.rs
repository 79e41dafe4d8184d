//! A district offline for 50,000 member changes catches up in bounded
//! memory.
//!
//! The scenario runs in a process of its own (this test binary re-executed
//! with [`CATCHUP_ENV`], as in [`crate::crash`]), so that its memory is not
//! mixed with the other tests running in parallel: the national node, the
//! province and the district, all in that process. The district's two links
//! are cut; it imports 50,000 members into ten grassroots unions
//! (`ImportMembers`, 1,000 rows a request, every tenth member with private
//! data), then re-imports 1,000 of them with a new position and updates 100
//! more one by one. Then the links heal and it catches up: all 50,000 reach
//! the province and the national node, and the three converge.
//!
//! **The bound:** while catching up, the resident set of that process
//! (three nodes) grows by at most [`GROWTH_BOUND_MIB`] (300) MiB over what
//! it was when the links healed, sampled every 20 ms from
//! `/proc/self/status` (`VmRSS`); the peak over the whole run (`VmHWM`) is
//! printed too. What catching up may hold: at each receiving node (the
//! province and the national node) its document cache, at most
//! `cache_docs` (10,000) decoded documents taking at most `cache_mib` (256)
//! MiB as estimated, here all 68 (about 1.2 MiB each measured decoded, 20 KB
//! each stored), and the batches of each session, at most
//! `in_flight` (4) of at most 256 documents or 1 MiB. The backlog itself
//! is never held: it is read from the feed a batch at a time. The process
//! runs with `MALLOC_ARENA_MAX=2`, so that the resident set follows live
//! memory rather than glibc's per-thread arenas (with the default arenas
//! the same run measures about 400 MiB of growth, with 2 about 200 MiB).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use hopluu_devcluster::federation::{Federation, NodeSpec};
use hopluu_proto::v1 as pb;
use sqlx::Row;

use crate::check::{self, Ledger, View};

/// Set in the process that runs the scenario.
pub const CATCHUP_ENV: &str = "HOPLUU_E2E_CATCHUP";
const TEST: &str = "catchup::an_offline_district_catches_up_50000_members_in_bounded_memory";

const MEMBERS: usize = 50_000;
const BATCH: usize = 1_000;
const GRASSROOTS: usize = 10;
/// Growth of the resident set allowed while catching up, in MiB.
pub const GROWTH_BOUND_MIB: u64 = 300;

const VN: &str = "vn";
const PROVINCE: &str = "hau-giang";
const DISTRICT: &str = "hg-chau-thanh";

fn grassroots(i: usize) -> String {
    format!("{DISTRICT}-g{}", i % GRASSROOTS)
}

#[test]
fn an_offline_district_catches_up_50000_members_in_bounded_memory() {
    if std::env::var_os(CATCHUP_ENV).is_some() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("a runtime");
        if let Err(e) = rt.block_on(scenario()) {
            panic!("{e:?}");
        }
        return;
    }
    // The parent: runs the scenario in a process of its own.
    let exe = std::env::current_exe().expect("the test executable");
    let out = Command::new(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
        .env(CATCHUP_ENV, "1")
        // Two malloc arenas instead of glibc's 8 per core: the resident set
        // then follows what is live rather than how many threads (tokio
        // workers, one per SQLite connection) freed memory in arenas of
        // their own.
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .expect("starting the catch-up process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stdout.lines().filter(|l| l.contains("catchup:")) {
        println!("{}", line.trim_start_matches(|c| c != 'c'));
    }
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    assert!(
        out.status.success(),
        "the catch-up process failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        tail(&stdout),
        tail(&stderr)
    );
}

/// A value in kB from `/proc/self/status` (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn scenario() -> Result<()> {
    check::init_tracing();
    let dir = tempfile::tempdir()?;
    let limit = Duration::from_secs(120);
    let mut fed = Federation::new(dir.path());
    fed.add(NodeSpec::root(VN, VN, "Tổng Liên đoàn Lao động Việt Nam"))
        .await?;
    fed.node(VN)
        .create_unit(PROVINCE, "LĐLĐ tỉnh Hậu Giang", "provincial", VN)
        .await?;
    fed.add(NodeSpec::child(PROVINCE, PROVINCE, &[VN])).await?;
    Federation::until("the province knows its unit", limit, || async {
        Ok(fed.node(PROVINCE).knows_unit(PROVINCE))
    })
    .await?;
    let p = fed.node(PROVINCE);
    p.create_unit(DISTRICT, "LĐLĐ huyện Châu Thành", "district", PROVINCE)
        .await?;
    for g in 0..GRASSROOTS {
        p.create_unit(&grassroots(g), "CĐCS", "grassroots", DISTRICT)
            .await?;
    }
    fed.add(NodeSpec::child(DISTRICT, DISTRICT, &[PROVINCE, VN]))
        .await?;
    Federation::until("the district knows its unions", limit, || async {
        let d = fed.node(DISTRICT);
        Ok((0..GRASSROOTS).all(|g| d.knows_unit(&grassroots(g))))
    })
    .await?;

    // Offline: 50,000 members, then updates.
    fed.link(DISTRICT, PROVINCE).cut();
    fed.link(DISTRICT, VN).cut();
    let started = Instant::now();
    let mut members = fed.node(DISTRICT).members();
    let mut ledger = Ledger::default();
    let mut ids = Vec::with_capacity(MEMBERS);
    let row = |k: usize, position: &str| {
        let cccd = format!("{:012}", 40_000_000 + k);
        let mut m = check::person(
            &format!("Nguyễn Thị {k}"),
            &format!("CT-{k:06}"),
            k.is_multiple_of(10).then_some(cccd.as_str()),
        );
        m.position = position.to_owned();
        (grassroots(k), m)
    };
    for b in 0..MEMBERS / BATCH {
        let rows: Vec<_> = (b * BATCH..(b + 1) * BATCH)
            .map(|k| row(k, "Công nhân"))
            .collect();
        ids.extend(
            check::import(&mut members, &rows, &mut ledger)
                .await
                .with_context(|| format!("import batch {b}"))?,
        );
    }
    let imported = started.elapsed();
    // Updates: a re-import with a new position, and single updates.
    let rows: Vec<_> = (0..BATCH).map(|k| row(k * 37, "Tổ trưởng")).collect();
    check::import(&mut members, &rows, &mut ledger).await?;
    for k in 0..100 {
        let id = &ids[k * 211 + 5];
        let position = format!("Kỹ sư bậc {k}");
        members
            .update_member(pb::UpdateMemberRequest {
                member_id: id.clone(),
                position: Some(position.clone()),
                ..Default::default()
            })
            .await?;
        ledger.position(id, &position, true);
    }
    ensure!(ledger.members.len() == MEMBERS);
    let district = View::of(fed.node(DISTRICT));
    let docs = district.store.doc_count().await?;
    let bytes = district.store.stored_doc_bytes().await?;
    println!(
        "catchup: offline: {MEMBERS} members imported in {imported:.1?}, 1,100 updates; all written in {:.1?}; \
         the district holds {docs} documents, {:.1} MB",
        started.elapsed(),
        bytes as f64 / 1e6
    );

    // Back online: sample the resident set while catching up.
    let baseline = status_kib("VmRSS");
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(status_kib("VmRSS"), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let healed = Instant::now();
    fed.link(DISTRICT, PROVINCE).heal();
    fed.link(DISTRICT, VN).heal();
    let national = View::of(fed.node(VN));
    let province = View::of(fed.node(PROVINCE));
    let catch_up = Duration::from_secs(900);
    check::wait_all_present(&national, &ledger, catch_up).await?;
    let at_national = healed.elapsed();
    check::wait_all_present(&province, &ledger, catch_up).await?;
    let f =
        check::wait_converged(&[national.clone(), province.clone(), district], catch_up).await?;
    let caught_up = healed.elapsed();
    done.store(true, Ordering::SeqCst);
    sampler.await?;
    let peak = peak.load(Ordering::SeqCst);
    let growth = peak.saturating_sub(baseline);
    println!(
        "catchup: caught up in {caught_up:.1?} (all at the national node after {at_national:.1?}); \
         {} documents converged; resident set {:.0} MiB when healed, peak {:.0} MiB while catching up \
         (growth {:.0} MiB, bound {GROWTH_BOUND_MIB} MiB); VmHWM over the whole run {:.0} MiB",
        f.docs,
        mib(baseline),
        mib(peak),
        mib(growth),
        mib(status_kib("VmHWM"))
    );
    for v in [&national, &province] {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM members")
            .fetch_one(v.store.pool())
            .await?
            .get(0);
        ensure!(n as usize == MEMBERS, "{}: {n} members", v.name);
    }
    ensure!(
        growth <= GROWTH_BOUND_MIB * 1024,
        "catching up grew the resident set by {:.0} MiB, over the bound of {GROWTH_BOUND_MIB} MiB",
        mib(growth)
    );
    fed.shutdown().await
}
