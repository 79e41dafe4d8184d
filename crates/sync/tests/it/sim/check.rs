//! What a run must end with: scope, convergence, no acknowledged write
//! lost, and projections that agree with the documents.

use super::*;

impl Sim {
    pub(super) async fn check(&self) -> Result<()> {
        let mut problems: Vec<String> = Vec::new();
        // Every node's documents and heads.
        let mut held: Vec<BTreeMap<DocId, Vec<ChangeHash>>> = Vec::new();
        let mut metas: BTreeMap<DocId, DocMeta> = BTreeMap::new();
        for node in &self.nodes {
            let mut docs = BTreeMap::new();
            for id in node.store.doc_ids().await? {
                let heads = node.store.doc_heads(&id).await?.unwrap_or_default();
                let (doc_heads, meta) = node
                    .store
                    .read_doc(&id, |d| (d.get_heads(), DocMeta::read(id.clone(), d)))
                    .await?
                    .context("a listed document")?;
                if doc_heads != heads {
                    problems.push(format!(
                        "{}: {id}: stored heads {heads:?} but the document has {doc_heads:?}",
                        node.spec.id
                    ));
                }
                match meta {
                    Ok(m) => {
                        metas.entry(id.clone()).or_insert(m);
                    }
                    Err(e) => problems.push(format!("{}: {id}: unreadable: {e}", node.spec.id)),
                }
                docs.insert(id, heads);
            }
            held.push(docs);
        }
        let national = self.nodes[0].store.tree().clone();
        for u in &UNITS {
            if !national.contains(&uid(u.id)) {
                problems.push(format!("the national node does not know unit {}", u.id));
            }
        }
        // Scope and heads. An old host keeps what it held of a union that
        // left its subtree, as it was: outside the comparison.
        let mut departed: Vec<BTreeSet<String>> = vec![BTreeSet::new(); self.nodes.len()];
        for (id, meta) in &metas {
            let mut first: Option<(usize, &Vec<ChangeHash>)> = None;
            for (n, node) in self.nodes.iter().enumerate() {
                let should = national.in_scope(&uid(node.spec.unit), meta, PRIVATE_DEPTH);
                match (should, held[n].get(id)) {
                    (true, None) => problems.push(format!("{}: missing {id}", node.spec.id)),
                    (false, Some(_)) if self.departed(n, id, meta) => {
                        departed[n].insert(id.to_string());
                    }
                    (false, Some(_)) => {
                        problems.push(format!("{}: holds {id}, outside its scope", node.spec.id))
                    }
                    (true, Some(h)) => match first {
                        None => first = Some((n, h)),
                        Some((m, fh)) if fh != h => problems.push(format!(
                            "{id}: {} has heads {h:?}, {} has {fh:?}",
                            node.spec.id, NODES[m].id
                        )),
                        Some(_) => {}
                    },
                    (false, None) => {}
                }
            }
        }
        // Nothing acknowledged is lost.
        for w in &self.acked {
            let Some(meta) = metas.get(&w.doc) else {
                problems.push(format!(
                    "write of {} at {} (step {}) is nowhere",
                    w.doc, NODES[w.node].id, w.step
                ));
                continue;
            };
            if meta.id.kind() != DocKind::RosterPrivate
                && !national.in_scope(&uid("vn"), meta, PRIVATE_DEPTH)
            {
                problems.push(format!("{} is not in the national node's scope", w.doc));
            }
            for (n, node) in self.nodes.iter().enumerate() {
                if !national.in_scope(&uid(node.spec.unit), meta, PRIVATE_DEPTH) {
                    continue;
                }
                let has = node
                    .store
                    .read_doc(&w.doc, |d| fixtures::contains_all(d, &w.heads))
                    .await?
                    .unwrap_or(false);
                if !has {
                    problems.push(format!(
                        "{}: lost the write of {} made at {} (step {})",
                        NODES[n].id, w.doc, NODES[w.node].id, w.step
                    ));
                }
            }
        }
        // Projections: the same rows at every holder, and a roster's rows
        // as its document says.
        let mut rows = Vec::new();
        for node in &self.nodes {
            rows.push(fixtures::projection_rows(&node.store).await?);
        }
        let keys: BTreeSet<&String> = rows.iter().flat_map(|r| r.keys()).collect();
        for key in keys {
            let of_key = |d: &String| *d == *key || d.starts_with(&format!("{key}/"));
            let holders: Vec<usize> = (0..self.nodes.len())
                .filter(|n| {
                    held[*n].keys().any(|d| {
                        let s = d.to_string();
                        s == *key || s.starts_with(&format!("{key}/"))
                    })
                })
                .collect();
            let empty = Vec::new();
            let mut first: Option<(usize, &Vec<String>)> = None;
            for n in 0..self.nodes.len() {
                if departed[n].iter().any(of_key) {
                    continue;
                }
                let r = rows[n].get(key).unwrap_or(&empty);
                if !holders.contains(&n) {
                    if !r.is_empty() {
                        problems.push(format!(
                            "{}: projection rows of {key}, which it does not hold",
                            NODES[n].id
                        ));
                    }
                    continue;
                }
                match first {
                    None => first = Some((n, r)),
                    Some((m, fr)) if fr != r => problems.push(format!(
                        "{key}: projection at {} differs from {}:\n  {r:?}\n  {fr:?}",
                        NODES[n].id, NODES[m].id
                    )),
                    Some(_) => {}
                }
            }
        }
        // A roster's rows as its document says. A member with records in
        // two roster documents of one unit (two nodes transferred it into
        // the unit concurrently, into different buckets) is projected from
        // the lowest bucket: the other document's copy has no row.
        for (n, node) in self.nodes.iter().enumerate() {
            let mut docs: Vec<(DocId, Vec<String>)> = Vec::new();
            let mut lowest: BTreeMap<(String, String), u32> = BTreeMap::new();
            for id in held[n].keys().filter(|d| d.kind() == DocKind::Roster) {
                let from_doc = node
                    .store
                    .read_doc(id, fixtures::roster_summary)
                    .await?
                    .context("held")?
                    .map_err(anyhow::Error::from)?;
                let DocId::Roster { bucket, .. } = id else {
                    continue;
                };
                for m in &from_doc {
                    let mut f = m.split('|');
                    let key = (
                        f.next().unwrap_or("").to_owned(),
                        f.next().unwrap_or("").to_owned(),
                    );
                    let b = lowest.entry(key).or_insert(*bucket);
                    *b = (*b).min(*bucket);
                }
                docs.push((id.clone(), from_doc));
            }
            for (id, from_doc) in docs {
                let DocId::Roster { bucket, .. } = &id else {
                    continue;
                };
                let expected: Vec<String> = from_doc
                    .into_iter()
                    .filter(|m| {
                        let mut f = m.split('|');
                        let key = (
                            f.next().unwrap_or("").to_owned(),
                            f.next().unwrap_or("").to_owned(),
                        );
                        lowest.get(&key) == Some(bucket)
                    })
                    .collect();
                let projected =
                    fixtures::projected_summary(rows[n].get(&id.to_string()).unwrap_or(&vec![]));
                if expected != projected {
                    problems.push(format!(
                        "{}: {id}: projection {projected:?} but the document says {expected:?}",
                        node.spec.id
                    ));
                }
            }
        }
        if self.cfg.world == World::Handover {
            self.check_handovers(&mut problems).await?;
        }
        if !problems.is_empty() {
            let n = problems.len();
            problems.truncate(20);
            bail!(
                "{n} problems after convergence:\n  {}",
                problems.join("\n  ")
            );
        }
        Ok(())
    }
}
