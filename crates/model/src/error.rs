//! The model's one error type.

use thiserror::Error;

/// Why a domain operation was refused. Every variant says what was expected,
/// so an office clerk (or an admin reading a log) can act on it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// Input that can never be valid, or is not valid in the current state:
    /// names the field and the reason.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A record that the request names does not exist (here).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The record exists already.
    #[error("{what} {id} already exists")]
    AlreadyExists { what: &'static str, id: String },
    /// The request is well formed, but this node or the record's state does
    /// not allow it: personal data at a node above `private_depth`, a
    /// member already de-identified. Names the field and what is expected.
    #[error("{field}: {reason}")]
    Precondition { field: String, reason: String },
    /// The node does not hold authority over the record's owner unit.
    #[error("unit {node_unit} has no authority over {target}")]
    NoAuthority { node_unit: String, target: String },
    /// A stored document does not have the shape this version expects.
    #[error("document {doc}: {reason}")]
    Document { doc: String, reason: String },
}

impl ModelError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn precondition(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::Precondition {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        ModelError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn document(doc: impl ToString, reason: impl Into<String>) -> Self {
        ModelError::Document {
            doc: doc.to_string(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field of an `Invalid` or `Precondition` error, e.g.
    /// `member.` or `rows[3].`.
    pub fn in_field(self, prefix: &str) -> Self {
        match self {
            ModelError::Invalid { field, reason } => ModelError::Invalid {
                field: format!("{prefix}{field}"),
                reason,
            },
            ModelError::Precondition { field, reason } => ModelError::Precondition {
                field: format!("{prefix}{field}"),
                reason,
            },
            other => other,
        }
    }
}

impl From<automerge::AutomergeError> for ModelError {
    fn from(e: automerge::AutomergeError) -> Self {
        ModelError::Document {
            doc: String::new(),
            reason: e.to_string(),
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
