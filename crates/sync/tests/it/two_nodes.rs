//! Two nodes of the plain protocol tests ([`crate::session`]): a parent
//! (accepting) and a child (dialling) on SQLite files, and a reliable
//! in-memory [`Wire`] between their sessions that records every frame.

use std::collections::VecDeque;

use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::{DocId, MemberId, member};
use hopluu_store::{Store, StoreOptions};
use hopluu_sync::frame::{DocUpdate, Frame, Hello, Payload};
use hopluu_sync::{Limits, PROTOCOL_VERSION, Replica, Role, Session, SyncError};

use crate::fixtures::{self, uid};

pub(crate) const PRIVATE_DEPTH: usize = 1;

/// One node: its store on a file of the test's directory.
pub(crate) struct Node {
    pub(crate) id: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) url: String,
    pub(crate) store: Store,
}

pub(crate) fn options() -> StoreOptions {
    // One roster document per unit: the tests look at one document.
    StoreOptions {
        bucket_size: 1000,
        ..fixtures::options(256)
    }
}

impl Node {
    pub(crate) async fn open(
        dir: &tempfile::TempDir,
        id: &'static str,
        unit: &'static str,
    ) -> Node {
        let url = fixtures::store_url(dir.path(), id);
        let store = fixtures::open(&url, options()).await;
        Node {
            id,
            unit,
            url,
            store,
        }
    }

    /// Closes the store and opens it again from its file.
    pub(crate) async fn restart(&mut self) {
        self.store.close().await;
        self.store = fixtures::open(&self.url, options()).await;
    }

    pub(crate) fn replica(&self, limits: Limits) -> Replica {
        Replica {
            store: self.store.clone(),
            node_id: self.id.to_owned(),
            unit: uid(self.unit),
            private_depth: PRIVATE_DEPTH,
            limits,
        }
    }

    pub(crate) fn author(&self) -> hopluu_model::Author {
        fixtures::author(self.id, self.unit, 1_756_684_800_000)
    }

    pub(crate) async fn create_unit(&self, id: &str, kind: &str, parent: Option<&str>) {
        fixtures::create_unit(&self.store, &self.author(), id, id, kind, parent)
            .await
            .unwrap();
    }

    pub(crate) async fn add_members(&self, unit: &str, n: usize, private: bool) -> Vec<MemberId> {
        let mut ids = Vec::new();
        for i in 0..n {
            let id = fixtures::mid(&format!("m-{unit}-{}-{i}", self.id));
            fixtures::add_member(
                &self.store,
                &self.author(),
                &uid(unit),
                &id,
                "Nguyễn Thị Hoa",
                &format!("THE-{}-{i:04}", unit.to_ascii_uppercase()),
                private,
            )
            .await
            .unwrap();
            ids.push(id);
        }
        ids
    }

    pub(crate) async fn edit(&self, unit: &str, member: &MemberId, position: &str) {
        fixtures::edit_member(&self.store, &self.author(), &uid(unit), 0, member, position)
            .await
            .unwrap();
    }

    pub(crate) async fn heads(&self, id: &DocId) -> Option<Vec<automerge::ChangeHash>> {
        self.store.doc_heads(id).await.unwrap()
    }

    pub(crate) async fn saved(&self, id: &DocId) -> Vec<u8> {
        self.store.doc_bytes(id).await.unwrap().expect("stored")
    }

    pub(crate) async fn position(&self, id: &DocId, member: &MemberId) -> String {
        self.store
            .read_doc(id, |d| member::read(d, member).unwrap().unwrap().position)
            .await
            .unwrap()
            .unwrap()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Child (dialer) to parent (acceptor).
    Up,
    /// Parent to child.
    Down,
}

/// A reliable link between a child's and a parent's session that records
/// every frame sent, in order.
pub(crate) struct Wire {
    pub(crate) child: Session,
    pub(crate) parent: Session,
    pub(crate) up: VecDeque<Frame>,
    pub(crate) down: VecDeque<Frame>,
    pub(crate) log: Vec<(Dir, Frame)>,
}

impl Wire {
    pub(crate) async fn open(child: &Node, parent: &Node, limits: Limits) -> Wire {
        let mut c = Session::new(
            child.replica(limits.clone()),
            Role::Dialer {
                expect: parent.id.to_owned(),
            },
        );
        let p = Session::new(parent.replica(limits), Role::Acceptor);
        let hello = c.start().await.unwrap().expect("a dialer speaks first");
        Wire {
            child: c,
            parent: p,
            up: VecDeque::new(),
            down: VecDeque::new(),
            log: Vec::new(),
        }
        .sent(Dir::Up, hello)
    }

    pub(crate) fn sent(mut self, dir: Dir, f: Frame) -> Wire {
        self.push(dir, f);
        self
    }

