//! Reads: documents (through the cache) and queries over projections.

use std::collections::HashMap;

use automerge::Automerge;
use hopluu_model::award::{self, Award, Proposal};
use hopluu_model::campaign::{self, Campaign};
use hopluu_model::emulation::{self, Emulation};
use hopluu_model::member::{self, Deidentified, Gender, Member, MemberStatus, PrivateData};
use hopluu_model::tree::TreeNode;
use hopluu_model::unit::{self, Unit, UnitStatus};
use hopluu_model::{
    AwardId, CampaignId, CardNumber, Date, DocId, KindId, MemberId, ModelError, ProposalId, UnitId,
    UnitTree, ids::fold,
};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::tx::{WriteTx, load};
use crate::{Result, Store, StoreError};

/// A unit as listed from the projection (no history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    pub id: UnitId,
    pub name: String,
    pub kind: String,
    pub parent: Option<UnitId>,
    pub status: UnitStatus,
    pub successors: Vec<UnitId>,
    pub closed_on: String,
    pub close_reason: String,
    /// Levels below the unit the listing started from.
    pub depth: u32,
}

/// Where a member's record lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLoc {
    pub member: MemberId,
    pub unit: UnitId,
    pub bucket: u32,
    pub status: MemberStatus,
    pub card_number: String,
}

fn corrupt(what: &str, e: ModelError) -> StoreError {
    StoreError::Corrupt {
        doc: what.to_owned(),
        reason: e.to_string(),
    }
}

fn unit_id(r: &AnyRow, i: usize) -> Result<UnitId> {
    UnitId::parse("unit", &r.get::<String, _>(i)).map_err(|e| corrupt("projection", e))
}

fn member_row(r: &AnyRow) -> Result<Member> {
    let bad = |e| corrupt("members projection", e);
    Ok(Member {
        id: MemberId::parse("member_id", &r.get::<String, _>("member_id")).map_err(bad)?,
        unit: UnitId::parse("unit_id", &r.get::<String, _>("unit_id")).map_err(bad)?,
        full_name: r.get("full_name"),
        birth_date: Date::parse_opt("birth_date", &r.get::<String, _>("birth_date"))
            .map_err(bad)?,
        gender: Gender::parse("gender", &r.get::<String, _>("gender")).map_err(bad)?,
        card_number: CardNumber::parse("card_number", &r.get::<String, _>("card_number"))
            .map_err(bad)?,
        joined_on: Date::parse("joined_on", &r.get::<String, _>("joined_on")).map_err(bad)?,
        position: r.get("position"),
        status: MemberStatus::parse(&r.get::<String, _>("status"))
            .ok_or_else(|| bad(ModelError::invalid("status", "unknown")))?,
        status_reason: r.get("status_reason"),
        status_on: Date::parse_opt("status_on", &r.get::<String, _>("status_on")).map_err(bad)?,
        history: Vec::new(),
        deidentified: match r.get::<String, _>("deidentified_at") {
            at if at.is_empty() => None,
            at => Some(Deidentified {
                at,
                by: r.get("deidentified_by"),
                operator: r.get("deidentified_operator"),
                reason: r.get("deidentified_reason"),
                reference: r.get("deidentified_reference"),
            }),
        },
    })
}

const MEMBER_COLS: &str = "m.member_id, m.unit_id, m.full_name, m.birth_date, m.gender, \
    m.card_number, m.joined_on, m.position, m.status, m.status_reason, m.status_on, \
    m.deidentified_at, m.deidentified_by, m.deidentified_operator, m.deidentified_reason, \
    m.deidentified_reference";

impl Store {
    /// Runs `f` on the stored document `id` (None if it is not stored).
    pub async fn read_doc<T>(
        &self,
        id: &DocId,
        f: impl FnOnce(&Automerge) -> T,
    ) -> Result<Option<T>> {
        // Fast path: the cache. The closure runs under the cache lock, so it
        // must be short: decoding a record, not a report.
        let generation = {
            let cache = self.inner.cache.lock().expect("cache lock");
            if cache.contains(id) {
                return Ok(cache.with(id, f));
            }
            cache.generation()
        };
        let mut conn = self.inner.pool.acquire().await?;
        match load(&mut conn, id).await? {
            None => Ok(None),
            Some(loaded) => {
                let out = f(&loaded.doc);
                let mut cache = self.inner.cache.lock().expect("cache lock");
                // Not if a commit came in meanwhile: what was loaded may be
                // older than what that commit stored (and cached).
                if cache.generation() == generation {
                    cache.put(id, loaded);
                }
                Ok(Some(out))
            }
        }
    }

