//! Experiment tracking and the model registry, in MLflow's model so that the official MLflow
//! client can log to Lathe: experiments, runs, params, metrics, tags, dataset inputs, artifacts,
//! registered models and their versions. [`Tracking`] is the facade over the workspace's
//! [`crate::Store`]: typed calls for Lathe's own callers, and `handle`/`answer` (MLflow's REST
//! API as JSON in and out) for the HTTP server in `app` and the CLI.

pub mod api;
pub(crate) mod artifacts;
pub mod browse;
pub mod experiments;
pub mod filter;
pub mod lenient;
pub mod logged_models;
pub mod metrics;
mod query;
mod register;
pub use register::VersionRequest;
pub mod registry;
pub mod runs;
pub mod search;
pub mod sources;
mod store;
pub mod types;

pub use artifacts::validate_artifact_path;
pub use store::Tracking;

/// MLflow's error codes, with the HTTP status its server answers each with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    BadRequest,
    EndpointNotFound,
    Unauthenticated,
    NotImplemented,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            Self::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            Self::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            Self::BadRequest => "BAD_REQUEST",
            Self::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidParameterValue | Self::ResourceAlreadyExists | Self::BadRequest => 400,
            Self::ResourceDoesNotExist | Self::EndpointNotFound => 404,
            Self::Unauthenticated => 401,
            Self::NotImplemented => 501,
            Self::InternalError => 500,
        }
    }
}

/// An error as MLflow reports it: a code and a message naming the item at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TrackingError {
    pub code: ErrorCode,
    pub message: String,
}

impl TrackingError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }

    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
}

impl From<rusqlite::Error> for TrackingError {
    /// The store's own words without the statement: SQL is never shown to a client.
    fn from(error: rusqlite::Error) -> Self {
        Self::internal(format!(
            "The store failed: {}",
            crate::store::reason(&error)
        ))
    }
}

pub type TrackingResult<T> = std::result::Result<T, TrackingError>;
