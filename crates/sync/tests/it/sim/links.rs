//! The simulation's links: sessions connected and cut, frames delivered,
//! batches asked for, nodes restarted.

use super::trace::describe;
use super::*;

impl Sim {
    pub(super) async fn connect(&mut self, e: usize) -> Result<()> {
        if !self.edges[e].fallback
            && !self.edges[e].handover
            && let Some(f) = self.sibling_edge(e)
        {
            // The parent answers: the child leaves its fallback, ending
            // that session as a driver ends one (flushing both sides).
            self.cut(f, true).await?;
        }
        let (child, parent) = (self.edges[e].child, self.edges[e].parent);
        if self.edges[e].fallback {
            self.stats.fallback_sessions += 1;
        }
        let expect = NODES[parent].id.to_owned();
        let role = if self.edges[e].handover {
            self.stats.handover_sessions += 1;
            Role::HandoverTo { expect }
        } else {
            Role::Dialer { expect }
        };
        let mut dialer = Session::new(self.replica(child), role);
        let acceptor = Session::new(self.replica(parent), Role::Acceptor);
        let hello = dialer
            .start()
            .await
            .with_context(|| format!("{} start", NODES[child].id))?
            .context("a dialer speaks first")?;
        let line = format!("connect {} {}", self.edge_name(e), describe(&hello));
        self.edges[e].link = Some(Link {
            dialer,
            acceptor,
            up: VecDeque::from([hello]),
            down: VecDeque::new(),
            tampered: false,
        });
        self.log(line);
        Ok(())
    }

    /// Ends an edge's sessions: in flight frames are lost. A graceful end
    /// writes what the peers acknowledged first (as the driver does).
    pub(super) async fn cut(&mut self, e: usize, graceful: bool) -> Result<()> {
        let Some(mut link) = self.edges[e].link.take() else {
            return Ok(());
        };
        if graceful {
            link.dialer.flush().await.context("flush dialer")?;
            link.acceptor.flush().await.context("flush acceptor")?;
        }
        self.stats.cuts += 1;
        let line = format!(
            "cut {} ({} frames lost{})",
            self.edge_name(e),
            link.up.len() + link.down.len(),
            if graceful { ", flushed" } else { "" }
        );
        self.log(line);
        Ok(())
    }

    /// Handles the frame at `index` of a queue at its receiver.
    pub(super) async fn deliver(&mut self, e: usize, dir: Dir, index: usize) -> Result<()> {
        let name = self.edge_name(e);
        let healing = self.healing;
        let Some(link) = self.edges[e].link.as_mut() else {
            return Ok(());
        };
        let Some(frame) = link.queue(dir).remove(index) else {
            return Ok(());
        };
        let what = describe(&frame);
        let (receiver, peer, back) = match dir {
            Dir::Up => (Side::Acceptor, Side::Dialer, Dir::Down),
            Dir::Down => (Side::Dialer, Side::Acceptor, Dir::Up),
        };
        self.stats.frames += 1;
        let result = link.session(receiver).handle(frame).await;
        match result {
            Ok(replies) => {
                let answers: Vec<String> = replies.iter().map(describe).collect();
                link.queue(back).extend(replies);
                let arrow = if dir == Dir::Up { "=>" } else { "<=" };
                self.log(format!(
                    "{name} {arrow} {what}{}{}",
                    if answers.is_empty() { "" } else { " -> " },
                    answers.join(", ")
                ));
                Ok(())
            }
            Err(SyncError::Refuse(r)) => {
                // The refusal is sent, the peer ends its side, the stream closes.
                let answer = link.session(peer).handle(Frame::Refusal(r.clone())).await;
                match answer {
                    Err(SyncError::Refused { code, .. }) if code == r.code => {}
                    other => bail!("{name}: the peer answered a refusal with {other:?}"),
                }
                let tampered = link.tampered;
                self.edges[e].link = None;
                *self.stats.refusals.entry(r.code.clone()).or_default() += 1;
                self.log(format!("{name}: {what} refused ({}): {}", r.code, r.reason));
                let (child, parent) = (self.edges[e].child, self.edges[e].parent);
                let handover = self.edges[e].handover;
                let legitimate = match r.code.as_str() {
                    // A new host that does not hold the old host's seal
                    // (or its decision) yet takes it for a stranger.
                    "unknown-unit" | "not-in-subtree" if handover => {
                        dir == Dir::Up && self.handover_refusal_legitimate(e).await?
                    }
                    // The parent has not created (or not yet received
                    // back after a restart... never: it is durable) the
                    // child's record.
                    "unknown-unit" => {
                        dir == Dir::Up
                            && !self.nodes[parent]
                                .store
                                .tree()
                                .contains(&uid(NODES[child].unit))
                    }
                    // A batch or an ack before the hello: only when frames
                    // were dropped, duplicated or reordered.
                    "protocol" => tampered && !healing,
                    _ => false,
                };
                ensure!(
                    legitimate,
                    "{name}: unexpected refusal ({}) of {what}: {}",
                    r.code,
                    r.reason
                );
                Ok(())
            }
            Err(err) => bail!("{name}: handling {what}: {err}"),
        }
    }

    /// Asks one session for its next batch; whether it sent one.
    pub(super) async fn next_batch(&mut self, e: usize, side: Side) -> Result<bool> {
        let name = self.edge_name(e);
        let Some(link) = self.edges[e].link.as_mut() else {
            return Ok(false);
        };
        let batch = link
            .session(side)
            .next_batch()
            .await
            .with_context(|| format!("{name} {side:?} next_batch"))?;
        let Some(frame) = batch else {
            return Ok(false);
        };
        let what = describe(&frame);
        let dir = match side {
            Side::Dialer => Dir::Up,
            Side::Acceptor => Dir::Down,
        };
        link.queue(dir).push_back(frame);
        self.log(format!("{name} {side:?} sends {what}"));
        Ok(true)
    }

    /// Closes a node's store (its sessions end with it, nothing flushed:
    /// a crash) and opens it again from its file.
    pub(super) async fn restart(&mut self, n: usize) -> Result<()> {
        for e in 0..self.edges.len() {
            if self.edges[e].child == n || self.edges[e].parent == n {
                self.cut(e, false).await?;
            }
        }
        self.nodes[n].store.close().await;
        let store = fixtures::open(&self.nodes[n].url, self.cfg.options.clone()).await;
        self.nodes[n].store = store;
        self.stats.restarts += 1;
        self.log(format!("restart {}", NODES[n].id));
        Ok(())
    }
}