    /// The stored bytes of a document (a full save), for export and tests.
    pub async fn doc_bytes(&self, id: &DocId) -> Result<Option<Vec<u8>>> {
        self.read_doc(id, |d| d.save()).await
    }

    pub async fn unit(&self, id: &UnitId) -> Result<Option<Unit>> {
        let doc = DocId::Unit(id.clone());
        self.read_doc(&doc, |d| unit::read(&doc, d))
            .await?
            .transpose()
            .map_err(Into::into)
    }

    /// Every known unit as a tree (parent links), from the projection.
    pub async fn unit_tree(&self) -> Result<UnitTree> {
        load_tree(&self.inner.pool).await
    }

    /// The subtree of `root` from the closure table, nearest first.
    pub async fn list_units(
        &self,
        root: &UnitId,
        include_closed: bool,
        max_depth: Option<u32>,
    ) -> Result<Vec<UnitRow>> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.kind, u.parent, u.status, u.successors, u.closed_on, \
             u.close_reason, c.depth FROM unit_closure c JOIN units u ON u.id = c.descendant \
             WHERE c.ancestor = $1 AND ($2 = 1 OR u.status = 'active') AND c.depth <= $3 \
             ORDER BY c.depth, u.name, u.id",
        )
        .bind(root.as_str())
        .bind(i64::from(include_closed))
        .bind(i64::from(max_depth.unwrap_or(1000)))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let parent: Option<String> = r.get(3);
                Ok(UnitRow {
                    id: unit_id(r, 0)?,
                    name: r.get(1),
                    kind: r.get(2),
                    parent: parent
                        .filter(|p| !p.is_empty())
                        .map(|p| UnitId::parse("parent", &p))
                        .transpose()
                        .map_err(|e| corrupt("units", e))?,
                    status: UnitStatus::parse(&r.get::<String, _>(4)).unwrap_or(UnitStatus::Active),
                    successors: r
                        .get::<String, _>(5)
                        .split_whitespace()
                        .map(|s| UnitId::parse("successors", s))
                        .collect::<Result<_, _>>()
                        .map_err(|e| corrupt("units", e))?,
                    closed_on: r.get(6),
                    close_reason: r.get(7),
                    depth: r.get::<i64, _>(8) as u32,
                })
            })
            .collect()
    }

    /// Every record of a member (one per unit they have been in).
    pub async fn member_locations(&self, id: &MemberId) -> Result<Vec<MemberLoc>> {
        let mut conn = self.inner.pool.acquire().await?;
        member_locations(&mut conn, id).await
    }

    /// The unit where the holder of an active card is a member.
    pub async fn active_card(&self, card: &CardNumber) -> Result<Option<MemberLoc>> {
        let mut conn = self.inner.pool.acquire().await?;
        Ok(active_cards(&mut conn, &[card.as_str()])
            .await?
            .into_values()
            .next())
    }

    /// A member's full record (with history) in one unit's roster.
    pub async fn member(&self, loc: &MemberLoc) -> Result<Option<Member>> {
        let doc = member::roster_doc(&loc.unit, loc.bucket);
        let id = loc.member.clone();
        Ok(self
            .read_doc(&doc, |d| member::read(d, &id))
            .await?
            .transpose()?
            .flatten())
    }

    /// Every record, in any state, that carries this card number: card
    /// numbers are unique among active members only, so a card may name
    /// a past member and a current one.
    pub async fn card_records(&self, card: &CardNumber) -> Result<Vec<MemberLoc>> {
        let rows = sqlx::query(
            "SELECT member_id, unit_id, bucket, status, card_number FROM members \
             WHERE card_number = $1 ORDER BY member_id, unit_id",
        )
        .bind(card.as_str())
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter().map(loc_row).collect()
    }

    /// The member's current record: the active one, else the latest.
    pub async fn current_member_loc(&self, id: &MemberId) -> Result<Option<MemberLoc>> {
        let locs = self.member_locations(id).await?;
        Ok(locs
            .iter()
            .find(|l| l.status == MemberStatus::Active)
            .or(locs.first())
            .cloned())
    }

    pub async fn private_data(
        &self,
        member: &MemberId,
        unit: &UnitId,
    ) -> Result<Option<PrivateData>> {
        let row = sqlx::query(
            "SELECT national_id, ethnicity, religion FROM member_private \
             WHERE member_id = $1 AND unit_id = $2",
        )
        .bind(member.as_str())
        .bind(unit.as_str())
        .fetch_optional(&self.inner.pool)
        .await?;
        row.map(|r| {
            PrivateData::parse(
                &r.get::<String, _>(0),
                &r.get::<String, _>(1),
                &r.get::<String, _>(2),
            )
            .map_err(|e| corrupt("member_private", e))
        })
        .transpose()
    }

    /// How many `member_private` rows this node holds.
    pub async fn private_rows(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM member_private")
            .fetch_one(&self.inner.pool)
            .await?
            .get(0))
    }

    /// Members of a unit (or its whole subtree), optionally by status,
    /// ordered by name; with the total count for paging.
    pub async fn list_members(
        &self,
        unit: &UnitId,
        subtree: bool,
        status: Option<MemberStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Member>, u64)> {
        let scope = if subtree {
            "m.unit_id IN (SELECT descendant FROM unit_closure WHERE ancestor = $1)"
        } else {
            "m.unit_id = $1"
        };
        let filter = "($2 = '' OR m.status = $2)";
        let status = status.map(MemberStatus::as_str).unwrap_or("");
        let total: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM members m WHERE {scope} AND {filter}"
        )))
        .bind(unit.as_str())
        .bind(status)
        .fetch_one(&self.inner.pool)
        .await?
        .get(0);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MEMBER_COLS} FROM members m WHERE {scope} AND {filter} \
             ORDER BY m.name_key, m.member_id LIMIT $3 OFFSET $4"
        )))
        .bind(unit.as_str())
        .bind(status)
        .bind(i64::from(limit.clamp(1, 10_000)))
        .bind(i64::from(offset))
        .fetch_all(&self.inner.pool)
        .await?;
        Ok((
            rows.iter().map(member_row).collect::<Result<_>>()?,
            total as u64,
        ))
    }

    /// Members whose name contains the query (diacritics ignored) or whose
    /// card number is the query, within a subtree.
    pub async fn find_members(
        &self,
        query: &str,
        scope: &UnitId,
        limit: u32,
    ) -> Result<Vec<Member>> {
        let key = fold(query);
        let pattern = format!(
            "%{}%",
            key.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MEMBER_COLS} FROM members m \
             WHERE m.unit_id IN (SELECT descendant FROM unit_closure WHERE ancestor = $1) \
             AND (m.name_key LIKE $2 ESCAPE '\\' OR m.card_number = $3) \
             ORDER BY CASE WHEN m.status = 'active' THEN 0 ELSE 1 END, m.name_key, m.member_id LIMIT $4"
        )))
        .bind(scope.as_str())
        .bind(pattern)
        .bind(query.trim().to_ascii_uppercase())
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter().map(member_row).collect()
    }

    pub async fn campaign(&self, id: &CampaignId) -> Result<Option<Campaign>> {
        let doc = DocId::Campaign(id.clone());
        self.read_doc(&doc, |d| campaign::read(&doc, d))
            .await?
            .transpose()
            .map_err(Into::into)
    }

    /// Campaigns whose scope covers the unit (launched above it for a scope
    /// that includes it) or lies inside its subtree.
    pub async fn campaigns_covering(&self, unit: &UnitId) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(
            "SELECT id FROM campaigns WHERE \
             scope_unit IN (SELECT ancestor FROM unit_closure WHERE descendant = $1) \
             OR scope_unit IN (SELECT descendant FROM unit_closure WHERE ancestor = $1) \
             ORDER BY starts_on DESC, id",
        )
        .bind(unit.as_str())
        .fetch_all(&self.inner.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id = CampaignId::parse("id", &r.get::<String, _>(0))
                .map_err(|e| corrupt("campaigns", e))?;
            if let Some(c) = self.campaign(&id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    pub async fn emulation(
        &self,
        unit: &UnitId,
        campaign: &CampaignId,
    ) -> Result<Option<Emulation>> {
        let doc = emulation::doc_id(unit, campaign);
        self.read_doc(&doc, emulation::read)
            .await?
            .transpose()
            .map_err(Into::into)
    }

    pub async fn proposal(&self, id: &ProposalId) -> Result<Option<Proposal>> {
        let doc = DocId::Proposal(id.clone());
        self.read_doc(&doc, |d| award::read_proposal(&doc, d))
            .await?
            .transpose()
            .map_err(Into::into)
    }

    /// Proposals made by the unit or addressed to it.
    pub async fn proposals(&self, unit: &UnitId) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(
            "SELECT id FROM proposals WHERE proposing_unit = $1 OR addressed_unit = $1 \
             ORDER BY proposed_on DESC, id",
        )
        .bind(unit.as_str())
        .fetch_all(&self.inner.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id = ProposalId::parse("id", &r.get::<String, _>(0))
                .map_err(|e| corrupt("proposals", e))?;
            if let Some(p) = self.proposal(&id).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    pub async fn award(&self, id: &AwardId) -> Result<Option<Award>> {
        let doc = DocId::Award(id.clone());
        self.read_doc(&doc, |d| award::read_award(&doc, d))
            .await?
            .transpose()
            .map_err(Into::into)
    }

    /// Awards issued within the unit's subtree or to recipients in it.
    pub async fn awards(&self, unit: &UnitId, year: Option<u32>) -> Result<Vec<Award>> {
        let rows = sqlx::query(
            "SELECT a.id FROM awards a WHERE ($2 = 0 OR a.year = $2) AND ( \
             a.issuing_unit IN (SELECT descendant FROM unit_closure WHERE ancestor = $1) \
             OR a.id IN (SELECT r.award FROM award_recipients r JOIN unit_closure c \
                         ON c.descendant = r.unit_id WHERE c.ancestor = $1)) \
             ORDER BY a.decided_on DESC, a.id",
        )
        .bind(unit.as_str())
        .bind(i64::from(year.unwrap_or(0)))
        .fetch_all(&self.inner.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id =
                AwardId::parse("id", &r.get::<String, _>(0)).map_err(|e| corrupt("awards", e))?;
            if let Some(a) = self.award(&id).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The last sequence number in the change feed.
    pub async fn feed_position(&self) -> Result<i64> {
        load_feed_position(&self.inner.pool).await
    }

    /// The feed after `seq`: (seq, document) in order, at most `limit`.
    pub async fn feed_since(&self, seq: i64, limit: u32) -> Result<Vec<(i64, DocId)>> {
        let rows = sqlx::query(
            "SELECT f.seq, d.doc_id FROM feed f JOIN docs d ON d.id = f.doc \
             WHERE f.seq > $1 ORDER BY f.seq LIMIT $2",
        )
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get::<i64, _>(0),
                    DocId::parse("doc_id", &r.get::<String, _>(1))
                        .map_err(|e| corrupt("docs", e))?,
                ))
            })
            .collect()
    }

    /// The emulation document holding initiative `id`, if it is known here.
    pub async fn initiative_doc(&self, id: &hopluu_model::InitiativeId) -> Result<Option<DocId>> {
        let row = sqlx::query(
            "SELECT d.doc_id FROM initiatives i JOIN docs d ON d.id = i.doc WHERE i.id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.inner.pool)
        .await?;
        row.map(|r| DocId::parse("doc_id", &r.get::<String, _>(0)).map_err(|e| corrupt("docs", e)))
            .transpose()
    }

    /// The heads of a stored document, as stored with its last write.
    pub async fn doc_heads(&self, id: &DocId) -> Result<Option<Vec<automerge::ChangeHash>>> {
        let row = sqlx::query("SELECT heads FROM docs WHERE doc_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.inner.pool)
            .await?;
        Ok(row.map(|r| crate::tx::heads_from_bytes(&r.get::<Vec<u8>, _>(0))))
    }

    pub async fn doc_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM docs")
            .fetch_one(&self.inner.pool)
            .await?
            .get(0))
    }

    /// Bytes stored for documents: snapshots plus chunks.
    pub async fn stored_doc_bytes(&self) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT CAST(COALESCE(SUM(snapshot_len + chunks_len), 0) AS BIGINT) FROM docs",
        )
        .fetch_one(&self.inner.pool)
        .await?
        .get(0))
    }

    /// Every stored document id (for consistency checks and export).
    pub async fn doc_ids(&self) -> Result<Vec<DocId>> {
        let rows = sqlx::query("SELECT doc_id FROM docs ORDER BY doc_id")
            .fetch_all(&self.inner.pool)
            .await?;
        rows.iter()
            .map(|r| DocId::parse("doc_id", &r.get::<String, _>(0)).map_err(|e| corrupt("docs", e)))
            .collect()
    }
}

