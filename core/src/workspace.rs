//! A workspace is one folder: `lathe.db` (SQLite) and `blobs/` (content-addressed files).
//! [`Workspace`] is the data-asset (and labeling) facade over its [`Store`]: it reads on a
//! pooled connection of its own (take one per thread, [`Store::workspace`]) and writes through
//! the store's one writer ([`Workspace::write`]).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::assets::{Asset, AssetKind, AssetRef, AssetVersion, VersionFile, VersionMeta};
use crate::blobs::{BlobStore, PutBlob};
use crate::db::{self, now_secs};
use crate::store::{Reader, Store};
use crate::{Error, Result};

pub struct Workspace {
    store: Store,
    conn: Reader,
}

/// A version about to be recorded: everything but the number the store gives it.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub name: String,
    pub kind: AssetKind,
    pub content_hash: String,
    pub source: String,
    pub item_count: i64,
    pub size_bytes: i64,
    pub meta: VersionMeta,
    pub files: Vec<VersionFile>,
    /// Every blob the version references, with whether this import created it.
    pub blobs: Vec<PutBlob>,
}

const VERSION_COLUMNS: &str = "v.id, a.name, a.kind, v.version, v.content_hash, v.created_at, v.source, \
     v.item_count, v.size_bytes, v.meta";

