//! One error type for the coordinator, mapped to gRPC status in exactly one place.

use miroir_raft_store::openraft::error::{ClientWriteError, RaftError};
use miroir_raft_store::TypeConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No leader, no quorum, or the leader did not answer in time: the caller may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The named thing does not exist (a lease renewal for an unregistered gateway).
    #[error("not found: {0}")]
    NotFound(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn unavailable(msg: impl std::fmt::Display) -> Self {
        Error::Unavailable(msg.to_string())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Error::InvalidArgument(msg.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Unavailable(m) => tonic::Status::unavailable(m),
            Error::InvalidArgument(m) => tonic::Status::invalid_argument(m),
            Error::NotFound(m) => tonic::Status::not_found(m),
            Error::Internal(m) => tonic::Status::internal(m),
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        match s.code() {
            tonic::Code::InvalidArgument => Error::InvalidArgument(s.message().to_string()),
            tonic::Code::NotFound => Error::NotFound(s.message().to_string()),
            tonic::Code::Internal => Error::Internal(s.message().to_string()),
            _ => Error::Unavailable(format!("{}: {}", s.code(), s.message())),
        }
    }
}

impl From<RaftError<TypeConfig, ClientWriteError<TypeConfig>>> for Error {
    fn from(e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> Self {
        match e {
            // Membership misuse is the operator's mistake, not an outage.
            RaftError::APIError(ClientWriteError::ChangeMembershipError(m)) => Error::InvalidArgument(m.to_string()),
            other => Error::Unavailable(other.to_string()),
        }
    }
}
