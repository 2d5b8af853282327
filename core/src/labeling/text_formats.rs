//! Text label files: CoNLL-2003 / IOB (one token a line, the tag last; sentences between blank
//! lines), span JSONL (`{"text", "label": [[start, end, tag], …]}`, doccano's shape; character
//! offsets, end exclusive) and classification CSV (`text,label`). Importing one makes a text
//! asset of its texts and a project pre-filled with its labels; exporting writes a project back.
//!
//! Normalization: a CoNLL text is its tokens joined by single spaces; `-DOCSTART-` lines and
//! columns between the token and the tag (POS, chunk) are dropped; IOB1 is read, IOB2 written.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::project::{self, Project};
use super::{Exported, Shape, Task, invalid, labels_from_names};
use crate::import::{ImportRequest, import};
use crate::jobs::Progress;
use crate::workspace::Workspace;
use crate::{Error, Result};

/// One text and its labels: spans (character offsets) or classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub text: String,
    pub shapes: Vec<Shape>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Conll,
    SpanJsonl,
    Csv,
}

impl Format {
    fn task(self, docs: &[Doc]) -> Task {
        match self {
            Format::Conll | Format::SpanJsonl => Task::EntitySpans,
            Format::Csv if docs.iter().any(|d| d.shapes.len() > 1) => Task::TextMultiLabel,
            Format::Csv => Task::TextClassification,
        }
    }
}

fn span(label: &str, start: usize, end: usize) -> Shape {
    Shape::Span {
        label: label.to_owned(),
        start,
        end,
        confidence: None,
        attributes: Default::default(),
    }
}

/// Reads CoNLL / IOB: the first column is the token, the last the tag.
pub fn parse_conll(text: &str, shown: &str) -> Result<Vec<Doc>> {
    let mut docs = Vec::new();
    let mut sentence: Vec<(usize, String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let columns: Vec<&str> = line.split_whitespace().collect();
        match columns.as_slice() {
            [] => docs.extend(sentence_doc(&std::mem::take(&mut sentence), shown)?),
            [first, ..] if *first == "-DOCSTART-" => {
                docs.extend(sentence_doc(&std::mem::take(&mut sentence), shown)?);
            }
            [_] => {
                return Err(invalid(format!(
                    "{shown}: line {}: a token without a tag",
                    i + 1
                )));
            }
            [token, .., tag] => sentence.push((i + 1, (*token).to_owned(), (*tag).to_owned())),
        }
    }
    docs.extend(sentence_doc(&sentence, shown)?);
    Ok(docs)
}

/// One sentence's (line, token, tag) rows as a text with spans; none for an empty sentence.
fn sentence_doc(rows: &[(usize, String, String)], shown: &str) -> Result<Option<Doc>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut text = String::new();
    let mut shapes = Vec::new();
    // The entity being read: its label, start and end.
    let mut open: Option<(String, usize, usize)> = None;
    let close = |open: &mut Option<(String, usize, usize)>, shapes: &mut Vec<Shape>| {
        if let Some((label, start, end)) = open.take() {
            shapes.push(span(&label, start, end));
        }
    };
    for (line, token, tag) in rows {
        if !text.is_empty() {
            text.push(' ');
        }
        let start = text.chars().count();
        text.push_str(token);
        let end = text.chars().count();
        if tag == "O" {
            close(&mut open, &mut shapes);
            continue;
        }
        let Some((prefix @ ("B" | "I" | "E" | "S"), label)) =
            tag.split_once('-').filter(|(_, l)| !l.is_empty())
        else {
            return Err(invalid(format!(
                "{shown}: line {line}: tag '{tag}' is not O, B-…, I-…, E-… or S-…"
            )));
        };
        match &mut open {
            // I- and E- continue an entity of the same label (IOB1 starts one with I- too).
            Some((current, _, e)) if current == label && matches!(prefix, "I" | "E") => *e = end,
            _ => {
                close(&mut open, &mut shapes);
                open = Some((label.to_owned(), start, end));
            }
        }
        if matches!(prefix, "E" | "S") {
            close(&mut open, &mut shapes);
        }
    }
    close(&mut open, &mut shapes);
    Ok(Some(Doc { text, shapes }))
}

/// The words of `text` (runs of non-space) with their character ranges.
fn words(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    let mut chars = 0;
    for (byte, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((chars, byte)),
            (true, Some((s, b))) => {
                out.push((s, chars, &text[b..byte]));
                start = None;
            }
            _ => {}
        }
        chars += 1;
    }
    if let Some((s, b)) = start {
        out.push((s, chars, &text[b..]));
    }
    out
}

