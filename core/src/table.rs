//! Tables: reading CSV, TSV, Parquet and JSON Lines with polars, checking them first so that a
//! malformed file is refused with its line, and writing them back out.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A column of a table version: its name and its polars type, as written by polars
/// (`i64`, `f64`, `str`, `date`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub dtype: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Csv,
    Tsv,
    Parquet,
    Jsonl,
}

impl TableFormat {
    /// The format a file name's extension says, if it names a table.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "tsv" | "tab" => Some(Self::Tsv),
            "parquet" | "pq" => Some(Self::Parquet),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Parquet => "parquet",
            Self::Jsonl => "jsonl",
        }
    }

    fn separator(self) -> u8 {
        if self == Self::Tsv { b'\t' } else { b',' }
    }
}

/// Reads a table, refusing malformed input with a message naming `shown` (the path the user
/// gave) and, for text formats, the line. `path` is where the bytes are read from.
pub fn read(path: &Path, shown: &Path, format: TableFormat) -> Result<DataFrame> {
    let bytes = fs::read(path).map_err(|e| Error::io(shown, e))?;
    read_bytes(&bytes, shown, format)
}

pub fn read_bytes(bytes: &[u8], shown: &Path, format: TableFormat) -> Result<DataFrame> {
    if bytes.is_empty() {
        return Err(Error::EmptyFile {
            path: shown.to_path_buf(),
        });
    }
    let unreadable = |e: PolarsError| Error::Unreadable {
        path: shown.to_path_buf(),
        reason: e.to_string(),
    };
    let df = match format {
        TableFormat::Csv | TableFormat::Tsv => {
            // The check runs on its own thread beside polars' parse. Not rayon::join: a rayon
            // worker waiting in join may steal a task that waits on this very load, and deadlock.
            let (checked, parsed) = std::thread::scope(|scope| {
                let checked = scope.spawn(|| check_delimited(bytes, format.separator(), shown));
                let parsed = parse_delimited(bytes, format.separator(), Inference::FirstRows);
                (checked.join(), parsed)
            });
            let checked = checked.unwrap_or_else(|_| {
                Err(Error::Unreadable {
                    path: shown.to_path_buf(),
                    reason: "the CSV check failed unexpectedly".to_owned(),
                })
            });
            checked?;
            match parsed {
                Ok(df) => df,
                // A value past the rows types were inferred from needs a wider type (a decimal
                // in a column of whole numbers, a word in a column of numbers or dates): infer
                // from every row, as pandas does, then without reading dates.
                Err(_) => parse_delimited(bytes, format.separator(), Inference::AllRows)
                    .or_else(|_| {
                        parse_delimited(bytes, format.separator(), Inference::AllRowsNoDates)
                    })
                    .map_err(|e| {
                        locate_type_error(bytes, format.separator(), shown, &e)
                            .unwrap_or_else(|| unreadable(e))
                    })?,
            }
        }
        TableFormat::Jsonl => {
            check_utf8(bytes, shown)?;
            JsonReader::new(Cursor::new(bytes))
                .with_json_format(JsonFormat::JsonLines)
                .finish()
                .map_err(|e| locate_json_error(bytes, shown).unwrap_or_else(|| unreadable(e)))?
        }
        TableFormat::Parquet => ParquetReader::new(Cursor::new(bytes))
            .finish()
            .map_err(unreadable)?,
    };
    if df.width() == 0 || df.height() == 0 {
        return Err(Error::Unreadable {
            path: shown.to_path_buf(),
            reason: "the table has no rows".to_owned(),
        });
    }
    Ok(df)
}

