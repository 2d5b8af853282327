//! Blobs to and from a datastore, many requests at once: small blobs one request each, large
//! ones in parts (multipart upload; ranged reads), every part its own unit of work, so one
//! large file uses every connection as boto3's transfer manager does.
//!
//! Uploads resume: blobs the datastore already holds are not sent (the caller lists them),
//! and a large blob's multipart upload id is kept in `sync_uploads` until it is finished, so
//! the parts a broken push sent are not sent again. Downloads are checked against their hash
//! before they are kept, and recorded in `blobs` as they arrive, so a broken pull keeps what it
//! fetched for the next one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rusqlite::params;

use crate::blobs::{PutBlob, Receiving};
use crate::datastores::s3::{Client, Part};
use crate::jobs::Progress;
use crate::store::Store;
use crate::{Error, Result};

use super::manifest::Layout;

/// From this size a blob goes in parts: S3 allows 5 GiB in one PUT, but parts go side by side
/// and a broken one is sent again alone. boto3's default threshold is 8 MiB; larger parts cost
/// fewer requests against servers that are slow per request.
pub const PARTS_FROM: u64 = 32 << 20;

/// A part's size: 16 MiB, or more for a file over 160 GB, since S3 takes at most 10,000 parts.
fn part_bytes(size: u64) -> u64 {
    (16u64 << 20).max(size.div_ceil(10_000))
}

/// Where a piece of work reads or writes.
enum Unit {
    /// A whole small blob.
    Whole { hash: String, size: u64 },
    /// Part `number` (from 1) of large blob `blob`, `len` bytes from `offset`.
    Part {
        blob: usize,
        number: u16,
        offset: u64,
        len: u64,
    },
}

/// Runs `work` on every unit with `threads` threads, stopping at the first failure or a
/// cancel; that failure is returned.
pub fn each<T: Sync>(
    units: &[T],
    threads: usize,
    progress: &Progress,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, units.len().max(1)) {
            let builder = std::thread::Builder::new().name("lathe-sync".into());
            let spawned = builder.spawn_scoped(scope, || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= units.len() || stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Err(e) = progress.check().and_then(|()| work(&units[i])) {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = failure.lock() {
                            slot.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
            if let Err(e) = spawned {
                stop.store(true, Ordering::Relaxed);
                if let Ok(mut slot) = failure.lock() {
                    slot.get_or_insert(Error::Datastore(format!("cannot start a thread ({e})")));
                }
            }
        }
    });
    // A cancel stops requests in the middle; their errors are its doing.
    if progress.is_cancelled() {
        return Err(Error::Cancelled);
    }
    match failure.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A large blob's multipart upload under way.
struct Upload {
    hash: String,
    key: String,
    id: String,
    /// ETags by part number − 1; filled as parts arrive.
    etags: Mutex<Vec<Option<String>>>,
}

/// Sends `blobs` (hash, size) from the workspace's blob store to the datastore, `threads`
/// requests at a time; `progress` counts bytes.
///
/// The bytes sent: less than the blobs' sizes when a broken push had sent parts already.
///
/// # Errors
/// A blob missing from the store, a request refused or broken off, a cancel; what was sent
/// stays sent, and a large blob's parts are picked up by the next push.
pub fn upload(
    store: &Store,
    client: &Client,
    (datastore, layout): (&str, &Layout),
    blobs: &[(String, u64)],
    threads: usize,
    progress: &Progress,
) -> Result<u64> {
    let total = blobs.iter().map(|(_, size)| size).sum();
    progress.start_stage(&moving("uploading", blobs), total);
    let mut resumed = 0;
    let mut units = Vec::new();
    let mut uploads = Vec::new();
    for (hash, size) in blobs {
        if *size < PARTS_FROM {
            units.push(Unit::Whole {
                hash: hash.clone(),
                size: *size,
            });
            continue;
        }
        let key = layout.blob(hash);
        let part = part_bytes(*size);
        let count = size.div_ceil(part) as usize;
        let (id, done) = resume(store, client, datastore, &key, part)?;
        let mut etags = vec![None; count];
        for done in done {
            let i = usize::from(done.number).wrapping_sub(1);
            if i < count && done.size == part.min(size - (i as u64) * part) {
                etags[i] = Some(done.etag);
                progress.advance(done.size);
                resumed += done.size;
            }
        }
        for (i, etag) in etags.iter().enumerate() {
            if etag.is_none() {
                let offset = i as u64 * part;
                units.push(Unit::Part {
                    blob: uploads.len(),
                    number: (i + 1) as u16,
                    offset,
                    len: part.min(size - offset),
                });
            }
        }
        uploads.push(Upload {
            hash: hash.clone(),
            key,
            id,
            etags: Mutex::new(etags),
        });
    }
    let blob_path = |hash: &str| {
        let path = store.blobs().path(hash);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Datastore(format!(
                "blob {hash} is missing from the workspace's store; `lathe gc` may have removed \
                 it while it was listed, try again"
            )))
        }
    };
    each(&units, threads, progress, |unit| match unit {
        Unit::Whole { hash, size } => {
            client.put_file(&layout.blob(hash), (&blob_path(hash)?, 0, *size), progress)?;
            Ok(())
        }
        Unit::Part {
            blob,
            number,
            offset,
            len,
        } => {
            let upload = &uploads[*blob];
            let path = blob_path(&upload.hash)?;
            let etag = client.put_part(
                &upload.key,
                &upload.id,
                *number,
                (&path, *offset, *len),
                progress,
            )?;
            if let Ok(mut etags) = upload.etags.lock() {
                etags[usize::from(*number) - 1] = Some(etag);
            }
            Ok(())
        }
    })?;
    for upload in uploads {
        let etags: Vec<String> = upload
            .etags
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect();
        client.finish_multipart(&upload.key, &upload.id, &etags)?;
        let key = upload.key;
        let datastore = datastore.to_owned();
        store.transaction::<_, Error>(move |c| {
            c.execute(
                "DELETE FROM sync_uploads WHERE datastore = ?1 AND key = ?2",
                params![datastore, key],
            )?;
            Ok(())
        })?;
    }
    Ok(total - resumed)
}

