//! Lathe's egui panels and widgets. They render state and emit commands to lathe-core's
//! [`Service`](lathe_core::service::Service); they never open the database, spawn threads or
//! block on I/O, so a frame stays short whatever the size of the workspace.

mod data_panel;
mod image_grid;
mod import_dialog;
mod loadable;
mod profile_view;
mod status_bar;
mod table_view;
mod text_list;
mod workbench;

pub use workbench::{ShellRequest, Workbench};
