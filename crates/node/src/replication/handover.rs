//! Handovers (DESIGN §6): after a decision moves units from this node's
//! subtree to another node's, this node seals what it holds of them
//! ([`App::seal_departed`]) and opens a **handover session** to each new
//! host that lacks some of it, dialling the address in the new host's node
//! record. Personal data takes this path: the old and the new host are
//! the only nodes that hold it, and the nodes between them (above
//! `private_depth`) never see it. The session is an ordinary one
//! ([`Role::HandoverTo`]): the new host admits it because the seals name
//! this node, judges every change against authority and the seals, and
//! acknowledges what it applied; once the new host is known to hold every
//! sealed head the session ends.
//!
//! Why a direct session rather than the other two paths DESIGN §6 names:
//! a sealed file carried by hand needs someone to carry it and puts
//! personal data on a portable disk; relaying ciphertext through the
//! common ancestor needs keys per node and a second, encrypted store.
//! The direct session uses what every node already has (its certificate
//! from the federation's CA, the sync protocol, the gate), resumes after a
//! cut like any session, and is done when the data is.
//!
//! The same tick keeps this node's record current (it retires when its
//! unit closes). On the new host's side, an old host that is not a
//! configured child is admitted when the seals held there name it
//! ([`Replication::hands_over_here`]).

use std::sync::Arc;
use std::time::Duration;

use hopluu_sync::Role;
use tokio_util::sync::CancellationToken;

use crate::config::Upstream;

use super::*;

/// How often a node looks for what left its subtree and for handovers it
/// owes: soon after a decision arrives, the old host refuses writes
/// (that is at once, from its tree) and seals (within this time).
const HANDOVER_EVERY: Duration = Duration::from_secs(2);

/// After a commit, how long the tick waits for the rest of its burst.
const FEED_SETTLE: Duration = Duration::from_millis(100);

impl Replication {
    /// Every [`HANDOVER_EVERY`]: publishes this node's record, seals what
    /// left its subtree, and opens or ends handover sessions.
    pub(super) async fn handover_loop(self: Arc<Self>) {
        let mut feed = self.app.store().watch_feed();
        let mut scanned = None;
        loop {
            if let Err(e) = self.handover_tick(&mut scanned).await {
                tracing::warn!(error = %e, "handover check failed");
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(HANDOVER_EVERY) => {}
                // A commit (a decision, a unit record arriving): soon, once
                // the burst it belongs to has settled.
                Ok(()) = feed.changed() => tokio::time::sleep(FEED_SETTLE).await,
            }
        }
    }

    /// Writes this node's record as it stands (its unit, upstream and
    /// address; retired once its unit closed): at start, before the node
    /// serves, and on every handover tick.
    pub async fn publish(&self) -> Result<(), NodeError> {
        let upstream = self
            .config
            .upstreams
            .first()
            .map(|u| u.node_id.clone())
            .unwrap_or_default();
        self.app.publish_node(&upstream, &self.address).await
    }

