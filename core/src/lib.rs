//! Lathe's domain, store and engines. Everything Lathe does is here and runs headless: the CLI,
//! the GUI (through [`service`]) and the tests all drive the same functions. No GUI code.

pub mod assets;
pub mod batch;
pub mod blobs;
pub mod collection;
pub mod compute;
pub mod datastores;
pub mod db;
pub mod demo;
pub mod endpoints;
pub mod error;
pub mod export;
pub mod files;
pub mod format;
pub mod http;
pub mod images;
pub mod import;
pub mod jobs;
pub mod labeling;
pub mod ml;
pub mod mlmodel;
pub mod monitoring;
pub mod onnx;
pub mod packaging;
pub mod pipeline;
pub mod profile;
pub mod promotion;
pub mod remote;
pub mod replay;
pub mod service;
pub mod serving;
mod specs;
pub mod store;
pub mod suggest;
pub mod sync;
pub mod table;
pub mod text;
pub mod tracking;
pub mod workspace;
pub mod yaml;

pub use error::{Error, Result};
pub use store::Store;
pub use workspace::Workspace;
