//! The content-addressed blob store: files named by the BLAKE3 hash of their bytes, in a folder
//! beside the database. A blob is written to a temporary file and renamed into place, so a blob
//! path either holds the whole content or does not exist.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::jobs::Progress;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// A blob that was just put: its address, its size, and whether this put created the file
/// (so a failed transaction can take back exactly what it added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutBlob {
    pub hash: String,
    pub size_bytes: u64,
    pub created: bool,
}

const CHUNK_BYTES: usize = 1 << 20;

impl BlobStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("tmp")).map_err(|e| Error::io(&root, e))?;
        Ok(Self { root })
    }

    pub fn path(&self, hash: &str) -> PathBuf {
        let prefix = hash.get(..2).unwrap_or("00");
        self.root.join(prefix).join(hash)
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// Copies the file at `source` into the store, hashing as it goes.
    pub fn put_file(&self, source: &Path, progress: &Progress) -> Result<PutBlob> {
        let mut input = File::open(source).map_err(|e| Error::io(source, e))?;
        self.put_reader(&mut input, source, progress)
    }

    /// Stores bytes already in memory; content the store already holds is not written again.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<PutBlob> {
        self.put_hashed(bytes, &hash_bytes(bytes))
    }

    /// Stores bytes whose [`hash_bytes`] the caller already computed.
    pub fn put_hashed(&self, bytes: &[u8], hash: &str) -> Result<PutBlob> {
        let size_bytes = bytes.len() as u64;
        if self.contains(hash) {
            return Ok(PutBlob {
                hash: hash.to_owned(),
                size_bytes,
                created: false,
            });
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
        self.persist(tmp, hash.to_owned(), size_bytes)
    }

    /// Copies a stream into the store, hashing as it goes; `source` names it in errors.
    pub fn put_reader(
        &self,
        input: &mut dyn Read,
        source: &Path,
        progress: &Progress,
    ) -> Result<PutBlob> {
        let mut tmp = self.temp_file()?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut size_bytes = 0u64;
        loop {
            progress.check()?;
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(source, e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| Error::io(tmp.path(), e))?;
            size_bytes += n as u64;
            progress.advance(n as u64);
        }
        self.persist(tmp, hasher.finalize().to_hex().to_string(), size_bytes)
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        let tmp_dir = self.root.join("tmp");
        tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))
    }

    /// Makes a fully written temporary file the blob `hash`: synced, then renamed into place.
    fn persist(
        &self,
        tmp: tempfile::NamedTempFile,
        hash: String,
        size_bytes: u64,
    ) -> Result<PutBlob> {
        let dest = self.path(&hash);
        if dest.is_file() {
            return Ok(PutBlob {
                hash,
                size_bytes,
                created: false,
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(PutBlob {
            hash,
            size_bytes,
            created: true,
        })
    }

    /// Removes blobs this import created, after its transaction failed or was cancelled.
    pub fn discard(&self, puts: &[PutBlob]) {
        for put in puts.iter().filter(|p| p.created) {
            // Best effort: a leftover file is unreferenced and harmless; the record is what counts.
            let _ = fs::remove_file(self.path(&put.hash));
        }
    }
}

/// The BLAKE3 hash of `bytes`, computed on all cores: a blob's address.
pub fn hash_bytes(bytes: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update_rayon(bytes);
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_content_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put_bytes(b"hello").unwrap();
        let b = store.put_bytes(b"hello").unwrap();
        assert!(a.created && !b.created);
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.hash, blake3::hash(b"hello").to_hex().to_string());
        assert_eq!(fs::read(store.path(&a.hash)).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn discard_removes_only_what_was_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let old = store.put_bytes(b"old").unwrap();
        let again = store.put_bytes(b"old").unwrap();
        let new = store.put_bytes(b"new").unwrap();
        store.discard(&[again, new.clone()]);
        assert!(store.contains(&old.hash));
        assert!(!store.contains(&new.hash));
    }
}
