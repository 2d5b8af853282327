//! How much collected data an endpoint keeps. Azure leaves this to the storage account's
//! lifecycle rules; here it is a setting of the endpoint (migration 16: `collection_limits`):
//! windows that ended more than `retention_days` ago are removed, then the oldest windows
//! while the endpoint's collected bytes exceed `max_bytes`. The newest sealed window of each
//! data asset and every window still open are always kept (so a version number is never
//! reused), and so is a window whose asset version something else refers to (a labeling
//! project, a run's inputs, a batch job). Removing a window deletes its data asset version and
//! its parts in one transaction; `lathe gc` returns their files' space.

use rusqlite::{OptionalExtension, params};

use crate::store::Store;
use crate::{Error, Result};

/// An endpoint's limits; `None` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Days a window is kept after it ends (at least 1).
    pub retention_days: Option<u32>,
    /// Bytes of collected data (parts and sealed versions) kept at most.
    pub max_bytes: Option<u64>,
}

impl Limits {
    /// The limits in words, for `online-endpoint show` and the window.
    pub fn describe(&self) -> String {
        match (self.retention_days, self.max_bytes) {
            (None, None) => "kept until deleted".into(),
            (Some(d), None) => format!("kept {d} day(s)"),
            (None, Some(b)) => format!("at most {}", crate::format::bytes(b as i64)),
            (Some(d), Some(b)) => format!(
                "kept {d} day(s), at most {}",
                crate::format::bytes(b as i64)
            ),
        }
    }
}

/// `endpoint`'s limits (none when never set).
///
/// # Errors
/// The store cannot be read.
pub fn limits(store: &Store, endpoint: &str) -> Result<Limits> {
    let endpoint = endpoint.to_owned();
    store.read::<_, Error>(move |c| {
        Ok(c.query_row(
            "SELECT retention_days, max_bytes FROM collection_limits WHERE endpoint = ?1",
            [&endpoint],
            |r| {
                Ok(Limits {
                    retention_days: r.get(0)?,
                    max_bytes: r.get::<_, Option<i64>>(1)?.map(|b| b as u64),
                })
            },
        )
        .optional()?
        .unwrap_or_default())
    })
}

/// Sets `endpoint`'s limits (both `None` clears them).
///
/// # Errors
/// An unknown endpoint, a retention of 0 days or a cap of 0 bytes.
pub fn set_limits(store: &Store, endpoint: &str, limits: Limits) -> Result<()> {
    crate::endpoints::endpoint(store, endpoint)?;
    if limits.retention_days == Some(0) {
        return Err(Error::Endpoint(
            "collection retention: at least 1 day".into(),
        ));
    }
    if limits.max_bytes == Some(0) {
        return Err(Error::Endpoint(
            "collection size cap: more than 0 bytes".into(),
        ));
    }
    let endpoint = endpoint.to_owned();
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "DELETE FROM collection_limits WHERE endpoint = ?1",
            [&endpoint],
        )?;
        if limits != Limits::default() {
            c.execute(
                "INSERT INTO collection_limits (endpoint, retention_days, max_bytes)
                 VALUES (?1, ?2, ?3)",
                params![
                    endpoint,
                    limits.retention_days,
                    limits.max_bytes.map(|b| b as i64)
                ],
            )?;
        }
        Ok(())
    })
}

/// A window removed to keep its endpoint within its limits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Removed {
    pub endpoint: String,
    pub deployment: String,
    /// `name:version` of the data asset version removed with it.
    pub asset: String,
    pub bytes: u64,
    /// `older than N day(s)` or `over the size cap`.
    pub why: String,
}

/// One collected window of an endpoint, as retention sees it.
struct Held {
    deployment: String,
    kind: String,
    start_ms: i64,
    end_ms: i64,
    /// Its asset version's id and `name:version` once sealed.
    version: Option<(i64, String)>,
    bytes: u64,
}

