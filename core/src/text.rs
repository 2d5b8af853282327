//! Text corpora: one item per line of a text file, or the values of one column of a table.

use std::path::Path;

use polars::prelude::*;

use crate::assets::AssetVersion;
use crate::table::{self, TableFormat};
use crate::workspace::Workspace;
use crate::{Error, Result};

/// The non-blank lines of a UTF-8 text file, without their line endings.
pub fn lines(bytes: &[u8], shown: &Path) -> Result<Vec<String>> {
    if bytes.is_empty() {
        return Err(Error::EmptyFile {
            path: shown.to_path_buf(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Malformed {
        path: shown.to_path_buf(),
        line: bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1,
        reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
    })?;
    let items: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err(Error::Unreadable {
            path: shown.to_path_buf(),
            reason: "no text items (every line is blank)".to_owned(),
        });
    }
    Ok(items)
}

/// The non-null values of `column` in a table, as text.
pub fn column_items(df: &DataFrame, column: &str, shown: &Path) -> Result<Vec<String>> {
    let col = df.column(column).map_err(|_| Error::NoSuchColumn {
        path: shown.to_path_buf(),
        column: column.to_owned(),
        available: df
            .get_column_names()
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let strings = col.cast(&DataType::String)?;
    let items: Vec<String> = strings.str()?.iter().flatten().map(str::to_owned).collect();
    if items.is_empty() {
        return Err(Error::Unreadable {
            path: shown.to_path_buf(),
            reason: format!("column '{column}' has no values"),
        });
    }
    Ok(items)
}

/// The items of a text version, read back from its blob.
pub fn items(ws: &Workspace, version: &AssetVersion) -> Result<Vec<String>> {
    let blob = version
        .meta
        .blob
        .as_deref()
        .ok_or_else(|| Error::MissingBlob {
            hash: String::new(),
        })?;
    read(
        &ws.blobs().path(blob),
        Path::new(&version.source),
        version.meta.format,
        version.meta.text_column.as_deref(),
    )
}

/// The items of the file at `path`: a column of a table when `format` and `column` are given,
/// its lines otherwise. Errors name `shown`.
pub fn read(
    path: &Path,
    shown: &Path,
    format: Option<TableFormat>,
    column: Option<&str>,
) -> Result<Vec<String>> {
    read_bytes(
        &std::fs::read(path).map_err(|e| Error::io(path, e))?,
        shown,
        format,
        column,
    )
}

pub fn read_bytes(
    bytes: &[u8],
    shown: &Path,
    format: Option<TableFormat>,
    column: Option<&str>,
) -> Result<Vec<String>> {
    match (format, column) {
        (Some(format), Some(column)) => {
            column_items(&table::read_bytes(bytes, shown, format)?, column, shown)
        }
        _ => lines(bytes, shown),
    }
}
