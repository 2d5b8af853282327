//! Classical machine learning, native: tables (polars) to matrices, models fitted with linfa
//! and kept as plain parameters (so scoring needs no linfa type and a model file is readable
//! JSON), and the usual evaluation metrics.

pub mod features;
pub mod metrics;
pub mod model;
pub mod preprocessing;

pub use model::{Algorithm, Model, Predictions};