pub(crate) async fn load_feed_position(pool: &sqlx::AnyPool) -> Result<i64> {
    Ok(
        sqlx::query("SELECT value FROM counters WHERE name = 'feed'")
            .fetch_one(pool)
            .await?
            .get(0),
    )
}

pub(crate) async fn load_tree(pool: &sqlx::AnyPool) -> Result<UnitTree> {
    let rows = sqlx::query("SELECT id, parent, kind, status, name FROM units")
        .fetch_all(pool)
        .await?;
    let mut tree = UnitTree::new();
    for r in rows {
        let parent: Option<String> = r.get(1);
        tree.upsert(
            unit_id(&r, 0)?,
            TreeNode {
                parent: match parent.as_deref() {
                    None | Some("") => None,
                    Some(p) => Some(UnitId::parse("parent", p).map_err(|e| corrupt("units", e))?),
                },
                kind: KindId::parse("kind", &r.get::<String, _>(2))
                    .map_err(|e| corrupt("units", e))?,
                status: UnitStatus::parse(&r.get::<String, _>(3)).unwrap_or(UnitStatus::Active),
                name: r.get(4),
            },
        );
    }
    Ok(tree)
}

async fn member_locations(conn: &mut sqlx::AnyConnection, id: &MemberId) -> Result<Vec<MemberLoc>> {
    let rows = sqlx::query(
        "SELECT member_id, unit_id, bucket, status, card_number FROM members WHERE member_id = $1 \
         ORDER BY status_on DESC, unit_id",
    )
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(loc_row).collect()
}

