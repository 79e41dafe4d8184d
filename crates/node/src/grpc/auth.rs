//! Who may call what: the roles of the client API, in one place.
//!
//! The caller is read from the request's client certificate
//! ([`Identity::of`]); the [`App`] never sees it. Every RPC starts with one
//! of [`client`], [`anyone`] or [`admin`], then states what it touches
//! ([`Caller::writes`], [`Caller::reads`], …); the checks are no-ops for an
//! administrator, so the App's own rules (the node's authority, validation)
//! answer as before.
//!
//! | caller | may |
//! |---|---|
//! | administrator | everything, including the `AdminService` |
//! | staff of unit U | write records owned inside U's subtree (the node's own authority rule, [`hopluu_model::UnitTree::has_authority`], with U for the node's unit); read rosters, members, emulation records, proposals, awards and reports inside it; read the unit tree, unit kinds, campaigns, the award catalogue and node info |
//! | a node | replication and node info only: node certificates are for peers, not for the client API |
//! | nobody (`--insecure-plaintext`, development) | as an administrator |
//!
//! A denied request is `PERMISSION_DENIED` with a message naming the
//! operation and the units, and a `warn` log line with the caller's
//! identity, the RPC and the unit ids; never member names or CCCD numbers.
//! Nothing is written before the check.
//!
//! # How often
//!
//! Each caller (a certificate identity; on a plaintext node, an address)
//! has a budget of client API requests ([`ClientLimits`], `[limits]`): a
//! token bucket of `burst` requests refilled at `requests_per_second`,
//! shared by every client service of the node. The check runs as an
//! interceptor ([`ClientLimits::interceptor`]), before a request's message
//! is decoded, so an over-budget caller costs the node next to nothing. It
//! is answered `RESOURCE_EXHAUSTED` with the limit and when to retry (also
//! as `retry-after` seconds and `grpc-retry-pushback-ms` metadata), and
//! logged once per burst of refusals with its identity; other callers go
//! on as before. Time comes from the node's [`Clock`], so tests move it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use hopluu_model::{AwardId, CampaignId, Clock, MemberId, ModelError, ProposalId, UnitId};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::NodeError;
use crate::app::App;
use crate::config::LimitsSection;
use crate::tls::{Identity, TlsError};

/// The caller of one RPC.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// The RPC's name, e.g. `AddMember`, for messages and logs.
    pub rpc: &'static str,
}

/// What a staff member is about to do with a unit's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl Access {
    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

fn identity<T>(req: &Request<T>, rpc: &'static str) -> Result<Identity, Status> {
    Identity::of(req).map_err(|e| {
        // A client without a certificate was logged once when it
        // connected (the TLS acceptor): not again for every request.
        if e == TlsError::Missing {
            tracing::debug!(rpc, remote = ?req.remote_addr(), "request refused: no certificate");
        } else {
            tracing::warn!(rpc, remote = ?req.remote_addr(), error = %e, "request refused: no identity");
        }
        Status::unauthenticated(format!("certificate: {e}"))
    })
}

/// A caller of the client API: an administrator, staff, or anyone on a
/// plaintext node. A node's certificate is refused.
pub fn client<T>(req: Request<T>, rpc: &'static str) -> Result<(Caller, T), Status> {
    let identity = identity(&req, rpc)?;
    let caller = Caller { identity, rpc };
    if let Identity::Node { node_id, unit } = &caller.identity {
        tracing::warn!(caller = %caller.identity, rpc, "permission denied: a node certificate on the client API");
        return Err(denied(format!(
            "{rpc}: the certificate of node {node_id} (unit {unit}) is for replication only; \
             the client API takes an administrator's or a staff member's certificate"
        )));
    }
    Ok((caller, req.into_inner()))
}

/// Any authenticated caller, nodes included (node info).
pub fn anyone<T>(req: Request<T>, rpc: &'static str) -> Result<(Caller, T), Status> {
    let identity = identity(&req, rpc)?;
    Ok((Caller { identity, rpc }, req.into_inner()))
}