/// The upload id for `key` and the parts it holds: the one a broken push left (if the
/// datastore still has it and its parts are this size), else a new one, noted in
/// `sync_uploads`.
fn resume(
    store: &Store,
    client: &Client,
    datastore: &str,
    key: &str,
    part: u64,
) -> Result<(String, Vec<Part>)> {
    let (ds, k) = (datastore.to_owned(), key.to_owned());
    let left: Option<(String, i64)> = store.read::<_, Error>(move |c| {
        Ok(rusqlite::OptionalExtension::optional(c.query_row(
            "SELECT upload_id, part_bytes FROM sync_uploads WHERE datastore = ?1 AND key = ?2",
            params![ds, k],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?)
    })?;
    if let Some((id, bytes)) = left
        && bytes as u64 == part
        && let Some(parts) = client.uploaded_parts(key, &id)?
    {
        return Ok((id, parts));
    }
    let id = client.start_multipart(key)?;
    let (ds, k, i) = (datastore.to_owned(), key.to_owned(), id.clone());
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "INSERT INTO sync_uploads (datastore, key, upload_id, part_bytes, started_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (datastore, key) DO UPDATE SET upload_id = excluded.upload_id,
                 part_bytes = excluded.part_bytes, started_at_ms = excluded.started_at_ms",
            params![ds, k, i, part as i64, crate::db::now_millis()],
        )?;
        Ok(())
    })?;
    Ok((id, Vec::new()))
}

