//! The content-addressed blob store: files named by the BLAKE3 hash of their bytes, in a folder
//! beside the database. A blob is written to a temporary file and renamed into place, so a blob
//! path either holds the whole content or does not exist.
//!
//! A blob is written before the transaction that records it, so a process killed in between
//! leaves a file nothing refers to. Each process notes the blobs it creates in a journal
//! (`tmp/<process>.journal`) and holds a shared lock on `.lock` while the store is open; the
//! next process to find itself alone (the lock taken exclusively) removes what dead processes'
//! journals name and no record refers to, and their temporary files ([`BlobStore::recover`]).
//! [`BlobStore::collect_garbage`] does the same over every file, for stores from before the
//! journal.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::jobs::Progress;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    shared: Arc<Shared>,
}

/// What every `BlobStore` of one root in this process shares: one lock file handle (a lock is
/// held per open file, so a second handle in the same process would conflict with the first),
/// and the journal of blobs this process created.
#[derive(Debug)]
struct Shared {
    lock: File,
    /// Whether the file system took the lock.
    locked: bool,
    journal: Mutex<Option<File>>,
    recovered: Mutex<bool>,
}

/// This process's name in temporary files and journals: random, so a reused pid is not taken
/// for a live process.
fn process_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The open stores of this process, by root, so they share one [`Shared`].
fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Shared>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// What a clean-up removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Collected {
    pub files: u64,
    pub bytes: u64,
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
        let key = fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
        let mut open = registry().lock().map_err(|_| Error::Unreadable {
            path: root.clone(),
            reason: "the blob store registry is poisoned".to_owned(),
        })?;
        if let Some(shared) = open.get(&key).and_then(Weak::upgrade) {
            return Ok(Self { root, shared });
        }
        let lock_path = root.join(".lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        // A file system without locks (some network ones) still opens; it is just never
        // cleaned up behind a killed import, since no process can tell it is alone.
        let locked = lock.lock_shared().is_ok();
        let shared = Arc::new(Shared {
            lock,
            locked,
            journal: Mutex::new(None),
            recovered: Mutex::new(false),
        });
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(key, Arc::downgrade(&shared));
        Ok(Self { root, shared })
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
        let mut staged = self.stage()?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            progress.check()?;
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(source, e)),
            };
            staged.write(&buf[..n])?;
            progress.advance(n as u64);
        }
        self.keep(staged)
    }

    /// Copies the file at `source` into this process's temporary folder — by the kernel
    /// (`copy_file_range`, no trip through user memory), in chunks so `progress` can show and
    /// cancel it — then maps the copy and hashes it. The bytes a caller reads from the
    /// [`Copied`] are the blob's own, whatever happens to `source` meanwhile. Neither durable
    /// nor named until [`BlobStore::keep_copied`]; dropped instead, the copy goes.
    ///
    /// # Errors
    /// `source` cannot be read, or the store's folder written.
    pub fn copy_in(&self, source: &Path, progress: &Progress) -> Result<Copied> {
        const COPY_CHUNK: u64 = 16 << 20;
        let input = File::open(source).map_err(|e| Error::io(source, e))?;
        let size = input.metadata().map_err(|e| Error::io(source, e))?.len();
        progress.start_stage("copying", size);
        let mut tmp = self.temp_file()?;
        let mut size_bytes = 0;
        loop {
            progress.check()?;
            let n = io::copy(&mut (&input).take(COPY_CHUNK), tmp.as_file_mut())
                .map_err(|e| Error::io(source, e))?;
            if n == 0 {
                break;
            }
            size_bytes += n;
            progress.advance(n);
        }
        // An empty file cannot be mapped; it has no bytes to show anyway.
        let map = if size_bytes == 0 {
            None
        } else {
            Some(
                polars_utils::mmap::MMapSemaphore::new_from_file(tmp.as_file()).map_err(|e| {
                    Error::Unreadable {
                        path: tmp.path().to_owned(),
                        reason: e.to_string(),
                    }
                })?,
            )
        };
        let mut copied = Copied {
            tmp,
            map,
            hash: String::new(),
        };
        let mut hasher = blake3::Hasher::new();
        hash_into(&mut hasher, copied.bytes());
        copied.hash = hasher.finalize().to_hex().to_string();
        Ok(copied)
    }

    /// Makes a [`Copied`] file durable under its hash (see [`BlobStore::keep`]).
    pub fn keep_copied(&self, copied: Copied) -> Result<PutBlob> {
        let size_bytes = copied.bytes().len() as u64;
        let Copied { tmp, map, hash } = copied;
        drop(map);
        self.persist(tmp, hash, size_bytes)
    }

    /// Starts a blob of `size` bytes that arrives in ranges, in any order and from several
    /// threads ([`Receiving::write_at`]); [`BlobStore::keep_received`] checks and keeps it.
    ///
    /// # Errors
    /// The store's folder cannot be written.
    pub fn receive(&self, size: u64) -> Result<Receiving> {
        let tmp = self.temp_file()?;
        tmp.as_file()
            .set_len(size)
            .map_err(|e| Error::io(tmp.path(), e))?;
        Ok(Receiving { tmp })
    }

    /// Keeps a received blob if its bytes hash to `expected` (see [`BlobStore::keep`]).
    ///
    /// # Errors
    /// The bytes hash to something else (named with both hashes); the file cannot be read or
    /// made durable.
    pub fn keep_received(&self, received: Receiving, expected: &str) -> Result<PutBlob> {
        let file = received.tmp.as_file();
        let size_bytes = file
            .metadata()
            .map_err(|e| Error::io(received.tmp.path(), e))?
            .len();
        let hash = if size_bytes == 0 {
            hash_bytes(&[])
        } else {
            let map = polars_utils::mmap::MMapSemaphore::new_from_file(file).map_err(|e| {
                Error::Unreadable {
                    path: received.tmp.path().to_owned(),
                    reason: e.to_string(),
                }
            })?;
            hash_bytes(map.as_ref())
        };
        if hash != expected {
            return Err(Error::Datastore(format!(
                "the bytes received for blob {expected} hash to {hash}; the object is corrupt \
                 or was changed"
            )));
        }
        self.persist(received.tmp, hash, size_bytes)
    }

    /// Starts a blob whose bytes arrive in pieces ([`Staged::write`]); [`BlobStore::keep`]
    /// makes it durable under its hash. Dropped instead, its temporary file goes.
    pub fn stage(&self) -> Result<Staged> {
        Ok(Staged {
            tmp: self.temp_file()?,
            hasher: blake3::Hasher::new(),
            size_bytes: 0,
        })
    }

    /// Makes a staged blob durable (fsync) and names it by its hash; content the store already
    /// holds is not kept twice.
    pub fn keep(&self, staged: Staged) -> Result<PutBlob> {
        let hash = staged.hash();
        self.persist(staged.tmp, hash, staged.size_bytes)
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        let tmp_dir = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(&format!("{}-", process_tag()))
            .tempfile_in(&tmp_dir)
            .map_err(|e| Error::io(&tmp_dir, e))
    }

    /// Notes in this process's journal that blob `hash` is about to be created, before it
    /// exists, so that a kill at any later point leaves it findable.
    fn journal(&self, hash: &str) -> Result<()> {
        let path = self
            .root
            .join("tmp")
            .join(format!("{}.journal", process_tag()));
        let mut journal = self.shared.journal.lock().map_err(|_| Error::Unreadable {
            path: path.clone(),
            reason: "the blob journal is poisoned".to_owned(),
        })?;
        if journal.is_none() {
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            *journal = Some(file);
        }
        if let Some(file) = journal.as_mut() {
            writeln!(file, "{hash}").map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// Runs `work` with the store's lock held exclusively, if no other process has the store
    /// open; `None` if one does. The shared lock is taken back afterwards either way.
    fn alone<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
        if !self.shared.locked {
            return Ok(None);
        }
        let lock_path = self.root.join(".lock");
        let outcome = match self.shared.lock.try_lock() {
            Ok(()) => work().map(Some),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(&lock_path, e)),
        };
        // Converting a lock may drop it on the way (flock(2)); take the shared one again.
        self.shared
            .lock
            .lock_shared()
            .map_err(|e| Error::io(&lock_path, e))?;
        outcome
    }

    /// Cleans up after processes that were killed while writing: the blobs their journals
    /// name that `referenced` does not know, and their temporary files. Does nothing while
    /// another process has the store open (its blobs may be about to be recorded), and runs
    /// once per process. Cheap: it reads journals, not the store.
    pub fn recover(&self, referenced: &dyn Fn(&str) -> Result<bool>) -> Result<Collected> {
        let Ok(mut recovered) = self.shared.recovered.lock() else {
            return Ok(Collected::default());
        };
        if *recovered {
            return Ok(Collected::default());
        }
        *recovered = true;
        let tmp = self.root.join("tmp");
        let collected = self.alone(|| {
            let mut collected = Collected::default();
            let own = process_tag();
            for entry in fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
                let path = entry.map_err(|e| Error::io(&tmp, e))?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with(own) {
                    continue;
                }
                if name.ends_with(".journal") {
                    let listed = fs::read_to_string(&path).unwrap_or_default();
                    for hash in listed.lines().filter(|h| is_hash(h)) {
                        if !referenced(hash)? {
                            collected.add(remove(&self.path(hash)));
                        }
                    }
                }
                collected.add(remove(&path));
            }
            Ok(collected)
        })?;
        Ok(collected.unwrap_or_default())
    }

    /// Removes every file in the store that `referenced` does not know, and every temporary
    /// file and journal of other processes. Refused while another process has the store open.
    pub fn collect_garbage(
        &self,
        referenced: &dyn Fn(&str) -> Result<bool>,
    ) -> Result<Option<Collected>> {
        let tmp = self.root.join("tmp");
        self.alone(|| {
            let mut collected = Collected::default();
            let own = process_tag();
            for entry in walkdir::WalkDir::new(&self.root).min_depth(1) {
                let entry = entry.map_err(|e| Error::Unreadable {
                    path: self.root.clone(),
                    reason: e.to_string(),
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let path = entry.path();
                let name = entry.file_name().to_string_lossy();
                let garbage = if path.starts_with(&tmp) {
                    !name.starts_with(own)
                } else {
                    is_hash(&name) && !referenced(&name)?
                };
                if garbage {
                    collected.add(remove(path));
                }
            }
            Ok(collected)
        })
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
        self.journal(&hash)?;
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

/// A blob being written as its bytes arrive: in a temporary file of this process (found and
/// removed after a kill), hashed as written, neither durable nor named until kept.
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    hasher: blake3::Hasher,
    size_bytes: u64,
}

impl Staged {
    /// Appends `bytes` to the blob.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        hash_into(&mut self.hasher, bytes);
        self.size_bytes += bytes.len() as u64;
        self.tmp
            .write_all(bytes)
            .map_err(|e| Error::io(self.tmp.path(), e))
    }

    /// The [`hash_bytes`] of everything written so far.
    pub fn hash(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

/// A blob arriving in ranges: see [`BlobStore::receive`].
pub struct Receiving {
    tmp: tempfile::NamedTempFile,
}

impl Receiving {
    /// A handle of its own that writes from `offset` on, so threads write ranges side by side.
    ///
    /// # Errors
    /// The temporary file cannot be opened.
    pub fn writer_at(&self, offset: u64) -> Result<File> {
        let path = self.tmp.path();
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset)).map_err(|e| Error::io(path, e))?;
        Ok(file)
    }
}

/// A file copied into the store and hashed, not yet kept: see [`BlobStore::copy_in`]. Its
/// bytes are a read-only map of a file only this process writes, so they cannot change
/// under a reader.
pub struct Copied {
    tmp: tempfile::NamedTempFile,
    map: Option<polars_utils::mmap::MMapSemaphore>,
    hash: String,
}

impl Copied {
    /// The copied bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_ref().map_or(&[], AsRef::as_ref)
    }

    /// Their [`hash_bytes`].
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Flushes the copy to disk; [`BlobStore::keep_copied`] does it if this has not. Takes
    /// `&self`, so it can run beside a reader of [`Copied::bytes`].
    pub fn sync(&self) -> Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(self.tmp.path(), e))
    }
}

/// Feeds `bytes` to `hasher`: on several threads from about 128 KiB, where that pays off
/// (blake3's documentation); below it the hand-off costs more than it saves (an image
/// folder's small files).
fn hash_into(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= 128 << 10 {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

impl Collected {
    fn add(&mut self, removed: Option<u64>) {
        if let Some(bytes) = removed {
            self.files += 1;
            self.bytes += bytes;
        }
    }
}

/// Removes a file, returning its size if it was there to remove.
fn remove(path: &Path) -> Option<u64> {
    let size = fs::metadata(path).ok()?.len();
    fs::remove_file(path).ok().map(|()| size)
}

/// Whether a file name is a blob's: 64 lowercase hex digits.
fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
        // No temporary file is left, only this process's journal naming the one blob it made.
        let left: Vec<String> = fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [format!("{}.journal", process_tag())]);
        let journal = fs::read_to_string(dir.path().join("tmp").join(&left[0])).unwrap();
        assert_eq!(journal, format!("{}\n", a.hash));
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