/// What an import records of a table: its columns (names and types) and its row count, by the
/// same rules as [`read_bytes`] — the structure checked, types inferred from the first 10,000
/// rows and widened when a later value needs it — but cheaper for delimited text, where
/// parsing every date is most of the work: the typed parse leaves dates as text, and a column
/// the first rows show to hold ISO dates (`YYYY-MM-DD`) is then checked to hold only such dates
/// all the way down. Anything else that may be a date or time (another form, date-times, a bad
/// date) takes the full [`read_bytes`] path, so the answer is always the one it gives. (polars'
/// own date inference costs a fixed ~0.2 s a parse, however few the rows.)
pub fn inspect_bytes(
    bytes: &[u8],
    shown: &Path,
    format: TableFormat,
) -> Result<(Vec<ColumnInfo>, usize)> {
    let fast = match format {
        TableFormat::Csv | TableFormat::Tsv => inspect_delimited(bytes, format.separator(), shown),
        TableFormat::Parquet | TableFormat::Jsonl => None,
    };
    fast.unwrap_or_else(|| read_bytes(bytes, shown, format).map(|df| (columns(&df), df.height())))
}

/// [`inspect_bytes`] for delimited text without parsing dates; `None` when only a full read
/// can tell (see there).
fn inspect_delimited(
    bytes: &[u8],
    separator: u8,
    shown: &Path,
) -> Option<Result<(Vec<ColumnInfo>, usize)>> {
    if bytes.is_empty() {
        return None;
    }
    let (checked, parsed) = std::thread::scope(|scope| {
        let checked = scope.spawn(|| check_delimited(bytes, separator, shown));
        let parsed = parse_delimited(bytes, separator, Inference::FirstRowsNoDates);
        (checked.join(), parsed)
    });
    if let Err(e) = checked.ok()? {
        return Some(Err(e));
    }
    let df = parsed.ok()?;
    if df.width() == 0 || df.height() == 0 {
        return None;
    }
    let mut columns = columns(&df);
    for (info, column) in columns.iter_mut().zip(df.columns()) {
        if column.dtype() != &DataType::String {
            continue;
        }
        let text = column.str().ok()?;
        let first_rows = text.slice(0, 10_000);
        if first_rows.iter().flatten().next().is_none() {
            continue;
        }
        if first_rows.iter().flatten().all(is_iso_date) {
            // Dates in the first rows: a date column, if they stay dates all the way down.
            if !text.iter().flatten().all(is_iso_date) {
                return None;
            }
            info.dtype = DataType::Date.to_string();
        } else if first_rows.iter().flatten().all(may_be_temporal) {
            // Another date or time form polars may recognise: only a full read can tell.
            return None;
        }
    }
    Some(Ok((columns, df.height())))
}

/// Whether `text` could be a date or time in some form (it starts with a digit and has a
/// separator dates and times are written with): such columns take the full read.
fn may_be_temporal(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit()) && text.contains(['-', '/', ':', '.'])
}

/// Whether `text` is a calendar date written `YYYY-MM-DD`.
fn is_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    match (number(0..4), number(5..7), number(8..10)) {
        (Some(y), Some(m), Some(d)) => chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => false,
    }
}

/// How column types are inferred from a delimited file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inference {
    /// From the first 10,000 rows (dates read as dates): fast, and right for nearly every file.
    FirstRows,
    /// From the first 10,000 rows, dates left as text (for [`inspect_bytes`]).
    FirstRowsNoDates,
    /// From every row: a later value widens its column's type.
    AllRows,
    /// From every row, dates left as text: for a column whose later dates take another form.
    AllRowsNoDates,
}

fn parse_delimited(bytes: &[u8], separator: u8, inference: Inference) -> PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(match inference {
            Inference::FirstRows | Inference::FirstRowsNoDates => Some(10_000),
            Inference::AllRows | Inference::AllRowsNoDates => None,
        })
        .map_parse_options(|o| {
            o.with_separator(separator).with_try_parse_dates(matches!(
                inference,
                Inference::FirstRows | Inference::AllRows
            ))
        })
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
}

