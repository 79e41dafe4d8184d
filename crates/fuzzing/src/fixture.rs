//! The fixture document: a small roster written through the model, the same
//! bytes on every run, and the node identities that write it.

use std::sync::OnceLock;

use automerge::{Automerge, ChangeHash};
use hopluu_model::member::{self, MemberInput, MemberStatus, MemberUpdate, NewMember};
use hopluu_model::{Author, Date, DocId, MemberId, UnitId};

/// The document incoming changes are applied to: a small roster written
/// through the model, the same bytes on every run.
#[derive(Debug)]
pub struct Fixture {
    pub roster_id: DocId,
    pub roster: Automerge,
    pub heads: Vec<ChangeHash>,
    /// `roster.save()`: the snapshot the store would hold.
    pub saved: Vec<u8>,
}

/// The fixture, built once.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let unit = fixture_unit();
        let mut roster = Automerge::new();
        write_fixture_roster(&mut roster).expect("the fixture roster is valid");
        let saved = roster.save();
        Fixture {
            roster_id: member::roster_doc(&unit, 0),
            heads: roster.get_heads(),
            roster,
            saved,
        }
    })
}

/// The grassroots unit whose roster is the fixture.
pub const FIXTURE_UNIT: &str = "hg-cta-thcs";

/// The node that writes the fixture, and the day it writes on.
pub const FIXTURE_NODE: &str = "hg-chau-thanh-a";
pub const FIXTURE_TODAY: &str = "2025-09-01";

pub fn fixture_unit() -> UnitId {
    UnitId::parse("unit", FIXTURE_UNIT).expect("a unit id")
}

pub fn fixture_today() -> Date {
    Date::parse("today", FIXTURE_TODAY).expect("a date")
}

/// The fixture node's author: fixed actor and time, so the changes (and
/// their hashes) are the same on every run and on every store.
pub fn fixture_author() -> Author {
    node_author(FIXTURE_NODE)
}

/// The author of node `node_id` hosting the unit of the same id (as every
/// node of the fixtures does), with a fixed incarnation and time.
///
/// The time is chosen so that the fixture's changes carry the very change
/// time they carried when the regression inputs in `fuzz/regressions/`
/// were found (1_756_684_800_000, which reads as milliseconds: 2025-09-01),
/// now that changes are timed in seconds (a thousandth of this): their
/// hashes, on which those inputs depend, stay as they were.
pub fn node_author(node_id: &str) -> Author {
    let unit = UnitId::parse("unit", node_id).expect("a unit id");
    Author {
        actor: Author::actor_for(node_id, &unit, b"fuzz"),
        time_millis: 1_756_684_800_000_000,
    }
}

/// The fixture's members: id, name, birth, gender, card, joined, position.
const FIXTURE_MEMBERS: [(&str, &str, &str, &str, &str, &str, &str); 3] = [
    (
        "m-an",
        "Nguyễn Văn An",
        "1990-03-15",
        "Nam",
        "HB-0001",
        "2015-05-01",
        "Tổ trưởng",
    ),
    (
        "m-binh",
        "Trần Thị Bình",
        "1985-11-02",
        "Nữ",
        "HB-0002",
        "2008-09-05",
        "Giáo viên",
    ),
    (
        "m-cuong",
        "Lò Văn Cường",
        "1979-01-20",
        "Nam",
        "HB-0003",
        "2001-04-30",
        "",
    ),
];

/// The fixture's members, parsed.
pub fn fixture_members() -> Vec<(MemberId, NewMember)> {
    FIXTURE_MEMBERS
        .iter()
        .map(|&(id, name, birth, gender, card, joined, position)| {
            let input = MemberInput {
                full_name: name.to_owned(),
                birth_date: birth.to_owned(),
                gender: gender.to_owned(),
                card_number: card.to_owned(),
                joined_on: joined.to_owned(),
                position: position.to_owned(),
                national_id: String::new(),
                ethnicity: String::new(),
                religion: String::new(),
            };
            (
                MemberId::parse("member_id", id).expect("a member id"),
                NewMember::parse(&input, fixture_today()).expect("a valid member"),
            )
        })
        .collect()
}

/// Writes the fixture roster (bucket 0 of [`FIXTURE_UNIT`]) into an empty
/// document: three members added, one promoted, one who left. The seed
/// generator writes the same changes into a real store, so payloads from
/// its sessions apply to the fixture.
pub fn write_fixture_roster(doc: &mut Automerge) -> Result<(), hopluu_model::ModelError> {
    let author = fixture_author();
    let unit = fixture_unit();
    let members = fixture_members();
    for (id, new) in &members {
        member::add(
            doc,
            &author,
            &unit,
            0,
            &member::joining(id.clone(), unit.clone(), new),
        )?;
    }
    let promote = MemberUpdate {
        position: Some("Chủ tịch công đoàn".to_owned()),
        ..MemberUpdate::default()
    };
    member::update(doc, &author, &members[0].0, &promote, fixture_today())?;
    member::end(
        doc,
        &author,
        &members[2].0,
        MemberStatus::Left,
        "nghỉ hưu",
        fixture_today(),
        None,
    )?;
    Ok(())
}