    pub(crate) fn push(&mut self, dir: Dir, f: Frame) {
        self.log.push((dir, f.clone()));
        match dir {
            Dir::Up => self.up.push_back(f),
            Dir::Down => self.down.push_back(f),
        }
    }

    /// Delivers the next frame going `dir`; false if there is none.
    pub(crate) async fn deliver(&mut self, dir: Dir) -> bool {
        let (frame, back) = match dir {
            Dir::Up => (self.up.pop_front(), Dir::Down),
            Dir::Down => (self.down.pop_front(), Dir::Up),
        };
        let Some(frame) = frame else { return false };
        let session = match dir {
            Dir::Up => &mut self.parent,
            Dir::Down => &mut self.child,
        };
        let replies = session
            .handle(frame)
            .await
            .unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        for r in replies {
            self.push(back, r);
        }
        true
    }

    /// Drops the next frame going `dir`.
    pub(crate) fn drop_next(&mut self, dir: Dir) -> Frame {
        match dir {
            Dir::Up => self.up.pop_front(),
            Dir::Down => self.down.pop_front(),
        }
        .expect("a frame to drop")
    }

    /// Asks a side for batches until it has none; whether it sent any.
    pub(crate) async fn send(&mut self, dir: Dir) -> bool {
        let mut any = false;
        loop {
            let session = match dir {
                Dir::Up => &mut self.child,
                Dir::Down => &mut self.parent,
            };
            match session.next_batch().await.unwrap() {
                Some(b) => {
                    self.push(dir, b);
                    any = true;
                }
                None => return any,
            }
        }
    }

    /// Runs both sessions until nothing moves, timing acknowledgements out
    /// when nothing is in flight any more.
    pub(crate) async fn run(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while self.deliver(Dir::Up).await || self.deliver(Dir::Down).await {
                moved = true;
            }
            moved |= self.send(Dir::Up).await;
            moved |= self.send(Dir::Down).await;
            if !moved && self.up.is_empty() && self.down.is_empty() {
                let mut timed_out = false;
                for s in [&mut self.child, &mut self.parent] {
                    if s.awaiting_ack() {
                        s.on_timeout();
                        timed_out = true;
                    }
                }
                if !timed_out {
                    return;
                }
            }
        }
        panic!("the sessions did not settle");
    }

    /// Writes what both sides acknowledged, as a driver does at the end.
    pub(crate) async fn close(mut self) {
        self.child.flush().await.unwrap();
        self.parent.flush().await.unwrap();
    }

    /// The document updates sent going `dir`, in order, from `from` on in
    /// the log.
    pub(crate) fn updates(&self, dir: Dir, from: usize) -> Vec<&DocUpdate> {
        self.log[from..]
            .iter()
            .filter(|(d, _)| *d == dir)
            .filter_map(|(_, f)| match f {
                Frame::Batch(b) => Some(b.docs.iter()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub(crate) fn updates_of(&self, dir: Dir, from: usize, doc: &DocId) -> Vec<&DocUpdate> {
        let name = doc.to_string();
        self.updates(dir, from)
            .into_iter()
            .filter(|u| u.doc == name)
            .collect()
    }
}

pub(crate) fn payload(u: &DocUpdate) -> &[u8] {
    match &u.payload {
        Payload::Changes(b) | Payload::Sync(b) => b,
    }
}

pub(crate) fn roster(unit: &str) -> DocId {
    member::roster_doc(&uid(unit), 0)
}

pub(crate) fn private_roster(unit: &str) -> DocId {
    member::private_doc(&uid(unit), 0)
}

pub(crate) fn limits() -> Limits {
    Limits::default()
}

/// The national node `vn` knowing p1 → c1 → g1, with `members` public
/// members in g1; the province node p1 empty.
pub(crate) async fn national_and_province(
    dir: &tempfile::TempDir,
    members: usize,
) -> (Node, Node, Vec<MemberId>) {
    let vn = Node::open(dir, "node-vn", "vn").await;
    vn.create_unit("vn", "central", None).await;
    vn.create_unit("p1", "provincial", Some("vn")).await;
    vn.create_unit("c1", "commune", Some("p1")).await;
    vn.create_unit("g1", "grassroots", Some("c1")).await;
    let ids = vn.add_members("g1", members, false).await;
    let p1 = Node::open(dir, "node-p1", "p1").await;
    (vn, p1, ids)
}

pub(crate) fn refusal_code(r: Result<Vec<Frame>, SyncError>) -> String {
    match r {
        Err(SyncError::Refuse(r)) => r.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub(crate) fn hello(node_id: &str, unit: &str) -> Hello {
    Hello {
        node_id: node_id.to_owned(),
        unit: unit.to_owned(),
        protocol: PROTOCOL_VERSION,
        schema: SCHEMA_VERSION,
        applied_from_you: 0,
        receipts_from_you: 0,
    }
}
