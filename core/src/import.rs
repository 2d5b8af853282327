//! Importing data assets. Every import either records a complete new version (or finds the
//! version that already holds the same content) or leaves the workspace exactly as it was.
//!
//! A table or text file is read into memory once and hashed; if the asset already holds that
//! content, that version is the answer. Otherwise the same bytes are written to the blob store
//! (temp file, fsync, rename) while they are checked and parsed, and then recorded in one
//! transaction: the version holds exactly the bytes that were checked, even if the source changes
//! meanwhile. An image folder is checked image by image (in parallel), then copied file by file.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::assets::{AssetKind, AssetVersion, VersionFile, VersionMeta, validate_name};
use crate::blobs::{Copied, PutBlob};
use crate::images;
use crate::jobs::Progress;
use crate::table::{self, TableFormat};
use crate::text;
use crate::workspace::{NewVersion, Workspace};
use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRequest {
    pub path: PathBuf,
    pub name: String,
    /// `None`: decided from the path (a folder or image is images, `.txt` is text, else a table).
    pub kind: Option<AssetKind>,
    /// For a text corpus read from a table: the column that holds the text.
    pub text_column: Option<String>,
    /// What to record as the version's source; the path when `None`.
    pub source_label: Option<String>,
}

impl ImportRequest {
    fn source(&self) -> String {
        self.source_label
            .clone()
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub version: AssetVersion,
    /// `false` when identical content was already a version of the asset.
    pub created: bool,
}

/// The kind of data at `path`, judged by whether it is a folder and by its extension.
pub fn infer_kind(path: &Path) -> Result<AssetKind> {
    if path.is_dir() || images::is_image_path(path) {
        Ok(AssetKind::Images)
    } else if TableFormat::from_path(path).is_some() {
        Ok(AssetKind::Table)
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
    {
        Ok(AssetKind::Text)
    } else if !path.exists() {
        Err(Error::Missing {
            path: path.to_path_buf(),
        })
    } else {
        Err(Error::UnknownKind {
            path: path.to_path_buf(),
        })
    }
}

pub fn import(
    ws: &mut Workspace,
    request: &ImportRequest,
    progress: &Progress,
) -> Result<ImportOutcome> {
    validate_name(&request.name)?;
    if !request.path.exists() {
        return Err(Error::Missing {
            path: request.path.clone(),
        });
    }
    let kind = match request.kind {
        Some(kind) => kind,
        None => infer_kind(&request.path)?,
    };
    if let Some(existing) = ws.asset_kind(&request.name)?
        && existing != kind
    {
        return Err(Error::WrongKind {
            name: request.name.clone(),
            actual: existing.to_string(),
            expected: kind.to_string(),
        });
    }
    let mut puts = Vec::new();
    let result = stage_and_record(ws, request, kind, progress, &mut puts);
    if result.is_err() {
        ws.discard_unrecorded(&puts);
    }
    result
}

fn stage_and_record(
    ws: &mut Workspace,
    request: &ImportRequest,
    kind: AssetKind,
    progress: &Progress,
    puts: &mut Vec<PutBlob>,
) -> Result<ImportOutcome> {
    let new = match kind {
        AssetKind::Table => stage_table(ws, request, progress, puts)?,
        AssetKind::Text => stage_text(ws, request, progress, puts)?,
        AssetKind::Images => stage_images(ws, request, progress, puts)?,
    };
    let new = match new {
        Staged::Existing(version) => {
            return Ok(ImportOutcome {
                version,
                created: false,
            });
        }
        Staged::New(new) => new,
    };
    progress.check()?;
    progress.start_stage("recording", 1);
    let (version, created) = ws.record_version(&new)?;
    progress.advance(1);
    Ok(ImportOutcome { version, created })
}

enum Staged {
    Existing(AssetVersion),
    New(Box<NewVersion>),
}

/// One file read for import: its copy and hashes, unless the asset already holds its content.
enum Single {
    Existing(AssetVersion),
    New(NewContent),
}

struct NewContent {
    /// The file copied into the blob store, hashed: its hash is the blob's name.
    copied: Copied,
    content_hash: String,
}

/// Copies one file into the blob store and hashes the copy; `content_hash` turns the blob's
/// hash into the version's (they differ when more than the bytes defines the content). Content
/// the asset already holds is dropped before anything is made durable.
fn read_single(
    ws: &Workspace,
    request: &ImportRequest,
    progress: &Progress,
    content_hash: impl Fn(&str) -> String,
) -> Result<Single> {
    let path = &request.path;
    if path.is_dir() {
        return Err(Error::Unreadable {
            path: path.clone(),
            reason: "is a folder, not a file".to_owned(),
        });
    }
    let copied = ws.blobs().copy_in(path, progress)?;
    if copied.bytes().is_empty() {
        return Err(Error::EmptyFile { path: path.clone() });
    }
    let content_hash = content_hash(copied.hash());
    Ok(match ws.find_by_content(&request.name, &content_hash)? {
        Some(version) => Single::Existing(version),
        None => Single::New(NewContent {
            copied,
            content_hash,
        }),
    })
}

/// Makes the copy durable while `check` reads it: the fsync waits on the disk, checking works
/// the CPU, so side by side they take little longer than the slower of the two. `check` reads
/// the blob's own bytes, so what is checked is what is stored.
fn store_while_checking<T>(
    ws: &Workspace,
    new: NewContent,
    puts: &mut Vec<PutBlob>,
    progress: &Progress,
    check: impl FnOnce(&[u8]) -> Result<T>,
) -> Result<(PutBlob, String, T)> {
    progress.start_stage("checking", 1);
    let NewContent {
        copied,
        content_hash,
    } = new;
    let (synced, checked) = std::thread::scope(|scope| {
        let sync = scope.spawn(|| copied.sync());
        let checked = check(copied.bytes());
        (sync.join(), checked)
    });
    let checked = checked?;
    synced.unwrap_or_else(|_| {
        Err(Error::Unreadable {
            path: ws.root().join("blobs"),
            reason: "storing the blob failed unexpectedly".to_owned(),
        })
    })?;
    let put = ws.blobs().keep_copied(copied)?;
    puts.push(put.clone());
    progress.advance(1);
    Ok((put, content_hash, checked))
}

fn stage_table(
    ws: &Workspace,
    request: &ImportRequest,
    progress: &Progress,
    puts: &mut Vec<PutBlob>,
) -> Result<Staged> {
    let path = &request.path;
    let format = TableFormat::from_path(path).ok_or_else(|| Error::Unreadable {
        path: path.clone(),
        reason: "not a table file (expected .csv, .tsv, .parquet or .jsonl)".to_owned(),
    })?;
    let new = match read_single(ws, request, progress, str::to_owned)? {
        Single::Existing(version) => return Ok(Staged::Existing(version)),
        Single::New(new) => new,
    };
    let (put, content_hash, (columns, rows)) =
        store_while_checking(ws, new, puts, progress, |bytes| {
            table::inspect_bytes(bytes, path, format)
        })?;
    let meta = VersionMeta {
        blob: Some(put.hash.clone()),
        format: Some(format),
        columns,
        text_column: None,
    };
    Ok(single_blob_version(
        request,
        AssetKind::Table,
        content_hash,
        put,
        rows,
        meta,
    ))
}

fn stage_text(
    ws: &Workspace,
    request: &ImportRequest,
    progress: &Progress,
    puts: &mut Vec<PutBlob>,
) -> Result<Staged> {
    let path = &request.path;
    let column = request.text_column.clone();
    let format = match &column {
        Some(_) => Some(TableFormat::from_path(path).ok_or_else(|| {
            Error::Unreadable {
                path: path.clone(),
                reason:
                    "a text column can only be read from a table (.csv, .tsv, .parquet, .jsonl)"
                        .to_owned(),
            }
        })?),
        None => None,
    };
    // The same file read as lines or as a column are different corpora.
    let single = read_single(ws, request, progress, |blob| match &column {
        Some(c) => blake3::hash(format!("{blob}\0column\0{c}").as_bytes())
            .to_hex()
            .to_string(),
        None => blob.to_owned(),
    })?;
    let new = match single {
        Single::Existing(version) => return Ok(Staged::Existing(version)),
        Single::New(new) => new,
    };
    let (put, content_hash, items) = store_while_checking(ws, new, puts, progress, |bytes| {
        text::read_bytes(bytes, path, format, column.as_deref())
    })?;
    let meta = VersionMeta {
        blob: Some(put.hash.clone()),
        format,
        columns: Vec::new(),
        text_column: column,
    };
    Ok(single_blob_version(
        request,
        AssetKind::Text,
        content_hash,
        put,
        items.len(),
        meta,
    ))
}

/// A new version held in one blob: a table, or a text corpus.
fn single_blob_version(
    request: &ImportRequest,
    kind: AssetKind,
    content_hash: String,
    put: PutBlob,
    item_count: usize,
    meta: VersionMeta,
) -> Staged {
    Staged::New(Box::new(NewVersion {
        name: request.name.clone(),
        kind,
        content_hash,
        source: request.source(),
        item_count: item_count as i64,
        size_bytes: put.size_bytes as i64,
        meta,
        files: Vec::new(),
        blobs: vec![put],
    }))
}

fn stage_images(
    ws: &Workspace,
    request: &ImportRequest,
    progress: &Progress,
    puts: &mut Vec<PutBlob>,
) -> Result<Staged> {
    let found = images::scan(&request.path)?;
    progress.start_stage("checking images", found.len() as u64);
    let sizes: Vec<(u32, u32)> = found
        .par_iter()
        .map(|image| {
            progress.check()?;
            let size = images::inspect(&image.path)?;
            progress.advance(1);
            Ok(size)
        })
        .collect::<Result<_>>()?;
    progress.start_stage("copying", found.len() as u64);
    let mut files = Vec::with_capacity(found.len());
    let mut listing = blake3::Hasher::new();
    for (image, (width, height)) in found.iter().zip(sizes) {
        let put = ws.blobs().put_file(&image.path, &Progress::default())?;
        progress.check()?;
        progress.advance(1);
        listing.update(image.relative.as_bytes());
        listing.update(b"\0");
        listing.update(put.hash.as_bytes());
        listing.update(b"\n");
        files.push(VersionFile {
            path: image.relative.clone(),
            blob_hash: put.hash.clone(),
            size_bytes: put.size_bytes,
            width,
            height,
        });
        puts.push(put);
    }
    let content_hash = listing.finalize().to_hex().to_string();
    if let Some(version) = ws.find_by_content(&request.name, &content_hash)? {
        return Ok(Staged::Existing(version));
    }
    Ok(Staged::New(Box::new(NewVersion {
        name: request.name.clone(),
        kind: AssetKind::Images,
        content_hash,
        source: request.source(),
        item_count: files.len() as i64,
        size_bytes: files.iter().map(|f| f.size_bytes as i64).sum(),
        meta: VersionMeta::default(),
        files,
        blobs: puts.clone(),
    })))
}

/// As [`import`], and `request.path` may be a datastore's URI (`s3://bucket/key`, through
/// `datastore` or the one datastore of that bucket; `azureml://datastores/NAME/paths/PATH`):
/// its object, or the objects under it as a folder, are fetched into a folder of the workspace
/// that goes when the import ends, and the version's source is the URI.
///
/// # Errors
/// As [`import`]; as [`crate::datastores::fetch::resolve`] and
/// [`crate::datastores::fetch::download`].
pub fn import_from(
    ws: &mut Workspace,
    request: &ImportRequest,
    datastore: Option<&str>,
    progress: &Progress,
) -> Result<ImportOutcome> {
    use crate::datastores::fetch;
    let Some(uri) = request.path.to_str().filter(|p| fetch::is_uri(p)) else {
        return import(ws, request, progress);
    };
    let location = fetch::resolve(ws.store(), uri, datastore)?;
    // In the workspace's folder: the copy into the blob store then stays on one disk.
    let staging = tempfile::tempdir_in(ws.root()).map_err(|e| Error::io(ws.root(), e))?;
    let mut local = request.clone();
    local.source_label.get_or_insert_with(|| uri.to_owned());
    local.path = fetch::download(&location, staging.path(), crate::sync::THREADS, progress)?;
    import(ws, &local, progress)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        ws: Workspace,
        data: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path().join("ws")).unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        Fixture {
            _dir: dir,
            ws,
            data,
        }
    }

