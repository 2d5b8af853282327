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
