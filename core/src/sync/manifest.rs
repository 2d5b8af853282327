//! What `lathe sync` writes beside the blobs: one JSON manifest per data asset version, run
//! and model version, naming its blobs by hash. A manifest is written only after every blob it
//! names, so another workspace that can read a manifest can read all of it.
//!
//! Keys under the datastore's prefix:
//!
//! ```text
//! lathe/blobs/<blake3 hash>                          the bytes, uploaded once
//! lathe/assets/<name>/<version>-<content hash>.json  AssetManifest
//! lathe/runs/<run id>.json                           RunManifest
//! lathe/models/<name>/<version>-<files digest>.json  ModelManifest
//! ```
//!
//! Names are percent-encoded (all but letters, digits, `-`, `_`, `.`), so a model name with a
//! `/` stays one level. An asset or model version is written once: a push finds content the
//! datastore has by its hash in the keys, and gives new content the datastore's next number
//! for that name, so the datastore numbers versions in the order they reached it whichever
//! workspace pushed them. A run is keyed by its id, unique everywhere (a UUID), and written
//! again as the run goes on.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::assets::{AssetKind, VersionFile, VersionMeta};
use crate::tracking::types::{DatasetInput, Metric, Param, Tag};

/// The manifests' format; a reader refuses a newer one by name rather than misread it.
pub const FORMAT: u32 = 1;

/// Everything but letters, digits, `-`, `_` and `.`.
const NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Where things are under a datastore's prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    root: String,
}

/// The kinds of thing a manifest describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Asset,
    Run,
    Model,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asset => "asset",
            Self::Run => "run",
            Self::Model => "model",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Self::Asset => "assets/",
            Self::Run => "runs/",
            Self::Model => "models/",
        }
    }
}

impl Layout {
    /// The layout under `prefix` (a datastore's, empty or ending in `/`).
    pub fn new(prefix: &str) -> Self {
        Self {
            root: format!("{prefix}lathe/"),
        }
    }

    pub fn blobs(&self) -> String {
        format!("{}blobs/", self.root)
    }

    pub fn blob(&self, hash: &str) -> String {
        format!("{}blobs/{hash}", self.root)
    }

    /// The folder of a kind's manifests, or of one name's (assets and models).
    pub fn folder(&self, kind: Kind, name: Option<&str>) -> String {
        let mut folder = format!("{}{}", self.root, kind.folder());
        if let Some(name) = name {
            folder.push_str(&encode(name));
            folder.push('/');
        }
        folder
    }

    pub fn asset(&self, name: &str, version: i64, content_hash: &str) -> String {
        format!(
            "{}{version}-{content_hash}.json",
            self.folder(Kind::Asset, Some(name))
        )
    }

    pub fn run(&self, run_id: &str) -> String {
        format!("{}{run_id}.json", self.folder(Kind::Run, None))
    }

    pub fn model(&self, name: &str, version: i64, digest: &str) -> String {
        format!(
            "{}{version}-{digest}.json",
            self.folder(Kind::Model, Some(name))
        )
    }

    /// What a manifest's key says of it (`None` for a key that is not one).
    pub fn parse(&self, key: &str) -> Option<Parsed> {
        let rest = key.strip_prefix(&self.root)?;
        let kind = [Kind::Asset, Kind::Run, Kind::Model]
            .into_iter()
            .find(|k| rest.starts_with(k.folder()))?;
        let rest = rest[kind.folder().len()..].strip_suffix(".json")?;
        if kind == Kind::Run {
            return (!rest.is_empty() && !rest.contains('/')).then(|| Parsed {
                kind,
                name: rest.to_owned(),
                version: None,
                id: rest.to_owned(),
            });
        }
        let (name, file) = rest.split_once('/')?;
        let (version, id) = file.split_once('-')?;
        let version = version.parse::<i64>().ok().filter(|v| *v > 0)?;
        if name.is_empty() || id.is_empty() || id.contains('/') {
            return None;
        }
        Some(Parsed {
            kind,
            name: percent_decode_str(name).decode_utf8().ok()?.into_owned(),
            version: Some(version),
            id: id.to_owned(),
        })
    }
}

