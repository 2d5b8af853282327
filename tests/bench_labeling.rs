//! The labeling benchmark: showing the next 12-megapixel JPEG with prefetch (and what decoding
//! one costs, which prefetch hides), the annotator's frame time with 10,000 boxes on one image,
//! and exporting 100,000 labeled items (time and the exporting process's peak memory, against
//! writing the same CSV straight from memory), and pre-labeling boxes with the built-in
//! colour-regions baseline (per image, on 1280 × 960 JPEGs).
//!
//! `cargo bench -p lathe-tests --bench labeling` (LATHE_BENCH_ITEMS for another export size).
//! Targets: next image under 50 ms, frames under 16 ms. A benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lathe_core::Workspace;
use lathe_core::import::{ImportRequest, import};
use lathe_core::jobs::Progress;
use lathe_core::labeling::project;
use lathe_core::labeling::{Shape, Task, labels_from_names, text_formats};
use lathe_core::service::Service;
use lathe_tests::report_frames;
use lathe_ui::Workbench;

fn main() {
    if let Ok(args) = std::env::var("LATHE_BENCH_EXPORT_CHILD") {
        return export_child(&args);
    }
    let dir = tempfile::tempdir().unwrap();
    next_image(dir.path());
    many_shapes(dir.path());
    export(dir.path());
    prelabel_boxes(dir.path());
}

/// The boxes baseline over 100 photos of figures: 12 labeled, 88 pre-labeled.
fn prelabel_boxes(root: &Path) {
    let folder = root.join("figures");
    std::fs::create_dir_all(&folder).unwrap();
    let kinds = ["circle", "square", "triangle"];
    let mut truth = Vec::new();
    for i in 0..100u32 {
        let kind = kinds[i as usize % 3];
        let at = [10 + (i * 23) % 80, 8 + (i * 17) % 50, 44 + (i % 4) * 6];
        let ink = [
            (40 + i * 37 % 180) as u8,
            (30 + i * 53 % 160) as u8,
            (50 + i * 71 % 170) as u8,
        ];
        let png = lathe_tests::figure(kind, at, ink, [235, 235, 225]);
        image::load_from_memory(&png)
            .unwrap()
            .resize_exact(1280, 960, image::imageops::FilterType::Triangle)
            .to_rgb8()
            .save(folder.join(format!("figure-{i:03}.jpg")))
            .unwrap();
        truth.push((kind, at.map(|v| f64::from(v) * 8.0)));
    }
    let mut ws = Workspace::open(root.join("ws-figures")).unwrap();
    import_images(&mut ws, &folder, "figures");
    let p = project::create(
        &mut ws,
        "figures",
        Task::BoundingBoxes,
        &"figures".parse().unwrap(),
        labels_from_names(&kinds.map(String::from)),
        1,
    )
    .unwrap();
    for (position, (kind, [x, y, size])) in truth.iter().enumerate().take(12) {
        let shape = Shape::rectangle(p.task, (*kind).into(), [*x, *y, x + size, y + size], None);
        project::submit(&ws, &p, position as i64, "bench", &[shape], "human").unwrap();
    }
    let start = Instant::now();
    let done = lathe_core::labeling::assist::prelabel(&ws, &p, 0.5, &Progress::default()).unwrap();
    let took = start.elapsed();
    let mut right = 0;
    for (position, (kind, _)) in truth.iter().enumerate().skip(12) {
        if let Some((_, shapes)) =
            lathe_core::labeling::assist::prediction(&ws, &p, position as i64).unwrap()
        {
            right += usize::from(shapes.len() == 1 && shapes[0].label() == *kind);
        }
    }
    println!(
        "pre-labeling boxes with {}: 100 JPEGs (1280 × 960; 12 labeled) in {:.2} s — {:.1} ms an image, reading each included; {} of 88 given exactly one box of the right label",
        done.model,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / 100.0,
        right
    );
}

fn import_images(ws: &mut Workspace, folder: &Path, name: &str) {
    let request = ImportRequest {
        path: folder.to_path_buf(),
        name: name.into(),
        kind: Some(lathe_core::assets::AssetKind::Images),
        ..Default::default()
    };
    import(ws, &request, &Progress::default()).unwrap();
}

