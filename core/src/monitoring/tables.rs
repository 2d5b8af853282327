//! A reference or current table for a comparison: one file or several (a monitor's window
//! spans several collected windows), read a few columns at a time so that comparing wide
//! tables holds only the columns being compared.
//!
//! Parquet (what collection writes) is read by column straight from its file. Delimited text
//! and JSON Lines cannot be read by column without parsing every row, so such a file is read
//! once, whole, and its columns handed out from memory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use polars::prelude::*;

use crate::assets::AssetVersion;
use crate::table::{self, TableFormat};
use crate::{Error, Result, Workspace};

/// One file of a table: where it is read from, the path shown in messages, its format.
#[derive(Debug, Clone)]
struct Part {
    path: PathBuf,
    shown: PathBuf,
    format: TableFormat,
    /// A text file, read whole on first use (or a table given in memory).
    whole: OnceLock<std::result::Result<DataFrame, String>>,
}

/// A table to compare, read lazily.
#[derive(Debug, Clone)]
pub struct Table {
    /// What the table is, for messages and reports (`customers:3`, a file's path).
    pub label: String,
    parts: Vec<Part>,
    /// Only rows whose `timestamp_ms` (collection's request time) is in `[start, end)`.
    between: Option<(i64, i64)>,
}

/// The column collection stamps each row's request time in (milliseconds since the epoch).
pub const TIME_COLUMN: &str = "timestamp_ms";

impl Table {
    /// A table file on disk (CSV, TSV, Parquet or JSON Lines by its extension).
    ///
    /// # Errors
    /// The extension names no table format.
    pub fn file(path: &Path) -> Result<Self> {
        let format = TableFormat::from_path(path).ok_or_else(|| Error::Unreadable {
            path: path.to_path_buf(),
            reason: "not a table (expected .csv, .tsv, .parquet or .jsonl)".to_owned(),
        })?;
        if !path.is_file() {
            return Err(Error::Missing {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            label: path.display().to_string(),
            parts: vec![Part::new(path.to_path_buf(), path.to_path_buf(), format)],
            between: None,
        })
    }

    /// Table versions read as one table, in the order given (a monitor's window over
    /// collected data: one version per sealed window).
    ///
    /// # Errors
    /// A version that is not a table, or whose blob is missing.
    pub fn versions(ws: &Workspace, versions: &[AssetVersion], label: String) -> Result<Self> {
        let mut parts = Vec::with_capacity(versions.len());
        for version in versions {
            let (path, format) = crate::profile::table_file(ws, version)?;
            parts.push(Part::new(path, PathBuf::from(version.reference()), format));
        }
        Ok(Self {
            label,
            parts,
            between: None,
        })
    }

    /// Parquet files read as one table (collected parts: `(where it is, how it is named)`).
    pub fn parquet_files(files: Vec<(PathBuf, String)>, label: String) -> Self {
        Self {
            label,
            parts: files
                .into_iter()
                .map(|(path, shown)| Part::new(path, PathBuf::from(shown), TableFormat::Parquet))
                .collect(),
            between: None,
        }
    }

    /// A table already in memory (a labeling project's accepted answers), named `label`.
    pub fn frame(df: DataFrame, label: String) -> Self {
        let part = Part {
            path: PathBuf::from(&label),
            shown: PathBuf::from(&label),
            format: TableFormat::Csv,
            whole: OnceLock::from(Ok(df)),
        };
        Self {
            label,
            parts: vec![part],
            between: None,
        }
    }

    /// Keeps only the rows collected in `[start_ms, end_ms)` (by [`TIME_COLUMN`]).
    pub fn between(mut self, start_ms: i64, end_ms: i64) -> Self {
        self.between = Some((start_ms, end_ms));
        self
    }

    /// What identifies the table's content for caching: its label and the files it reads, with
    /// the window it keeps.
    pub fn key(&self) -> String {
        let files: Vec<String> = self
            .parts
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        format!("{} [{}] {:?}", self.label, files.join(", "), self.between)
    }

    /// The columns and their types, from the first file (the others must agree; see
    /// [`Table::columns`]). Parquet answers from its footer.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn schema(&self) -> Result<Schema> {
        let Some(first) = self.parts.first() else {
            return Ok(Schema::default());
        };
        match first.format {
            TableFormat::Parquet => {
                let mut reader = ParquetReader::new(first.open()?);
                let arrow = reader.schema().map_err(|e| first.unreadable(&e))?;
                Ok(Schema::from_arrow_schema(&arrow))
            }
            _ => Ok(first.whole()?.schema().as_ref().clone()),
        }
    }

