//! Artifacts as MLflow's artifact proxy sees them: files at slash-separated paths under the
//! `mlflow-artifacts:/` root (a run's live under `<experiment>/<run>/artifacts/`). The bytes are
//! blobs; the `artifacts` table maps each path to its blob.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::types::FileInfo;
use super::{Tracking, TrackingError, TrackingResult};
use crate::db::{now_millis, now_secs};
use crate::jobs::Progress;

/// Checks an artifact path and gives it in its one written form: relative, slash-separated,
/// with `.` and empty parts dropped (`a/./b`, `a//b` and `a/b/` are `a/b`, as on a disk). A
/// `..` part (between slashes or backslashes) or a NUL is refused with MLflow's own words,
/// "Invalid path" (`validate_path_is_safe`). A backslash is a letter of a name, as in MLflow
/// on POSIX; `..` between backslashes is refused too, so the path stays inside wherever it is
/// written on Windows.
pub fn validate_artifact_path(path: &str) -> TrackingResult<String> {
    let bad = path.contains('\0') || path.split(['/', '\\']).any(|part| part == "..");
    if bad {
        return Err(TrackingError::invalid("Invalid path"));
    }
    Ok(path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/"))
}

impl Tracking {
    /// Stores the bytes of `reader` as the artifact at `path`, replacing any file there.
    pub fn put_artifact(&self, path: &str, reader: &mut dyn Read) -> TrackingResult<FileInfo> {
        let path = validate_artifact_path(path)?;
        if path.is_empty() {
            return Err(TrackingError::invalid("Invalid artifact path: it is empty"));
        }
        let put = self
            .blobs()
            .put_reader(reader, Path::new(&path), &Progress::default())
            .map_err(|e| TrackingError::internal(format!("Storing the artifact failed: {e}")))?;
        let file = FileInfo {
            path: path.clone(),
            is_dir: false,
            file_size: Some(put.size_bytes as i64),
        };
        let (hash, size) = (put.hash.clone(), put.size_bytes);
        let recorded = self.write(move |conn| record(conn, &path, &hash, size));
        if recorded.is_err() && put.created {
            // Nothing refers to the new blob; take it back so no orphan is left.
            self.blobs().discard(std::slice::from_ref(&put));
        }
        recorded.map(|()| file)
    }

    /// The blob file holding the artifact at `path`, and its size.
    pub fn artifact_file(&self, path: &str) -> TrackingResult<(PathBuf, u64)> {
        let path = validate_artifact_path(path)?;
        let (hash, size): (String, i64) = self
            .read(|conn| {
                Ok(conn
                    .query_row(
                        "SELECT blob_hash, size_bytes FROM artifacts WHERE path = ?1",
                        [&path],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?)
            })?
            .ok_or_else(|| TrackingError::missing(format!("No artifact at '{path}'")))?;
        Ok((self.blobs().path(&hash), size as u64))
    }

    /// The file `path` inside the artifacts at `root` (an `mlflow-artifacts:/` URI, or a
    /// `models:/<logged model id>` one), as MLflow's `/get-artifact` and
    /// `model-versions/get-artifact` serve it. `path` is checked as any artifact path.
    pub fn artifact_under(&self, root: &str, path: &str) -> TrackingResult<(PathBuf, u64)> {
        let path = validate_artifact_path(path)?;
        let dir = self.artifact_dir(root)?.ok_or_else(|| {
            TrackingError::invalid(format!(
                "The artifacts at '{root}' are not in this server's store"
            ))
        })?;
        self.artifact_file(&format!("{dir}/{path}"))
    }

    /// The folder in this store that `uri` names: an `mlflow-artifacts:/` URI, an MLflow 3
    /// logged model's `models:/<id>` (its artifact URI), or `runs:/<run id>/<path>` (a path in
    /// a run's artifacts, as MLflow's client names a model logged by a run). `None` for files
    /// elsewhere.
    ///
    /// # Errors
    /// A `models:/` id that names no logged model; a `runs:/` id that names no run, or a path
    /// with `..`.
    pub fn artifact_dir(&self, uri: &str) -> TrackingResult<Option<String>> {
        let (uri, under) = if let Some(id) = uri.strip_prefix("models:/") {
            let id = id.trim_matches('/').to_owned();
            let logged = self.read(move |c| super::logged_models::get(c, &id))?;
            (logged.info.artifact_uri, String::new())
        } else if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run, path) = rest
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or((rest, ""));
            let path = validate_artifact_path(path)?;
            let run = run.to_owned();
            let root: String = self.read(move |c| {
                c.query_row(
                    "SELECT artifact_uri FROM runs WHERE uuid = ?1",
                    [&run],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| TrackingError::missing(format!("Run with id={run} not found")))
            })?;
            (root, path)
        } else {
            (uri.to_owned(), String::new())
        };
        Ok(uri
            .strip_prefix(super::api::ARTIFACTS_SCHEME)
            .map(|dir| dir.trim_matches('/'))
            .map(|dir| match (dir.is_empty(), under.is_empty()) {
                (_, true) => dir.to_owned(),
                (true, false) => under.clone(),
                (false, false) => format!("{dir}/{under}"),
            }))
    }

    /// The files and folders directly inside `dir` ("" is the root), paths relative to it.
    pub fn list_artifacts(&self, dir: &str) -> TrackingResult<Vec<FileInfo>> {
        let dir = validate_artifact_path(dir)?;
        self.read(|conn| list(conn, &dir))
    }

    /// Every file under `dir`, paths relative to it, for copying a folder (e.g. a model).
    pub fn artifact_tree(&self, dir: &str) -> TrackingResult<Vec<(String, String, i64)>> {
        let dir = validate_artifact_path(dir)?;
        self.read(|conn| tree(conn, &dir))
    }

    pub fn delete_artifact(&self, path: &str) -> TrackingResult<()> {
        let path = validate_artifact_path(path)?;
        self.write(move |conn| {
            let prefix = format!("{path}/");
            let removed = conn.execute(
                "DELETE FROM artifacts WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2",
                params![path, prefix],
            )?;
            if removed == 0 {
                return Err(TrackingError::missing(format!("No artifact at '{path}'")));
            }
            Ok(())
        })
    }
}