/// Fetches `blobs` (hash, size) from the datastore into the workspace's blob store, each
/// checked against its hash, `threads` requests at a time; `progress` counts bytes. Blobs are
/// recorded in `blobs` as they arrive (in batches), so a broken pull keeps them.
///
/// # Errors
/// A missing object, bytes that do not hash to their key, a request broken off, a cancel.
pub fn download(
    store: &Store,
    client: &Client,
    layout: &Layout,
    blobs: &[(String, u64)],
    threads: usize,
    progress: &Progress,
) -> Result<()> {
    let total = blobs.iter().map(|(_, size)| size).sum();
    progress.start_stage(&moving("downloading", blobs), total);
    let mut units = Vec::new();
    let mut large: Vec<(String, Mutex<Option<Receiving>>, AtomicUsize)> = Vec::new();
    for (hash, size) in blobs {
        if *size < PARTS_FROM {
            units.push(Unit::Whole {
                hash: hash.clone(),
                size: *size,
            });
            continue;
        }
        let part = part_bytes(*size);
        let count = size.div_ceil(part);
        for i in 0..count {
            let offset = i * part;
            units.push(Unit::Part {
                blob: large.len(),
                number: (i + 1) as u16,
                offset,
                len: part.min(size - offset),
            });
        }
        large.push((
            hash.clone(),
            Mutex::new(Some(store.blobs().receive(*size)?)),
            AtomicUsize::new(count as usize),
        ));
    }
    let kept = Kept::default();
    let outcome = each(&units, threads, progress, |unit| match unit {
        Unit::Whole { hash, .. } => {
            let mut staged = store.blobs().stage()?;
            let mut sink = Counting {
                inner: StagedWriter(&mut staged),
                progress,
            };
            client.get_into(&layout.blob(hash), None, &mut sink)?;
            let got = staged.hash();
            if got != *hash {
                return Err(Error::Datastore(format!(
                    "{} holds bytes that hash to {got}; the object is corrupt or was changed",
                    layout.blob(hash)
                )));
            }
            kept.add(store, store.blobs().keep(staged)?)?;
            Ok(())
        }
        Unit::Part {
            blob, offset, len, ..
        } => {
            let (hash, receiving, left) = &large[*blob];
            let mut writer = {
                let guard = receiving
                    .lock()
                    .map_err(|_| Error::Datastore("a download's state is poisoned".into()))?;
                guard
                    .as_ref()
                    .ok_or_else(|| Error::Datastore("a download was already kept".into()))?
                    .writer_at(*offset)?
            };
            let mut writer = Counting {
                inner: &mut writer,
                progress,
            };
            let got = client.get_into(&layout.blob(hash), Some((*offset, *len)), &mut writer)?;
            if got != *len {
                return Err(Error::Datastore(format!(
                    "{} gave {got} bytes from {offset} where {len} were asked",
                    layout.blob(hash)
                )));
            }
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                let taken = receiving.lock().ok().and_then(|mut r| r.take());
                if let Some(received) = taken {
                    kept.add(store, store.blobs().keep_received(received, hash)?)?;
                }
            }
            Ok(())
        }
    });
    // What arrived is recorded whatever happened, for the next pull.
    kept.flush(store)?;
    outcome
}

/// Blobs fetched and not yet recorded in `blobs`.
#[derive(Default)]
pub(crate) struct Kept(Mutex<Vec<PutBlob>>);

impl Kept {
    /// Records in batches: a row per blob would be a commit per small file.
    const BATCH: usize = 512;

    pub(crate) fn add(&self, store: &Store, blob: PutBlob) -> Result<()> {
        let full = self.0.lock().is_ok_and(|mut kept| {
            kept.push(blob);
            kept.len() >= Self::BATCH
        });
        if full { self.flush(store) } else { Ok(()) }
    }

    pub(crate) fn flush(&self, store: &Store) -> Result<()> {
        let batch = self
            .0
            .lock()
            .map(|mut kept| std::mem::take(&mut *kept))
            .unwrap_or_default();
        if batch.is_empty() {
            return Ok(());
        }
        store.transaction::<_, Error>(move |c| {
            let mut insert = c.prepare_cached(
                "INSERT INTO blobs (hash, size_bytes, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (hash) DO NOTHING",
            )?;
            let now = crate::db::now_secs();
            for blob in &batch {
                insert.execute(params![blob.hash, blob.size_bytes as i64, now])?;
            }
            Ok(())
        })
    }
}

/// "uploading 12 files (3.4 MiB)": a stage's name with what it moves.
fn moving(verb: &str, blobs: &[(String, u64)]) -> String {
    let bytes: u64 = blobs.iter().map(|(_, size)| size).sum();
    format!(
        "{verb} {} file{} ({})",
        blobs.len(),
        if blobs.len() == 1 { "" } else { "s" },
        crate::format::bytes(bytes as i64)
    )
}

/// A writer that counts what is written through it and fails once its progress is cancelled.
struct Counting<'a, W> {
    inner: W,
    progress: &'a Progress,
}

impl<W: std::io::Write> std::io::Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.progress.is_cancelled() {
            return Err(std::io::Error::other("cancelled"));
        }
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A [`crate::blobs::Staged`] blob as an `io::Write`.
pub(crate) struct StagedWriter<'a>(pub(crate) &'a mut crate::blobs::Staged);

impl std::io::Write for StagedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
