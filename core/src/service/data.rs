//! Data assets in the window: the list and versions of assets, imports and profiles (jobs), and
//! the reads behind a version's view — table pages from a few decoded tables kept in memory,
//! files, thumbnails and text items.

use std::sync::Arc;

use polars::prelude::DataFrame;

use super::{Failure, Reply, Service, Shared, TableSlot};
use crate::assets::{Asset, AssetVersion, VersionFile};
use crate::images::{self, Thumbnail};
use crate::import::{ImportOutcome, ImportRequest, import_from};
use crate::profile::{self, TableProfile};
use crate::{table, text};

/// Rows in one page of a table preview.
pub const PAGE_ROWS: usize = 200;
/// Decoded tables kept in memory for paging.
const CACHED_TABLES: usize = 3;
pub const THUMBNAIL_SIDE: u32 = 128;

pub type Page = Vec<Vec<Option<String>>>;

#[derive(Debug, Clone, PartialEq)]
pub enum DataCommand {
    /// The list of data assets.
    LoadAssets,
    LoadVersions {
        name: String,
    },
    Import(ImportRequest),
    LoadPage {
        version: i64,
        page: usize,
    },
    /// `reference` (`name:version`) names the job while it runs.
    LoadProfile {
        version: i64,
        reference: String,
    },
    LoadFiles {
        version: i64,
    },
    LoadThumbnail {
        blob_hash: String,
    },
    LoadText {
        version: i64,
    },
}

#[derive(Debug)]
pub enum DataEvent {
    Assets(Reply<Vec<Asset>>),
    Versions {
        name: String,
        reply: Reply<Vec<AssetVersion>>,
    },
    Imported {
        request: ImportRequest,
        reply: Reply<ImportOutcome>,
    },
    Page {
        version: i64,
        page: usize,
        reply: Reply<Page>,
    },
    Profile {
        version: i64,
        reply: Reply<TableProfile>,
    },
    Files {
        version: i64,
        reply: Reply<Vec<VersionFile>>,
    },
    Thumbnail {
        blob_hash: String,
        reply: Reply<Thumbnail>,
    },
    Text {
        version: i64,
        reply: Reply<Vec<String>>,
    },
}

pub(super) fn handle(service: &Service, command: DataCommand) {
    match command {
        DataCommand::Import(request) => {
            let label = format!("Importing {}", request.name);
            service.job(label, move |shared, ws, progress| {
                let reply = import_from(ws, &request, None, progress)
                    .map(Arc::new)
                    .map_err(Failure::from);
                let imported = reply.is_ok();
                shared.emit(DataEvent::Imported { request, reply });
                if imported {
                    shared.emit(DataEvent::Assets(
                        shared.with_workspace(|ws| ws.list_assets()),
                    ));
                }
            });
        }
        DataCommand::LoadProfile { version, reference } => {
            let label = format!("Profiling {reference}");
            service.job(label, move |shared, ws, progress| {
                let reply = ws
                    .version_by_id(version)
                    .and_then(|v| profile::profile_version(ws, &v, progress))
                    .map(Arc::new)
                    .map_err(Failure::from);
                shared.emit(DataEvent::Profile { version, reply });
            });
        }
        DataCommand::LoadAssets => {
            service.read(|s| DataEvent::Assets(s.with_workspace(|ws| ws.list_assets())));
        }
        DataCommand::LoadVersions { name } => service.read(move |s| {
            let reply = s.with_workspace(|ws| ws.versions(&name));
            DataEvent::Versions { name, reply }
        }),
        DataCommand::LoadPage { version, page } => service.read(move |s| {
            let reply =
                table(s, version).map(|df| Arc::new(table::page(&df, page * PAGE_ROWS, PAGE_ROWS)));
            DataEvent::Page {
                version,
                page,
                reply,
            }
        }),
        DataCommand::LoadFiles { version } => service.read(move |s| DataEvent::Files {
            version,
            reply: s.with_workspace(|ws| ws.version_files(version)),
        }),
        DataCommand::LoadThumbnail { blob_hash } => service.read(move |s| {
            let reply = images::thumbnail(&s.store.blobs().path(&blob_hash), THUMBNAIL_SIDE)
                .map(Arc::new)
                .map_err(Failure::from);
            DataEvent::Thumbnail { blob_hash, reply }
        }),
        DataCommand::LoadText { version } => service.read(move |s| DataEvent::Text {
            version,
            reply: s.with_workspace(|ws| text::items(ws, &ws.version_by_id(version)?)),
        }),
    }
}

/// The decoded table of a version, loaded once and kept among the last few used.
fn table(shared: &Shared, version: i64) -> Reply<DataFrame> {
    let slot = {
        let Ok(mut tables) = shared.tables.lock() else {
            return Err(Failure::from("table cache poisoned"));
        };
        if let Some(i) = tables.iter().position(|(v, _)| *v == version) {
            let entry = tables.remove(i);
            tables.push(entry);
        } else {
            if tables.len() >= CACHED_TABLES {
                tables.remove(0);
            }
            tables.push((version, TableSlot::default()));
        }
        tables
            .last()
            .map(|(_, slot)| Arc::clone(slot))
            .ok_or("table cache empty")?
    };
    slot.get_or_init(|| {
        shared
            .store
            .workspace()
            .and_then(|ws| profile::load_table(&ws, &ws.version_by_id(version)?))
            .map(Arc::new)
            .map_err(Failure::from)
    })
    .clone()
}