/// Records the artifact at `path` (checked by the caller) as blob `hash`.
pub(crate) fn record(conn: &Connection, path: &str, hash: &str, size: u64) -> TrackingResult<()> {
    conn.prepare_cached(
        "INSERT INTO blobs (hash, size_bytes, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (hash) DO NOTHING",
    )?
    .execute(params![hash, size as i64, now_secs()])?;
    // A file replaces a folder of the same name and the other way round, as on a disk.
    conn.execute(
        "DELETE FROM artifacts WHERE substr(path, 1, length(?1) + 1) = ?1 || '/'",
        [path],
    )?;
    conn.prepare_cached(
        "INSERT INTO artifacts (path, blob_hash, size_bytes, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (path) DO UPDATE SET blob_hash = excluded.blob_hash,
             size_bytes = excluded.size_bytes, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![path, hash, size as i64, now_millis()])?;
    Ok(())
}

/// Rows under `dir` as (path relative to dir, blob hash, size), in path order.
fn tree(conn: &Connection, dir: &str) -> TrackingResult<Vec<(String, String, i64)>> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut stmt = conn.prepare_cached(
        "SELECT path, blob_hash, size_bytes FROM artifacts
         WHERE path >= ?1 AND substr(path, 1, length(?1)) = ?1 ORDER BY path",
    )?;
    let rows = stmt.query_map([&prefix], |r| {
        Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (path, hash, size) = row?;
        out.push((path[prefix.len()..].to_owned(), hash, size));
    }
    Ok(out)
}

fn list(conn: &Connection, dir: &str) -> TrackingResult<Vec<FileInfo>> {
    let mut out: Vec<FileInfo> = Vec::new();
    for (relative, _, size) in tree(conn, dir)? {
        match relative.split_once('/') {
            Some((folder, _)) => {
                if out.last().is_none_or(|last| last.path != folder) {
                    out.push(FileInfo {
                        path: folder.to_owned(),
                        is_dir: true,
                        file_size: None,
                    });
                }
            }
            None => out.push(FileInfo {
                path: relative,
                is_dir: false,
                file_size: Some(size),
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside() {
        for bad in [
            "../x",
            "a/../../b",
            "a\\..\\b",
            "..",
            "a\0b",
            "1/r/artifacts/../x",
        ] {
            assert_eq!(
                validate_artifact_path(bad).unwrap_err().message,
                "Invalid path"
            );
        }
        for (given, written) in [
            ("a/./b", "a/b"),
            ("a//b", "a/b"),
            ("1/r/artifacts/.", "1/r/artifacts"),
            ("./d", "d"),
        ] {
            assert_eq!(validate_artifact_path(given).unwrap(), written);
        }
        for good in ["a\\b", "R&D notes.txt", "a+b=c;d", "..x", "x.."] {
            assert_eq!(validate_artifact_path(good).unwrap(), good);
        }
        assert_eq!(
            validate_artifact_path("/1/abc/artifacts/m/").unwrap(),
            "1/abc/artifacts/m"
        );
        assert_eq!(validate_artifact_path("").unwrap(), "");
    }

    #[test]
    fn listing_shows_direct_children_and_folders_once() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = Tracking::open(dir.path()).unwrap();
        for path in [
            "0/r/artifacts/a.txt",
            "0/r/artifacts/model/MLmodel",
            "0/r/artifacts/model/x.onnx",
        ] {
            tracking.put_artifact(path, &mut path.as_bytes()).unwrap();
        }
        let names: Vec<(String, bool)> = tracking
            .list_artifacts("0/r/artifacts")
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.is_dir))
            .collect();
        assert_eq!(names, [("a.txt".into(), false), ("model".into(), true)]);
        let model = tracking.list_artifacts("0/r/artifacts/model").unwrap();
        assert_eq!(model.len(), 2);
        assert_eq!(
            model[0].file_size,
            Some("0/r/artifacts/model/MLmodel".len() as i64)
        );
        let (file, _) = tracking.artifact_file("0/r/artifacts/a.txt").unwrap();
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            "0/r/artifacts/a.txt"
        );
        assert!(tracking.artifact_file("0/r/artifacts/none").is_err());
    }
}
