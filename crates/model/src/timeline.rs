//! The tree and the rosters as they stood on a given date.
//!
//! A unit's document keeps its parent links as a list of decisions, each
//! with the date it was decided and the date it took effect, which may lie
//! in the past (a ward union created on 1/7/2025 received its grassroots
//! unions by a decision of 27/8/2025, effective 1/7). [`parent_links`]
//! turns that list into dated intervals, which is what a report as of a
//! date needs: Hậu Giang's 2023 initiatives stay Hậu Giang's after its
//! 2025 merger into Cần Thơ. A member's record likewise says when it began
//! ([`member_since`]) and what its status was on a date ([`status_on`]).
//!
//! Everything here is a pure function of one record; the store projects
//! the intervals into rows and answers the tree-wide questions in SQL.

use crate::date::Date;
use crate::error::ModelError;
use crate::ids::UnitId;
use crate::member::{Member, MemberStatus};
use crate::unit::{Unit, UnitStatus};

/// One interval of a unit's life under one parent: `from` inclusive, `to`
/// exclusive (`None`: still so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `None` for a root.
    pub parent: Option<UnitId>,
    pub from: Date,
    pub to: Option<Date>,
}

impl Link {
    /// Whether the link holds on `d`.
    pub fn covers(&self, d: Date) -> bool {
        self.from <= d && self.to.is_none_or(|to| d < to)
    }
}

/// The earliest date a link can start: the date of a unit recorded before
/// its documents kept parent decisions.
pub fn beginning() -> Date {
    Date::new(Date::MIN_YEAR, 1, 1).expect("the first day of the first year is a date")
}

/// A unit's parent links as dated intervals, in date order.
///
/// The decisions are read in list (decision) order, and each replaces the
/// timeline from its effective date on: links starting on or after that
/// date are dropped and the one covering it ends there. So a later
/// decision with an earlier effective date wins from its date, and the last
/// decision names the current parent. A closed or merged unit's last
/// interval ends on `closed_on` (closed on D, it no longer exists on D). A
/// document without parent decisions (written before they were kept) gives
/// one link from [`beginning`] to its current parent.
pub fn parent_links(u: &Unit) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    if u.parents.is_empty() {
        links.push(Link {
            parent: u.parent.clone(),
            from: beginning(),
            to: None,
        });
    }
    for p in &u.parents {
        cut(&mut links, p.effective_on);
        links.push(Link {
            parent: p.parent.clone(),
            from: p.effective_on,
            to: None,
        });
    }
    if u.status != UnitStatus::Active
        && let Some(closed) = u.closed_on
    {
        cut(&mut links, closed);
    }
    links
}

/// Ends the timeline at `at`: links starting on or after it are dropped,
/// and the one covering it ends there.
fn cut(links: &mut Vec<Link>, at: Date) {
    links.retain(|l| l.from < at);
    if let Some(last) = links.last_mut()
        && last.to.is_none_or(|to| to > at)
    {
        last.to = Some(at);
    }
}

/// Whether the unit existed on `d`: some link covers it.
pub fn exists_on(u: &Unit, d: Date) -> bool {
    parent_links(u).iter().any(|l| l.covers(d))
}

/// Refuses a question about `u` on `d` when the unit did not exist then,
/// naming `field`, the unit and why: not yet created, or closed or merged
/// (into its successors) on an earlier date.
pub fn require_exists_on(u: &Unit, d: Date, field: &str) -> Result<(), ModelError> {
    let links = parent_links(u);
    if links.iter().any(|l| l.covers(d)) {
        return Ok(());
    }
    let why = match links.first() {
        Some(first) if d < first.from => {
            format!("it was not yet created (it exists from {})", first.from)
        }
        _ => {
            let on = u.closed_on.map(|c| format!(" on {c}")).unwrap_or_default();
            let into = if u.successors.is_empty() {
                String::new()
            } else {
                let s: Vec<&str> = u.successors.iter().map(UnitId::as_str).collect();
                format!(" into {}", s.join(", "))
            };
            match u.status {
                UnitStatus::Merged => format!("it was merged{into}{on}"),
                UnitStatus::Closed => format!("it was closed{on}{into}"),
                // An active unit always has a link running to today, so
                // only a gap between links leads here.
                UnitStatus::Active => "it had no parent then".to_owned(),
            }
        }
    };
    Err(ModelError::invalid(
        field,
        format!("unit {} did not exist on {d}: {why}", u.id),
    ))
}

/// The date the member's record in this unit began: the date of its last
/// transfer in, else the member's joining date (`joined_on`, which a
/// correction keeps right, where the history's `joined` entry keeps the
/// date first recorded).
pub fn member_since(m: &Member) -> Date {
    m.history
        .iter()
        .rev()
        .find(|e| e.kind == "joined" || e.kind == "transferred_in")
        .map_or(m.joined_on, |e| {
            if e.kind == "joined" {
                m.joined_on
            } else {
                e.on
            }
        })
}

