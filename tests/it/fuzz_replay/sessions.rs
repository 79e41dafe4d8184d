//! Seeds from real sync sessions: two stores syncing through
//! `hopluu_sync::Session`, the frames they exchange, and their payloads.

use super::*;

pub(super) const PARENT: &str = "hau-giang";
pub(super) const CHILD: &str = fuzzing::FIXTURE_NODE;

pub(super) fn uid(s: &str) -> UnitId {
    UnitId::parse("unit", s).expect("a unit id")
}

/// A node's author at a fixed time: the same change hashes on every run.
pub(super) fn author(node: &str) -> Author {
    fuzzing::node_author(node)
}

pub(super) struct Node {
    pub(super) id: &'static str,
    pub(super) store: Store,
}

impl Node {
    pub(super) async fn open(dir: &Path, id: &'static str) -> Result<Node> {
        let url = format!("sqlite:{}/{id}.sqlite", dir.display());
        let options = StoreOptions {
            max_connections: 2,
            ..StoreOptions::default()
        };
        let store = Store::open(
            &url,
            options,
            std::sync::Arc::new(hopluu_model::SystemClock),
        )
        .await
        .with_context(|| format!("opening {url}"))?;
        Ok(Node { id, store })
    }

    pub(super) fn replica(&self) -> Replica {
        Replica {
            store: self.store.clone(),
            node_id: self.id.to_owned(),
            unit: uid(self.id),
            private_depth: 1,
            limits: Limits::default(),
        }
    }

