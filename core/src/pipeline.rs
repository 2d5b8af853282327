//! Pipelines in Azure ML's CLI v2 shapes: command components and their registry, built-in
//! components run natively, environments, pipeline jobs, and the executor that runs them with
//! reuse. (The designer's canvas lives in lathe-ui.)

pub mod builtin;
pub mod builtins;
pub mod component;
pub mod design;
pub mod environment;
mod error;
pub mod executor;
pub mod job;
pub mod registry;
pub mod saved;
pub mod schedule;

pub use error::{PipelineError, PipelineResult};
