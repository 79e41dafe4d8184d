//! The simulation's scheduler: one random step at a time during the run,
//! then the heal rounds that must bring every edge to rest.

use super::trace::describe;
use super::*;

impl Sim {
    pub(super) fn live(&self) -> Vec<usize> {
        (0..self.edges.len())
            .filter(|e| self.edges[*e].link.is_some())
            .collect()
    }

    pub(super) fn queued(&self) -> Vec<(usize, Dir, usize)> {
        let mut out = Vec::new();
        for (e, edge) in self.edges.iter().enumerate() {
            if let Some(l) = &edge.link {
                if !l.up.is_empty() {
                    out.push((e, Dir::Up, l.up.len()));
                }
                if !l.down.is_empty() {
                    out.push((e, Dir::Down, l.down.len()));
                }
            }
        }
        out
    }

    pub(super) fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.rng.random_range(0..v.len())].clone()
    }

    pub(super) async fn chaos_step(&mut self) -> Result<()> {
        #[derive(Clone, Copy, Debug)]
        enum Action {
            Deliver,
            Reorder,
            Duplicate,
            Drop,
            NextBatch,
            Tick,
            Write,
            CreateUnit,
            Cut,
            Connect,
            Restart,
            Timeout,
            Flush,
            CrashAfterApply,
            Move,
            HandoverTick,
        }
        // Calm and stormy stretches alternate, starting calm, so that the
        // tree forms and documents flow between the storms.
        let f = if (self.step / 100).is_multiple_of(2) {
            0
        } else {
            self.cfg.faults
        };
        let queued = self.queued();
        let live = self.live();
        let down: Vec<usize> = (0..self.edges.len())
            .filter(|e| self.dialable(*e))
            .collect();
        let creatable = self.creatable_units();
        let movable = self.movable();
        let ticking = self.cfg.world == World::Handover;
        let waiting: Vec<(usize, Side)> = live
            .iter()
            .flat_map(|e| [(*e, Side::Dialer), (*e, Side::Acceptor)])
            .filter(|(e, s)| {
                let l = self.edges[*e].link.as_ref().expect("live");
                match s {
                    Side::Dialer => l.dialer.awaiting_ack(),
                    Side::Acceptor => l.acceptor.awaiting_ack(),
                }
            })
            .collect();
        let q = !queued.is_empty();
        let l = !live.is_empty();
        // Batches at the head of a queue: a receiver may crash right after
        // applying one.
        let batches: Vec<(usize, Dir)> = if self.cfg.world.fails_over() {
            queued
                .iter()
                .filter(|(e, dir, _)| {
                    let link = self.edges[*e].link.as_ref().expect("live");
                    let queue = match dir {
                        Dir::Up => &link.up,
                        Dir::Down => &link.down,
                    };
                    matches!(queue.front(), Some(Frame::Batch(_)))
                })
                .map(|(e, dir, _)| (*e, *dir))
                .collect()
        } else {
            Vec::new()
        };
        let candidates: Vec<(Action, u32)> = [
            (Action::Deliver, if q { 40 } else { 0 }),
            (Action::Reorder, if q { 3 * f } else { 0 }),
            (Action::Duplicate, if q { 2 * f } else { 0 }),
            (Action::Drop, if q { 2 * f } else { 0 }),
            (Action::NextBatch, if l { 20 } else { 0 }),
            (Action::Tick, if l { 5 } else { 0 }),
            (Action::Write, 20),
            (
                Action::CreateUnit,
                if creatable.is_empty() { 0 } else { 10 },
            ),
            (Action::Cut, if l { f } else { 0 }),
            (Action::Connect, if down.is_empty() { 0 } else { 6 }),
            (Action::Restart, u32::from(f > 0)),
            (Action::Timeout, if waiting.is_empty() { 0 } else { 2 }),
            (Action::Flush, if l { 2 } else { 0 }),
            (
                Action::CrashAfterApply,
                if batches.is_empty() { 0 } else { f },
            ),
            (Action::Move, u32::from(!movable.is_empty())),
            (Action::HandoverTick, if ticking { 6 } else { 0 }),
        ]
        .into_iter()
        .filter(|(_, w)| *w > 0)
        .collect();
        let total: u32 = candidates.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        let mut action = candidates[0].0;
        for (a, w) in &candidates {
            if roll < *w {
                action = *a;
                break;
            }
            roll -= w;
        }
        match action {
            Action::Deliver => {
                let (e, dir, _) = self.pick(&queued);
                self.deliver(e, dir, 0).await
            }
            Action::Reorder => {
                let (e, dir, len) = self.pick(&queued);
                let i = self.rng.random_range(0..len);
                if i > 0 {
                    self.stats.reordered += 1;
                    self.edges[e].link.as_mut().expect("live").tampered = true;
                }
                self.deliver(e, dir, i).await
            }
            Action::Duplicate => {
                let (e, dir, len) = self.pick(&queued);
                let i = self.rng.random_range(0..len);
                let link = self.edges[e].link.as_mut().expect("live");
                link.tampered = true;
                let queue = link.queue(dir);
                let copy = queue[i].clone();
                let what = describe(&copy);
                let at = self.rng.random_range(i..=queue.len());
                let queue = self.edges[e].link.as_mut().expect("live").queue(dir);
                queue.insert(at, copy);
                self.stats.duplicated += 1;
                let name = self.edge_name(e);
                self.log(format!("{name} {dir:?} duplicate {what}"));
                Ok(())
            }
            Action::Drop => {
                let (e, dir, len) = self.pick(&queued);
                let i = self.rng.random_range(0..len);
                let link = self.edges[e].link.as_mut().expect("live");
                link.tampered = true;
                let lost = link.queue(dir).remove(i).expect("in range");
                self.stats.dropped += 1;
                let name = self.edge_name(e);
                self.log(format!("{name} {dir:?} drop {}", describe(&lost)));
                Ok(())
            }
            Action::NextBatch => {
                // As a driver does when its outbound side is free: as many
                // batches as the window and the feed allow, one side or both.
                let e = self.pick(&live);
                let sides: &[Side] = match self.rng.random_range(0..3) {
                    0 => &[Side::Dialer],
                    1 => &[Side::Acceptor],
                    _ => &[Side::Dialer, Side::Acceptor],
                };
                for side in sides {
                    while self.next_batch(e, *side).await? {}
                }
                Ok(())
            }
            Action::Tick => {
                // Every session sends what it can.
                for e in live {
                    for side in [Side::Dialer, Side::Acceptor] {
                        while self.next_batch(e, side).await? {}
                    }
                }
                Ok(())
            }
            Action::Write => self.write().await,
            Action::CreateUnit => {
                let i = self.pick(&creatable);
                self.create_unit(i).await
            }
            Action::Cut => {
                let e = self.pick(&live);
                let graceful = self.rng.random_bool(0.5);
                self.cut(e, graceful).await
            }
            Action::Connect => {
                let e = self.pick(&down);
                self.connect(e).await
            }
            Action::Restart => {
                let n = self.rng.random_range(0..self.nodes.len());
                self.restart(n).await
            }
            Action::Timeout => {
                let (e, side) = self.pick(&waiting);
                self.stats.timeouts += 1;
                let name = self.edge_name(e);
                self.edges[e]
                    .link
                    .as_mut()
                    .expect("live")
                    .session(side)
                    .on_timeout();
                self.log(format!("{name} {side:?} ack timeout"));
                Ok(())
            }
            Action::Flush => {
                let e = self.pick(&live);
                let link = self.edges[e].link.as_mut().expect("live");
                link.dialer.flush().await?;
                link.acceptor.flush().await?;
                Ok(())
            }
            Action::CrashAfterApply => {
                // The batch is applied and committed; the node dies before
                // its ack leaves (and with it every session it had).
                let (e, dir) = self.pick(&batches);
                let receiver = match dir {
                    Dir::Up => self.edges[e].parent,
                    Dir::Down => self.edges[e].child,
                };
                self.deliver(e, dir, 0).await?;
                self.stats.crashes_after_apply += 1;
                self.log(format!("crash of {} after applying", NODES[receiver].id));
                self.restart(receiver).await
            }
            Action::Move => {
                let (unit, to) = self.pick(&movable);
                self.move_union(unit, to).await
            }
            Action::HandoverTick => {
                let n = self.rng.random_range(0..self.nodes.len());
                self.handover_tick(n).await.map(|_| ())
            }
        }
    }

    // ------------------------------------------------------------- heal

    /// No more faults: fresh sessions everywhere, then rounds until
    /// nothing moves.
    pub(super) async fn heal(&mut self) -> Result<()> {
        self.healing = true;
        self.log("heal".to_owned());
        for e in 0..self.edges.len() {
            let graceful = self.rng.random_bool(0.5);
            self.cut(e, graceful).await?;
        }
        for round in 0..MAX_HEAL_ROUNDS {
            self.stats.heal_rounds = round + 1;
            let mut moved = false;
            while let Some(&i) = self.creatable_units().first() {
                self.create_unit(i).await?;
                moved = true;
            }
            // Every node looks at what it owes (and seals) as its tick
            // does.
            for n in 0..self.nodes.len() {
                moved |= self.handover_tick(n).await?;
            }
            // Every child is back with its parent (a fallback is left
            // once the parent answers), every old host with the new hosts
            // it owes.
            for e in 0..self.edges.len() {
                let wanted = if self.edges[e].handover {
                    self.owed.contains(&e)
                } else {
                    !self.edges[e].fallback
                };
                if self.edges[e].link.is_none() && wanted {
                    self.connect(e).await?;
                    moved = true;
                }
            }
            loop {
                let queued = self.queued();
                if queued.is_empty() {
                    break;
                }
                moved = true;
                for (e, dir, _) in queued {
                    while self.edges[e].link.as_ref().is_some_and(|l| match dir {
                        Dir::Up => !l.up.is_empty(),
                        Dir::Down => !l.down.is_empty(),
                    }) {
                        self.deliver(e, dir, 0).await?;
                    }
                }
            }
            for e in 0..self.edges.len() {
                for side in [Side::Dialer, Side::Acceptor] {
                    while self.next_batch(e, side).await? {
                        moved = true;
                    }
                }
            }
            // Nothing is in flight any more: a session still waiting for an
            // acknowledgement waits for one that cannot come.
            if self.queued().is_empty() {
                for e in self.live() {
                    for side in [Side::Dialer, Side::Acceptor] {
                        let s = self.edges[e].link.as_mut().expect("live").session(side);
                        if s.awaiting_ack() {
                            s.on_timeout();
                            self.stats.timeouts += 1;
                            moved = true;
                            let name = self.edge_name(e);
                            self.log(format!("{name} {side:?} ack timeout (heal)"));
                        }
                    }
                }
            }
            for e in self.live() {
                let link = self.edges[e].link.as_mut().expect("live");
                link.dialer.flush().await?;
                link.acceptor.flush().await?;
            }
            if !moved {
                return Ok(());
            }
        }
        bail!("no convergence after {MAX_HEAL_ROUNDS} heal rounds")
    }
}