/// An administrator (or anyone on a plaintext node): the admin service.
pub fn admin<T>(req: Request<T>, rpc: &'static str) -> Result<(Caller, T), Status> {
    let identity = identity(&req, rpc)?;
    let caller = Caller { identity, rpc };
    if !caller.is_admin() {
        tracing::warn!(caller = %caller.identity, rpc, "permission denied: not an administrator");
        return Err(denied(format!(
            "{rpc}: only administrators may use the admin service, and this is {}",
            caller.role()
        )));
    }
    Ok((caller, req.into_inner()))
}

/// A caller's role, without the account name (for messages).
fn role(identity: &Identity) -> String {
    match identity {
        Identity::Admin { .. } => "an administrator".to_owned(),
        Identity::Staff { unit, .. } => format!("staff of unit {unit}"),
        Identity::Node { node_id, .. } => format!("node {node_id}"),
        Identity::Insecure => "an unauthenticated caller".to_owned(),
    }
}

fn denied(message: String) -> Status {
    NodeError::Denied(message).into()
}

fn invalid(e: ModelError) -> Status {
    NodeError::from(e).into()
}

impl Caller {
    /// Administrators, and everyone on a plaintext node, may do anything.
    pub fn is_admin(&self) -> bool {
        matches!(self.identity, Identity::Admin { .. } | Identity::Insecure)
    }

    /// The unit a staff member works on; `None` for everyone else.
    pub fn staff_unit(&self) -> Option<&UnitId> {
        match &self.identity {
            Identity::Staff { unit, .. } => Some(unit),
            _ => None,
        }
    }

    /// The caller's role, without the account name (for messages).
    fn role(&self) -> String {
        role(&self.identity)
    }

    /// For staff, an omitted unit (`""`) means their own unit rather than
    /// the node's; for everyone else the request is left as it is.
    pub fn or_own(&self, unit: String) -> String {
        match self.staff_unit() {
            Some(own) if unit.trim().is_empty() => own.to_string(),
            _ => unit,
        }
    }

    /// The caller writes records owned by `unit` (the request's `field`).
    pub fn writes(&self, app: &App, field: &str, unit: &str) -> Result<(), Status> {
        self.check_str(app, Access::Write, field, unit)
    }

    /// The caller reads records of `unit` (rosters, members, emulation,
    /// proposals, awards, reports).
    pub fn reads(&self, app: &App, field: &str, unit: &str) -> Result<(), Status> {
        self.check_str(app, Access::Read, field, unit)
    }

    /// The caller reads a record that turned out to belong to `unit` (a
    /// member found by id or card): the message does not say which unit.
    pub fn reads_found(&self, app: &App, unit: &UnitId, what: &str) -> Result<(), Status> {
        self.check_hidden(app, Access::Read, unit, what)
    }

    /// The caller changes the record of unit `unit` (rename, move, close):
    /// it is owned by the unit's parent, which decides it.
    pub fn writes_unit_record(&self, app: &App, field: &str, unit: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = UnitId::parse(field, unit).map_err(invalid)?;
        let owner = app
            .tree()
            .get(&id)
            .map(|n| n.parent.clone().unwrap_or_else(|| id.clone()));
        match owner {
            // An unknown unit is outside every staff member's subtree.
            None => self.check(app, Access::Write, &id, None),
            Some(owner) => self.check(app, Access::Write, &owner, Some(&id)),
        }
    }

    /// The caller writes a member's records: those of the member's current
    /// unit. An unknown member is left to the App (it answers NOT_FOUND).
    pub async fn writes_member(&self, app: &App, member_id: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = MemberId::parse("member_id", member_id).map_err(invalid)?;
        match app.member_unit(&id).await? {
            None => Ok(()),
            Some(unit) => self.check_hidden(app, Access::Write, &unit, "member"),
        }
    }

    /// The caller changes a campaign: its launching unit owns it.
    pub async fn writes_campaign(&self, app: &App, campaign_id: &str) -> Result<(), Status> {
        self.writes_owned(
            app,
            || CampaignId::parse("campaign_id", campaign_id),
            async |id| app.campaign_owner(&id).await,
        )
        .await
    }

