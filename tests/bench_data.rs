//! The data benchmark: import and profile of a wide CSV against polars' own CSV read of the same
//! file, and the GUI's frame time while the preview jumps through the table.
//!
//! `cargo bench -p lathe-tests --bench data` (1,000,000 rows × 20 columns; set LATHE_BENCH_ROWS
//! for another size). It prints each figure and the ratios; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_core::Workspace;
use lathe_core::import::{ImportRequest, import};
use lathe_core::jobs::Progress;
use lathe_core::profile::profile_version;
use lathe_core::service::Service;
use lathe_tests::{go_to_row, report_frames, run_until, wheel_scroll_frames};
use lathe_ui::Workbench;
use polars::prelude::*;

const RUNS: usize = 3;

fn main() {
    let rows: usize = std::env::var("LATHE_BENCH_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("wide.csv");
    write_csv(&csv, rows);
    let size = std::fs::metadata(&csv).unwrap().len();
    println!(
        "data: {rows} rows × 20 columns, {:.1} MiB CSV",
        size as f64 / 1_048_576.0
    );

    // Alternate the three so that none gets the warmer page cache or the quieter moment.
    let mut polars_runs = Vec::new();
    let mut write_runs = Vec::new();
    let mut lathe_runs = Vec::new();
    let mut last_ws = None;
    let bytes = std::fs::read(&csv).unwrap();
    for run in 0..RUNS {
        // The floor for storing the bytes: write them to a new file and make them durable.
        let copy = dir.path().join(format!("copy-{run}.csv"));
        let start = Instant::now();
        let mut file = std::fs::File::create(&copy).unwrap();
        file.write_all(&bytes).unwrap();
        file.sync_all().unwrap();
        write_runs.push(start.elapsed());
        drop(file);
        std::fs::remove_file(&copy).unwrap();

        let start = Instant::now();
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(csv.clone()))
            .unwrap()
            .finish()
            .unwrap();
        polars_runs.push(start.elapsed());
        assert_eq!(df.height(), rows);

        let root = dir.path().join(format!("ws-{run}"));
        let mut ws = Workspace::open(&root).unwrap();
        let request = ImportRequest {
            path: csv.clone(),
            name: "wide".into(),
            ..Default::default()
        };
        let start = Instant::now();
        let outcome = import(&mut ws, &request, &Progress::default()).unwrap();
        lathe_runs.push(start.elapsed());
        assert_eq!(outcome.version.item_count as usize, rows);
        last_ws = Some((root, outcome.version));
    }
    let polars_read = median(&mut polars_runs);
    let write_sync = median(&mut write_runs);
    let lathe_import = median(&mut lathe_runs);
    println!(
        "polars CSV read:        {:>8.3} s (median of {RUNS})",
        polars_read.as_secs_f64()
    );
    println!(
        "lathe import:           {:>8.3} s (median of {RUNS}; copy, hash, check, parse, record)",
        lathe_import.as_secs_f64()
    );
    println!(
        "write + fsync the bytes:{:>8.3} s (median of {RUNS})",
        write_sync.as_secs_f64()
    );
    let floor = polars_read.max(write_sync);
    println!(
        "import / polars read:   {:>8.2}×",
        lathe_import.as_secs_f64() / polars_read.as_secs_f64()
    );
    println!(
        "import / slower floor:  {:>8.2}× (the slower of the read and the write; target ≤ 1.2×)",
        lathe_import.as_secs_f64() / floor.as_secs_f64()
    );

    breakdown(&csv, dir.path());

    let (root, version) = last_ws.unwrap();
    let ws = Workspace::open(&root).unwrap();
    let start = Instant::now();
    let profile = profile_version(&ws, &version, &Progress::default()).unwrap();
    let cold = start.elapsed();
    assert_eq!(profile.columns.len(), 20);
    let start = Instant::now();
    profile_version(&ws, &version, &Progress::default()).unwrap();
    let cached = start.elapsed();
    println!(
        "profile (read + compute): {:>6.3} s; from cache {:.1} ms",
        cold.as_secs_f64(),
        cached.as_secs_f64() * 1e3
    );
    drop(ws);

    frame_times(&root, rows);
}