/// Writes CoNLL (token TAB tag, IOB2; a blank line between texts).
pub fn write_conll(docs: &[Doc], out: &mut dyn Write) -> std::io::Result<()> {
    docs.iter().try_for_each(|doc| write_conll_doc(doc, out))
}

fn write_conll_doc(doc: &Doc, out: &mut dyn Write) -> std::io::Result<()> {
    for (start, end, token) in words(&doc.text) {
        let tag = doc.shapes.iter().find_map(|s| match s {
            Shape::Span {
                label,
                start: s0,
                end: s1,
                ..
            } if *s0 <= start && end <= *s1 => {
                Some(format!("{}-{label}", if *s0 == start { "B" } else { "I" }))
            }
            _ => None,
        });
        writeln!(out, "{token}\t{}", tag.unwrap_or_else(|| "O".into()))?;
    }
    writeln!(out)
}

/// Reads span JSONL: a JSON object a line with `text` and `label` (or `labels`, `entities`).
pub fn parse_span_jsonl(text: &str, shown: &str) -> Result<Vec<Doc>> {
    let mut docs = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = format!("{shown}: line {}", i + 1);
        let value: Value =
            serde_json::from_str(line).map_err(|e| invalid(format!("{at}: not JSON: {e}")))?;
        let body = value
            .get("text")
            .or_else(|| value.get("data"))
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{at}: no \"text\"")))?;
        let chars = body.chars().count();
        let list = ["label", "labels", "entities"]
            .iter()
            .find_map(|k| value.get(*k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut shapes = Vec::new();
        for entry in &list {
            let (start, end, label) = match entry {
                Value::Array(parts) if parts.len() == 3 => {
                    (parts[0].as_u64(), parts[1].as_u64(), parts[2].as_str())
                }
                Value::Object(o) => (
                    o.get("start_offset")
                        .or_else(|| o.get("start"))
                        .and_then(Value::as_u64),
                    o.get("end_offset")
                        .or_else(|| o.get("end"))
                        .and_then(Value::as_u64),
                    o.get("label").and_then(Value::as_str),
                ),
                _ => (None, None, None),
            };
            let (Some(start), Some(end), Some(label)) = (start, end, label) else {
                return Err(invalid(format!(
                    "{at}: a span is [start, end, label]: {entry}"
                )));
            };
            let (start, end) = (start as usize, end as usize);
            if start >= end || end > chars {
                return Err(invalid(format!(
                    "{at}: the span {start}..{end} ({label}) does not lie within the text's {chars} characters"
                )));
            }
            shapes.push(span(label, start, end));
        }
        docs.push(Doc {
            text: body.to_owned(),
            shapes,
        });
    }
    Ok(docs)
}

pub fn write_span_jsonl(docs: &[Doc], out: &mut dyn Write) -> std::io::Result<()> {
    docs.iter()
        .try_for_each(|doc| write_span_jsonl_doc(doc, out))
}

fn write_span_jsonl_doc(doc: &Doc, out: &mut dyn Write) -> std::io::Result<()> {
    let spans: Vec<Value> = doc
        .shapes
        .iter()
        .filter_map(|s| match s {
            Shape::Span {
                label, start, end, ..
            } => Some(json!([start, end, label])),
            _ => None,
        })
        .collect();
    serde_json::to_writer(&mut *out, &json!({ "text": doc.text, "label": spans }))?;
    writeln!(out)
}

/// Reads classification CSV with a header: a `text` column and a `label` column (several
/// labels of a text separated by `|`; rows without text are refused, without label unlabeled).
pub fn parse_csv(bytes: &[u8], shown: &str) -> Result<Vec<Doc>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| invalid(format!("{shown}: {e}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                invalid(format!(
                    "{shown}: no '{name}' column (the header is {})",
                    headers.iter().collect::<Vec<_>>().join(",")
                ))
            })
    };
    let (text_at, label_at) = (column("text")?, column("label")?);
    let mut docs = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| invalid(format!("{shown}: {e}")))?;
        let text = record.get(text_at).unwrap_or_default();
        if text.is_empty() {
            return Err(invalid(format!("{shown}: line {}: no text", i + 2)));
        }
        let shapes = record
            .get(label_at)
            .unwrap_or_default()
            .split('|')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| Shape::Class {
                label: l.to_owned(),
                confidence: None,
                attributes: Default::default(),
            })
            .collect();
        docs.push(Doc {
            text: text.to_owned(),
            shapes,
        });
    }
    Ok(docs)
}