    /// The caller changes an award: its issuing unit owns it.
    pub async fn writes_award(&self, app: &App, award_id: &str) -> Result<(), Status> {
        self.writes_owned(
            app,
            || AwardId::parse("award_id", award_id),
            async |id| app.award_owner(&id).await,
        )
        .await
    }

    /// The caller marks a proposal decided: its proposing unit owns it.
    pub async fn writes_proposal(
        &self,
        app: &App,
        proposal_id: Option<&str>,
    ) -> Result<(), Status> {
        let Some(p) = proposal_id.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        self.writes_owned(
            app,
            || ProposalId::parse("proposal_id", p),
            async |id| app.proposal_owner(&id).await,
        )
        .await
    }

    /// The caller changes a record kept by one unit: `id` parses the
    /// record's id (only for staff: for everyone else the App answers a bad
    /// id), `owner` finds the unit that keeps it, which the caller must be
    /// allowed to write. An unknown record is left to the App (NOT_FOUND).
    async fn writes_owned<Id, Owner>(
        &self,
        app: &App,
        id: impl FnOnce() -> Result<Id, ModelError>,
        owner: impl FnOnce(Id) -> Owner,
    ) -> Result<(), Status>
    where
        Owner: Future<Output = Result<Option<UnitId>, NodeError>>,
    {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = id().map_err(invalid)?;
        match owner(id).await? {
            None => Ok(()),
            Some(unit) => self.check(app, Access::Write, &unit, None),
        }
    }

    /// The caller imports rows into these units: each must be writable.
    /// Rows whose unit is not a valid id are left to the App, which
    /// rejects them one by one.
    pub fn writes_rows<'a>(
        &self,
        app: &App,
        units: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        for u in units {
            if let Ok(id) = UnitId::parse("unit_id", u) {
                self.check(app, Access::Write, &id, None)?;
            }
        }
        Ok(())
    }

    fn check_str(&self, app: &App, access: Access, field: &str, unit: &str) -> Result<(), Status> {
        if self.staff_unit().is_none() {
            return Ok(());
        }
        let id = UnitId::parse(field, unit).map_err(invalid)?;
        self.check(app, access, &id, None)
    }

    /// Staff of U may touch `owner`'s records when U holds authority over
    /// it. `about` names the unit whose record it is, when that is not
    /// `owner` itself (a unit record is its parent's).
    fn check(
        &self,
        app: &App,
        access: Access,
        owner: &UnitId,
        about: Option<&UnitId>,
    ) -> Result<(), Status> {
        let Some(own) = self.staff_unit() else {
            return Ok(());
        };
        if app.tree().has_authority(own, owner) {
            return Ok(());
        }
        let rpc = self.rpc;
        tracing::warn!(
            caller = %self.identity,
            rpc,
            unit = %about.unwrap_or(owner),
            owner = %owner,
            own = %own,
            access = access.verb(),
            "permission denied: outside the caller's subtree"
        );
        let verb = access.verb();
        Err(denied(match about {
            Some(u) => format!(
                "{rpc} on unit {u}: its record is kept by unit {owner}, outside unit {own}'s \
                 subtree, and staff of unit {own} may {verb} only within it"
            ),
            None => format!(
                "{rpc} on unit {owner}: outside unit {own}'s subtree, and staff of unit {own} \
                 may {verb} only within it"
            ),
        }))
    }

    /// Like [`Caller::check`], for a unit the caller did not name (a
    /// member's): the message does not say which unit it is.
    fn check_hidden(
        &self,
        app: &App,
        access: Access,
        owner: &UnitId,
        what: &str,
    ) -> Result<(), Status> {
        let Some(own) = self.staff_unit() else {
            return Ok(());
        };
        if app.tree().has_authority(own, owner) {
            return Ok(());
        }
        let rpc = self.rpc;
        tracing::warn!(
            caller = %self.identity,
            rpc,
            unit = %owner,
            own = %own,
            access = access.verb(),
            "permission denied: outside the caller's subtree"
        );
        Err(denied(format!(
            "{rpc}: the {what} is not in unit {own}'s subtree, and staff of unit {own} may {} \
             only within it",
            access.verb()
        )))
    }
}

