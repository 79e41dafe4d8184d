//! What a roster records of a member: gender, status, history, the
//! de-identification request, and the private data kept apart.

use crate::date::Date;
use crate::error::ModelError;
use crate::ids::{CardNumber, MemberId, NationalId, UnitId, clean_text};

/// The youngest age at which a worker may join a union.
pub const MIN_AGE: i32 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
    Other,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
        }
    }
    pub fn parse(field: &str, s: &str) -> Result<Gender, ModelError> {
        match s.trim().to_lowercase().as_str() {
            "male" | "nam" | "m" => Ok(Gender::Male),
            "female" | "nữ" | "nu" | "f" => Ok(Gender::Female),
            "other" | "khác" | "khac" => Ok(Gender::Other),
            // Not repeated: a shifted spreadsheet column puts other
            // personal data here.
            _ => Err(ModelError::invalid(field, "expected male, female or other")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    Active,
    /// Moved to another unit; the record there is the active one.
    Transferred,
    /// Left the union (resigned, retired, moved away).
    Left,
    /// Ceased to be a member by decision (e.g. the 2025 dissolution of
    /// grassroots unions in state agencies), with the reason.
    Ceased,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Transferred => "transferred",
            MemberStatus::Left => "left",
            MemberStatus::Ceased => "ceased",
        }
    }
    pub fn parse(s: &str) -> Option<MemberStatus> {
        match s {
            "active" => Some(MemberStatus::Active),
            "transferred" => Some(MemberStatus::Transferred),
            "left" => Some(MemberStatus::Left),
            "ceased" => Some(MemberStatus::Ceased),
            _ => None,
        }
    }
}

/// One entry of a member's history in a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// joined, transferred_in, transferred_out, left, ceased
    pub kind: String,
    pub on: Date,
    pub reason: String,
    pub other_unit: Option<UnitId>,
    /// The reorganisation decision that made the change (its number and
    /// id, `QĐ 12/2025 (d…)`); empty for a change made one by one.
    pub decision: String,
}

/// A member as the roster of one unit records them. `Debug` hides the
/// name and birth date.
#[derive(Clone, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    pub unit: UnitId,
    /// [`DEIDENTIFIED_NAME`] once the member was de-identified.
    pub full_name: String,
    /// `None` once the member was de-identified.
    pub birth_date: Option<Date>,
    pub gender: Gender,
    pub card_number: CardNumber,
    pub joined_on: Date,
    pub position: String,
    pub status: MemberStatus,
    pub status_reason: String,
    pub status_on: Option<Date>,
    pub history: Vec<MemberEvent>,
    /// The de-identification request this record carries out, if any.
    pub deidentified: Option<Deidentified>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("unit", &self.unit)
            .field("full_name", &"***")
            .field("birth_date", &"***")
            .field("gender", &self.gender)
            .field("card_number", &self.card_number)
            .field("joined_on", &self.joined_on)
            .field("status", &self.status)
            .field("status_on", &self.status_on)
            .field("history", &self.history.len())
            .field("deidentified", &self.deidentified)
            .finish_non_exhaustive()
    }
}

/// What replaces a de-identified member's name.
pub const DEIDENTIFIED_NAME: &str = "(de-identified)";

/// A de-identification request, as the member's record keeps it. It never
/// holds the removed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deidentified {
    /// When the node carried it out: UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub at: String,
    /// The node that carried it out.
    pub by: String,
    /// Who asked the node: the caller's certificate identity (e.g. `admin
    /// lan`), empty where the node does not know it.
    pub operator: String,
    /// Why (the member's request, a decision), as the operator gave it.
    pub reason: String,
    /// The request's document number, if any.
    pub reference: String,
}

impl Deidentified {
    /// Checks the operator's reason (required) and reference.
    pub fn parse(
        at_millis: i64,
        by: &str,
        operator: &str,
        reason: &str,
        reference: &str,
    ) -> Result<Deidentified, ModelError> {
        Ok(Deidentified {
            at: utc_timestamp(at_millis),
            by: by.to_owned(),
            operator: clean_text("operator", operator, 200, false)?,
            reason: clean_text("reason", reason, 500, true)?,
            reference: clean_text("reference", reference, 100, false)?,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the Unix epoch.
pub fn utc_timestamp(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let day = Date::from_days_since_epoch(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{day}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Sensitive personal data, kept in the private roster.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PrivateData {
    pub national_id: Option<NationalId>,
    pub ethnicity: String,
    pub religion: String,
}

impl std::fmt::Debug for PrivateData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateData(***)")
    }
}

impl PrivateData {
    pub fn is_empty(&self) -> bool {
        self.national_id.is_none() && self.ethnicity.is_empty() && self.religion.is_empty()
    }

    pub fn parse(national_id: &str, ethnicity: &str, religion: &str) -> Result<Self, ModelError> {
        Ok(PrivateData {
            national_id: if national_id.trim().is_empty() {
                None
            } else {
                Some(NationalId::parse("national_id", national_id)?)
            },
            ethnicity: clean_text("ethnicity", ethnicity, 50, false)?,
            religion: clean_text("religion", religion, 50, false)?,
        })
    }
}
