//! Lathe's egui panels and widgets. They render state and emit commands to lathe-core's
//! [`Service`](lathe_core::service::Service); they never open the database, spawn threads or
//! block on I/O, so a frame stays short whatever the size of the workspace.

mod compare_view;
mod data_panel;
mod datastores_view;
mod designer;
mod drift_view;
mod endpoints_panel;
mod experiments_panel;
mod history;
mod image_grid;
mod import_dialog;
mod labeling_panel;
mod lineage_view;
mod loadable;
mod metric_chart;
mod models_panel;
mod monitoring_panel;
mod profile_view;
mod remote_view;
mod run_view;
mod runs_table;
mod status_bar;
mod table_view;
mod text_list;
mod tracking_cache;
mod vocabulary;
mod workbench;

pub use vocabulary::{Navigate, Section, ShellRequest};
pub use workbench::Workbench;