    /// Writes a unit's record as the node holding authority over it made
    /// it (every node of these fixtures hosts the unit of its name): its
    /// parent's node, `vn` for the root. The records `vn` made reached the
    /// province from there.
    pub(super) async fn create_unit(
        &self,
        id: &str,
        name: &str,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<()> {
        let today = fuzzing::fixture_today();
        let decision = Decision::parse("01/QĐ-LĐLĐ", "2025-07-01", "2025-07-01", today)?;
        let new = NewUnit::parse(
            &KindCatalogue::default(),
            Some(id),
            name,
            kind,
            parent,
            decision,
        )?;
        let mut tx = self.store.begin().await?;
        let maker = author(parent.unwrap_or("vn"));
        unit::create(tx.doc(&DocId::Unit(uid(id))).await?, &maker, &new)?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a member's position in the fixture roster.
    pub(super) async fn promote(&self, member: &str, position: &str) -> Result<()> {
        let upd = MemberUpdate {
            position: Some(position.to_owned()),
            ..MemberUpdate::default()
        };
        let id = MemberId::parse("member", member)?;
        let mut tx = self.store.begin().await?;
        let doc = tx.doc(&fuzzing::fixture().roster_id).await?;
        member::update(doc, &author(self.id), &id, &upd, fuzzing::fixture_today())?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets what it knew of its peers' heads (as after a restore).
    pub(super) async fn forget_peers(&self) -> Result<()> {
        for table in ["peer_docs", "peers"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(self.store.pool())
                .await?;
        }
        Ok(())
    }
}

/// Runs one session between the child (dialling) and the parent until
/// nothing moves; returns every frame sent, in order.
pub(super) async fn run_session(child: &Node, parent: &Node) -> Result<Vec<Frame>> {
    let mut c = Session::new(
        child.replica(),
        Role::Dialer {
            expect: parent.id.to_owned(),
        },
    );
    let mut p = Session::new(parent.replica(), Role::Acceptor);
    let mut log = Vec::new();
    let mut up: VecDeque<Frame> = VecDeque::new();
    let mut down: VecDeque<Frame> = VecDeque::new();
    let hello = c.start().await?.context("the dialer speaks first")?;
    log.push(hello.clone());
    up.push_back(hello);
    for _ in 0..1000 {
        let mut moved = false;
        loop {
            if let Some(f) = up.pop_front() {
                for r in p.handle(f).await? {
                    log.push(r.clone());
                    down.push_back(r);
                }
            } else if let Some(f) = down.pop_front() {
                for r in c.handle(f).await? {
                    log.push(r.clone());
                    up.push_back(r);
                }
            } else {
                break;
            }
            moved = true;
        }
        while let Some(b) = c.next_batch().await? {
            log.push(b.clone());
            up.push_back(b);
            moved = true;
        }
        while let Some(b) = p.next_batch().await? {
            log.push(b.clone());
            down.push_back(b);
            moved = true;
        }
        if !moved {
            c.flush().await?;
            p.flush().await?;
            return Ok(log);
        }
    }
    bail!("the sessions did not settle")
}

/// A hello the parent refuses, and its refusal.
pub(super) async fn refused(parent: &Node, hello: Hello) -> Result<Frame> {
    let mut p = Session::new(parent.replica(), Role::Acceptor);
    match p.handle(Frame::Hello(hello)).await {
        Err(SyncError::Refuse(r)) => Ok(Frame::Refusal(r)),
        other => bail!("expected a refusal, got {other:?}"),
    }
}

/// Frames of real sessions between a district node (which writes the
/// fuzzer's fixture roster) and its province: first contact, a warm edit,
/// an edit the province quarantines, then concurrent edits with the heads
/// forgotten (the sync protocol), and refusals. Each frame is a
/// `sync_frame` seed; each payload an `automerge_payload` seed, and so are
/// the documents both ends hold.
pub(super) async fn session_seeds(out: &mut Seeds) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("hopluu-fuzz-seeds-")
        .tempdir()?;
    let parent = Node::open(dir.path(), PARENT).await?;
    let child = Node::open(dir.path(), CHILD).await?;
    parent
        .create_unit("vn", "Tổng Liên đoàn Lao động Việt Nam", "central", None)
        .await?;
    parent
        .create_unit(PARENT, "LĐLĐ tỉnh Hậu Giang", "provincial", Some("vn"))
        .await?;
    parent
        .create_unit(CHILD, "LĐLĐ huyện Châu Thành A", "district", Some(PARENT))
        .await?;
    {
        let c = NewCampaign::parse(
            Some("c1"),
            PARENT,
            "Lao động giỏi, lao động sáng tạo",
            "Thi đua yêu nước 2025",
            "2025-01-01",
            "2025-12-31",
            PARENT,
        )?;
        let mut tx = parent.store.begin().await?;
        campaign::create(
            tx.doc(&DocId::Campaign(c.id.clone())).await?,
            &author(PARENT),
            &c,
        )?;
        tx.commit().await?;
    }
    child
        .create_unit(
            fuzzing::FIXTURE_UNIT,
            "CĐCS Trường THCS Hòa Bình",
            "grassroots",
            Some(CHILD),
        )
        .await?;
    {
        let unit = fuzzing::fixture_unit();
        let mut tx = child.store.begin().await?;
        fuzzing::write_fixture_roster(tx.doc(&fuzzing::fixture().roster_id).await?)?;
        let private = PrivateData::parse("001090012345", "Kinh", "Không")?;
        member::put_private(
            tx.doc(&member::private_doc(&unit, 0)).await?,
            &author(CHILD),
            &unit,
            0,
            &MemberId::parse("member", "m-an")?,
            &private,
        )?;
        tx.commit().await?;
    }

    let mut sessions = vec![("first", run_session(&child, &parent).await?)];
    child.promote("m-binh", "Tổ phó").await?;
    sessions.push(("warm", run_session(&child, &parent).await?));
    // An edit the district has no authority for (the province's campaign):
    // the province quarantines it and its ack names the change.
    {
        let c1 = DocId::parse("doc_id", "campaign/c1")?;
        let mut tx = child.store.begin().await?;
        campaign::close(tx.doc(&c1).await?, &author(CHILD), fuzzing::fixture_today())?;
        tx.commit().await?;
    }
    let quarantine = run_session(&child, &parent).await?;
    ensure!(
        quarantine.iter().any(
            |f| matches!(f, Frame::Ack(a) if a.docs.iter().any(|d| !d.quarantined.is_empty()))
        ),
        "the province quarantines the district's edit of its campaign"
    );
    sessions.push(("quarantine", quarantine));
    parent.promote("m-an", "Ủy viên ban chấp hành").await?;
    child.promote("m-binh", "Tổ trưởng").await?;
    parent.forget_peers().await?;
    child.forget_peers().await?;
    sessions.push(("concurrent", run_session(&child, &parent).await?));

    let hello = |unit: &str, protocol: u32| Hello {
        node_id: "hg-vi-thanh".to_owned(),
        unit: unit.to_owned(),
        protocol,
        schema: SCHEMA_VERSION,
        applied_from_you: 0,
        receipts_from_you: 0,
    };
    let refusals = vec![
        refused(&parent, hello("hg-vi-thanh", PROTOCOL_VERSION)).await?,
        refused(&parent, hello(CHILD, PROTOCOL_VERSION + 1)).await?,
    ];
    sessions.push(("refused", refusals));

    for (session, frames) in &sessions {
        for (i, f) in frames.iter().enumerate() {
            let kind = match f {
                Frame::Batch(b) if b.docs.iter().any(|d| matches!(d.payload, Payload::Sync(_))) => {
                    "batch-sync"
                }
                other => other.kind(),
            };
            let wire = hopluu_node::convert::frames::to_pb(f.clone()).encode_to_vec();
            out.add("sync_frame", &format!("{session}-{i:02}-{kind}"), wire);
            let Frame::Batch(b) = f else { continue };
            for (j, u) in b.docs.iter().enumerate() {
                let (what, bytes) = match &u.payload {
                    Payload::Changes(c) => ("changes", c),
                    Payload::Sync(s) => ("sync", s),
                };
                let name = format!("{session}-{i:02}-{j}-{}-{what}", u.doc);
                out.add("automerge_payload", &name, bytes.clone());
                if let Payload::Sync(s) = &u.payload {
                    let msg = am_sync::Message::decode(s)?;
                    for (k, chunk) in msg.changes.iter().enumerate() {
                        out.add(
                            "automerge_payload",
                            &format!("{name}-chunk{k}"),
                            chunk.to_vec(),
                        );
                    }
                }
            }
        }
    }
    // Whole documents as stored.
    for (node, ids) in [
        (&parent, &["unit/vn", "unit/hau-giang", "campaign/c1"][..]),
        (
            &child,
            &["unit/hg-cta-thcs", "roster-private/hg-cta-thcs"][..],
        ),
    ] {
        for id in ids {
            let id = DocId::parse("doc_id", id)?;
            let bytes = node
                .store
                .doc_bytes(&id)
                .await?
                .context("a stored document")?;
            out.add("automerge_payload", &format!("saved-{id}"), bytes);
        }
    }
    parent.store.close().await;
    child.store.close().await;
    Ok(())
}
