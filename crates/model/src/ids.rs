//! Identifiers. Each is a newtype whose constructor checks it, so a value
//! that exists is valid (parse, don't validate).
//!
//! Record ids are opaque: they never encode a parent or an administrative
//! code, both of which changed when provinces merged in 2025. Generated ids
//! are a one-letter kind prefix and 12 random base-32 characters.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

const ID_MAX: usize = 64;
const BASE32: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

fn check_slug(field: &str, s: &str) -> Result<(), ModelError> {
    if s.is_empty() {
        return Err(ModelError::invalid(field, "must not be empty"));
    }
    if s.len() > ID_MAX {
        return Err(ModelError::invalid(
            field,
            format!("must be at most {ID_MAX} characters"),
        ));
    }
    let ok_first = s.as_bytes()[0].is_ascii_lowercase() || s.as_bytes()[0].is_ascii_digit();
    let ok_rest = s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if !ok_first || !ok_rest {
        // The input is not repeated: what was typed where an id belongs may
        // be anything, a member's name included.
        return Err(ModelError::invalid(
            field,
            "is not an id: use lowercase ASCII letters, digits, '-' and '_', starting with a letter or digit",
        ));
    }
    Ok(())
}

fn random_id(prefix: char) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(13);
    s.push(prefix);
    for _ in 0..12 {
        s.push(BASE32[rng.random_range(0..32)] as char);
    }
    s
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks `s`; `field` names the input in the error.
            pub fn parse(field: &str, s: &str) -> Result<Self, ModelError> {
                let s = s.trim();
                check_slug(field, s)?;
                Ok(Self(s.to_owned()))
            }

            /// A new random id.
            pub fn generate() -> Self {
                Self(random_id($prefix))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(s: String) -> Result<Self, ModelError> {
                Self::parse(stringify!($name), &s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

opaque_id!(
    /// A union organisation at any level (`vn`, a province, a grassroots union).
    UnitId, 'u'
);
opaque_id!(
    /// A union member; the same id follows the member through transfers.
    MemberId, 'm'
);
opaque_id!(
    /// An emulation campaign (phong trào thi đua).
    CampaignId, 'c'
);
opaque_id!(
    /// An initiative (sáng kiến) recorded in an emulation document.
    InitiativeId, 'i'
);
opaque_id!(
    /// A dedicated work (công trình) recorded in an emulation document.
    WorkId, 'w'
);
opaque_id!(
    /// An award proposal.
    ProposalId, 'p'
);
opaque_id!(
    /// An award decision (khen thưởng).
    AwardId, 'a'
);
opaque_id!(
    /// A reorganisation decision (quyết định sắp xếp tổ chức).
    DecisionId, 'd'
);
opaque_id!(
    /// A node of the federation (a server), as its configuration names it.
    NodeId, 'n'
);
opaque_id!(
    /// A kind of unit or of award in a catalogue.
    KindId, 'k'
);

/// A union membership card number: unique among active members of the whole
/// federation. Upper-case letters, digits and '-', 4 to 24 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardNumber(String);

impl CardNumber {
    pub fn parse(field: &str, s: &str) -> Result<Self, ModelError> {
        let s = s.trim().to_ascii_uppercase();
        if !(4..=24).contains(&s.len()) {
            return Err(ModelError::invalid(field, "must be 4 to 24 characters"));
        }
        if !s
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-')
        {
            return Err(ModelError::invalid(
                field,
                "may contain only letters A-Z, digits and '-'",
            ));
        }
        Ok(CardNumber(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 12-digit citizen identity number (CCCD). Personal data: it lives only in
/// private roster documents and is never logged; `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalId(String);

impl NationalId {
    pub fn parse(field: &str, s: &str) -> Result<Self, ModelError> {
        let s = s.trim();
        if s.len() != 12 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ModelError::invalid(field, "must be exactly 12 digits"));
        }
        Ok(NationalId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NationalId(***)")
    }
}

/// Trimmed, non-control text of at most `max` characters.
pub fn clean_text(field: &str, s: &str, max: usize, required: bool) -> Result<String, ModelError> {
    let t = s.trim();
    if required && t.is_empty() {
        return Err(ModelError::invalid(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(ModelError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(ModelError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// 64-bit FNV-1a: a stable hash (the same on every node and every version),
/// used to place members in roster buckets.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(UnitId::parse("unit_id", "vn").is_ok());
        assert!(UnitId::parse("unit_id", "hau-giang").is_ok());
        let e = UnitId::parse("unit_id", "Hậu Giang").unwrap_err();
        assert!(e.to_string().starts_with("unit_id: "), "{e}");
        assert!(UnitId::parse("unit_id", "").is_err());
        assert!(UnitId::parse("unit_id", "-x").is_err());
        assert!(UnitId::parse("unit_id", &"a".repeat(65)).is_err());
        let g = MemberId::generate();
        assert!(g.as_str().starts_with('m') && g.as_str().len() == 13);
        assert_eq!(MemberId::parse("m", g.as_str()).unwrap(), g);
    }

    #[test]
    fn national_id_is_twelve_digits_and_hidden() {
        assert!(NationalId::parse("national_id", "001203004005").is_ok());
        let e = NationalId::parse("national_id", "12345").unwrap_err();
        assert_eq!(e.to_string(), "national_id: must be exactly 12 digits");
        assert!(NationalId::parse("national_id", "00120300400a").is_err());
        let id = NationalId::parse("x", "001203004005").unwrap();
        assert!(!format!("{id:?}").contains("0012"));
    }

    #[test]
    fn card_numbers_upper_case() {
        assert_eq!(
            CardNumber::parse("card_number", " hg-0001 ")
                .unwrap()
                .as_str(),
            "HG-0001"
        );
        assert!(CardNumber::parse("card_number", "12").is_err());
        assert!(CardNumber::parse("card_number", "AB CD").is_err());
    }

    #[test]
    fn text_is_cleaned() {
        assert_eq!(
            clean_text("name", "  Nguyễn   Văn  An ", 100, true).unwrap(),
            "Nguyễn Văn An"
        );
        assert!(clean_text("name", "  ", 100, true).is_err());
        assert!(clean_text("name", "a\u{0007}", 100, true).is_err());
        assert!(clean_text("name", &"x".repeat(101), 100, true).is_err());
    }

    #[test]
    fn stable_hash_is_stable() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}

/// Lower-case ASCII folding of Vietnamese text ("Nguyễn Thị Đào" ->
/// "nguyen thi dao"), so that a search for a name finds it whether or not
/// the clerk typed the diacritics.
pub fn fold(s: &str) -> String {
    const GROUPS: [(&str, char); 12] = [
        ("àáạảãâầấậẩẫăằắặẳẵ", 'a'),
        ("ÀÁẠẢÃÂẦẤẬẨẪĂẰẮẶẲẴ", 'a'),
        ("èéẹẻẽêềếệểễ", 'e'),
        ("ÈÉẸẺẼÊỀẾỆỂỄ", 'e'),
        ("ìíịỉĩ", 'i'),
        ("ÌÍỊỈĨ", 'i'),
        ("òóọỏõôồốộổỗơờớợởỡ", 'o'),
        ("ÒÓỌỎÕÔỒỐỘỔỖƠỜỚỢỞỠ", 'o'),
        ("ùúụủũưừứựửữ", 'u'),
        ("ÙÚỤỦŨƯỪỨỰỬỮ", 'u'),
        ("ỳýỵỷỹ", 'y'),
        ("ỲÝỴỶỸ", 'y'),
    ];
    s.chars()
        // Decomposed (NFD) text carries its diacritics as combining marks.
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c if c.is_ascii() => c.to_ascii_lowercase(),
            c => GROUPS
                .iter()
                .find(|(set, _)| set.contains(c))
                .map(|(_, base)| *base)
                .unwrap_or_else(|| c.to_lowercase().next().unwrap_or(c)),
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod fold_tests {
    #[test]
    fn folds_vietnamese() {
        assert_eq!(super::fold("Nguyễn  Thị ĐÀO"), "nguyen thi dao");
        assert_eq!(super::fold("Hậu Giang"), "hau giang");
        assert_eq!(super::fold("Trương Ưu Ỷ"), "truong uu y");
    }
}