/// Removes what every endpoint's limits no longer allow at `now_ms`; returns what went.
///
/// # Errors
/// The store cannot be read or written.
pub fn enforce(store: &Store, now_ms: i64) -> Result<Vec<Removed>> {
    let endpoints: Vec<(String, Limits)> = store.read::<_, Error>(|c| {
        let mut stmt =
            c.prepare("SELECT endpoint, retention_days, max_bytes FROM collection_limits")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                Limits {
                    retention_days: r.get(1)?,
                    max_bytes: r.get::<_, Option<i64>>(2)?.map(|b| b as u64),
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    let mut removed = Vec::new();
    for (endpoint, limits) in endpoints {
        let held = held(store, &endpoint)?;
        // What may go: sealed windows but the newest of each asset, oldest first.
        let mut candidates: Vec<&Held> = held
            .iter()
            .filter(|w| {
                w.version.is_some()
                    && held.iter().any(|n| {
                        n.deployment == w.deployment
                            && n.kind == w.kind
                            && n.version.is_some()
                            && n.start_ms > w.start_ms
                    })
            })
            .collect();
        candidates.sort_by_key(|w| w.start_ms);
        let mut total: u64 = held.iter().map(|w| w.bytes).sum();
        for w in candidates {
            let why = match (limits.retention_days, limits.max_bytes) {
                (Some(days), _) if w.end_ms < now_ms - i64::from(days) * 86_400_000 => {
                    format!("older than {days} day(s)")
                }
                (_, Some(cap)) if total > cap => "over the size cap".to_owned(),
                _ => continue,
            };
            let Some((id, asset)) = &w.version else {
                continue;
            };
            if remove(store, &endpoint, *id)? {
                total = total.saturating_sub(w.bytes);
                removed.push(Removed {
                    endpoint: endpoint.clone(),
                    deployment: w.deployment.clone(),
                    asset: asset.clone(),
                    bytes: w.bytes,
                    why,
                });
            }
        }
    }
    Ok(removed)
}

/// `endpoint`'s windows: each with its parts' bytes and its sealed version's.
fn held(store: &Store, endpoint: &str) -> Result<Vec<Held>> {
    let endpoint = endpoint.to_owned();
    store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT p.deployment, p.kind, p.window_start_ms, p.window_ms, p.asset_version_id,
                 a.name || ':' || v.version, SUM(b.size_bytes) + COALESCE(v.size_bytes, 0)
             FROM collected_parts p
             JOIN blobs b ON b.hash = p.blob_hash
             LEFT JOIN asset_versions v ON v.id = p.asset_version_id
             LEFT JOIN assets a ON a.id = v.asset_id
             WHERE p.endpoint = ?1
             GROUP BY p.deployment, p.kind, p.window_start_ms, p.asset_version_id",
        )?;
        let rows = stmt.query_map([&endpoint], |r| {
            let start: i64 = r.get(2)?;
            let id: Option<i64> = r.get(4)?;
            let name: Option<String> = r.get(5)?;
            Ok(Held {
                deployment: r.get(0)?,
                kind: r.get(1)?,
                start_ms: start,
                end_ms: start + r.get::<_, i64>(3)?,
                version: id.zip(name),
                bytes: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
}

/// Deletes asset version `id` (a sealed window of `endpoint`) and its parts; `false` when
/// something else refers to the version and it stays.
fn remove(store: &Store, endpoint: &str, id: i64) -> Result<bool> {
    let endpoint = endpoint.to_owned();
    store.transaction::<_, Error>(move |c| {
        let referenced: i64 = c.query_row(
            "SELECT (SELECT count(*) FROM label_projects WHERE version_id = ?1)
                  + (SELECT count(*) FROM run_inputs WHERE asset_version_id = ?1)
                  + (SELECT count(*) FROM batch_jobs WHERE output_version_id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if referenced > 0 {
            return Ok(false);
        }
        c.execute(
            "DELETE FROM collected_parts WHERE endpoint = ?1 AND asset_version_id = ?2",
            params![endpoint, id],
        )?;
        c.execute("DELETE FROM profiles WHERE version_id = ?1", [id])?;
        c.execute("DELETE FROM version_files WHERE version_id = ?1", [id])?;
        c.execute("DELETE FROM asset_versions WHERE id = ?1", [id])?;
        Ok(true)
    })
}