/// A value polars could not read as its column's type, found by line and column and said in
/// Lathe's words (polars names a byte offset and options the user cannot set).
fn locate_type_error(
    bytes: &[u8],
    separator: u8,
    shown: &Path,
    error: &PolarsError,
) -> Option<Error> {
    let message = error.to_string();
    let between = |text: &str, open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let end = text[start..].find(close)? + start;
        Some(text[start..end].to_owned())
    };
    let value = between(&message, "parse `", "`")?;
    let dtype = between(&message, "as dtype `", "`")?;
    let column = between(&message, "at column '", "'")?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let index = reader
        .headers()
        .ok()?
        .iter()
        .position(|h| h.trim_start_matches('\u{feff}') == column)?;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).ok()? {
        if record.get(index) == Some(value.as_str()) {
            let line = record.position().map_or(0, csv::Position::line);
            return Some(Error::Malformed {
                path: shown.to_path_buf(),
                line,
                reason: format!("column '{column}': '{value}' is not a {dtype}"),
            });
        }
    }
    None
}

fn line_at(bytes: &[u8], offset: usize) -> u64 {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

fn check_utf8(bytes: &[u8], shown: &Path) -> Result<()> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Malformed {
            path: shown.to_path_buf(),
            line: line_at(bytes, e.valid_up_to()),
            reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        }),
    }
}

