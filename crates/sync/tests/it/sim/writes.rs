//! The simulation's local writes: unit records and the documents a node
//! writes on its own, each acknowledged write recorded to be checked.

use super::*;

impl Sim {
    pub(super) fn author(&self, n: usize) -> hopluu_model::Author {
        fixtures::author(
            NODES[n].id,
            NODES[n].unit,
            1_756_684_800_000 + self.step as i64 * 1000,
        )
    }

    pub(super) fn record(
        &mut self,
        n: usize,
        what: &str,
        result: Result<Written, StoreError>,
    ) -> Result<()> {
        match result {
            Ok(w) => {
                self.stats.writes += 1;
                let docs: Vec<String> = w.docs.iter().map(|(d, _)| d.to_string()).collect();
                self.log(format!("{} {what}: {}", NODES[n].id, docs.join(" ")));
                for (doc, heads) in w.docs {
                    self.acked.push(AckedWrite {
                        node: n,
                        step: self.step,
                        doc,
                        heads,
                    });
                }
                Ok(())
            }
            Err(StoreError::Model(e)) => {
                self.stats.refused_writes += 1;
                self.log(format!("{} {what}: refused: {e}", NODES[n].id));
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("{} {what}", NODES[n].id)),
        }
    }

    /// Units whose record some node may create now: not created yet, and
    /// the node hosting the parent knows its own unit.
    pub(super) fn creatable_units(&self) -> Vec<usize> {
        UNITS
            .iter()
            .enumerate()
            .filter(|(_, u)| !self.created.contains(u.id))
            .filter(|(_, u)| match u.parent {
                None => true,
                Some(p) => node_of(p).is_some_and(|n| self.knows_itself(n)),
            })
            .map(|(i, _)| i)
            .collect()
    }

    pub(super) async fn create_unit(&mut self, i: usize) -> Result<()> {
        let u = &UNITS[i];
        let n = node_of(u.parent.unwrap_or(u.id)).expect("a parent with a node");
        let author = self.author(n);
        let result = fixtures::create_unit(
            &self.nodes[n].store,
            &author,
            u.id,
            u.name,
            u.kind,
            u.parent,
        )
        .await;
        ensure!(result.is_ok(), "creating unit {}: {result:?}", u.id);
        self.created.insert(u.id);
        self.record(n, &format!("create unit {}", u.id), result)
    }

