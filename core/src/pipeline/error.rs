//! The errors of pipelines, components, environments, schedules and the built-in steps. Each
//! names what is at fault — the file, the step, the input or output — or is a problem already
//! worded for the user that names its field (`jobs.train.inputs.data: …`).

use std::path::PathBuf;

use crate::tracking::TrackingError;

pub type PipelineResult<T> = std::result::Result<T, PipelineError>;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A step's input or parameter that is missing or does not fit.
    #[error("input '{name}' {reason}")]
    Input { name: String, reason: String },
    /// A step's output that has nowhere to go.
    #[error("output '{name}' {reason}")]
    Output { name: String, reason: String },
    /// A table a step reads or writes.
    #[error("{0}")]
    Table(#[from] polars::error::PolarsError),
    #[error("{0}")]
    Tracking(#[from] TrackingError),
    /// A data asset, the store or the blobs behind a step.
    #[error("{0}")]
    Workspace(Box<crate::Error>),
    /// The user cancelled the run; what ran before it is kept.
    #[error("cancelled")]
    Cancelled,
    /// A problem already worded for the user, naming its field or item: a YAML field, a cron
    /// pattern, a search space, a step's program that failed.
    #[error("{0}")]
    Invalid(String),
}

impl PipelineError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An input that is required and not given.
    pub fn missing_input(name: &str) -> Self {
        Self::Input {
            name: name.to_owned(),
            reason: "is required".to_owned(),
        }
    }
}

impl From<String> for PipelineError {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

impl From<&str> for PipelineError {
    fn from(message: &str) -> Self {
        Self::Invalid(message.to_owned())
    }
}

impl From<crate::Error> for PipelineError {
    fn from(error: crate::Error) -> Self {
        match error {
            crate::Error::Cancelled => Self::Cancelled,
            crate::Error::Tracking(e) => Self::Tracking(e),
            crate::Error::Pipeline(e) => e,
            crate::Error::Io { path, source } => Self::Io { path, source },
            other => Self::Workspace(Box::new(other)),
        }
    }
}

impl From<crate::store::StoreError> for PipelineError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Workspace(Box::new(error.into()))
    }
}

impl From<rusqlite::Error> for PipelineError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Workspace(Box::new(error.into()))
    }
}

impl From<serde_json::Error> for PipelineError {
    /// A spec stored in the workspace that does not read back.
    fn from(error: serde_json::Error) -> Self {
        Self::Workspace(Box::new(error.into()))
    }
}