/// The node's budget of client API requests per caller (`[limits]`): a
/// token bucket each, holding up to `burst` requests and refilled at
/// `requests_per_second`. One per node, shared by every client service
/// through [`ClientLimits::interceptor`].
///
/// Memory stays bounded: a bucket that has refilled is the same as a new
/// one, so buckets idle that long are dropped (a sweep at most once per
/// refill time); and past `max_callers` the least recently seen caller is
/// forgotten (it gets a fresh budget when it comes back).
pub struct ClientLimits {
    config: LimitsSection,
    clock: Arc<dyn Clock>,
    state: Mutex<Buckets>,
}

/// Who a budget belongs to: the certificate identity; on a plaintext node,
/// where nobody is identified, the caller's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CallerKey {
    identity: Identity,
    address: Option<IpAddr>,
}

#[derive(Default)]
struct Buckets {
    by_caller: HashMap<CallerKey, Bucket>,
    /// When idle buckets were last dropped (the clock's milliseconds).
    swept_at: i64,
    /// Whether callers are being forgotten for want of room (logged once).
    crowded: bool,
}

/// A request's cost in a bucket: budgets count thousandths of a request,
/// so that a refill of `requests_per_second` adds a whole number of them
/// each millisecond and every sum is exact.
const REQUEST: u64 = 1000;

struct Bucket {
    /// Thousandths of a request the caller may make now.
    tokens: u64,
    /// When `tokens` was counted (the clock's milliseconds).
    at: i64,
    /// Requests refused since the caller was last served.
    refused: u64,
}

/// What [`ClientLimits::take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Served; `after` requests were refused just before.
    Served { after: u64 },
    /// Over budget: the next request may come in `retry_ms`; `first` for
    /// the first refusal of a burst.
    Refused { retry_ms: u64, first: bool },
}

