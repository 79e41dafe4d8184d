//! A new member and changes to one, validated from what a form or a
//! spreadsheet gives.

use super::*;
use crate::date::Date;
use crate::error::ModelError;
use crate::ids::{CardNumber, clean_text};

/// The raw fields of a member as a form or a spreadsheet gives them.
/// `Debug` shows none of them but the card number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MemberInput {
    pub full_name: String,
    pub birth_date: String,
    pub gender: String,
    pub card_number: String,
    pub joined_on: String,
    pub position: String,
    pub national_id: String,
    pub ethnicity: String,
    pub religion: String,
}

impl MemberInput {
    /// The first sensitive field (CCCD, ethnicity, religion) the input
    /// fills, if any.
    pub fn private_field(&self) -> Option<&'static str> {
        [
            ("national_id", &self.national_id),
            ("ethnicity", &self.ethnicity),
            ("religion", &self.religion),
        ]
        .into_iter()
        .find(|(_, v)| !v.trim().is_empty())
        .map(|(field, _)| field)
    }
}

impl std::fmt::Debug for MemberInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberInput")
            .field("card_number", &self.card_number)
            .finish_non_exhaustive()
    }
}

/// A validated new member (not yet placed in a unit). `Debug` hides the
/// personal fields.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMember {
    pub full_name: String,
    pub birth_date: Date,
    pub gender: Gender,
    pub card_number: CardNumber,
    pub joined_on: Date,
    pub position: String,
    pub private: PrivateData,
}

impl std::fmt::Debug for NewMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMember")
            .field("full_name", &"***")
            .field("birth_date", &"***")
            .field("gender", &self.gender)
            .field("card_number", &self.card_number)
            .field("joined_on", &self.joined_on)
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

pub fn full_name(s: &str) -> Result<String, ModelError> {
    clean_text("full_name", s, 100, true)
}

pub fn position(s: &str) -> Result<String, ModelError> {
    clean_text("position", s, 100, false)
}

/// Checks the dates of a membership against each other and today (a
/// de-identified member has no birth date left to check). The birth date is
/// personal data: no message repeats it.
pub fn check_dates(
    birth_date: Option<Date>,
    joined_on: Date,
    today: Date,
) -> Result<(), ModelError> {
    if birth_date.is_some_and(|b| b > today) {
        return Err(ModelError::invalid(
            "birth_date",
            format!("must not be in the future (today is {today})"),
        ));
    }
    // Nor the joining date: swapped date columns put the birth date there.
    if joined_on > today {
        return Err(ModelError::invalid(
            "joined_on",
            format!("must not be in the future (today is {today})"),
        ));
    }
    if birth_date.is_some_and(|b| joined_on < b.add_years(MIN_AGE)) {
        return Err(ModelError::invalid(
            "joined_on",
            format!("is before the member turned {MIN_AGE}"),
        ));
    }
    Ok(())
}

impl NewMember {
    /// Validates every field; the first bad field is reported.
    pub fn parse(input: &MemberInput, today: Date) -> Result<NewMember, ModelError> {
        let all = Self::parse_all(input, today);
        all.map_err(|mut errors| errors.remove(0))
    }

    /// Validates every field and reports every bad one (for imports).
    pub fn parse_all(input: &MemberInput, today: Date) -> Result<NewMember, Vec<ModelError>> {
        let mut errors = Vec::new();
        macro_rules! ok {
            ($e:expr) => {
                $e.map_err(|e| errors.push(e)).ok()
            };
        }
        let name = ok!(full_name(&input.full_name));
        let birth = ok!(Date::parse("birth_date", &input.birth_date));
        let gender = ok!(Gender::parse("gender", &input.gender));
        let card = ok!(CardNumber::parse("card_number", &input.card_number));
        let joined = ok!(Date::parse("joined_on", &input.joined_on));
        let pos = ok!(position(&input.position));
        let private = ok!(PrivateData::parse(
            &input.national_id,
            &input.ethnicity,
            &input.religion,
        ));
        if let (Some(b), Some(j)) = (birth, joined) {
            ok!(check_dates(Some(b), j, today));
        }
        match (name, birth, gender, card, joined, pos, private) {
            (
                Some(full_name),
                Some(birth_date),
                Some(gender),
                Some(card_number),
                Some(joined_on),
                Some(position),
                Some(private),
            ) if errors.is_empty() => Ok(NewMember {
                full_name,
                birth_date,
                gender,
                card_number,
                joined_on,
                position,
                private,
            }),
            _ => Err(errors),
        }
    }
}

/// Changes to a member's own fields; `None` leaves a field as it is.
/// `Debug` hides the name and birth date.
#[derive(Clone, Default)]
pub struct MemberUpdate {
    pub full_name: Option<String>,
    pub birth_date: Option<Date>,
    pub gender: Option<Gender>,
    pub position: Option<String>,
    pub joined_on: Option<Date>,
}

impl std::fmt::Debug for MemberUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: bool| if v { "***" } else { "unchanged" };
        f.debug_struct("MemberUpdate")
            .field("full_name", &set(self.full_name.is_some()))
            .field("birth_date", &set(self.birth_date.is_some()))
            .field("gender", &self.gender)
            .field("position", &self.position)
            .field("joined_on", &self.joined_on)
            .finish()
    }
}
