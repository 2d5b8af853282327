//! Exporting a data asset version to files: a table in the format its extension names, a text
//! corpus as lines or as a one-column table, an image set as a folder. Every export writes to a
//! temporary name beside the destination and renames it into place.

use std::fs;
use std::path::{Component, Path, PathBuf};

use polars::prelude::*;

use crate::assets::{AssetKind, AssetVersion};
use crate::jobs::Progress;
use crate::profile::load_table;
use crate::table::{self, TableFormat};
use crate::workspace::Workspace;
use crate::{Error, Result, text};

/// Writes `version` to `dest`; returns the number of files written.
pub fn export(
    ws: &Workspace,
    version: &AssetVersion,
    dest: &Path,
    progress: &Progress,
) -> Result<usize> {
    match version.kind {
        AssetKind::Table => export_table(ws, version, dest).map(|()| 1),
        AssetKind::Text => export_text(ws, version, dest).map(|()| 1),
        AssetKind::Images => export_images(ws, version, dest, progress),
    }
}

fn dest_format(dest: &Path) -> Result<TableFormat> {
    TableFormat::from_path(dest).ok_or_else(|| Error::Unreadable {
        path: dest.to_path_buf(),
        reason: "choose a table file name ending in .csv, .tsv, .parquet or .jsonl".to_owned(),
    })
}

fn export_table(ws: &Workspace, version: &AssetVersion, dest: &Path) -> Result<()> {
    let format = dest_format(dest)?;
    match (&version.meta.blob, version.meta.format) {
        // The same format: hand back the very bytes that were imported.
        (Some(blob), Some(stored)) if stored == format => {
            copy_atomically(&ws.blobs().path(blob), dest)
        }
        _ => table::write(&mut load_table(ws, version)?, dest, format),
    }
}

fn export_text(ws: &Workspace, version: &AssetVersion, dest: &Path) -> Result<()> {
    let items = text::items(ws, version)?;
    let is_txt = dest
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"));
    if is_txt {
        let mut body = items.join("\n");
        body.push('\n');
        write_atomically(dest, body.as_bytes())
    } else {
        let format = dest_format(dest).map_err(|_| Error::Unreadable {
            path: dest.to_path_buf(),
            reason: "choose a file name ending in .txt, .csv, .tsv, .parquet or .jsonl".to_owned(),
        })?;
        let mut df = DataFrame::new(items.len(), vec![Column::new("text".into(), items)])?;
        table::write(&mut df, dest, format)
    }
}

fn export_images(
    ws: &Workspace,
    version: &AssetVersion,
    dest: &Path,
    progress: &Progress,
) -> Result<usize> {
    if dest.exists()
        && fs::read_dir(dest)
            .map_err(|e| Error::io(dest, e))?
            .next()
            .is_some()
    {
        return Err(Error::Unreadable {
            path: dest.to_path_buf(),
            reason: "the folder exists and is not empty".to_owned(),
        });
    }
    let files = ws.version_files(version.id)?;
    let parent = parent_of(dest);
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".lathe-export-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    progress.start_stage("exporting", files.len() as u64);
    for file in &files {
        progress.check()?;
        let target = staging.path().join(safe_relative(&file.path)?);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let blob = ws.blobs().path(&file.blob_hash);
        fs::copy(&blob, &target).map_err(|e| Error::io(&blob, e))?;
        progress.advance(1);
    }
    if dest.exists() {
        fs::remove_dir(dest).map_err(|e| Error::io(dest, e))?;
    }
    let staged = staging.keep();
    fs::rename(&staged, dest).map_err(|e| Error::io(dest, e))?;
    Ok(files.len())
}

/// A stored relative path as a path that cannot leave the folder it is joined to.
fn safe_relative(stored: &str) -> Result<PathBuf> {
    let path = Path::new(stored);
    if stored.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Error::Unreadable {
            path: path.to_path_buf(),
            reason: "unsafe path in the image set".to_owned(),
        });
    }
    Ok(path.to_path_buf())
}

fn parent_of(dest: &Path) -> &Path {
    dest.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn copy_atomically(source: &Path, dest: &Path) -> Result<()> {
    crate::files::write_atomically(dest, |out| {
        let mut input = fs::File::open(source).map_err(|e| Error::io(source, e))?;
        std::io::copy(&mut input, out).map_err(|e| Error::io(dest, e))?;
        Ok(())
    })
}

fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomically(dest, |out| {
        out.write_all(bytes).map_err(|e| Error::io(dest, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_paths_cannot_escape() {
        for bad in ["", "../x.png", "/etc/passwd", "a/../../b.png", "./a.png"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
        assert_eq!(
            safe_relative("cats/a.png").unwrap(),
            PathBuf::from("cats/a.png")
        );
    }
}