    impl Fixture {
        fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.data.join(name);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).unwrap();
            }
            fs::write(&path, bytes).unwrap();
            path
        }

        fn import(&mut self, path: &Path, name: &str) -> Result<ImportOutcome> {
            let request = ImportRequest {
                path: path.to_path_buf(),
                name: name.into(),
                ..Default::default()
            };
            import(&mut self.ws, &request, &Progress::default())
        }

        /// Everything a failed import must leave untouched: rows of every table and blob files.
        fn state(&self) -> (Vec<i64>, usize) {
            let counts = [
                "assets",
                "asset_versions",
                "version_files",
                "blobs",
                "profiles",
            ]
            .iter()
            .map(|t| {
                self.ws
                    .conn()
                    .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                    .unwrap()
            })
            .collect();
            let files = walkdir::WalkDir::new(self.ws.root().join("blobs"))
                .into_iter()
                .filter(|e| e.as_ref().unwrap().file_type().is_file())
                .count();
            (counts, files)
        }
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(width, height, image::Rgb([200, 10, 10]))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn same_content_dedups_and_changed_content_versions() {
        let mut f = fixture();
        let a = f.file("t.csv", b"x,y\n1,a\n2,b\n");
        let first = f.import(&a, "t").unwrap();
        assert!(first.created);
        assert_eq!((first.version.version, first.version.item_count), (1, 2));
        let again = f.import(&a, "t").unwrap();
        assert!(!again.created);
        assert_eq!(again.version.id, first.version.id);
        f.file("t.csv", b"x,y\n1,a\n2,b\n3,c\n");
        let second = f.import(&a, "t").unwrap();
        assert!(second.created);
        assert_eq!((second.version.version, second.version.item_count), (2, 3));
        assert_ne!(second.version.content_hash, first.version.content_hash);
        let versions = f.ws.versions("t").unwrap();
        assert_eq!(
            versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            vec![2, 1]
        );
        // The first version still reads back as it was.
        let df = crate::profile::load_table(&f.ws, &versions[1]).unwrap();
        assert_eq!(df.height(), 2);
    }

    #[test]
    fn images_and_text_import() {
        let mut f = fixture();
        f.file("imgs/b/two.png", &png(4, 3));
        f.file("imgs/a/one.PNG", &png(2, 2));
        f.file("imgs/notes.md", b"not an image");
        let out = f.import(&f.data.join("imgs"), "imgs").unwrap();
        assert_eq!(out.version.kind, AssetKind::Images);
        let files = f.ws.version_files(out.version.id).unwrap();
        let listed: Vec<_> = files
            .iter()
            .map(|x| (x.path.as_str(), x.width, x.height))
            .collect();
        assert_eq!(listed, vec![("a/one.PNG", 2, 2), ("b/two.png", 4, 3)]);
        assert!(!f.import(&f.data.join("imgs"), "imgs").unwrap().created);

        let t = f.file("r.txt", b"good\n\nbad\r\nugly\n");
        let out = f.import(&t, "r").unwrap();
        assert_eq!(
            (out.version.kind, out.version.item_count),
            (AssetKind::Text, 3)
        );
        assert_eq!(
            crate::text::items(&f.ws, &out.version).unwrap(),
            vec!["good", "bad", "ugly"]
        );

        let csv = f.file("reviews.csv", b"id,body\n1,nice\n2,\n3,awful\n");
        let request = ImportRequest {
            path: csv,
            name: "rc".into(),
            kind: Some(AssetKind::Text),
            text_column: Some("body".into()),
            ..Default::default()
        };
        let out = import(&mut f.ws, &request, &Progress::default()).unwrap();
        assert_eq!(
            crate::text::items(&f.ws, &out.version).unwrap(),
            vec!["nice", "awful"]
        );
    }

    #[test]
    fn bad_input_names_the_problem_and_changes_nothing() {
        let mut f = fixture();
        let good = f.file("good.csv", b"a,b\n1,2\n");
        f.import(&good, "t").unwrap();
        f.file("imgs/ok.png", &png(2, 2));
        f.import(&f.data.join("imgs"), "imgs").unwrap();
        let before = f.state();
        let mut broken_png = png(8, 8);
        broken_png.truncate(broken_png.len() / 2);
        f.file("bad/ok.png", &png(2, 2));
        f.file("bad/zz-broken.png", &broken_png);
        f.file("noimg/readme.txt", b"hi");
        let cases: Vec<(PathBuf, &str, &str)> = vec![
            (
                f.file("ragged.csv", b"a,b\n1,2\n3\n"),
                "t",
                "ragged.csv: line 3: expected 2 fields",
            ),
            (
                f.file("quote.csv", b"a,b\n1,\"x\n"),
                "t",
                "quote.csv: line 2",
            ),
            (
                f.file("latin1.csv", b"a,b\n1,caf\xe9\n"),
                "t",
                "latin1.csv: line 2: invalid UTF-8",
            ),
            (
                f.file("empty.csv", b""),
                "t",
                "empty.csv: the file is empty",
            ),
            (
                f.data.join("missing.csv"),
                "t",
                "missing.csv: does not exist",
            ),
            (
                f.data.join("bad"),
                "imgs",
                "zz-broken.png: cannot decode image",
            ),
            (f.data.join("noimg"), "imgs", "noimg: no images found"),
            (
                f.file("wrong.csv", b"a\n1\n"),
                "imgs",
                "'imgs' is of kind images, not table",
            ),
            (
                f.file("blank.txt", b"\n \n"),
                "r",
                "blank.txt: no text items",
            ),
            (good.clone(), "bad name", "invalid asset name 'bad name'"),
        ];
        for (path, name, expected) in cases {
            let err = f.import(&path, name).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{}: got '{err}', expected '{expected}'",
                path.display()
            );
            assert_eq!(
                f.state(),
                before,
                "{} changed the workspace",
                path.display()
            );
        }
        assert_eq!(f.ws.versions("t").unwrap().len(), 1);
    }

    #[test]
    fn cancelled_import_leaves_nothing() {
        let mut f = fixture();
        f.file("imgs/a.png", &png(2, 2));
        let before = f.state();
        let progress = Progress::default();
        progress.cancel();
        let request = ImportRequest {
            path: f.data.join("imgs"),
            name: "imgs".into(),
            ..Default::default()
        };
        assert!(matches!(
            import(&mut f.ws, &request, &progress),
            Err(Error::Cancelled)
        ));
        assert_eq!(f.state(), before);
    }
}
