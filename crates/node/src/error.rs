//! The one place where errors become gRPC statuses.
//!
//! | error | code |
//! |---|---|
//! | bad input, state that forbids the request | `INVALID_ARGUMENT` (message `field: reason`) |
//! | valid, but not at this node or for this record (personal data above `private_depth`, a member de-identified already) | `FAILED_PRECONDITION` (message `field: reason`) |
//! | a named record is missing | `NOT_FOUND` |
//! | a record to create exists | `ALREADY_EXISTS` |
//! | the node has no authority over the target, or the caller's role does not allow the request | `PERMISSION_DENIED` |
//! | the database is unreachable or busy; the peer a check dials cannot be reached | `UNAVAILABLE` |
//! | the peer a check dials refuses it or answers what does not fit | `FAILED_PRECONDITION` |
//! | anything else (corrupt data, bugs) | `INTERNAL`, details only in the log |

use hopluu_model::ModelError;
use hopluu_store::StoreError;
use tonic::{Code, Status};

use crate::NodeError;
use crate::check::CheckError;

/// Maps every error a service can meet to a status with a small set of codes.
pub fn to_status(err: &NodeError) -> Status {
    match err {
        NodeError::Refused(m) => model_status(m),
        NodeError::Storage(e) | NodeError::Check(CheckError::Store(e)) => store_status(e),
        NodeError::Config(m) => Status::invalid_argument(m.clone()),
        NodeError::Denied(m) => Status::permission_denied(m.clone()),
        NodeError::Check(CheckError::Unreachable(m)) => Status::unavailable(m.clone()),
        NodeError::Check(CheckError::Refused(m)) => Status::failed_precondition(m.clone()),
        other => internal(other),
    }
}

fn store_status(e: &StoreError) -> Status {
    match e {
        StoreError::Model(m) => model_status(m),
        StoreError::Db(_) => {
            tracing::error!(error = %e, "database error");
            if e.is_unavailable() {
                Status::unavailable("the node's database is unavailable; try again")
            } else {
                Status::internal("database error (see the node's log)")
            }
        }
        other => internal(other),
    }
}

fn internal(e: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %e, "internal error");
    Status::internal("internal error (see the node's log)")
}

fn model_status(m: &ModelError) -> Status {
    match m {
        ModelError::Invalid { .. } => Status::new(Code::InvalidArgument, m.to_string()),
        ModelError::Precondition { .. } => Status::failed_precondition(m.to_string()),
        ModelError::NotFound { .. } => Status::not_found(m.to_string()),
        ModelError::AlreadyExists { .. } => Status::already_exists(m.to_string()),
        ModelError::NoAuthority { .. } => Status::permission_denied(m.to_string()),
        ModelError::Document { .. } => {
            tracing::error!(error = %m, "document error");
            Status::internal("a stored document is damaged (see the node's log)")
        }
    }
}

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        to_status(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal the store met stays a refusal; a storage failure stays a
    /// storage failure; a denial stays a denial, each with its own code.
    #[test]
    fn layers_stay_apart() {
        let refused = NodeError::from(StoreError::Model(ModelError::not_found("unit", "x")));
        assert!(matches!(refused, NodeError::Refused(_)), "{refused:?}");
        let storage = NodeError::from(StoreError::Corrupt {
            doc: "unit/x".into(),
            reason: "bad".into(),
        });
        assert!(matches!(storage, NodeError::Storage(_)), "{storage:?}");
        assert_eq!(to_status(&refused).code(), Code::NotFound);
        assert_eq!(to_status(&storage).code(), Code::Internal);
        let denied = NodeError::Denied("CreateUnit: staff of lc may not write hg".into());
        assert_eq!(to_status(&denied).code(), Code::PermissionDenied);
        let gate = NodeError::Gate(hopluu_sync::SyncError::DamagedEntry {
            id: 7,
            reason: "x".into(),
        });
        assert_eq!(to_status(&gate).code(), Code::Internal);
        assert!(!to_status(&gate).message().contains('x'));
    }

    #[test]
    fn codes() {
        let s = to_status(&NodeError::from(StoreError::Model(ModelError::invalid(
            "national_id",
            "must be exactly 12 digits",
        ))));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "national_id: must be exactly 12 digits");
        let s = to_status(&NodeError::from(StoreError::Model(ModelError::not_found(
            "unit", "x",
        ))));
        assert_eq!(s.code(), Code::NotFound);
        let s = to_status(&NodeError::from(StoreError::Model(
            ModelError::NoAuthority {
                node_unit: "a".into(),
                target: "unit b".into(),
            },
        )));
        assert_eq!(s.code(), Code::PermissionDenied);
        let s = to_status(&NodeError::from(StoreError::Model(
            ModelError::precondition("national_id", "this node holds no personal data"),
        )));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.message(), "national_id: this node holds no personal data");
        let s = to_status(&NodeError::from(StoreError::Corrupt {
            doc: "unit/x".into(),
            reason: "bad".into(),
        }));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("unit/x"));
        let s = to_status(&NodeError::Check(CheckError::Unreachable(
            "peer_node_id: cannot reach node hg".into(),
        )));
        assert_eq!(s.code(), Code::Unavailable);
        let s = to_status(&NodeError::Check(CheckError::Refused("no".into())));
        assert_eq!(s.code(), Code::FailedPrecondition);
        let s = to_status(&NodeError::Check(CheckError::Store(StoreError::Model(
            ModelError::invalid("address", "not a URL"),
        ))));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "address: not a URL");
    }
}