/// A manifest's key, read: a run's name and id are its id; an asset's or model's id is its
/// content hash or files digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub kind: Kind,
    pub name: String,
    pub version: Option<i64>,
    pub id: String,
}

fn encode(name: &str) -> String {
    utf8_percent_encode(name, NAME).to_string()
}

/// A file of a manifest: where it goes, which blob holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub blob: String,
    pub size: u64,
}

/// A data asset version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetManifest {
    pub format: u32,
    pub name: String,
    pub kind: AssetKind,
    /// Its number in the datastore (see the module docs); a pull gives it the next local
    /// number.
    pub version: i64,
    pub content_hash: String,
    pub created_at: i64,
    pub source: String,
    pub item_count: i64,
    pub size_bytes: i64,
    pub meta: VersionMeta,
    /// The blob of a single-file version, with its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<FileEntry>,
    /// An image set's files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<VersionFile>,
}

/// A run, with every metric point and its artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub format: u32,
    pub run_id: String,
    pub experiment: String,
    pub run_name: String,
    pub user_id: String,
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
    /// Every point of every metric, by key, then step, then time.
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<RunInput>,
    /// Paths relative to the run's artifact folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<FileEntry>,
}

/// A dataset the run read, and the data asset version it is, when it is one (by name and
/// content, since version numbers differ between workspaces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInput {
    #[serde(flatten)]
    pub input: DatasetInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<AssetLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetLink {
    pub name: String,
    pub content_hash: String,
}

/// A registered model version with its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub format: u32,
    pub name: String,
    /// Its number in the datastore.
    pub version: i64,
    /// [`files_digest`] of `files`: what makes two versions the same model.
    pub digest: String,
    pub description: String,
    pub user_id: String,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Where the files are inside the run's artifacts, when they are the run's: so a pull that
    /// brings the run too points the version at the run's own files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_in_run: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<serde_json::Value>,
    /// Paths relative to the model's folder.
    pub files: Vec<FileEntry>,
}