/// Checks the structure polars is lenient about: every record has as many fields as the header,
/// no quote is left open, and the text is UTF-8.
fn check_delimited(bytes: &[u8], separator: u8, shown: &Path) -> Result<()> {
    check_utf8(bytes, shown)?;
    if memchr::memchr(b'"', bytes).is_none() {
        return check_unquoted(bytes, separator, shown);
    }
    let malformed = |line: u64, reason: String| Error::Malformed {
        path: shown.to_path_buf(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut expected = None;
    let mut last_start = 0usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                return Err(malformed(line, e.to_string()));
            }
        }
        let (line, start) = record
            .position()
            .map_or((0, 0), |p| (p.line(), p.byte() as usize));
        last_start = start;
        match expected {
            None => expected = Some(record.len()),
            Some(n) if n != record.len() => {
                let hint = if record.len() < n {
                    "; is a quote left open?"
                } else {
                    ""
                };
                return Err(malformed(
                    line,
                    format!(
                        "expected {n} fields as in the header, found {}{hint}",
                        record.len()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let tail_quotes = bytes[last_start..].iter().filter(|&&b| b == b'"').count();
    if tail_quotes % 2 == 1 {
        return Err(malformed(
            line_at(bytes, last_start),
            "a quote is opened and never closed".to_owned(),
        ));
    }
    Ok(())
}

/// The fast path for text without a single quote: each line is a record, and its fields are its
/// separators plus one. Counting bytes vectorizes, so this runs at memory speed.
fn check_unquoted(bytes: &[u8], separator: u8, shown: &Path) -> Result<()> {
    let mut expected = None;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    for (index, end) in ends.enumerate() {
        let line = &bytes[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let fields = line.iter().filter(|&&b| b == separator).count() + 1;
        match expected {
            None => expected = Some(fields),
            Some(n) if n != fields => {
                return Err(Error::Malformed {
                    path: shown.to_path_buf(),
                    line: index as u64 + 1,
                    reason: format!("expected {n} fields as in the header, found {fields}"),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Finds the first line of a JSON Lines file that is not a JSON object.
fn locate_json_error(bytes: &[u8], shown: &Path) -> Option<Error> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines().enumerate().find_map(|(i, line)| {
        if line.trim().is_empty() {
            return None;
        }
        let reason = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(_)) => return None,
            Ok(_) => "expected a JSON object".to_owned(),
            Err(e) => format!("invalid JSON: {e}"),
        };
        Some(Error::Malformed {
            path: shown.to_path_buf(),
            line: i as u64 + 1,
            reason,
        })
    })
}

pub fn columns(df: &DataFrame) -> Vec<ColumnInfo> {
    df.columns()
        .iter()
        .map(|c| ColumnInfo {
            name: c.name().to_string(),
            dtype: c.dtype().to_string(),
        })
        .collect()
}

/// Writes `df` to `dest` in `format`, through a temporary file renamed into place.
pub fn write(df: &mut DataFrame, dest: &Path, format: TableFormat) -> Result<()> {
    crate::files::write_atomically(dest, |file| {
        match format {
            TableFormat::Csv | TableFormat::Tsv => {
                CsvWriter::new(file)
                    .with_separator(format.separator())
                    .finish(df)?;
            }
            TableFormat::Jsonl => JsonWriter::new(file)
                .with_json_format(JsonFormat::JsonLines)
                .finish(df)?,
            TableFormat::Parquet => {
                ParquetWriter::new(file).finish(df)?;
            }
        }
        Ok(())
    })
}

/// The cells of rows `offset..offset + len` as display strings (`None` for null).
pub fn page(df: &DataFrame, offset: usize, len: usize) -> Vec<Vec<Option<String>>> {
    let slice = df.slice(offset as i64, len);
    (0..slice.height())
        .map(|row| {
            slice
                .columns()
                .iter()
                .map(|col| col.get(row).ok().and_then(|v| cell_text(&v)))
                .collect()
        })
        .collect()
}

pub fn cell_text(value: &AnyValue<'_>) -> Option<String> {
    match value {
        AnyValue::Null => None,
        AnyValue::String(s) => Some((*s).to_owned()),
        AnyValue::StringOwned(s) => Some(s.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &[u8], format: TableFormat) -> Result<DataFrame> {
        read_bytes(text, Path::new("data.csv"), format)
    }

    #[test]
    fn an_import_records_what_a_full_read_gives() {
        let many = |f: &dyn Fn(usize) -> String| {
            let mut text = String::from("id,when,x\n");
            for i in 0..12_000 {
                text.push_str(&format!("{i},{},{}\n", f(i), i % 7));
            }
            text
        };
        let cases = [
            many(&|i| format!("2024-01-{:02}", i % 28 + 1)),
            many(&|i| format!("{:02}/01/2024", i % 28 + 1)),
            many(&|i| format!("2024-01-02 10:{:02}:00", i % 60)),
            many(&|i| {
                if i == 11_000 {
                    "2024-02-30".into()
                } else {
                    "2024-01-02".into()
                }
            }),
            many(&|i| {
                if i == 11_000 {
                    "soon".into()
                } else {
                    "2024-01-02".into()
                }
            }),
            many(&|i| format!("2024/01/{:02}", i % 28 + 1)),
            many(&|i| format!("{:02}.01.2024", i % 28 + 1)),
            many(&|i| format!("{:02}:30", i % 24)),
            many(&|i| format!("1.2.{i}")),
            many(&|i| {
                if i < 11_000 {
                    String::new()
                } else {
                    "2024-01-02".into()
                }
            }),
            many(&|i| {
                if i % 2 == 0 {
                    "2024-01-02".into()
                } else {
                    "later".into()
                }
            }),
            "a,b\n1,x\n2,\n".to_owned(),
        ];
        for text in cases {
            let full = read_str(text.as_bytes(), TableFormat::Csv).unwrap();
            let (columns, rows) =
                inspect_bytes(text.as_bytes(), Path::new("t.csv"), TableFormat::Csv).unwrap();
            assert_eq!(
                columns,
                super::columns(&full),
                "{}",
                &text[..60.min(text.len())]
            );
            assert_eq!(rows, full.height());
        }
        // A file of the benchmark's shape (floats with gaps, integers, words, ISO dates,
        // booleans) is inspected without a full read.
        let mut text = String::from("f,i,s,day,flag\n");
        for i in 0..12_000 {
            let f = if i % 50 == 0 {
                String::new()
            } else {
                format!("{:.4}", i as f64 / 7.0)
            };
            text.push_str(&format!(
                "{f},{i},r{i},2024-{:02}-{:02},{}\n",
                i % 12 + 1,
                i % 28 + 1,
                i % 2 == 0
            ));
        }
        let fast = inspect_delimited(text.as_bytes(), b',', Path::new("t.csv"));
        let full = read_str(text.as_bytes(), TableFormat::Csv).unwrap();
        assert_eq!(
            fast.map(Result::unwrap),
            Some((super::columns(&full), full.height()))
        );
        assert!(is_iso_date("2024-02-29") && !is_iso_date("2023-02-29"));
        assert!(!is_iso_date("2024-1-02") && !is_iso_date("2024/01/02"));
    }

    #[test]
    fn a_later_value_widens_its_column_as_pandas_does() {
        // Whole numbers for 15,000 rows, then a decimal; numbers, then a word; ISO dates, then
        // another form.
        let mut text = String::from("id,x,flag,day\n");
        for i in 0..20_000 {
            let x = if i == 15_000 {
                "1.5".to_owned()
            } else {
                i.to_string()
            };
            let flag = if i == 12_000 { "yes" } else { "1" };
            let day = if i == 18_000 {
                "03/01/2024"
            } else {
                "2024-01-02"
            };
            text.push_str(&format!("{i},{x},{flag},{day}\n"));
        }
        let df = read_str(text.as_bytes(), TableFormat::Csv).unwrap();
        assert_eq!(df.height(), 20_000);
        let x = df.column("x").unwrap();
        assert_eq!(x.dtype(), &DataType::Float64);
        assert_eq!(x.get(15_000).unwrap(), AnyValue::Float64(1.5));
        assert_eq!(x.get(14_999).unwrap(), AnyValue::Float64(14_999.0));
        assert_eq!(df.column("flag").unwrap().dtype(), &DataType::String);
        assert_eq!(df.column("day").unwrap().dtype(), &DataType::String);
        // A file that needs no widening keeps its types.
        let df = read_str(b"a,b\n1,2024-01-02\n2,2024-01-03\n", TableFormat::Csv).unwrap();
        assert_eq!(df.column("a").unwrap().dtype(), &DataType::Int64);
        assert_eq!(df.column("b").unwrap().dtype(), &DataType::Date);
    }

    fn check_malformed(text: &[u8], line: u64, needle: &str) {
        let err = read_str(text, TableFormat::Csv).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Malformed { line: l, .. } if l == line),
            "{msg}"
        );
        assert!(msg.starts_with(&format!("data.csv: line {line}:")), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }

    #[test]
    fn reads_each_format() {
        let df = read_str(b"a,b\n1,x\n2,y\n", TableFormat::Csv).unwrap();
        assert_eq!((df.height(), df.width()), (2, 2));
        let df = read_str(b"a\tb\n1\tx\n", TableFormat::Tsv).unwrap();
        assert_eq!(columns(&df)[1].name, "b");
        let df = read_str(b"{\"a\":1}\n{\"a\":2,\"b\":\"z\"}\n", TableFormat::Jsonl).unwrap();
        assert_eq!(df.height(), 2);
    }

    #[test]
    fn malformed_csv_names_the_line() {
        check_malformed(b"a,b,c\n1,2,3\n4,5\n", 3, "expected 3 fields");
        check_malformed(b"a,b,c\n1,2,3\n4,5,6,7\n", 3, "found 4");
        check_malformed(b"a,b\n1,2\n3,\"open\n4,5\n", 3, "quote");
        check_malformed(b"a,b\n1,2\n3,\xff\n", 3, "invalid UTF-8");
    }

    #[test]
    fn empty_and_header_only_are_refused() {
        assert!(matches!(
            read_str(b"", TableFormat::Csv),
            Err(Error::EmptyFile { .. })
        ));
        let msg = read_str(b"a,b\n", TableFormat::Csv)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no rows"), "{msg}");
    }

    #[test]
    fn bad_json_lines_name_the_line() {
        let err = read_str(b"{\"a\":1}\n{\"a\":\n", TableFormat::Jsonl)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn round_trips_through_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut df = read_str(b"n,s\n1,x\n2,\n3,z\n", TableFormat::Csv).unwrap();
        for format in [
            TableFormat::Csv,
            TableFormat::Tsv,
            TableFormat::Parquet,
            TableFormat::Jsonl,
        ] {
            let dest = dir.path().join(format!("out.{}", format.extension()));
            write(&mut df, &dest, format).unwrap();
            let back = read(&dest, &dest, format).unwrap();
            assert_eq!(page(&back, 0, 3), page(&df, 0, 3), "{format:?}");
        }
        assert_eq!(page(&df, 1, 1), vec![vec![Some("2".to_owned()), None]]);
    }
}