fn frame_times(root: &Path, rows: usize) {
    let service = Service::new(lathe_core::Store::open(root).unwrap(), Arc::new(|| {})).unwrap();
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), Workbench::new(service));
    let wait = Duration::from_secs(120);
    run_until(&mut h, wait, "the asset list", |h| {
        h.query_by_label("⊞ wide").is_some()
    });
    h.get_by_label("⊞ wide").click();
    run_until(&mut h, wait, "the first rows", |h| {
        h.query_by_label("1").is_some() && h.query_by_label_contains("Go to row").is_some()
    });
    run_until(&mut h, wait, "the first page", |h| {
        h.query_by_label("r0c0").is_some()
    });

    // Each frame jumps to a new place in the table: every visible row is new, and its page is
    // fetched in the background while the frame is drawn. kittest keeps an accessibility tree,
    // which a real window builds only for a screen reader, so this overstates a frame.
    let mut jumps = Vec::new();
    let mut row = 1usize;
    for _ in 0..100 {
        row = (row * 7919 + 104_729) % rows + 1;
        go_to_row(&h, &row.to_string());
        let start = Instant::now();
        h.step();
        jumps.push(start.elapsed());
    }
    report_frames("jumping (kittest, with accessibility tree)", &mut jumps);

    // Scrolling with the mouse wheel as the window does: a plain egui context, one wheel turn a
    // frame, each frame run and tessellated (the CPU side of a frame; no GPU here).
    let mut workbench = h.into_state();
    let mut last_rows = Vec::new();
    let mut frames = wheel_scroll_frames(
        &mut workbench,
        400,
        egui::pos2(760.0, 500.0),
        |_, shapes| {
            last_rows = row_numbers(shapes);
        },
    );
    let furthest = last_rows.iter().max().copied().unwrap_or(0);
    assert!(
        furthest > 1_000,
        "the wheel scrolled the preview (last frame showed rows up to {furthest})"
    );
    report_frames(
        &format!("wheel scrolling (plain egui, to row {furthest})"),
        &mut frames,
    );
}

/// Where an import's time goes, step by step, on the same file.
fn breakdown(csv: &Path, scratch: &Path) {
    let blobs = lathe_core::blobs::BlobStore::open(scratch.join("breakdown-blobs")).unwrap();
    let step = |name: &str, start: Instant| {
        println!("  {name:<36} {:>8.3} s", start.elapsed().as_secs_f64());
    };
    println!("import, step by step:");
    let start = Instant::now();
    let bytes = std::fs::read(csv).unwrap();
    step("read the file", start);
    let start = Instant::now();
    let hash = lathe_core::blobs::hash_bytes(&bytes);
    step("hash", start);
    let start = Instant::now();
    blobs.put_hashed(&bytes, &hash).unwrap();
    step("store the blob (write, fsync, rename)", start);
    let start = Instant::now();
    let copied = blobs.copy_in(csv, &Progress::default()).unwrap();
    step("copy into the store and hash (import)", start);
    let start = Instant::now();
    copied.sync().unwrap();
    step("fsync the copy", start);
    drop(copied);
    let start = Instant::now();
    let (_, rows) =
        lathe_core::table::inspect_bytes(&bytes, csv, lathe_core::table::TableFormat::Csv).unwrap();
    step("check and parse (inspect)", start);
    let start = Instant::now();
    let parsed = CsvReadOptions::default()
        .with_has_header(true)
        .into_reader_with_file_handle(std::io::Cursor::new(&bytes))
        .finish()
        .unwrap();
    step("polars parse, default options", start);
    let start = Instant::now();
    let typed = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(10_000))
        .map_parse_options(|o| o.with_try_parse_dates(true))
        .into_reader_with_file_handle(std::io::Cursor::new(&bytes))
        .finish()
        .unwrap();
    step("polars parse, Lathe's options", start);
    let start = Instant::now();
    let plain = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(10_000))
        .into_reader_with_file_handle(std::io::Cursor::new(&bytes))
        .finish()
        .unwrap();
    step("polars parse, no dates", start);
    assert_eq!(plain.height(), parsed.height());
    assert_eq!(typed.height(), parsed.height());
    assert_eq!(rows, parsed.height());
}

/// The row numbers drawn in a frame (the preview's first column), read from its text shapes.
fn row_numbers(shapes: &[egui::epaint::ClippedShape]) -> Vec<usize> {
    fn walk(shape: &egui::Shape, out: &mut Vec<usize>) {
        match shape {
            egui::Shape::Text(text) => {
                if let Ok(n) = text.galley.text().parse::<usize>() {
                    out.push(n);
                }
            }
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    shapes.iter().for_each(|s| walk(&s.shape, &mut out));
    out
}

fn median(runs: &mut [Duration]) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

/// A deterministic CSV: 8 float, 6 integer, 4 text, 1 date and 1 boolean column.
fn write_csv(path: &Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let header: Vec<String> = (0..8)
        .map(|i| format!("f{i}"))
        .chain((0..6).map(|i| format!("i{i}")))
        .chain((0..4).map(|i| format!("s{i}")))
        .chain(["day".into(), "flag".into()])
        .collect();
    writeln!(out, "{}", header.join(",")).unwrap();
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut line = String::new();
    for r in 0..rows {
        line.clear();
        for _ in 0..8 {
            let v = next();
            if v % 50 == 0 {
                line.push(',');
            } else {
                line.push_str(&format!("{:.4},", (v % 1_000_000) as f64 / 997.0));
            }
        }
        for _ in 0..6 {
            line.push_str(&format!("{},", next() % 100_000));
        }
        line.push_str(&format!("r{r}c0,"));
        for _ in 1..4 {
            line.push_str(words[(next() % 8) as usize]);
            line.push(',');
        }
        let day = next() % 28 + 1;
        line.push_str(&format!(
            "2024-{:02}-{day:02},{}",
            next() % 12 + 1,
            next() % 2 == 0
        ));
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}
