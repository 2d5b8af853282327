//! The errors of lathe-core. Each variant carries what a user needs to find the problem: the
//! file, the line, the field or the item.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: does not exist")]
    Missing { path: PathBuf },
    #[error("{path}: the file is empty")]
    EmptyFile { path: PathBuf },
    #[error("{path}: line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: no images found (looked for {extensions})")]
    NoImages { path: PathBuf, extensions: String },
    #[error("{path}: cannot tell what kind of data this is; pass --kind table, images or text")]
    UnknownKind { path: PathBuf },
    #[error("{path}: column '{column}' not found (columns: {available})")]
    NoSuchColumn {
        path: PathBuf,
        column: String,
        available: String,
    },
    /// `hint` suggests the nearest names (`; did you mean 'customers'?`) or is empty.
    #[error("no data asset named '{name}'{hint}")]
    NoSuchAsset { name: String, hint: String },
    #[error("data asset '{name}' has no version {version}")]
    NoSuchVersion { name: String, version: i64 },
    #[error("data asset '{name}' is of kind {actual}, not {expected}")]
    WrongKind {
        name: String,
        actual: String,
        expected: String,
    },
    #[error("invalid asset name '{name}': {reason}")]
    InvalidName { name: String, reason: String },
    #[error(
        "workspace {path} has schema version {found}, but this Lathe knows only up to {known}; \
         open it with a newer Lathe"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "workspace migration {version} was changed after it was applied; the store is not trusted"
    )]
    EditedMigration { version: i64 },
    #[error("blob {hash} is missing from the blob store")]
    MissingBlob { hash: String },
    // Transparent: the message is the tracking error's own, not repeated as its cause.
    #[error(transparent)]
    Tracking(#[from] crate::tracking::TrackingError),
    #[error("cancelled")]
    Cancelled,
    /// An endpoint or deployment that does not read or cannot be made, naming the field.
    #[error("{0}")]
    Endpoint(String),
    /// A promotion policy or approval that does not read, naming its field.
    #[error("promotion policy: {0}")]
    Policy(String),
    /// A pipeline, component, environment or step problem.
    #[error("{0}")]
    Pipeline(crate::pipeline::PipelineError),
    /// A monitoring problem: a column, a window, a monitor's field.
    #[error("{0}")]
    Monitoring(crate::monitoring::MonitorError),
    /// A datastore that does not read, cannot be reached, or refuses: naming the field, the
    /// bucket, the endpoint or where the credentials came from.
    #[error("{0}")]
    Datastore(String),
    /// A compute target's YAML, or a cluster that cannot be reached or refuses, naming the
    /// field or the address.
    #[error("{0}")]
    Compute(String),
    /// A tracking server that cannot be reached or refuses a call (`lathe runs push|pull`),
    /// naming the server and the call.
    #[error("{0}")]
    Remote(String),
    /// A labeling problem: a project, an item, a shape, a label file.
    #[error("{0}")]
    Label(#[from] crate::labeling::LabelError),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Polars(#[from] polars::error::PolarsError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

impl From<crate::pipeline::PipelineError> for Error {
    fn from(error: crate::pipeline::PipelineError) -> Self {
        use crate::pipeline::PipelineError;
        match error {
            PipelineError::Cancelled => Self::Cancelled,
            PipelineError::Workspace(e) => *e,
            other => Self::Pipeline(other),
        }
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Missing { path }
        } else {
            Error::Io { path, source }
        }
    }
}