/// The record's status on `d`: `None` before the record began, active
/// until the day a membership ended (the day itself counts as ended), and
/// the current status otherwise.
pub fn status_on(m: &Member, d: Date) -> Option<MemberStatus> {
    if d < member_since(m) {
        return None;
    }
    match (m.status, m.status_on) {
        (MemberStatus::Active, _) => Some(MemberStatus::Active),
        (_, Some(ended)) if d < ended => Some(MemberStatus::Active),
        (status, _) => Some(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CardNumber, KindId, MemberId};
    use crate::member::{Gender, MemberEvent};
    use crate::unit::ParentChange;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn uid(s: &str) -> UnitId {
        UnitId::parse("unit", s).unwrap()
    }

    /// `(parent, decided_on, effective_on)`, in decision order.
    fn unit(parents: &[(&str, &str, &str)]) -> Unit {
        let parents: Vec<ParentChange> = parents
            .iter()
            .map(|(p, decided, effective)| ParentChange {
                parent: (!p.is_empty()).then(|| uid(p)),
                decided_on: d(decided),
                effective_on: d(effective),
                decision_no: String::new(),
            })
            .collect();
        Unit {
            id: uid("g1"),
            name: "CĐCS Trường Ngã Sáu".into(),
            kind: KindId::parse("kind", "grassroots").unwrap(),
            parent: parents.last().and_then(|p| p.parent.clone()),
            status: UnitStatus::Active,
            successors: Vec::new(),
            closed_on: None,
            close_reason: String::new(),
            names: Vec::new(),
            parents,
        }
    }

    fn link(parent: &str, from: &str, to: Option<&str>) -> Link {
        Link {
            parent: (!parent.is_empty()).then(|| uid(parent)),
            from: d(from),
            to: to.map(d),
        }
    }

    #[test]
    fn plain_history() {
        let u = unit(&[
            ("d1", "2020-01-15", "2020-02-01"),
            ("p2", "2025-06-20", "2025-07-01"),
        ]);
        assert_eq!(
            parent_links(&u),
            [
                link("d1", "2020-02-01", Some("2025-07-01")),
                link("p2", "2025-07-01", None),
            ]
        );
        assert!(!exists_on(&u, d("2020-01-31")));
        assert!(exists_on(&u, d("2020-02-01")));
        assert!(exists_on(&u, d("2200-12-31")));
    }

    #[test]
    fn a_root_has_no_parent() {
        let u = unit(&[("", "2020-01-15", "2020-02-01")]);
        assert_eq!(parent_links(&u), [link("", "2020-02-01", None)]);
    }

    #[test]
    fn a_retroactive_move_takes_effect_from_its_date() {
        // Decided on 27/8, effective 1/7: from 1/7 on the ward union is the
        // parent, although the decision came later.
        let u = unit(&[
            ("d1", "2020-01-15", "2020-02-01"),
            ("w1", "2025-08-27", "2025-07-01"),
        ]);
        assert_eq!(
            parent_links(&u),
            [
                link("d1", "2020-02-01", Some("2025-07-01")),
                link("w1", "2025-07-01", None),
            ]
        );
        let on = |date: &str| {
            parent_links(&u)
                .into_iter()
                .find(|l| l.covers(d(date)))
                .and_then(|l| l.parent)
        };
        assert_eq!(on("2025-06-30"), Some(uid("d1")));
        assert_eq!(on("2025-07-01"), Some(uid("w1")));
    }

    #[test]
    fn a_later_decision_with_an_earlier_date_wins_from_its_date() {
        // To p2 from 1/9; then a later decision puts the unit under w1 from
        // 1/7, which replaces the move to p2 altogether.
        let u = unit(&[
            ("d1", "2020-01-15", "2020-02-01"),
            ("p2", "2025-08-01", "2025-09-01"),
            ("w1", "2025-08-27", "2025-07-01"),
        ]);
        assert_eq!(
            parent_links(&u),
            [
                link("d1", "2020-02-01", Some("2025-07-01")),
                link("w1", "2025-07-01", None),
            ]
        );
        // A later decision dated between two links shortens the first.
        let u = unit(&[
            ("d1", "2020-01-15", "2020-02-01"),
            ("p2", "2025-08-01", "2025-09-01"),
            ("w1", "2025-08-27", "2025-08-15"),
            ("p2", "2025-10-01", "2025-10-01"),
        ]);
        assert_eq!(
            parent_links(&u),
            [
                link("d1", "2020-02-01", Some("2025-08-15")),
                link("w1", "2025-08-15", Some("2025-10-01")),
                link("p2", "2025-10-01", None),
            ]
        );
    }

    #[test]
    fn a_closed_unit_ends_on_its_closing_date() {
        let mut u = unit(&[
            ("d1", "2020-01-15", "2020-02-01"),
            ("p2", "2025-06-20", "2025-07-01"),
        ]);
        u.status = UnitStatus::Merged;
        u.successors = vec![uid("g9")];
        u.closed_on = Some(d("2025-08-01"));
        assert_eq!(
            parent_links(&u),
            [
                link("d1", "2020-02-01", Some("2025-07-01")),
                link("p2", "2025-07-01", Some("2025-08-01")),
            ]
        );
        assert!(exists_on(&u, d("2025-07-31")));
        assert!(!exists_on(&u, d("2025-08-01")));
        let e = require_exists_on(&u, d("2025-08-01"), "as_of").unwrap_err();
        assert_eq!(
            e.to_string(),
            "as_of: unit g1 did not exist on 2025-08-01: it was merged into g9 on 2025-08-01"
        );
        let e = require_exists_on(&u, d("2019-12-31"), "as_of").unwrap_err();
        assert_eq!(
            e.to_string(),
            "as_of: unit g1 did not exist on 2019-12-31: it was not yet created (it exists from 2020-02-01)"
        );
        assert!(require_exists_on(&u, d("2025-07-31"), "as_of").is_ok());

        // Closed before a move took effect: the move never happened.
        u.status = UnitStatus::Closed;
        u.successors.clear();
        u.closed_on = Some(d("2025-06-01"));
        assert_eq!(
            parent_links(&u),
            [link("d1", "2020-02-01", Some("2025-06-01"))]
        );
        let e = require_exists_on(&u, d("2025-07-01"), "as_of").unwrap_err();
        assert_eq!(
            e.to_string(),
            "as_of: unit g1 did not exist on 2025-07-01: it was closed on 2025-06-01"
        );
    }

    #[test]
    fn a_document_without_parent_decisions_has_one_link() {
        let mut u = unit(&[]);
        u.parent = Some(uid("d1"));
        assert_eq!(parent_links(&u), [link("d1", "1900-01-01", None)]);
        u.status = UnitStatus::Closed;
        u.closed_on = Some(d("2024-01-01"));
        assert_eq!(
            parent_links(&u),
            [link("d1", "1900-01-01", Some("2024-01-01"))]
        );
    }

    fn event(kind: &str, on: &str) -> MemberEvent {
        MemberEvent {
            kind: kind.into(),
            on: d(on),
            reason: String::new(),
            other_unit: None,
            decision: String::new(),
        }
    }

    fn member(joined_on: &str, history: Vec<MemberEvent>) -> Member {
        Member {
            id: MemberId::parse("member_id", "m-1").unwrap(),
            unit: uid("g1"),
            full_name: "Nguyễn Văn An".into(),
            birth_date: None,
            gender: Gender::Male,
            card_number: CardNumber::parse("card_number", "HG-0001").unwrap(),
            joined_on: d(joined_on),
            position: String::new(),
            status: MemberStatus::Active,
            status_reason: String::new(),
            status_on: Some(d(joined_on)),
            history,
            deidentified: None,
        }
    }

    #[test]
    fn a_record_begins_when_the_member_joined_or_came() {
        let m = member("2012-03-01", vec![event("joined", "2012-03-01")]);
        assert_eq!(member_since(&m), d("2012-03-01"));
        // A corrected joining date moves the start of the record.
        let m = member("2011-03-01", vec![event("joined", "2012-03-01")]);
        assert_eq!(member_since(&m), d("2011-03-01"));
        // Transferred in: the record began on arrival, not on joining.
        let m = member("2012-03-01", vec![event("transferred_in", "2025-05-01")]);
        assert_eq!(member_since(&m), d("2025-05-01"));
        // Back in a unit it had left: the last arrival.
        let m = member(
            "2012-03-01",
            vec![
                event("joined", "2012-03-01"),
                event("transferred_out", "2020-01-01"),
                event("transferred_in", "2024-01-01"),
            ],
        );
        assert_eq!(member_since(&m), d("2024-01-01"));
        assert_eq!(
            member_since(&member("2012-03-01", Vec::new())),
            d("2012-03-01")
        );
    }

    #[test]
    fn status_on_a_date() {
        let mut m = member("2012-03-01", vec![event("joined", "2012-03-01")]);
        assert_eq!(status_on(&m, d("2012-02-29")), None);
        assert_eq!(status_on(&m, d("2012-03-01")), Some(MemberStatus::Active));
        m.status = MemberStatus::Ceased;
        m.status_on = Some(d("2025-04-01"));
        m.history.push(event("ceased", "2025-04-01"));
        assert_eq!(status_on(&m, d("2025-03-31")), Some(MemberStatus::Active));
        assert_eq!(status_on(&m, d("2025-04-01")), Some(MemberStatus::Ceased));
        assert_eq!(status_on(&m, d("2012-02-29")), None);
    }
}
