//! Step files: content hashes of local files and folders, storing a step's output folder as
//! run artifacts, and unpacking stored artifacts back into a folder for a later step.

use crate::pipeline::{PipelineError, PipelineResult};
use std::path::{Path, PathBuf};

use crate::tracking::Tracking;

/// Every file under `path` (or `path` itself) as (relative path, absolute path), sorted.
fn files(path: &Path) -> PipelineResult<Vec<(String, PathBuf)>> {
    if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(name, path.to_path_buf())]);
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.map_err(|e| PipelineError::io(path, e.into()))?;
        if entry.file_type().is_file() {
            let relative = entry
                .path()
                .strip_prefix(path)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, entry.path().to_path_buf()));
        }
    }
    Ok(out)
}

/// The hash of a listing of (relative path, content hash): a folder's identity.
fn listing_hash(listing: &[(String, String)]) -> String {
    let mut text = String::new();
    for (path, hash) in listing {
        text.push_str(path);
        text.push('\0');
        text.push_str(hash);
        text.push('\n');
    }
    crate::blobs::hash_bytes(text.as_bytes())
}

/// The content hash of a local file or folder (names and bytes of every file).
pub fn tree_hash(path: &Path) -> PipelineResult<String> {
    if !path.exists() {
        return Err(PipelineError::Invalid(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let listing = files(path)?
        .into_iter()
        .map(|(relative, file)| {
            let bytes = std::fs::read(&file).map_err(|e| PipelineError::io(&file, e))?;
            Ok((relative, crate::blobs::hash_bytes(&bytes)))
        })
        .collect::<PipelineResult<Vec<_>>>()?;
    Ok(listing_hash(&listing))
}

/// Stores every file under `local` as an artifact under `artifact_dir`; returns the folder's
/// content hash (as [`tree_hash`] would give).
pub fn store(tracking: &Tracking, local: &Path, artifact_dir: &str) -> PipelineResult<String> {
    let mut listing = Vec::new();
    if local.exists() {
        for (relative, file) in files(local)? {
            let mut reader = std::fs::File::open(&file).map_err(|e| PipelineError::io(&file, e))?;
            let info = tracking.put_artifact(&format!("{artifact_dir}/{relative}"), &mut reader)?;
            let hash = tracking
                .artifact_file(&info.path)
                .ok()
                .and_then(|(blob, _)| blob.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            listing.push((relative, hash));
        }
    }
    Ok(listing_hash(&listing))
}

/// Copies the artifacts under `artifact_dir` into the folder `dest`.
pub fn unpack(tracking: &Tracking, artifact_dir: &str, dest: &Path) -> PipelineResult<()> {
    std::fs::create_dir_all(dest).map_err(|e| PipelineError::io(dest, e))?;
    for (relative, hash, _) in tracking.artifact_tree(artifact_dir)? {
        let target = dest.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
        }
        std::fs::copy(tracking.blobs().path(&hash), &target)
            .map_err(|e| PipelineError::io(&target, e))?;
    }
    Ok(())
}

/// Copies a file or folder to `dest` (a folder's contents into `dest`).
pub fn copy(source: &Path, dest: &Path) -> PipelineResult<()> {
    for (relative, file) in files(source)? {
        let target = dest.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
        }
        std::fs::copy(&file, &target).map_err(|e| PipelineError::io(&target, e))?;
    }
    Ok(())
}