    /// One look: publish, seal (when the tree or the decisions changed
    /// since `scanned`, or a minute passed), and open or end handover
    /// sessions (looked at then, and while any runs).
    async fn handover_tick(
        self: &Arc<Self>,
        scanned: &mut Option<((usize, usize), tokio::time::Instant)>,
    ) -> Result<(), NodeError> {
        // Each step on its own: one failing does not hold the others up.
        self.end_departed_children().await;
        if let Err(e) = self.publish().await {
            tracing::warn!(error = %e, "could not publish this node's record");
        }
        let tree = self.app.tree();
        let decisions = self.app.store().list_decisions(None).await?.len();
        let now = (Arc::as_ptr(&tree) as usize, decisions);
        // Again after a minute in any case (a tree rebuilt at the same
        // address would look unchanged).
        let stale = scanned
            .as_ref()
            .is_none_or(|(seen, at)| *seen != now || at.elapsed() > Duration::from_secs(60));
        if stale {
            match self.app.seal_departed().await {
                Ok(_) => *scanned = Some((now, tokio::time::Instant::now())),
                Err(e) => {
                    tracing::warn!(error = %e, "could not seal what left this node's subtree")
                }
            }
            if let Err(e) = self.app.discard_given_up().await {
                tracing::warn!(error = %e, "could not discard what given-up nodes made");
            }
        }
        // Held changes in documents that left: set aside (every tick, as
        // they may arrive at any time; nothing to do on a node that never
        // sealed).
        if let Err(e) = self.app.archive_departed().await {
            tracing::warn!(error = %e, "could not set aside what is held of departed units");
        }
        // What is owed is looked at while something is, and after the tree
        // or the decisions changed (new seals); a node that owes nothing
        // does not walk its seals every tick.
        let owing = !self.handovers.lock().expect("handovers").is_empty();
        if !stale && !owing {
            return Ok(());
        }
        let owed = self.app.handovers_owed().await?;
        let mut running = self.handovers.lock().expect("handovers");
        // Sessions to hosts that hold everything now end; so do sessions
        // dialling an address the host no longer publishes (it moved, or
        // restarted elsewhere): they start again at the new one.
        running.retain(|node, (address, cancel)| {
            let owed_to = owed.iter().find(|o| o.to.id == *node);
            let keep = owed_to.is_some_and(|o| o.to.address == *address);
            if !keep {
                match owed_to {
                    None => tracing::info!(new_host = %node, "handover complete: the new host holds every sealed head"),
                    Some(o) => tracing::info!(new_host = %node, address = %o.to.address, "the new host publishes a new address"),
                }
                cancel.cancel();
            }
            keep
        });
        for o in owed {
            if running.contains_key(&o.to.id) {
                continue;
            }
            if o.to.address.is_empty() {
                self.set_edge(&o.to.id, |e| {
                    e.direction = "handover";
                    e.unit = o.to.unit.clone();
                    e.failed(
                        format!(
                            "node {} publishes no address (node.address): {} documents wait for it",
                            o.to.id, o.docs
                        ),
                        self.app.clock.now_millis(),
                    );
                });
                continue;
            }
            let cancel = self.cancel.child_token();
            running.insert(o.to.id.clone(), (o.to.address.clone(), cancel.clone()));
            let this = self.clone();
            let up = Upstream {
                node_id: o.to.id.clone(),
                address: o.to.address.clone(),
            };
            tracing::info!(
                new_host = %up.node_id,
                address = %up.address,
                docs = o.docs,
                "handing documents over to their new host"
            );
            self.tracker
                .spawn(async move { this.handover_to(up, cancel).await });
        }
        Ok(())
    }

