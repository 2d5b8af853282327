//! Pipelines in Azure ML's CLI v2 shapes: command components (this far), later pipeline jobs,
//! the executor and the designer's model.

pub mod builtin;
pub mod builtins;
pub mod component;
pub mod job;