impl Workspace {
    /// Opens the workspace in `root` for this value alone, creating it if the folder is new or
    /// empty (a CLI command, a test); a process that does more opens the [`Store`] once and
    /// takes [`Store::workspace`].
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Store::open(root)?.workspace()
    }

    pub(crate) fn over(store: Store, conn: Reader) -> Self {
        Self { store, conn }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// Runs `work` in a write transaction of its own on the store's writer (taking the lock first),
    /// committed when it returns `Ok`. Reads inside it go through its connection, not
    /// [`Workspace::conn`], to see its own writes.
    pub fn write<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.store.transaction(work)
    }

    /// Removes every blob file no record refers to, and what killed processes left in
    /// `blobs/tmp` (`lathe gc`). `None` while another process has the workspace open: its
    /// newest blobs may not be recorded yet.
    pub fn collect_garbage(&self) -> Result<Option<crate::blobs::Collected>> {
        // Read once the store is held alone, so nothing can be recorded after the read.
        let referenced = std::cell::OnceCell::new();
        self.store.blobs().collect_garbage(&|hash| {
            if referenced.get().is_none() {
                let _ = referenced.set(db::referenced_blobs(&self.conn)?);
            }
            Ok(referenced.get().is_some_and(|set| set.contains(hash)))
        })
    }

    pub fn blobs(&self) -> &BlobStore {
        self.store.blobs()
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn list_assets(&self) -> Result<Vec<Asset>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.name, a.kind, a.created_at, MAX(v.version), COUNT(v.id)
             FROM assets a JOIN asset_versions v ON v.asset_id = a.id
             GROUP BY a.id ORDER BY a.name COLLATE NOCASE",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Asset {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: kind_column(r, 2)?,
                created_at: r.get(3)?,
                latest_version: r.get(4)?,
                version_count: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every version of the named asset, newest first.
    pub fn versions(&self, name: &str) -> Result<Vec<AssetVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM asset_versions v JOIN assets a ON a.id = v.asset_id
             WHERE a.name = ?1 ORDER BY v.version DESC"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let versions = stmt
            .query_map([name], version_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if versions.is_empty() {
            return Err(self.no_such_asset(name));
        }
        Ok(versions)
    }

    /// The version a reference names; the latest when it names no version.
    pub fn resolve(&self, reference: &AssetRef) -> Result<AssetVersion> {
        let versions = self.versions(&reference.name)?;
        match reference.version {
            None => versions
                .into_iter()
                .next()
                .ok_or_else(|| self.no_such_asset(&reference.name)),
            Some(v) => versions
                .into_iter()
                .find(|x| x.version == v)
                .ok_or(Error::NoSuchVersion {
                    name: reference.name.clone(),
                    version: v,
                }),
        }
    }

    pub fn version_by_id(&self, id: i64) -> Result<AssetVersion> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM asset_versions v JOIN assets a ON a.id = v.asset_id WHERE v.id = ?1"
        );
        self.conn
            .query_row(&sql, [id], version_row)
            .optional()?
            .ok_or_else(|| Error::NoSuchAsset {
                name: format!("#{id}"),
                hint: String::new(),
            })
    }

    /// The error for a name no asset has, suggesting the nearest names that exist.
    fn no_such_asset(&self, name: &str) -> Error {
        let known = self.list_assets().unwrap_or_default();
        Error::NoSuchAsset {
            name: name.to_owned(),
            hint: crate::suggest::did_you_mean(name, known.iter().map(|a| a.name.as_str())),
        }
    }

    /// The version of `name` that holds exactly this content, if one does.
    pub fn find_by_content(&self, name: &str, content_hash: &str) -> Result<Option<AssetVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM asset_versions v JOIN assets a ON a.id = v.asset_id
             WHERE a.name = ?1 AND v.content_hash = ?2"
        );
        Ok(self
            .conn
            .query_row(&sql, params![name, content_hash], version_row)
            .optional()?)
    }

    pub fn asset_kind(&self, name: &str) -> Result<Option<AssetKind>> {
        Ok(self
            .conn
            .query_row("SELECT kind FROM assets WHERE name = ?1", [name], |r| {
                kind_column(r, 0)
            })
            .optional()?)
    }

    pub fn version_files(&self, version_id: i64) -> Result<Vec<VersionFile>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.path, f.blob_hash, b.size_bytes, f.meta FROM version_files f
             JOIN blobs b ON b.hash = f.blob_hash WHERE f.version_id = ?1 ORDER BY f.position",
        )?;
        let rows = stmt.query_map([version_id], |r| {
            let meta: String = r.get(3)?;
            let (width, height) = serde_json::from_str::<(u32, u32)>(&meta).unwrap_or((0, 0));
            Ok(VersionFile {
                path: r.get(0)?,
                blob_hash: r.get(1)?,
                size_bytes: r.get::<_, i64>(2)? as u64,
                width,
                height,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a new version in one transaction: the asset (if new), the blobs, the version with
    /// the next number, and its files. If identical content is already a version of this asset,
    /// that version is returned instead and nothing is written (`false`).
    pub fn record_version(&mut self, new: &NewVersion) -> Result<(AssetVersion, bool)> {
        let (version_id, created) = self.write(|tx| record(tx, new))?;
        Ok((self.version_by_id(version_id)?, created))
    }

    /// Removes blob files that an abandoned import created and that no record references.
    pub fn discard_unrecorded(&self, puts: &[PutBlob]) {
        let unrecorded: Vec<PutBlob> = puts
            .iter()
            .filter(|p| {
                p.created
                    && self
                        .conn
                        .query_row("SELECT 1 FROM blobs WHERE hash = ?1", [&p.hash], |_| Ok(()))
                        .optional()
                        .is_ok_and(|found| found.is_none())
            })
            .cloned()
            .collect();
        self.blobs().discard(&unrecorded);
    }

    pub fn cached_profile(&self, version_id: i64, format: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT body FROM profiles WHERE version_id = ?1 AND format = ?2",
                params![version_id, format],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn store_profile(&self, version_id: i64, format: i64, body: &str) -> Result<()> {
        self.write(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO profiles (version_id, format, computed_at, body) VALUES (?1, ?2, ?3, ?4)",
                params![version_id, format, now_secs(), body],
            )?;
            Ok(())
        })
    }
}

/// Writes a new version in the caller's transaction; the id of the version holding the
/// content, and whether it is new (see [`Workspace::record_version`]).
fn record(tx: &Connection, new: &NewVersion) -> Result<(i64, bool)> {
    let now = now_secs();
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, kind FROM assets WHERE name = ?1",
            [&new.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let asset_id = match existing {
        Some((id, kind)) => {
            if kind != new.kind.as_str() {
                return Err(Error::WrongKind {
                    name: new.name.clone(),
                    actual: kind,
                    expected: new.kind.to_string(),
                });
            }
            let same: Option<i64> = tx
                .query_row(
                    "SELECT id FROM asset_versions WHERE asset_id = ?1 AND content_hash = ?2",
                    params![id, new.content_hash],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(version_id) = same {
                return Ok((version_id, false));
            }
            id
        }
        None => {
            tx.execute(
                "INSERT INTO assets (name, kind, created_at) VALUES (?1, ?2, ?3)",
                params![new.name, new.kind.as_str(), now],
            )?;
            tx.last_insert_rowid()
        }
    };
    for blob in &new.blobs {
        tx.execute(
            "INSERT OR IGNORE INTO blobs (hash, size_bytes, created_at) VALUES (?1, ?2, ?3)",
            params![blob.hash, blob.size_bytes as i64, now],
        )?;
    }
    let version: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM asset_versions WHERE asset_id = ?1",
        [asset_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO asset_versions
         (asset_id, version, content_hash, created_at, source, item_count, size_bytes, meta)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            asset_id,
            version,
            new.content_hash,
            now,
            new.source,
            new.item_count,
            new.size_bytes,
            serde_json::to_string(&new.meta)?
        ],
    )?;
    let version_id = tx.last_insert_rowid();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO version_files (version_id, position, path, blob_hash, meta) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (position, file) in new.files.iter().enumerate() {
            insert.execute(params![
                version_id,
                position as i64,
                file.path,
                file.blob_hash,
                serde_json::to_string(&(file.width, file.height))?
            ])?;
        }
    }
    Ok((version_id, true))
}

fn kind_column(row: &Row<'_>, index: usize) -> rusqlite::Result<AssetKind> {
    let text: String = row.get(index)?;
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

fn version_row(r: &Row<'_>) -> rusqlite::Result<AssetVersion> {
    let meta: String = r.get(9)?;
    Ok(AssetVersion {
        id: r.get(0)?,
        asset_name: r.get(1)?,
        kind: kind_column(r, 2)?,
        version: r.get(3)?,
        content_hash: r.get(4)?,
        created_at: r.get(5)?,
        source: r.get(6)?,
        item_count: r.get(7)?,
        size_bytes: r.get(8)?,
        meta: serde_json::from_str(&meta).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, e.into())
        })?,
    })
}