    /// Keeps a handover session to `up` until `cancel` (the handover is
    /// complete, or the node stops), dialling again after a failure.
    async fn handover_to(self: Arc<Self>, up: Upstream, cancel: CancellationToken) {
        let min = Duration::from_millis(self.config.backoff_min_ms);
        let max = Duration::from_millis(self.config.backoff_max_ms);
        let mut backoff = min;
        let mut link = super::dial::Link::default();
        while !cancel.is_cancelled() {
            let role = Role::HandoverTo {
                expect: up.node_id.clone(),
            };
            let result = self.dial_once(&up, &cancel, role, &mut link).await;
            if cancel.is_cancelled() {
                break;
            }
            if let Err(e) = &result {
                tracing::warn!(new_host = %up.node_id, address = %up.address, error = %e, "handover session failed");
                self.set_edge(&up.node_id, |edge| {
                    edge.direction = "handover";
                    edge.address = up.address.clone();
                    edge.failed(e.to_string(), self.app.clock.now_millis());
                });
                backoff = (backoff * 2).min(max);
            } else {
                backoff = min;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
        self.handovers
            .lock()
            .expect("handovers")
            .retain(|n, (_, c)| !(n == &up.node_id && c.is_cancelled()));
    }
}

impl Replication {
    /// Whether `node`, not a configured child, is an old host handing
    /// documents over to this node: it sealed, for a decision held here,
    /// documents that now lie in this node's subtree.
    pub(super) async fn hands_over_here(&self, node: &str) -> bool {
        match self.app.store().old_hosts_for(&self.app.unit).await {
            Ok(hosts) => hosts.iter().any(|h| h == node),
            Err(e) => {
                tracing::warn!(error = %e, "could not list the old hosts handing over here");
                false
            }
        }
    }
}

impl Replication {
    /// When the configured parent no longer hosts an ancestor of this
    /// node's unit (a decision moved the unit, or retired the parent), the
    /// node hosting the unit's new parent, from the node records: where
    /// this node dials instead, until its configuration names it. None
    /// while the configured parent still serves it.
    pub(super) async fn rehomed_parent(&self) -> Option<Upstream> {
        let tree = self.app.tree();
        let parent_unit = tree.get(&self.app.unit)?.parent.clone()?;
        let configured = self.config.upstreams.first()?;
        let store = self.app.store();
        let conf = store.node(&configured.node_id).await.ok()??;
        let conf_unit = hopluu_model::UnitId::parse("unit", &conf.unit).ok()?;
        if conf.status == "active" && tree.is_within(&self.app.unit, &conf_unit) {
            return None;
        }
        let host = store.host_of(&parent_unit).await.ok()??;
        if host.id == self.app.node_id || host.id == configured.node_id || host.address.is_empty() {
            return None;
        }
        Some(Upstream {
            node_id: host.id,
            address: host.address,
        })
    }

    /// Whether `node`, hosting `unit` and not a configured child, is a
    /// child by the hosting data: its record names that unit, the unit lies
    /// below this node's, and this node hosts the unit's nearest hosted
    /// ancestor (a decision moved the unit here from another node's
    /// subtree).
    pub(super) async fn child_by_record(&self, node: &str, unit: &str) -> bool {
        let store = self.app.store();
        let Ok(Some(record)) = store.node(node).await else {
            return false;
        };
        let tree = self.app.tree();
        let Ok(u) = hopluu_model::UnitId::parse("unit", unit) else {
            return false;
        };
        if record.unit != unit || u == self.app.unit || !tree.is_within(&u, &self.app.unit) {
            return false;
        }
        let Some(parent) = tree.get(&u).and_then(|n| n.parent.clone()) else {
            return false;
        };
        matches!(store.host_of(&parent).await, Ok(Some(h)) if h.id == self.app.node_id)
    }

    /// Ends the sessions of children whose units a decision moved out of
    /// this node's subtree, once each is known to hold its unit's record as
    /// it stands here (which names the new parent): they dial their new
    /// parent's node instead. Ended before that, a child would come back to
    /// a refusal without ever learning where its unit went.
    pub(super) async fn end_departed_children(&self) {
        let tree = self.app.tree();
        let store = self.app.store();
        let mut gone: Vec<String> = Vec::new();
        for e in self.edges() {
            if !e.connected || e.direction != "downstream" {
                continue;
            }
            let Ok(u) = hopluu_model::UnitId::parse("unit", &e.unit) else {
                continue;
            };
            if !tree.contains(&u) || tree.is_within(&u, &self.app.unit) {
                continue;
            }
            let doc = hopluu_model::DocId::Unit(u);
            let here = store.doc_heads(&doc).await.ok().flatten();
            let known = store
                .peer_docs(&e.peer, std::slice::from_ref(&doc))
                .await
                .ok()
                .and_then(|mut m| m.remove(&doc))
                .map(|p| p.heads);
            if let (Some(mut here), Some(mut known)) = (here, known) {
                here.sort();
                known.sort();
                if here == known {
                    gone.push(e.peer);
                }
            }
        }
        let sessions = self.sessions.lock().expect("sessions lock");
        for node in gone {
            if let Some((_, cancel)) = sessions.get(&node).and_then(|s| s.current.as_ref()) {
                tracing::info!(child = %node, "the child's unit left this node's subtree: its session ends");
                cancel.cancel();
            }
        }
    }
}