pub fn write_csv(docs: &[Doc], out: &mut dyn Write) -> Result<()> {
    let mut sink = Sink::new(Format::Csv, out)?;
    docs.iter().try_for_each(|doc| sink.write(doc))?;
    sink.finish()
}

/// Where an export's texts go, one at a time.
enum Sink<'a> {
    Conll(&'a mut dyn Write),
    Jsonl(&'a mut dyn Write),
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
}

fn csv_failed(e: &csv::Error) -> Error {
    invalid(format!("writing CSV: {e}"))
}

impl<'a> Sink<'a> {
    fn new(format: Format, out: &'a mut dyn Write) -> Result<Sink<'a>> {
        Ok(match format {
            Format::Conll => Sink::Conll(out),
            Format::SpanJsonl => Sink::Jsonl(out),
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer
                    .write_record(["text", "label"])
                    .map_err(|e| csv_failed(&e))?;
                Sink::Csv(Box::new(writer))
            }
        })
    }

    fn write(&mut self, doc: &Doc) -> Result<()> {
        let io = |e: std::io::Error| Error::io("<export>", e);
        match self {
            Sink::Conll(out) => write_conll_doc(doc, *out).map_err(io),
            Sink::Jsonl(out) => write_span_jsonl_doc(doc, *out).map_err(io),
            Sink::Csv(writer) => {
                let labels: Vec<&str> = doc.shapes.iter().map(Shape::label).collect();
                writer
                    .write_record([doc.text.as_str(), &labels.join("|")])
                    .map_err(|e| csv_failed(&e))
            }
        }
    }

    fn finish(self) -> Result<()> {
        if let Sink::Csv(mut writer) = self {
            writer.flush().map_err(|e| Error::io("<export>", e))?;
        }
        Ok(())
    }
}

/// Imports a text label file: its texts become the text asset `<name>-texts` (one a line;
/// line breaks inside a text become spaces), and project `name` is created over it with the
/// file's labels. Everything is read and checked before anything is stored.
pub fn import_file(ws: &mut Workspace, path: &Path, format: Format, name: &str) -> Result<Project> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let docs = match format {
        Format::Csv => parse_csv(&bytes, &shown)?,
        _ => {
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(format!("{shown}: not UTF-8 text")))?;
            if format == Format::Conll {
                parse_conll(&text, &shown)?
            } else {
                parse_span_jsonl(&text, &shown)?
            }
        }
    };
    if docs.is_empty() {
        return Err(invalid(format!("{shown}: no texts")));
    }
    if project::open(ws, name).is_ok() {
        return Err(invalid(format!("a project named '{name}' exists already")));
    }
    let labels: BTreeSet<String> = docs
        .iter()
        .flat_map(|d| d.shapes.iter().map(|s| s.label().to_owned()))
        .collect();
    if labels.is_empty() {
        return Err(invalid(format!("{shown}: no labels in it")));
    }
    let staging = tempfile::tempdir().map_err(|e| Error::io("<temp>", e))?;
    let texts = staging.path().join(format!("{name}.txt"));
    let body: Vec<String> = docs
        .iter()
        .map(|d| d.text.replace(['\n', '\r'], " "))
        .collect();
    std::fs::write(&texts, body.join("\n") + "\n").map_err(|e| Error::io(&texts, e))?;
    let asset = format!("{name}-texts");
    let request = ImportRequest {
        path: texts,
        name: asset.clone(),
        kind: Some(crate::assets::AssetKind::Text),
        text_column: None,
        source_label: Some(format!("labels from {shown}")),
    };
    let imported = import(ws, &request, &Progress::default())?;
    let task = format.task(&docs);
    let labels: Vec<String> = labels.into_iter().collect();
    let by_item: std::collections::BTreeMap<usize, Vec<Shape>> = docs
        .into_iter()
        .enumerate()
        .filter(|(_, d)| !d.shapes.is_empty())
        .map(|(i, d)| (i, d.shapes))
        .collect();
    project::create_imported(
        ws,
        name,
        task,
        &imported.version.reference().parse()?,
        labels_from_names(&labels),
        &project::Imported::shapes(by_item),
        path,
    )
}

/// Exports to the file `dest` atomically; returns the count of texts.
pub fn export_to(
    ws: &Workspace,
    project: &Project,
    format: Format,
    dest: &Path,
) -> Result<Exported> {
    crate::files::write_atomically(dest, |out| export(ws, project, format, out))
}

