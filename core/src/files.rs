//! Writing a file so that it is whole or absent: the one way Lathe writes a file a user asked
//! for (exports, label files, tables), never leaving a half-written one behind.

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Writes `dest` through `write`, into a temporary file beside it first and renamed into place
/// once `write` succeeds, so a failure or a kill leaves any earlier `dest` as it was; returns
/// what `write` returns.
///
/// # Errors
/// The folder cannot take the temporary file, `write` fails (its error), or the rename fails.
pub fn write_atomically<T>(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    let written = {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        let value = write(&mut out)?;
        out.flush().map_err(|e| Error::io(dest, e))?;
        value
    };
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    Ok(written)
}

/// A folder's files as the blob store keeps them: each file's path in the folder (`/` between
/// folders) and its blob's hash.
pub type Listing = Vec<(String, String)>;

/// Puts every file under `dir` in the blob store: each file's path relative to `dir` (with
/// `/` between folders) and its hash, in name order, and the puts (for recording them).
///
/// # Errors
/// A file that cannot be read.
pub fn put_tree(
    blobs: &crate::blobs::BlobStore,
    dir: &Path,
) -> Result<(Listing, Vec<crate::blobs::PutBlob>)> {
    let mut files = Vec::new();
    let mut puts = Vec::new();
    for (relative, path) in tree(dir)? {
        let put = blobs.put_file(&path, &crate::jobs::Progress::default())?;
        files.push((relative, put.hash.clone()));
        puts.push(put);
    }
    Ok((files, puts))
}

/// Every file under `dir` in name order: its path relative to `dir` (with `/` between
/// folders) and its full path.
///
/// # Errors
/// A folder that cannot be read.
pub fn tree(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::io(dir, std::io::Error::other(e)))?;
        if entry.file_type().is_file() {
            let relative = entry
                .path()
                .strip_prefix(dir)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .replace('\\', "/");
            files.push((relative, entry.into_path()));
        }
    }
    Ok(files)
}

/// Copies the blobs `files` lists (path relative to `dest`, hash) to `dest`.
///
/// # Errors
/// A path that leaves `dest` (`..` or absolute); a file that cannot be written.
pub fn unpack_tree(
    blobs: &crate::blobs::BlobStore,
    files: &[(String, String)],
    dest: &Path,
) -> Result<()> {
    for (relative, hash) in files {
        let inside = Path::new(relative);
        if inside.is_absolute()
            || inside
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::io(
                inside,
                std::io::Error::other("a path that leaves its folder"),
            ));
        }
        let target = dest.join(inside);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::copy(blobs.path(hash), &target).map_err(|e| Error::io(&target, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        write_atomically(&dest, |out| {
            out.write_all(b"first").map_err(|e| Error::io("out", e))
        })
        .unwrap();
        let failed: Result<()> = write_atomically(&dest, |out| {
            out.write_all(b"half").map_err(|e| Error::io("out", e))?;
            Err(Error::Cancelled)
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