/// One frame of the workbench in a plain context (no accessibility tree), tessellated: the
/// CPU side of a frame. Returns its time and the textures its shapes draw.
fn frame(
    ctx: &egui::Context,
    wb: &mut Workbench,
    events: Vec<egui::Event>,
    t: f64,
) -> (Duration, HashSet<egui::TextureId>) {
    let input = egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1600.0, 1000.0),
        )),
        time: Some(t),
        events,
        ..Default::default()
    };
    let start = Instant::now();
    let output = ctx.run_ui(input, |ui| wb.ui(ui));
    let primitives = ctx.tessellate(output.shapes.clone(), output.pixels_per_point);
    let took = start.elapsed();
    std::hint::black_box(primitives);
    let mut textures = HashSet::new();
    for clipped in &output.shapes {
        if let egui::Shape::Mesh(mesh) = &clipped.shape {
            textures.insert(mesh.texture_id);
        }
    }
    textures.remove(&egui::TextureId::default());
    (took, textures)
}

/// Runs frames (with pauses, so background work lands) until `done` says so.
fn frames_until(
    ctx: &egui::Context,
    wb: &mut Workbench,
    mut done: impl FnMut(&HashSet<egui::TextureId>) -> bool,
) {
    let start = Instant::now();
    let mut t = 0.0;
    while start.elapsed() < Duration::from_secs(120) {
        let (_, textures) = frame(ctx, wb, Vec::new(), t);
        if done(&textures) {
            return;
        }
        t += 0.05;
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out");
}

fn next_image(root: &Path) {
    let photos = root.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let (w, h) = (4000u32, 3000u32);
    for i in 0..4u32 {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x / 16 + i * 40) as u8,
                (y / 12) as u8,
                ((x ^ y) / 32) as u8,
            ])
        });
        img.save(photos.join(format!("photo-{i}.jpg"))).unwrap();
    }
    let ws_root = root.join("ws-photos");
    let mut ws = Workspace::open(&ws_root).unwrap();
    import_images(&mut ws, &photos, "photos");
    project::create(
        &mut ws,
        "photos",
        Task::BoundingBoxes,
        &"photos".parse().unwrap(),
        labels_from_names(&["thing".into()]),
        1,
    )
    .unwrap();
    let files = ws
        .version_files(ws.resolve(&"photos".parse().unwrap()).unwrap().id)
        .unwrap();
    let mut decodes = Vec::new();
    for f in &files {
        let start = Instant::now();
        std::hint::black_box(
            lathe_core::images::thumbnail(&ws.blobs().path(&f.blob_hash), 4096).unwrap(),
        );
        decodes.push(start.elapsed());
    }
    decodes.sort();
    let ctx = egui::Context::default();
    let mut wb = Workbench::new(
        Service::new(lathe_core::Store::open(&ws_root).unwrap(), Arc::new(|| {})).unwrap(),
    );
    wb.open_label_project("photos");
    frames_until(&ctx, &mut wb, |t| !t.is_empty());
    // Let the next items be fetched and decoded ahead.
    std::thread::sleep(Duration::from_secs(3));
    frame(&ctx, &mut wb, Vec::new(), 100.0);
    let mut shows = Vec::new();
    let mut t = 101.0;
    for _ in 0..2 {
        let (_, before) = frame(&ctx, &mut wb, Vec::new(), t);
        let press = vec![egui::Event::Key {
            key: egui::Key::N,
            physical_key: None,
            pressed: true,
            repeat: false,
            modifiers: egui::Modifiers::NONE,
        }];
        let start = Instant::now();
        let mut events = press;
        loop {
            t += 0.016;
            let (_, now) = frame(&ctx, &mut wb, std::mem::take(&mut events), t);
            if !now.is_empty() && now != before {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the next image never showed"
            );
        }
        shows.push(start.elapsed());
        // Prefetch the one after.
        std::thread::sleep(Duration::from_secs(2));
        frame(&ctx, &mut wb, Vec::new(), t + 0.1);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "next 12-megapixel JPEG ({w} × {h}): shown {:.1} ms and {:.1} ms after the key with prefetch (target < 50 ms); decoding one takes {:.0} ms (median), which prefetch does ahead — {:.0}× the wait",
        ms(shows[0]),
        ms(shows[1]),
        ms(decodes[decodes.len() / 2]),
        ms(decodes[decodes.len() / 2]) / ms(shows[0]).max(0.001)
    );
}