    /// One local write at a random node that knows its unit.
    pub(super) async fn write(&mut self) -> Result<()> {
        let ready: Vec<usize> = (0..NODES.len()).filter(|n| self.knows_itself(*n)).collect();
        if ready.is_empty() {
            return Ok(());
        }
        let n = ready[self.rng.random_range(0..ready.len())];
        let own = uid(NODES[n].unit);
        let store = self.nodes[n].store.clone();
        // What the node knows of its subtree (the guard is not held across
        // a commit, which updates the tree).
        let (subtree, grassroots): (Vec<UnitId>, Vec<UnitId>) = {
            let tree = store.tree();
            let sub = tree.subtree(&own);
            let g = sub
                .iter()
                .filter(|u| tree.get(u).is_some_and(|t| t.kind.as_str() == "grassroots"))
                .cloned()
                .collect();
            (sub, g)
        };
        let author = self.author(n);
        self.counter += 1;
        let k = self.counter;
        let roll = self.rng.random_range(0..100);
        match roll {
            // Add a member.
            0..35 => {
                if grassroots.is_empty() {
                    return Ok(());
                }
                let g = grassroots[self.rng.random_range(0..grassroots.len())].clone();
                let private = NODES[n].depth >= PRIVATE_DEPTH;
                if roll >= 27 {
                    let count = self.rng.random_range(2..=6);
                    let members: Vec<_> = (0..count)
                        .map(|i| {
                            let name = NAMES[(k as usize + i) % NAMES.len()];
                            (
                                fixtures::mid(&format!("m{k}-{i}")),
                                name,
                                format!("THE-{k:06}-{i}"),
                            )
                        })
                        .collect();
                    let w = fixtures::import_members(&store, &author, &g, &members, private).await;
                    return self.record(n, &format!("import {count} members to {g}"), w);
                }
                let id = fixtures::mid(&format!("m{k}"));
                let name = NAMES[self.rng.random_range(0..NAMES.len())];
                let r = fixtures::add_member(
                    &store,
                    &author,
                    &g,
                    &id,
                    name,
                    &format!("THE-{k:06}"),
                    private,
                )
                .await
                .map(|(w, _)| w);
                self.record(n, &format!("add member {id} to {g}"), r)
            }
            // Edit, end or transfer a member.
            35..65 => {
                let rows: Vec<fixtures::MemberRow> = fixtures::members(&store)
                    .await?
                    .into_iter()
                    .filter(|r| subtree.contains(&r.unit))
                    .collect();
                if rows.is_empty() {
                    return Ok(());
                }
                let r = rows[self.rng.random_range(0..rows.len())].clone();
                if roll < 55 || !r.active {
                    let position = format!("Tổ trưởng {k}");
                    let w = fixtures::edit_member(
                        &store, &author, &r.unit, r.bucket, &r.member, &position,
                    )
                    .await;
                    self.record(n, &format!("edit {} in {}", r.member, r.unit), w)
                } else if roll < 59 || grassroots.len() < 2 {
                    let w =
                        fixtures::end_member(&store, &author, &r.unit, r.bucket, &r.member).await;
                    self.record(n, &format!("end {} in {}", r.member, r.unit), w)
                } else {
                    let targets: Vec<&UnitId> =
                        grassroots.iter().filter(|g| **g != r.unit).collect();
                    let to = targets[self.rng.random_range(0..targets.len())].clone();
                    let w = fixtures::transfer_member(
                        &store,
                        &author,
                        &r.member,
                        (&r.unit, r.bucket),
                        &to,
                    )
                    .await;
                    self.record(n, &format!("transfer {} {} -> {to}", r.member, r.unit), w)
                }
            }
            // Launch a campaign (national and provinces) or set its plans.
            65..78 => {
                if NODES[n].depth > 1 {
                    return Ok(());
                }
                let campaigns: Vec<fixtures::CampaignRow> = fixtures::campaigns(&store)
                    .await?
                    .into_iter()
                    .filter(|c| c.launching == own)
                    .collect();
                if roll < 71 || campaigns.is_empty() {
                    let children: Vec<UnitId> = store.tree().children(&own).to_vec();
                    let scope = if children.is_empty() || self.rng.random_bool(0.5) {
                        own.clone()
                    } else {
                        children[self.rng.random_range(0..children.len())].clone()
                    };
                    let id = format!("c{k}");
                    let w = fixtures::launch_campaign(&store, &author, &id, &own, &scope).await;
                    self.record(n, &format!("launch campaign {id} over {scope}"), w)
                } else {
                    let c = campaigns[self.rng.random_range(0..campaigns.len())].clone();
                    let units: Vec<UnitId> = store.tree().subtree(&c.scope);
                    if units.is_empty() {
                        return Ok(());
                    }
                    let u = units[self.rng.random_range(0..units.len())].clone();
                    let quota = self.rng.random_range(1..10);
                    let w = fixtures::set_plan(&store, &author, &c.id, &u, quota).await;
                    self.record(n, &format!("plan {} for {u}: {quota}", c.id), w)
                }
            }
            // Register a unit in a campaign covering it, or record an
            // initiative.
            _ => {
                let mut options = Vec::new();
                let tree_store = store.clone();
                for c in fixtures::campaigns(&store).await? {
                    let tree = tree_store.tree();
                    for u in &subtree {
                        if tree.is_within(u, &c.scope) {
                            options.push((c.id.clone(), u.clone()));
                        }
                    }
                }
                if options.is_empty() {
                    return Ok(());
                }
                let (c, u) = options[self.rng.random_range(0..options.len())].clone();
                if roll < 88 {
                    let w =
                        fixtures::register(&store, &author, &u, &c, &format!("Cam kết {k}")).await;
                    self.record(n, &format!("register {u} in {c}"), w)
                } else {
                    let w = fixtures::record_initiative(
                        &store,
                        &author,
                        &u,
                        &c,
                        &format!("Sáng kiến số {k}"),
                    )
                    .await;
                    self.record(n, &format!("initiative of {u} in {c}"), w)
                }
            }
        }
    }
}
