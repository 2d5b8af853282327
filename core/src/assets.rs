//! Data assets: named, versioned, immutable. A version is fixed by its content hash; importing
//! the same content again finds the version that holds it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::table::{ColumnInfo, TableFormat};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    Table,
    Images,
    Text,
}

impl AssetKind {
    pub const ALL: [AssetKind; 3] = [AssetKind::Table, AssetKind::Images, AssetKind::Text];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Table => "table",
            AssetKind::Images => "images",
            AssetKind::Text => "text",
        }
    }

    /// What a version of this kind counts: rows, images or items.
    pub fn items_word(self) -> &'static str {
        match self {
            AssetKind::Table => "rows",
            AssetKind::Images => "images",
            AssetKind::Text => "items",
        }
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind '{s}' (expected table, images or text)"))
    }
}

/// A named data asset with a summary of its versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    pub id: i64,
    pub name: String,
    pub kind: AssetKind,
    pub created_at: i64,
    pub latest_version: i64,
    pub version_count: i64,
}

/// One immutable version of an asset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetVersion {
    pub id: i64,
    pub asset_name: String,
    pub kind: AssetKind,
    pub version: i64,
    pub content_hash: String,
    pub created_at: i64,
    /// Where the content was imported from, as the user named it.
    pub source: String,
    /// Rows of a table, images of an image set, items of a text corpus.
    pub item_count: i64,
    pub size_bytes: i64,
    pub meta: VersionMeta,
}

impl AssetVersion {
    pub fn reference(&self) -> String {
        format!("{}:{}", self.asset_name, self.version)
    }
}

/// What a version needs to be read back, beyond its files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// The blob holding a single-file asset (a table or a text corpus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// The table format of that blob; `None` for plain text lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TableFormat>,
    /// Columns of a table version, with their types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnInfo>,
    /// For a text corpus read from a table: the column holding the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_column: Option<String>,
}

/// One file of an image-set version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionFile {
    pub path: String,
    pub blob_hash: String,
    pub size_bytes: u64,
    pub width: u32,
    pub height: u32,
}

/// `NAME` or `NAME:VERSION`, as the CLI takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRef {
    pub name: String,
    pub version: Option<i64>,
}

impl FromStr for AssetRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (name, version) =
            match s.rsplit_once(':') {
                Some((name, v)) => {
                    let version = v.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                        Error::InvalidName {
                            name: s.to_owned(),
                            reason: format!("'{v}' is not a version number"),
                        }
                    })?;
                    (name, Some(version))
                }
                None => (s, None),
            };
        validate_name(name)?;
        Ok(AssetRef {
            name: name.to_owned(),
            version,
        })
    }
}

/// Names are what Azure ML allows for data assets: letters, digits, `-`, `_` and `.`, starting
/// with a letter or digit, at most 255 characters.
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let first = name
        .chars()
        .next()
        .ok_or_else(|| invalid("the name is empty"))?;
    if !first.is_ascii_alphanumeric() {
        return Err(invalid("it must start with a letter or digit"));
    }
    if name.len() > 255 {
        return Err(invalid("it is longer than 255 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(&format!(
            "'{c}' is not allowed (use letters, digits, '-', '_', '.')"
        )));
    }
    Ok(())
}

/// A name for an asset imported from `path`: its file stem, cleaned to the allowed characters.
pub fn name_from_path(path: &std::path::Path) -> String {
    let stem = path
        .file_stem()
        .or_else(|| path.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "data".to_owned()
    } else {
        trimmed.chars().take(255).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let check = |s: &str, name: &str, version: Option<i64>| {
            assert_eq!(
                s.parse::<AssetRef>().unwrap(),
                AssetRef {
                    name: name.into(),
                    version
                },
                "{s}"
            );
        };
        check("iris", "iris", None);
        check("iris:3", "iris", Some(3));
        check("my.data-set_2:10", "my.data-set_2", Some(10));
        for bad in ["", ":1", "iris:", "iris:0", "iris:x", "-x", "a b", "a/b"] {
            assert!(bad.parse::<AssetRef>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn names_from_paths_are_valid() {
        for (path, name) in [
            ("/x/My Data (1).csv", "My-Data--1-"),
            ("/x/_hidden.tsv", "hidden"),
            ("/", "data"),
        ] {
            let got = name_from_path(std::path::Path::new(path));
            assert_eq!(got, name);
            validate_name(&got).unwrap();
        }
    }
}