pub(crate) fn loc_row(r: &AnyRow) -> Result<MemberLoc> {
    Ok(MemberLoc {
        member: MemberId::parse("member_id", &r.get::<String, _>(0))
            .map_err(|e| corrupt("members", e))?,
        unit: unit_id(r, 1)?,
        bucket: r.get::<i64, _>(2) as u32,
        status: MemberStatus::parse(&r.get::<String, _>(3)).unwrap_or(MemberStatus::Left),
        card_number: r.get(4),
    })
}

async fn active_cards(
    conn: &mut sqlx::AnyConnection,
    cards: &[&str],
) -> Result<HashMap<String, MemberLoc>> {
    let mut out = HashMap::new();
    for chunk in cards.chunks(500) {
        let sql = format!(
            "SELECT member_id, unit_id, bucket, status, card_number FROM members \
             WHERE status = 'active' AND card_number IN ({})",
            crate::db::placeholders(chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
        for c in chunk {
            q = q.bind(*c);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let loc = loc_row(&r)?;
            out.insert(loc.card_number.clone(), loc);
        }
    }
    Ok(out)
}

impl WriteTx<'_> {
    /// Active holders of these card numbers, as this transaction sees them.
    pub async fn active_cards(&mut self, cards: &[&str]) -> Result<HashMap<String, MemberLoc>> {
        active_cards(self.conn(), cards).await
    }

    /// Every record of a member, as this transaction sees them.
    pub async fn member_locations(&mut self, id: &MemberId) -> Result<Vec<MemberLoc>> {
        member_locations(self.conn(), id).await
    }

    /// The buckets of the unit's roster and private roster documents that
    /// this node stores, whatever the projections say (a member placed in
    /// two buckets is projected from one of them only).
    pub async fn roster_buckets(&mut self, unit: &UnitId) -> Result<Vec<u32>> {
        let rows = sqlx::query(
            "SELECT doc_id FROM docs WHERE owner = $1 AND kind IN ('roster', 'roster-private')",
        )
        .bind(unit.as_str())
        .fetch_all(&mut *self.conn())
        .await?;
        let mut buckets = Vec::new();
        for r in rows {
            match DocId::parse("doc_id", &r.get::<String, _>(0)).map_err(|e| corrupt("docs", e))? {
                DocId::Roster { bucket, .. } | DocId::RosterPrivate { bucket, .. } => {
                    buckets.push(bucket)
                }
                _ => {}
            }
        }
        buckets.sort_unstable();
        buckets.dedup();
        Ok(buckets)
    }

    /// How many members each roster bucket of the unit holds.
    pub async fn bucket_counts(&mut self, unit: &UnitId) -> Result<HashMap<u32, usize>> {
        let rows =
            sqlx::query("SELECT bucket, COUNT(*) FROM members WHERE unit_id = $1 GROUP BY bucket")
                .bind(unit.as_str())
                .fetch_all(&mut *self.conn())
                .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>(0) as u32, r.get::<i64, _>(1) as usize))
            .collect())
    }
}