    /// The named columns of every file, stacked. A file missing one of them is refused,
    /// naming the file and the column.
    ///
    /// # Errors
    /// A file cannot be read, or lacks a column.
    pub fn columns(&self, names: &[String]) -> Result<DataFrame> {
        let mut stacked: Option<DataFrame> = None;
        let mut wanted = names.to_vec();
        let timed = self.between.is_some() && !names.iter().any(|n| n == TIME_COLUMN);
        if timed {
            wanted.push(TIME_COLUMN.to_owned());
        }
        for part in &self.parts {
            let mut df = part.columns(&wanted)?;
            if let Some((start, end)) = self.between {
                let times = df
                    .column(TIME_COLUMN)
                    .and_then(|c| c.cast(&DataType::Int64))
                    .map_err(|e| part.unreadable(&e))?;
                let mask: BooleanChunked = times
                    .i64()
                    .map_err(|e| part.unreadable(&e))?
                    .iter()
                    .map(|t| Some(t.is_some_and(|t| t >= start && t < end)))
                    .collect();
                df = df.filter(&mask).map_err(|e| part.unreadable(&e))?;
                if timed {
                    df = df.drop(TIME_COLUMN).map_err(|e| part.unreadable(&e))?;
                }
            }
            stacked = Some(match stacked {
                None => df,
                Some(mut acc) => {
                    // Types may differ across windows (a column all null in one): cast to
                    // the first's, nulls where a value does not fit.
                    let cast = df
                        .columns()
                        .iter()
                        .zip(acc.columns())
                        .map(|(c, a)| c.cast(a.dtype()))
                        .collect::<PolarsResult<Vec<_>>>()
                        .map_err(|e| part.unreadable(&e))?;
                    let df = DataFrame::new(df.height(), cast).map_err(|e| part.unreadable(&e))?;
                    acc.vstack_mut(&df).map_err(|e| part.unreadable(&e))?;
                    acc
                }
            });
        }
        let mut df = stacked.unwrap_or_default();
        df.rechunk_mut();
        Ok(df)
    }
}

impl Part {
    fn new(path: PathBuf, shown: PathBuf, format: TableFormat) -> Self {
        Self {
            path,
            shown,
            format,
            whole: OnceLock::new(),
        }
    }

    fn open(&self) -> Result<std::fs::File> {
        std::fs::File::open(&self.path).map_err(|e| Error::io(&self.shown, e))
    }

    fn unreadable(&self, e: &PolarsError) -> Error {
        Error::Unreadable {
            path: self.shown.clone(),
            reason: e.to_string(),
        }
    }

    fn whole(&self) -> Result<&DataFrame> {
        self.whole
            .get_or_init(|| {
                table::read(&self.path, &self.shown, self.format).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|reason| Error::Unreadable {
                path: self.shown.clone(),
                reason: reason.clone(),
            })
    }

    fn columns(&self, names: &[String]) -> Result<DataFrame> {
        let missing = |df_names: Vec<String>| {
            names
                .iter()
                .find(|n| !df_names.contains(n))
                .map(|n| Error::NoSuchColumn {
                    path: self.shown.clone(),
                    column: n.clone(),
                    available: df_names.join(", "),
                })
        };
        match self.format {
            TableFormat::Parquet => {
                let mut reader = ParquetReader::new(self.open()?);
                let schema = reader.schema().map_err(|e| self.unreadable(&e))?;
                if let Some(e) = missing(
                    schema
                        .iter_names()
                        .map(polars::prelude::PlSmallStr::to_string)
                        .collect(),
                ) {
                    return Err(e);
                }
                reader
                    .with_columns(Some(names.to_vec()))
                    .finish()
                    .map_err(|e| self.unreadable(&e))
            }
            _ => {
                let whole = self.whole()?;
                if let Some(e) = missing(
                    whole
                        .get_column_names()
                        .iter()
                        .map(std::string::ToString::to_string)
                        .collect(),
                ) {
                    return Err(e);
                }
                whole
                    .select(names.iter().map(String::as_str))
                    .map_err(|e| self.unreadable(&e))
            }
        }
    }
}