impl std::fmt::Debug for ClientLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the buckets: this may be printed while they are locked.
        f.debug_struct("ClientLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClientLimits {
    /// The budget `config` describes, timed by `clock` (the node's).
    pub fn new(config: LimitsSection, clock: Arc<dyn Clock>) -> Arc<ClientLimits> {
        Arc::new(ClientLimits {
            config,
            clock,
            state: Mutex::new(Buckets::default()),
        })
    }

    /// An interceptor for a client service: it charges each request to its
    /// caller and refuses the request when the caller is over budget.
    pub fn interceptor(self: &Arc<Self>) -> LimitInterceptor {
        LimitInterceptor(self.clone())
    }

    /// Callers whose budget is tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().by_caller.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        // The state is a cache of budgets: one a panic left half-updated is
        // still a budget.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Charges one request of `request`'s caller, or refuses it. A request
    /// without a usable identity is let through: the role check answers it
    /// (`UNAUTHENTICATED`).
    fn charge<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if !self.config.enabled {
            return Ok(());
        }
        let Ok(identity) = Identity::of(request) else {
            return Ok(());
        };
        let address = match identity {
            Identity::Insecure => request.remote_addr().map(|a| a.ip()),
            _ => None,
        };
        let key = CallerKey { identity, address };
        match self.take(&key, self.clock.now_millis()) {
            Take::Served { after: 0 } => Ok(()),
            Take::Served { after } => {
                tracing::info!(
                    caller = %key.identity,
                    address = ?key.address,
                    refused = after,
                    "client request limit: serving the caller again"
                );
                Ok(())
            }
            Take::Refused { retry_ms, first } => {
                if first {
                    tracing::warn!(
                        caller = %key.identity,
                        address = ?key.address,
                        requests_per_second = self.config.requests_per_second,
                        burst = self.config.burst,
                        retry_ms,
                        "client request limit reached: refusing the caller's requests until its \
                         budget refills"
                    );
                }
                Err(self.refusal(&key.identity, retry_ms))
            }
        }
    }

    /// `RESOURCE_EXHAUSTED`, naming the limit and when to retry.
    fn refusal(&self, identity: &Identity, retry_ms: u64) -> Status {
        let c = &self.config;
        let wait = if retry_ms < 1000 {
            format!("{retry_ms} ms")
        } else {
            format!("{:.1} s", retry_ms as f64 / 1000.0)
        };
        let mut status = Status::resource_exhausted(format!(
            "too many requests: {} may make {} client API requests a second, in bursts of up to \
             {} (the node's limits.requests_per_second and limits.burst); retry in {wait}",
            role(identity),
            c.requests_per_second,
            c.burst,
        ));
        let meta = status.metadata_mut();
        meta.insert("retry-after", MetadataValue::from(retry_ms.div_ceil(1000)));
        meta.insert("grpc-retry-pushback-ms", MetadataValue::from(retry_ms));
        status
    }

    /// Takes one request from `key`'s bucket at `now` (milliseconds).
    fn take(&self, key: &CallerKey, now: i64) -> Take {
        let rate = u64::from(self.config.requests_per_second).max(1);
        let full = u64::from(self.config.burst) * REQUEST;
        let mut state = self.lock();
        let state = &mut *state;
        // A clock stepped back restarts the sweep interval from now.
        if now < state.swept_at || now - state.swept_at >= self.refill_ms() {
            self.sweep(state, now);
        }
        if !state.by_caller.contains_key(key) && state.by_caller.len() >= self.config.max_callers {
            self.make_room(state, now);
        }
        let bucket = state.by_caller.entry(key.clone()).or_insert(Bucket {
            tokens: full,
            at: now,
            refused: 0,
        });
        // A clock stepped back refills nothing and counts on from the new
        // reading.
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= REQUEST {
            bucket.tokens -= REQUEST;
            let after = std::mem::take(&mut bucket.refused);
            Take::Served { after }
        } else {
            bucket.refused += 1;
            Take::Refused {
                retry_ms: (REQUEST - bucket.tokens).div_ceil(rate),
                first: bucket.refused == 1,
            }
        }
    }

    /// What `bucket` holds at `now`.
    fn refilled(&self, bucket: &Bucket, now: i64) -> u64 {
        let rate = u64::from(self.config.requests_per_second);
        let full = u64::from(self.config.burst) * REQUEST;
        let elapsed = u64::try_from(now.saturating_sub(bucket.at)).unwrap_or(0);
        bucket
            .tokens
            .saturating_add(elapsed.saturating_mul(rate))
            .min(full)
    }

    /// Milliseconds an empty bucket takes to refill (at least a second, so
    /// that sweeps stay rare).
    fn refill_ms(&self) -> i64 {
        let c = &self.config;
        let ms = (u64::from(c.burst) * REQUEST).div_ceil(u64::from(c.requests_per_second).max(1));
        i64::try_from(ms).unwrap_or(i64::MAX).max(1000)
    }

    /// Drops every bucket that has refilled by `now`: a new one is the same.
    fn sweep(&self, state: &mut Buckets, now: i64) {
        let full = u64::from(self.config.burst) * REQUEST;
        state.by_caller.retain(|_, b| self.refilled(b, now) < full);
        state.swept_at = now;
        if state.crowded && state.by_caller.len() < self.config.max_callers {
            state.crowded = false;
        }
    }

    /// Makes room for one more caller: drops the idle buckets, else forgets
    /// the least recently seen caller.
    fn make_room(&self, state: &mut Buckets, now: i64) {
        self.sweep(state, now);
        if state.by_caller.len() < self.config.max_callers {
            return;
        }
        if !state.crowded {
            state.crowded = true;
            tracing::warn!(
                max_callers = self.config.max_callers,
                "client request limit: more active callers than limits.max_callers; forgetting \
                 the least recently seen (they get a fresh budget)"
            );
        }
        let oldest = state
            .by_caller
            .iter()
            .min_by_key(|(_, b)| b.at)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            state.by_caller.remove(&k);
        }
    }
}