/// The digest of a model's files: BLAKE3 over each `path NUL hash LF`, sorted by path.
pub fn files_digest(files: &[FileEntry]) -> String {
    let mut sorted: Vec<&FileEntry> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut hasher = blake3::Hasher::new();
    for file in sorted {
        hasher.update(file.path.as_bytes());
        hasher.update(b"\0");
        hasher.update(file.blob.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex().to_string()
}

/// A manifest read from a datastore, or made here to push.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Asset(AssetManifest),
    Run(Box<RunManifest>),
    Model(ModelManifest),
}

impl Manifest {
    pub fn kind(&self) -> Kind {
        match self {
            Self::Asset(_) => Kind::Asset,
            Self::Run(_) => Kind::Run,
            Self::Model(_) => Kind::Model,
        }
    }

    /// Its key under `layout`.
    pub fn key(&self, layout: &Layout) -> String {
        match self {
            Self::Asset(a) => layout.asset(&a.name, a.version, &a.content_hash),
            Self::Run(r) => layout.run(&r.run_id),
            Self::Model(m) => layout.model(&m.name, m.version, &m.digest),
        }
    }

    /// What tells it apart among its name's versions: content hash, files digest, run id.
    pub fn id(&self) -> &str {
        match self {
            Self::Asset(a) => &a.content_hash,
            Self::Run(r) => &r.run_id,
            Self::Model(m) => &m.digest,
        }
    }

    /// Its name: an asset's or model's, a run's id.
    pub fn name(&self) -> &str {
        match self {
            Self::Asset(a) => &a.name,
            Self::Run(r) => &r.run_id,
            Self::Model(m) => &m.name,
        }
    }

    /// Gives an asset or model version its number in the datastore.
    pub fn set_version(&mut self, version: i64) {
        match self {
            Self::Asset(a) => a.version = version,
            Self::Model(m) => m.version = version,
            Self::Run(_) => {}
        }
    }

    /// How it is named to a user: `asset churn:3`, `run fit (5f0c…)`, `model churn-classifier:2`.
    pub fn label(&self) -> String {
        match self {
            Self::Asset(a) => format!("asset {}:{}", a.name, a.version),
            Self::Run(r) => format!("run {} ({})", r.run_name, r.run_id),
            Self::Model(m) => format!("model {}:{}", m.name, m.version),
        }
    }

    /// Every blob it names, with its size.
    pub fn blobs(&self) -> Vec<(String, u64)> {
        let entries = |files: &[FileEntry]| -> Vec<(String, u64)> {
            files.iter().map(|f| (f.blob.clone(), f.size)).collect()
        };
        match self {
            Self::Asset(a) => a
                .blob
                .iter()
                .map(|b| (b.blob.clone(), b.size))
                .chain(a.files.iter().map(|f| (f.blob_hash.clone(), f.size_bytes)))
                .collect(),
            Self::Run(r) => entries(&r.artifacts),
            Self::Model(m) => entries(&m.files),
        }
    }

    /// The JSON written to the datastore.
    pub fn to_json(&self) -> Vec<u8> {
        let json = match self {
            Self::Asset(a) => serde_json::to_vec(a),
            Self::Run(r) => serde_json::to_vec(r),
            Self::Model(m) => serde_json::to_vec(m),
        };
        json.unwrap_or_default()
    }

    /// A manifest of `kind` read from `json`; `key` names it in errors.
    ///
    /// # Errors
    /// Not a manifest of that kind, or of a newer format.
    pub fn from_json(kind: Kind, key: &str, json: &[u8]) -> crate::Result<Self> {
        let bad = |e: serde_json::Error| {
            crate::Error::Datastore(format!(
                "{key} is not a Lathe {} manifest ({e})",
                kind.as_str()
            ))
        };
        let format = serde_json::from_slice::<serde_json::Value>(json)
            .map_err(bad)?
            .get("format")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if format > u64::from(FORMAT) {
            return Err(crate::Error::Datastore(format!(
                "{key} is in manifest format {format}, newer than this Lathe reads ({FORMAT}); \
                 update Lathe to pull it"
            )));
        }
        Ok(match kind {
            Kind::Asset => Self::Asset(serde_json::from_slice(json).map_err(bad)?),
            Kind::Run => Self::Run(Box::new(serde_json::from_slice(json).map_err(bad)?)),
            Kind::Model => Self::Model(serde_json::from_slice(json).map_err(bad)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_names_with_any_character() {
        let layout = Layout::new("team/");
        for name in ["churn", "a/b c", "naïve%model", "x.y-z_1"] {
            let key = layout.model(name, 3, "abc");
            assert_eq!(key.matches('/').count(), 4, "{key}");
            let parsed = layout.parse(&key).unwrap();
            assert_eq!(
                (
                    parsed.kind,
                    parsed.name.as_str(),
                    parsed.version,
                    parsed.id.as_str()
                ),
                (Kind::Model, name, Some(3), "abc")
            );
        }
        let run = layout.parse(&layout.run("5f0c")).unwrap();
        assert_eq!((run.kind, run.id.as_str()), (Kind::Run, "5f0c"));
        assert_eq!(layout.parse("team/lathe/blobs/abc"), None);
        assert_eq!(layout.parse("other/lathe/runs/x.json"), None);
        assert_eq!(layout.parse("team/lathe/assets/x/0-abc.json"), None);
        assert_eq!(layout.parse("team/lathe/assets/x/abc.json"), None);
    }

    #[test]
    fn a_models_digest_ignores_the_order_of_its_files() {
        let file = |path: &str, blob: &str| FileEntry {
            path: path.into(),
            blob: blob.into(),
            size: 1,
        };
        let a = [file("MLmodel", "1"), file("model.json", "2")];
        let b = [file("model.json", "2"), file("MLmodel", "1")];
        assert_eq!(files_digest(&a), files_digest(&b));
        assert_ne!(
            files_digest(&a),
            files_digest(&[file("MLmodel", "1"), file("model.json", "3")])
        );
    }
}