/// Writes a text project in `format` to `out`.
pub fn export(
    ws: &Workspace,
    project: &Project,
    format: Format,
    out: &mut dyn Write,
) -> Result<Exported> {
    if project.task.asset_kind() != crate::assets::AssetKind::Text {
        return Err(invalid(format!(
            "{} is an image project; export it as coco",
            project.name
        )));
    }
    let version = ws.version_by_id(project.version_id)?;
    let texts = crate::text::items(ws, &version)?;
    let mut sink = Sink::new(format, out)?;
    // Texts in order, each with its latest labels: labeled ones arrive from the store one row
    // at a time, the unlabeled between them are written bare.
    let mut next = 0usize;
    let bare = |sink: &mut Sink<'_>, upto: usize, next: &mut usize| -> Result<()> {
        while *next < upto.min(texts.len()) {
            sink.write(&Doc {
                text: texts[*next].clone(),
                shapes: Vec::new(),
            })?;
            *next += 1;
        }
        Ok(())
    };
    let (mut labeled, mut annotations) = (0usize, 0usize);
    project::for_each_latest(ws, project, |submission| {
        let at = submission.position as usize;
        bare(&mut sink, at, &mut next)?;
        if let Some(text) = texts.get(at) {
            labeled += 1;
            annotations += submission.shapes.len();
            sink.write(&Doc {
                text: text.clone(),
                shapes: submission.shapes,
            })?;
            next = at + 1;
        }
        Ok(())
    })?;
    bare(&mut sink, texts.len(), &mut next)?;
    sink.finish()?;
    Ok(Exported {
        items: texts.len(),
        labeled,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conll_reads_to_spans_and_writes_back() {
        let text = "-DOCSTART- -X- O O\n\nWhen WRB _ O\nSebastian NNP _ B-PERSON\nThrun NNP _ I-PERSON\nstarted VBD _ O\n\nGoogle NNP _ B-ORG\n";
        let docs = parse_conll(text, "t").unwrap();
        assert_eq!(docs[0].text, "When Sebastian Thrun started");
        assert_eq!(docs[0].shapes, [span("PERSON", 5, 20)]);
        assert_eq!(docs[1].shapes, [span("ORG", 0, 6)]);
        let mut out = Vec::new();
        write_conll(&docs, &mut out).unwrap();
        let written = String::from_utf8(out).unwrap();
        assert!(
            written.starts_with("When\tO\nSebastian\tB-PERSON\nThrun\tI-PERSON\nstarted\tO\n\n"),
            "{written}"
        );
        assert_eq!(parse_conll(&written, "t").unwrap(), docs);
        let e = parse_conll("SOCCERO SOCCERO SOCCERO\n", "bad.conll").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad.conll: line 1: tag 'SOCCERO' is not O, B-…, I-…, E-… or S-…"
        );
    }

    #[test]
    fn span_jsonl_and_csv_round_trip_and_refuse_bad_lines() {
        let docs = parse_span_jsonl(
            "{\"text\": \"exampleA\", \"label\": [[0, 1, \"LOC\"]]}\n",
            "t",
        )
        .unwrap();
        let mut out = Vec::new();
        write_span_jsonl(&docs, &mut out).unwrap();
        assert_eq!(
            parse_span_jsonl(std::str::from_utf8(&out).unwrap(), "t").unwrap(),
            docs
        );
        let e = parse_span_jsonl("{\"label\": [[0, 1, \"PER\"]]}\n", "x.jsonl").unwrap_err();
        assert_eq!(e.to_string(), "x.jsonl: line 1: no \"text\"");
        let e = parse_span_jsonl(
            "{\"text\": \"ab\", \"label\": [[0, 5, \"PER\"]]}\n",
            "x.jsonl",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("line 1: the span 0..5 (PER) does not lie within"),
            "{e}"
        );
        let e = parse_span_jsonl("{\"text\": \"ab\", \"lab", "x.jsonl").unwrap_err();
        assert!(
            e.to_string().starts_with("x.jsonl: line 1: not JSON"),
            "{e}"
        );
        let csv = parse_csv(b"text,label\nexampleA,positive\nexampleB,\n", "c").unwrap();
        assert_eq!(csv[1].shapes, []);
        let mut out = Vec::new();
        write_csv(&csv, &mut out).unwrap();
        assert_eq!(parse_csv(&out, "c").unwrap(), csv);
        let e = parse_csv(b"text,label\n,negative\n", "c.csv").unwrap_err();
        assert_eq!(e.to_string(), "c.csv: line 2: no text");
    }
}