/// Charges each request of a client service to its caller's budget
/// ([`ClientLimits`]), refusing it before its message is decoded.
#[derive(Debug, Clone)]
pub struct LimitInterceptor(Arc<ClientLimits>);

impl Interceptor for LimitInterceptor {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.0.charge(&request)?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use hopluu_model::Date;

    use super::*;

    #[derive(Debug, Default)]
    struct Manual(AtomicI64);

    impl Clock for Manual {
        fn today(&self) -> Date {
            Date::from_days_since_epoch(0)
        }
        fn now_millis(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn limits(rate: u32, burst: u32, max_callers: usize) -> Arc<ClientLimits> {
        ClientLimits::new(
            LimitsSection {
                enabled: true,
                requests_per_second: rate,
                burst,
                max_callers,
            },
            Arc::new(Manual::default()),
        )
    }

    fn staff(name: &str) -> CallerKey {
        CallerKey {
            identity: Identity::Staff {
                name: name.to_owned(),
                unit: UnitId::parse("unit", "hg").unwrap(),
            },
            address: None,
        }
    }

    #[test]
    fn a_burst_then_the_rate() {
        let l = limits(10, 3, 100);
        let a = staff("a");
        for _ in 0..3 {
            assert_eq!(l.take(&a, 0), Take::Served { after: 0 });
        }
        assert_eq!(
            l.take(&a, 0),
            Take::Refused {
                retry_ms: 100,
                first: true
            }
        );
        assert_eq!(
            l.take(&a, 50),
            Take::Refused {
                retry_ms: 50,
                first: false
            }
        );
        // Another caller has its own budget.
        assert_eq!(l.take(&staff("b"), 50), Take::Served { after: 0 });
        // One token back after 100 ms, and the refusals are reported.
        assert_eq!(l.take(&a, 100), Take::Served { after: 2 });
        assert!(matches!(l.take(&a, 100), Take::Refused { first: true, .. }));
    }

    #[test]
    fn waiting_as_told_is_enough() {
        for rate in [1, 3, 7, 50, 333, 100_000] {
            let l = limits(rate, 1, 100);
            let a = staff("a");
            let mut now = 0;
            assert_eq!(l.take(&a, now), Take::Served { after: 0 });
            for _ in 0..5 {
                let Take::Refused { retry_ms, .. } = l.take(&a, now) else {
                    panic!("{rate}/s: served at once");
                };
                if retry_ms > 1 {
                    assert!(matches!(
                        l.take(&a, now + retry_ms as i64 - 1),
                        Take::Refused { .. }
                    ));
                }
                now += retry_ms as i64;
                assert!(matches!(l.take(&a, now), Take::Served { .. }), "{rate}/s");
            }
        }
    }

    #[test]
    fn a_clock_stepped_back_refills_nothing_and_counts_on() {
        let l = limits(10, 2, 100);
        let a = staff("a");
        l.take(&a, 10_000);
        l.take(&a, 10_000);
        assert!(matches!(l.take(&a, 5_000), Take::Refused { .. }));
        assert_eq!(l.take(&a, 5_100), Take::Served { after: 1 });
    }

    #[test]
    fn idle_buckets_are_dropped_and_callers_capped() {
        let l = limits(10, 2, 100);
        for i in 0..100 {
            l.take(&staff(&format!("s{i}")), 0);
        }
        assert_eq!(l.tracked(), 100);
        // Full: one more forgets the least recently seen.
        l.take(&staff("late"), 1);
        assert_eq!(l.tracked(), 100);
        // Once their budgets have refilled, they are dropped.
        l.take(&staff("later"), 1_000);
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn off_serves_everyone() {
        let l = ClientLimits::new(
            LimitsSection {
                enabled: false,
                ..LimitsSection::default()
            },
            Arc::new(Manual::default()),
        );
        let req = Request::new(());
        for _ in 0..1000 {
            l.charge(&req).unwrap();
        }
        assert_eq!(l.tracked(), 0);
    }
}
