//! Running seeds: one run on its own runtime, a range of them, what a
//! failure reports and how to rerun it.

use super::*;

/// What a run did, for the log (`HOPLUU_SIM_VERBOSE=1`).
pub struct Summary {
    seed: u64,
    docs: usize,
    members: usize,
    acked_writes: usize,
    stats: Stats,
    config: Config,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {}: {} documents and {} member records at the national node, {} acknowledged \
             writes; {:?}; {:?}",
            self.seed, self.docs, self.members, self.acked_writes, self.stats, self.config
        )
    }
}

async fn simulate(seed: u64, world: World, trace: &mut Vec<String>) -> Result<Summary> {
    let mut sim = Sim::new(seed, world).await?;
    let result = run(&mut sim).await;
    trace.extend(sim.trace.iter().cloned());
    result.with_context(|| format!("config {:?}", sim.cfg))?;
    let national = &sim.nodes[0].store;
    let docs = national.doc_count().await? as usize;
    let members = fixtures::members(national).await?.len();
    for n in &sim.nodes {
        n.store.close().await;
    }
    Ok(Summary {
        seed,
        docs,
        members,
        acked_writes: sim.acked.len(),
        stats: std::mem::take(&mut sim.stats),
        config: sim.cfg.clone(),
    })
}

async fn run(sim: &mut Sim) -> Result<()> {
    for _ in 0..sim.cfg.steps {
        sim.step += 1;
        sim.chaos_step().await?;
    }
    sim.step += 1;
    sim.heal().await?;
    sim.check().await
}

/// Runs one seed on a current-thread runtime of its own; a failure (an
/// error or a panic) comes back as its message and the run's last events.
pub fn run_seed(seed: u64, world: World) -> Result<Summary, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut trace = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(simulate(seed, world, &mut trace))
    }));
    let msg = match outcome {
        Ok(Ok(summary)) => return Ok(summary),
        Ok(Err(e)) => format!("{e:#}"),
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned()),
    };
    Err(format!(
        "{msg}\n  last events:\n    {}",
        trace.join("\n    ")
    ))
}

/// The command that reruns `seed` alone, with every event printed:
/// `sim_soak` takes any range, so this works for a seed of the CI ranges
/// and for one found by a soak alike.
pub(super) fn rerun_hint(seed: u64, world: World) -> String {
    format!(
        "rerun just this seed, printing every event:\n  \
         HOPLUU_SIM_SOAK={seed}..{}{} HOPLUU_SIM_TRACE=1 cargo test --release -p hopluu-sync \
         --test it -- --exact sim::sim_soak --nocapture",
        seed + 1,
        match world {
            World::Plain => " HOPLUU_SIM_WORLD=plain",
            World::Full => " HOPLUU_SIM_WORLD=full",
            World::Handover => "",
        }
    )
}

/// The world of a soak: `HOPLUU_SIM_WORLD=plain` or `full` for the
/// earlier ones.
pub(super) fn soak_world() -> World {
    match std::env::var("HOPLUU_SIM_WORLD").as_deref() {
        Ok("plain") => World::Plain,
        Ok("full") => World::Full,
        Ok("handover") | Err(_) => World::Handover,
        Ok(other) => panic!("HOPLUU_SIM_WORLD={other}: expected plain, full or handover"),
    }
}

/// Runs one seed; panics with `seed N: …` when it fails.
pub fn check_seed(seed: u64, world: World) {
    match run_seed(seed, world) {
        Ok(s) => {
            if std::env::var_os("HOPLUU_SIM_VERBOSE").is_some() {
                eprintln!("{s}");
            }
        }
        Err(msg) => panic!("seed {seed}: {msg}\n{}", rerun_hint(seed, world)),
    }
}

/// Runs every seed of `range` (or only `HOPLUU_SIM_SEED` when it is set
/// and in the range) and reports the failing ones.
pub(super) fn run_range(range: Range<u64>, world: World) {
    let seeds: Vec<u64> = match std::env::var("HOPLUU_SIM_SEED") {
        Ok(s) => {
            let seed: u64 = s.trim().parse().expect("HOPLUU_SIM_SEED is a number");
            if range.contains(&seed) {
                vec![seed]
            } else {
                Vec::new()
            }
        }
        Err(_) => range.collect(),
    };
    let mut failed = Vec::new();
    for seed in seeds {
        match run_seed(seed, world) {
            Ok(s) => {
                if std::env::var_os("HOPLUU_SIM_VERBOSE").is_some() {
                    eprintln!("{s}");
                }
            }
            Err(msg) => failed.push((seed, msg)),
        }
    }
    if let Some((seed, msg)) = failed.first() {
        let others: Vec<String> = failed[1..].iter().map(|(s, _)| s.to_string()).collect();
        panic!(
            "seed {seed}: {msg}\n{}{}",
            rerun_hint(*seed, world),
            if others.is_empty() {
                String::new()
            } else {
                format!("\nalso failing here: seeds {}", others.join(", "))
            }
        );
    }
}