fn many_shapes(root: &Path) {
    let folder = root.join("one");
    std::fs::create_dir_all(&folder).unwrap();
    image::RgbImage::from_fn(2000, 1500, |x, y| {
        image::Rgb([(x % 255) as u8, (y % 255) as u8, 90])
    })
    .save(folder.join("one.png"))
    .unwrap();
    let ws_root = root.join("ws-shapes");
    let mut ws = Workspace::open(&ws_root).unwrap();
    import_images(&mut ws, &folder, "one");
    let p = project::create(
        &mut ws,
        "dense",
        Task::BoundingBoxes,
        &"one".parse().unwrap(),
        labels_from_names(&["a".into(), "b".into()]),
        1,
    )
    .unwrap();
    let boxes: Vec<Shape> = (0..10_000)
        .map(|i| Shape::Box {
            label: if i % 2 == 0 { "a" } else { "b" }.into(),
            x: f64::from((i * 37) % 1980),
            y: f64::from((i * 53) % 1480),
            w: 12.0,
            h: 10.0,
            confidence: None,
            attributes: Default::default(),
        })
        .collect();
    project::submit(&ws, &p, 0, "bench", &boxes, "human").unwrap();
    let ctx = egui::Context::default();
    let mut wb = Workbench::new(
        Service::new(lathe_core::Store::open(&ws_root).unwrap(), Arc::new(|| {})).unwrap(),
    );
    wb.open_label_project("dense");
    frames_until(&ctx, &mut wb, |t| !t.is_empty());
    let mut times = Vec::new();
    for i in 0..40 {
        let (took, _) = frame(
            &ctx,
            &mut wb,
            vec![egui::Event::PointerMoved(egui::pos2(
                600.0 + i as f32,
                400.0,
            ))],
            200.0 + f64::from(i) / 60.0,
        );
        if i >= 5 {
            times.push(took);
        }
    }
    report_frames("annotator with 10,000 boxes on one image", &mut times);
}

fn export(root: &Path) {
    let items: usize = std::env::var("LATHE_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let ws_root = root.join("ws-export");
    let mut ws = Workspace::open(&ws_root).unwrap();
    let csv = root.join("texts.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(out, "text,label").unwrap();
        for i in 0..items {
            writeln!(
                out,
                "review number {i} says the product is {},{}",
                if i % 3 == 0 { "bad" } else { "good" },
                if i % 3 == 0 { "negative" } else { "positive" }
            )
            .unwrap();
        }
    }
    text_formats::import_file(&mut ws, &csv, text_formats::Format::Csv, "reviews").unwrap();
    drop(ws);
    // The export runs in a process of its own, so its peak memory is its own.
    let out = root.join("export.csv");
    let start = Instant::now();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(
            "LATHE_BENCH_EXPORT_CHILD",
            format!("{}\n{}", ws_root.display(), out.display()),
        )
        .output()
        .unwrap();
    let total = start.elapsed();
    let report = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    // The floor: the same rows written from memory with the csv crate.
    let docs = text_formats::parse_csv(&std::fs::read(&csv).unwrap(), "texts.csv").unwrap();
    let start = Instant::now();
    let mut sink = Vec::new();
    text_formats::write_csv(&docs, &mut sink).unwrap();
    let floor = start.elapsed();
    let size = std::fs::metadata(&out).unwrap().len();
    println!(
        "export of {items} labeled items to CSV ({:.1} MiB): {} (whole process {:.0} ms); writing the same rows from memory takes {:.0} ms",
        size as f64 / 1_048_576.0,
        report.trim(),
        total.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3
    );
}

fn export_child(args: &str) {
    let (root, out) = args.split_once('\n').unwrap();
    let ws = Workspace::open(root).unwrap();
    let p = project::open(&ws, "reviews").unwrap();
    let start = Instant::now();
    text_formats::export_to(&ws, &p, text_formats::Format::Csv, Path::new(out)).unwrap();
    let took = start.elapsed();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .trim()
        .to_owned();
    println!(
        "{:.0} ms, peak memory {}",
        took.as_secs_f64() * 1e3,
        peak.trim_start_matches("VmHWM:").trim()
    );
}
