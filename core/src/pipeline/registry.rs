//! Registered components: a component's YAML and a snapshot of its code, stored under a name and
//! version so pipelines can use it as `azureml:<name>:<version>` (or `azureml:<name>@latest`).

use crate::pipeline::{PipelineError, PipelineResult};
use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::component::{self, Component};
use crate::tracking::Tracking;

#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub name: String,
    pub version: String,
    pub created_at: i64,
    pub component: Component,
    /// The code snapshot: (relative path, blob hash).
    pub code_files: Vec<(String, String)>,
}

/// Registers the component in `path`, with a snapshot of its `code`. Without a version in the
/// YAML, it becomes one more than the newest registered.
pub fn register(tracking: &Tracking, path: &Path) -> PipelineResult<Registered> {
    let yaml = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    let mut component = component::parse(&yaml).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        format!(
            "{} is not a valid component:\n{}",
            path.display(),
            lines.join("\n")
        )
    })?;
    let (code_files, puts) = match &component.code {
        Some(code) => {
            let dir = path.parent().unwrap_or(Path::new(".")).join(code);
            if !dir.exists() {
                return Err(PipelineError::Invalid(format!(
                    "code: {} does not exist",
                    dir.display()
                )));
            }
            crate::files::put_tree(tracking.blobs(), &dir)
                .map_err(|e| PipelineError::Invalid(format!("code: {e}")))?
        }
        None => (Vec::new(), Vec::new()),
    };
    let listing = serde_json::to_string(&code_files)?;
    let created_at = crate::db::now_millis();
    let (name, given) = (component.name.clone(), component.version.clone());
    let blobs: Vec<(String, i64)> = puts
        .iter()
        .map(|p| (p.hash.clone(), p.size_bytes as i64))
        .collect();
    let recorded = tracking.write(move |c| {
        // Recorded as blobs too, so a clean-up of the store sees them referenced.
        for (hash, size) in &blobs {
            c.execute(
                "INSERT OR IGNORE INTO blobs (hash, size_bytes, created_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![hash, size, crate::db::now_secs()],
            )?;
        }
        let version = match given {
            Some(v) => v,
            None => {
                let newest: Option<i64> = c.query_row(
                    "SELECT MAX(CAST(version AS INTEGER)) FROM components WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )?;
                (newest.unwrap_or(0) + 1).to_string()
            }
        };
        c.execute(
            "INSERT INTO components (name, version, yaml, code_files, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![name, version, yaml, listing, created_at],
        )
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                crate::tracking::TrackingError::new(
                    crate::tracking::ErrorCode::ResourceAlreadyExists,
                    format!("{name} version {version} is already registered; change its version"),
                )
            } else {
                e.into()
            }
        })?;
        Ok(version)
    });
    let version = match recorded {
        Ok(v) => v,
        Err(e) => {
            tracking
                .blobs()
                .discard(&puts.into_iter().filter(|p| p.created).collect::<Vec<_>>());
            return Err(e.into());
        }
    };
    component.version = Some(version.clone());
    Ok(Registered {
        name: component.name.clone(),
        version,
        created_at,
        component,
        code_files,
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn registered(
    (name, version, yaml, listing, created_at): (String, String, String, String, i64),
) -> PipelineResult<Registered> {
    let mut component = component::parse(&yaml)
        .map_err(|_| format!("registered component {name}:{version} no longer parses"))?;
    component.version = Some(version.clone());
    Ok(Registered {
        name,
        version,
        created_at,
        component,
        code_files: serde_json::from_str(&listing)?,
    })
}

/// Every registered component version, by name then age.
pub fn list(tracking: &Tracking) -> PipelineResult<Vec<Registered>> {
    tracking
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, version, yaml, code_files, created_at FROM components
                 ORDER BY name, created_at",
            )?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?
        .into_iter()
        .map(registered)
        .collect()
}

/// A registered component by `name:version`, `name@latest` or `name` (the newest), with or
/// without the `azureml:` prefix.
pub fn find(tracking: &Tracking, reference: &str) -> PipelineResult<Registered> {
    let rest = reference.strip_prefix("azureml:").unwrap_or(reference);
    let (name, version) = match rest.split_once('@') {
        Some((name, "latest")) => (name, None),
        Some((_, label)) => {
            return Err(format!("'{reference}': the only label is @latest, not @{label}").into());
        }
        None => match rest.split_once(':') {
            Some((name, version)) => (name, Some(version)),
            None => (rest, None),
        },
    };
    let (name, version) = (name.to_owned(), version.map(str::to_owned));
    let (n, v) = (name.clone(), version.clone());
    let found = tracking.read(move |c| {
        Ok(c.query_row(
            "SELECT name, version, yaml, code_files, created_at FROM components
                 WHERE name = ?1 AND (?2 IS NULL OR version = ?2)
                 ORDER BY created_at DESC LIMIT 1",
            rusqlite::params![n, v],
            row,
        )
        .optional()?)
    })?;
    match found {
        Some(found) => registered(found),
        None => Err(format!(
            "component '{name}{}' is not registered in this workspace; register it with `lathe component register FILE`",
            version.map(|v| format!(":{v}")).unwrap_or_default()
        ).into()),
    }
}

/// Resolves a reference for a pipeline: the component, and a folder (under the workspace) that
/// holds its code snapshot as `code/`.
pub fn resolve(
    tracking: &Tracking,
    root: &Path,
    reference: &str,
) -> PipelineResult<(Component, PathBuf)> {
    let found = find(tracking, reference)?;
    let origin = root
        .join("components")
        .join(&found.name)
        .join(&found.version);
    let mut component = found.component;
    if found.code_files.is_empty() {
        component.code = None;
        return Ok((component, origin));
    }
    let code = origin.join("code");
    let ready = origin.join(".lathe-ready");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&code);
        crate::files::unpack_tree(tracking.blobs(), &found.code_files, &code)
            .map_err(|e| PipelineError::Invalid(format!("code: {e}")))?;
        std::fs::write(&ready, b"").map_err(|e| PipelineError::io(&ready, e))?;
    }
    component.code = Some("code".into());
    Ok((component, origin))
}
