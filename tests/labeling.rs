//! Labeling from the CLI: projects over the corpus' COCO images, COCO import → export → import
//! round trips, and bad files refused naming the item with nothing stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use lathe_tests::Sandbox;
use serde_json::Value;

fn coco_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/annotation/coco/datumaro/tests/assets/coco_dataset/coco")
}

/// A sandbox with the corpus' `images/<split>` imported as the asset `<split>`.
fn with_images(split: &str) -> Sandbox {
    let s = Sandbox::new();
    let images = coco_root().join("images").join(split);
    s.lathe(&[
        "data",
        "import",
        images.to_str().unwrap(),
        "--name",
        split,
        "--kind",
        "images",
    ])
    .ok();
    s
}

fn annotations(split: &str) -> PathBuf {
    coco_root().join(format!("annotations/instances_{split}.json"))
}

fn shapes_of(s: &Sandbox, project: &str, out: &str) -> Value {
    let path = s.path(out);
    s.lathe(&["label", "export", project, "--out", path.to_str().unwrap()])
        .ok();
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn coco_boxes_import_export_and_import_again_unchanged() {
    let s = with_images("train");
    let imported = s
        .lathe(&[
            "label",
            "import",
            annotations("train").to_str().unwrap(),
            "--asset",
            "train",
            "--name",
            "boxes",
        ])
        .ok()
        .stdout;
    assert!(
        imported.contains("into project boxes (bounding_boxes): 1 of 1 items labeled, 1 shapes"),
        "{imported}"
    );
    let first = shapes_of(&s, "boxes", "first.json");
    let a = &first["annotations"][0];
    assert_eq!(a["bbox"], serde_json::json!([2.0, 2.0, 3.0, 1.0]));
    let category = a["category_id"].as_u64().unwrap() as usize;
    assert_eq!(first["categories"][category - 1]["name"], "b");
    assert_eq!(first["images"][0]["width"], 10);
    // The export imports into a new project with the same shapes.
    let exported = s.path("first.json");
    s.lathe(&[
        "label",
        "import",
        exported.to_str().unwrap(),
        "--asset",
        "train",
        "--name",
        "again",
    ])
    .ok();
    let second = shapes_of(&s, "again", "second.json");
    assert_eq!(first["annotations"], second["annotations"]);
    assert_eq!(first["categories"], second["categories"]);
    let status = s.lathe(&["label", "status", "boxes", "--json"]).ok().json();
    assert_eq!(status[0]["stats"]["by_annotator"]["import"], 1);
}

#[test]
fn coco_polygons_and_rle_masks_import_as_polygons() {
    let s = with_images("val");
    s.lathe(&[
        "label",
        "import",
        annotations("val").to_str().unwrap(),
        "--asset",
        "val",
        "--name",
        "masks",
    ])
    .ok();
    let exported = shapes_of(&s, "masks", "masks.json");
    let list = exported["annotations"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{exported}");
    // The polygon as given; the RLE mask (the first two columns of a 5 × 10 image) traced.
    assert_eq!(
        list[0]["segmentation"][0],
        serde_json::json!([0, 0, 1, 0, 1, 2, 0, 2])
    );
    assert_eq!(list[1]["bbox"], serde_json::json!([0.5, 0.5, 1, 9]));
    s.lathe(&[
        "label",
        "import",
        s.path("masks.json").to_str().unwrap(),
        "--asset",
        "val",
        "--name",
        "again",
    ])
    .ok();
    assert_eq!(
        shapes_of(&s, "again", "again.json")["annotations"],
        exported["annotations"]
    );
}

#[test]
fn bad_coco_files_name_the_item_and_store_nothing() {
    let s = with_images("train");
    let good: Value =
        serde_json::from_str(&std::fs::read_to_string(annotations("train")).unwrap()).unwrap();
    // (a field to change, its new value, what the refusal says)
    let cases = [
        (
            "/annotations/0/bbox",
            serde_json::json!([8.0, 2.0, 5.0, 1.0]),
            "annotation 1 on a.jpg: shape 1 (box 'b'): the box (8, 2, 5 × 1) falls outside the 10 × 5 image",
        ),
        (
            "/annotations/0/category_id",
            serde_json::json!(9),
            "annotation 1: category 9 is not among the categories",
        ),
        (
            "/images/0/file_name",
            serde_json::json!("missing.jpg"),
            "image 5 ('missing.jpg') is not in train:1",
        ),
    ];
    for (field, value, expected) in cases {
        let mut bad = good.clone();
        *bad.pointer_mut(field).unwrap() = value;
        let path = s.file("bad.json", bad.to_string().as_bytes());
        s.lathe(&[
            "label",
            "import",
            path.to_str().unwrap(),
            "--asset",
            "train",
            "--name",
            "bad",
        ])
        .fails_with(expected);
        s.lathe(&["label", "status", "bad"])
            .fails_with("there is no labeling project 'bad'");
    }
    let text = std::fs::read_to_string(annotations("train")).unwrap();
    let truncated = s.file("truncated.json", &text.as_bytes()[..text.len() / 2]);
    s.lathe(&[
        "label",
        "import",
        truncated.to_str().unwrap(),
        "--asset",
        "train",
        "--name",
        "bad",
    ])
    .fails_with("truncated.json: not a COCO file");
}

#[test]
fn a_project_is_created_over_an_asset_and_reports_its_progress() {
    let s = with_images("train");
    let out = s
        .lathe(&[
            "label",
            "create",
            "cats",
            "--asset",
            "train",
            "--task",
            "image_classification",
            "--labels",
            "cat,dog",
        ])
        .ok()
        .stdout;
    assert!(
        out.contains(
            "created project cats (image_classification) over train:1: 1 items, labels cat, dog"
        ),
        "{out}"
    );
    let status = s.lathe(&["label", "status"]).ok().stdout;
    assert!(
        status.contains("cats (image_classification) over train:1: 0 of 1 items labeled"),
        "{status}"
    );
    s.lathe(&[
        "label", "create", "x", "--asset", "train", "--task", "boxes", "--labels", "a",
    ])
    .fails_with("'boxes' is not a labeling task");
}

fn ner(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/annotation/ner")
        .join(path)
}

#[test]
fn conll_imports_as_a_text_project_and_exports_the_same_tags() {
    let s = Sandbox::new();
    let file = ner("spacy/extra/example_data/ner_example_data/ner-token-per-line-conll2003.iob");
    let out = s
        .lathe(&[
            "label",
            "import",
            file.to_str().unwrap(),
            "--format",
            "conll",
            "--name",
            "thrun",
        ])
        .ok()
        .stdout;
    assert!(out.contains("into project thrun (entity_spans)"), "{out}");
    let exported = s.path("thrun.conll");
    s.lathe(&[
        "label",
        "export",
        "thrun",
        "--format",
        "conll",
        "--out",
        exported.to_str().unwrap(),
    ])
    .ok();
    // The same tokens and tags as the source, less its DOCSTART line and middle columns.
    let source: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-DOCSTART-"))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            match cols.as_slice() {
                [] => String::new(),
                [token, .., tag] => format!("{token}\t{tag}"),
                _ => unreachable!(),
            }
        })
        .collect();
    let written = std::fs::read_to_string(&exported).unwrap();
    let trimmed = |lines: Vec<String>| {
        lines
            .into_iter()
            .skip_while(String::is_empty)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned()
    };
    assert_eq!(
        trimmed(written.lines().map(str::to_owned).collect()),
        trimmed(source)
    );
    // Its texts are a data asset.
    let list = s.lathe(&["data", "list"]).ok().stdout;
    assert!(list.contains("thrun-texts"), "{list}");
}

#[test]
fn span_jsonl_and_csv_round_trip_and_bad_lines_are_named() {
    let s = Sandbox::new();
    let good = s.file("spans.jsonl", b"{\"text\": \"This is New Berlin.\", \"label\": [[8, 18, \"LOC\"]]}\n{\"text\": \"Nothing here\", \"label\": []}\n");
    s.lathe(&[
        "label",
        "import",
        good.to_str().unwrap(),
        "--format",
        "jsonl",
        "--name",
        "spans",
    ])
    .ok();
    let out = s.path("spans-out.jsonl");
    s.lathe(&[
        "label",
        "export",
        "spans",
        "--format",
        "jsonl",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "{\"label\":[[8,18,\"LOC\"]],\"text\":\"This is New Berlin.\"}\n{\"label\":[],\"text\":\"Nothing here\"}\n"
    );
    // doccano's example has a line with no text; flair's has a span past the text's end.
    s.lathe(&[
        "label",
        "import",
        ner("doccano/backend/data_import/tests/data/sequence_labeling/example.jsonl")
            .to_str()
            .unwrap(),
        "--format",
        "jsonl",
        "--name",
        "bad",
    ])
    .fails_with("example.jsonl: line 3: no \"text\"");
    let flair = s.file(
        "flair.jsonl",
        b"{\"text\": \"This is New Berlin\", \"label\": [[8, 19, \"LOC\"]]}\n",
    );
    s.lathe(&[
        "label",
        "import",
        flair.to_str().unwrap(),
        "--format",
        "jsonl",
        "--name",
        "bad",
    ])
    .fails_with("line 1: the span 8..19 (LOC) does not lie within the text's 18 characters");
    s.lathe(&["label", "status", "bad"])
        .fails_with("there is no labeling project 'bad'");
    s.lathe(&[
        "label",
        "import",
        ner("doccano/backend/data_import/tests/data/text_classification/example.csv")
            .to_str()
            .unwrap(),
        "--format",
        "csv",
        "--name",
        "bad",
    ])
    .fails_with("example.csv: line 4: no text");
    let csv = import_sentiment(
        &s,
        b"text,label\ngreat product,positive\nbroke in a day,negative|returned\n",
    );
    let status = s
        .lathe(&["label", "status", "sentiment", "--json"])
        .ok()
        .json();
    assert_eq!(status[0]["project"]["task"], "text_multi_label");
    let out = s.path("sentiment.csv");
    s.lathe(&[
        "label",
        "export",
        "sentiment",
        "--format",
        "csv",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&csv).unwrap());
}

#[test]
fn yolo_labels_import_export_and_name_an_unmatched_file() {
    let s = Sandbox::new();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/annotation/yolo/label-studio-converter/tests/data/test_import_yolo_data");
    s.lathe(&[
        "data",
        "import",
        source.join("images").to_str().unwrap(),
        "--name",
        "doors",
        "--kind",
        "images",
    ])
    .ok();
    // The corpus folder has labels for seven images but only the first image.
    s.lathe(&[
        "label",
        "import",
        source.to_str().unwrap(),
        "--format",
        "yolo",
        "--asset",
        "doors",
        "--name",
        "all",
    ])
    .fails_with("labels/img_2.txt: no image 'img_2' in doors:1");
    let one = s.path("yolo");
    std::fs::create_dir_all(one.join("labels")).unwrap();
    std::fs::copy(source.join("classes.txt"), one.join("classes.txt")).unwrap();
    std::fs::copy(
        source.join("labels/img_1.txt"),
        one.join("labels/img_1.txt"),
    )
    .unwrap();
    s.lathe(&[
        "label",
        "import",
        one.to_str().unwrap(),
        "--format",
        "yolo",
        "--asset",
        "doors",
        "--name",
        "doors",
    ])
    .ok();
    let out = s.path("out");
    s.lathe(&[
        "label",
        "export",
        "doors",
        "--format",
        "yolo",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    let numbers = |path: &Path| -> Vec<Vec<f64>> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (before, after) = (
        numbers(&one.join("labels/img_1.txt")),
        numbers(&out.join("labels/img_1.txt")),
    );
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a[0], b[0], "class");
        for i in 1..5 {
            assert!((a[i] - b[i]).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(out.join("classes.txt"))
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        std::fs::read_to_string(one.join("classes.txt"))
            .unwrap()
            .lines()
            .collect::<Vec<_>>()
    );
}

#[test]
fn voc_files_import_export_and_import_again_unchanged() {
    let s = Sandbox::new();
    let voc = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/corpora/annotation/voc/mmdetection/tests/data/VOCdevkit/VOC2012/Annotations",
    );
    // The corpus keeps the XML, not the photo: a stand-in of the same size, found by its stem.
    let image = s.file("photos/000002.png", &lathe_tests::png(335, 500));
    s.lathe(&[
        "data",
        "import",
        image.parent().unwrap().to_str().unwrap(),
        "--name",
        "photos",
        "--kind",
        "images",
    ])
    .ok();
    s.lathe(&[
        "label",
        "import",
        voc.to_str().unwrap(),
        "--format",
        "voc",
        "--asset",
        "photos",
        "--name",
        "trains",
    ])
    .ok();
    let out = s.path("voc-out");
    s.lathe(&[
        "label",
        "export",
        "trains",
        "--format",
        "voc",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    let written = std::fs::read_to_string(out.join("Annotations/000002.xml")).unwrap();
    assert!(written.contains("<name>train</name>"), "{written}");
    assert!(
        written.contains("<xmin>139</xmin>") && written.contains("<ymax>301</ymax>"),
        "{written}"
    );
    s.lathe(&[
        "label",
        "import",
        out.join("Annotations").to_str().unwrap(),
        "--format",
        "voc",
        "--asset",
        "photos",
        "--name",
        "again",
    ])
    .ok();
    let again = s.path("again");
    s.lathe(&[
        "label",
        "export",
        "again",
        "--format",
        "voc",
        "--out",
        again.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(again.join("Annotations/000002.xml")).unwrap(),
        written
    );
    let big = s.file(
        "big.xml",
        std::fs::read_to_string(voc.join("000001.xml"))
            .unwrap()
            .replace("<xmax>207</xmax>", "<xmax>400</xmax>")
            .as_bytes(),
    );
    s.lathe(&[
        "label",
        "import",
        big.to_str().unwrap(),
        "--format",
        "voc",
        "--asset",
        "photos",
        "--name",
        "bad",
    ])
    .fails_with("falls outside the 335 × 500 image");
}

/// A sandbox with the text project `sentiment` imported from a `text,label` CSV.
fn sentiment(csv: &[u8]) -> Sandbox {
    let s = Sandbox::new();
    import_sentiment(&s, csv);
    s
}

/// Imports the `text,label` CSV `csv` as the text project `sentiment`; returns the CSV's path.
fn import_sentiment(s: &Sandbox, csv: &[u8]) -> PathBuf {
    let csv = s.file("reviews.csv", csv);
    s.lathe(&[
        "label",
        "import",
        csv.to_str().unwrap(),
        "--format",
        "csv",
        "--name",
        "sentiment",
    ])
    .ok();
    csv
}

#[test]
fn a_text_project_is_prelabeled_by_its_baseline() {
    let s = sentiment(b"text,label\ngreat product love it,positive\nbroke after a day,negative\nlove the colour,positive\nstopped working,negative\ni love it so much,\nit broke again,\n");
    let out = s
        .lathe(&[
            "label",
            "prelabel",
            "sentiment",
            "--threshold",
            "0.5",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["model"], "baseline:naive-bayes");
    assert_eq!(out["items"], 2);
    assert_eq!(out["confident"], 2);
}

#[test]
fn box_and_polygon_projects_are_prelabeled_by_colour_regions() {
    use lathe_core::labeling::{Shape, assist, project};
    let s = Sandbox::new();
    let truth: [[u32; 4]; 5] = [
        [10, 10, 40, 30],
        [90, 50, 50, 40],
        [30, 70, 30, 30],
        [100, 8, 40, 60],
        [20, 20, 70, 50],
    ];
    for (i, [x, y, w, h]) in truth.iter().enumerate() {
        s.file(
            &format!("shapes/{i}.png"),
            &lathe_tests::red_rectangle(*x, *y, *w, *h),
        );
    }
    s.import_images("shapes", "shapes");
    for (name, task) in [("b", "bounding_boxes"), ("p", "polygons")] {
        s.lathe(&[
            "label", "create", name, "--asset", "shapes", "--task", task, "--labels", "red",
        ])
        .ok();
        s.lathe(&["label", "prelabel", name])
            .fails_with("label a few items first");
        let ws = lathe_core::Workspace::open(s.workspace()).unwrap();
        let project = project::open(&ws, name).unwrap();
        for (position, [x, y, w, h]) in truth.iter().enumerate().take(2) {
            let (x, y, w, h) = (f64::from(*x), f64::from(*y), f64::from(*w), f64::from(*h));
            let shape = Shape::rectangle(project.task, "red".into(), [x, y, x + w, y + h], None);
            project::submit(&ws, &project, position as i64, "ann", &[shape], "human").unwrap();
        }
        // Cancelled, it stores nothing.
        let cancelled = lathe_core::jobs::Progress::default();
        cancelled.cancel();
        assert!(matches!(
            assist::prelabel(&ws, &project, 0.9, &cancelled),
            Err(lathe_core::Error::Cancelled)
        ));
        assert_eq!(assist::prediction(&ws, &project, 2).unwrap(), None);
        let out = s
            .lathe(&["label", "prelabel", name, "--threshold", "0.9", "--json"])
            .ok()
            .json();
        assert_eq!(out["model"], "baseline:colour-regions");
        assert_eq!(out["items"], 3, "{out}");
        assert_eq!(out["confident"], 3, "{out}");
        for (position, [x, y, w, h]) in truth.iter().enumerate().skip(2) {
            let want = [f64::from(*x), f64::from(*y), f64::from(*w), f64::from(*h)];
            let (model, shapes) = assist::prediction(&ws, &project, position as i64)
                .unwrap()
                .unwrap();
            assert_eq!(model, "baseline:colour-regions");
            assert_eq!(shapes.len(), 1, "item {position}: {shapes:?}");
            let [l, t, r, b] = shapes[0].bounds().unwrap();
            let found = [l, t, r - l, b - t];
            assert!(
                lathe_tests::iou(found, want) > 0.9,
                "item {position}: found {found:?}, drawn at {want:?}"
            );
        }
    }
}

#[test]
fn labels_become_a_table_data_asset_that_names_its_project() {
    let s = with_images("train");
    s.lathe(&[
        "label",
        "import",
        annotations("train").to_str().unwrap(),
        "--asset",
        "train",
        "--name",
        "boxes",
    ])
    .ok();
    let out = s
        .lathe(&["label", "export", "boxes", "--asset", "boxes-labels"])
        .ok()
        .stdout;
    assert!(
        out.contains("recorded data asset boxes-labels:1 (1 rows) from project boxes"),
        "{out}"
    );
    // A project with nothing labeled has nothing to record, and says so by its name.
    s.lathe(&[
        "label",
        "create",
        "empty",
        "--asset",
        "train",
        "--task",
        "bounding_boxes",
        "--labels",
        "a",
    ])
    .ok();
    s.lathe(&["label", "export", "empty", "--asset", "empty-labels"])
        .fails_with("empty has no labels yet");
    let again = s
        .lathe(&["label", "export", "boxes", "--asset", "boxes-labels"])
        .ok()
        .stdout;
    assert!(
        again.contains("unchanged: data asset boxes-labels:1"),
        "{again}"
    );
    let out = s.path("boxes.json");
    let report = s
        .lathe(&[
            "label",
            "export",
            "boxes",
            "--asset",
            "boxes-labels",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(report["created"], false, "{report}");
    assert_eq!(report["asset"]["version"], 1, "{report}");
    assert_eq!(report["format"], "coco", "{report}");
    // One image of one, labeled, with one box.
    assert_eq!(
        (&report["items"], &report["labeled"], &report["annotations"]),
        (&1.into(), &1.into(), &1.into()),
        "{report}"
    );
    assert!(out.is_file());
    let shown = s
        .lathe(&["data", "show", "boxes-labels:1", "--json"])
        .ok()
        .json();
    let text = shown.to_string();
    assert!(
        text.contains("labels of project boxes over train:1"),
        "{text}"
    );
    let table = s.path("labels.csv");
    s.lathe(&["data", "export", "boxes-labels:1", table.to_str().unwrap()])
        .ok();
    let csv = std::fs::read_to_string(&table).unwrap();
    assert!(csv.starts_with("item,name,label,kind,x,y,w,h,start,end,annotator,source\n0,a.jpg,b,box,2,2,3,1,,,import,import:instances_train.json"), "{csv}");
}

#[test]
fn label_studio_exports_import_and_export_again() {
    let s = Sandbox::new();
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/annotation/label-studio/label-studio-converter/tests/data/test_export_yolo/data.json");
    // The corpus has the tasks, not the images: stand-ins named as the tasks' images.
    for name in ["image1", "image2"] {
        s.file(&format!("ls/{name}.png"), &lathe_tests::png(280, 280));
    }
    s.import_images("ls", "cells");
    let out = s
        .lathe(&[
            "label",
            "import",
            data.to_str().unwrap(),
            "--format",
            "label-studio",
            "--asset",
            "cells",
            "--name",
            "parasites",
        ])
        .ok()
        .stdout;
    assert!(
        out.contains("(bounding_boxes): 2 of 2 items labeled"),
        "{out}"
    );
    let first = s.path("first.json");
    s.lathe(&[
        "label",
        "export",
        "parasites",
        "--format",
        "label-studio",
        "--out",
        first.to_str().unwrap(),
    ])
    .ok();
    // The boxes in percent, as in the source's last annotation of each task.
    let source: Value = serde_json::from_str(&std::fs::read_to_string(&data).unwrap()).unwrap();
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    let boxes = |v: &Value, task: usize| -> Vec<[f64; 4]> {
        let annotations = v[task]["annotations"].as_array().unwrap();
        annotations.last().unwrap()["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let b = &r["value"];
                [
                    b["x"].as_f64().unwrap(),
                    b["y"].as_f64().unwrap(),
                    b["width"].as_f64().unwrap(),
                    b["height"].as_f64().unwrap(),
                ]
            })
            .collect()
    };
    for task in 0..2 {
        let (a, b) = (boxes(&source, task), boxes(&exported, task));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(
                x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-9),
                "{x:?} vs {y:?}"
            );
        }
    }
    s.lathe(&[
        "label",
        "import",
        first.to_str().unwrap(),
        "--format",
        "label-studio",
        "--asset",
        "cells",
        "--name",
        "again",
    ])
    .ok();
    let second = s.path("second.json");
    s.lathe(&[
        "label",
        "export",
        "again",
        "--format",
        "label-studio",
        "--out",
        second.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(&first).unwrap(),
        std::fs::read_to_string(&second).unwrap()
    );
    let obb = data.with_file_name("data_obb.json");
    s.lathe(&[
        "label",
        "import",
        obb.to_str().unwrap(),
        "--format",
        "label-studio",
        "--asset",
        "cells",
        "--name",
        "bad",
    ])
    .fails_with("rotated boxes are not supported");
}

#[test]
fn a_registered_onnx_model_prelabels_image_classes() {
    let s = Sandbox::new();
    let onnx = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/onnx/onnx/onnx/backend/test/data/light/light_squeezenet.onnx");
    s.lathe(&[
        "models",
        "register",
        onnx.to_str().unwrap(),
        "--name",
        "squeeze",
    ])
    .ok();
    let images = s.file("pics/a.png", &lathe_tests::png(64, 48));
    s.file("pics/b.png", &lathe_tests::png(32, 32));
    s.lathe(&[
        "data",
        "import",
        images.parent().unwrap().to_str().unwrap(),
        "--name",
        "pics",
        "--kind",
        "images",
    ])
    .ok();
    s.lathe(&[
        "label",
        "create",
        "kinds",
        "--asset",
        "pics",
        "--task",
        "image_classification",
        "--labels",
        "x,y,z",
    ])
    .ok();
    let out = s
        .lathe(&[
            "label",
            "prelabel",
            "kinds",
            "--model",
            "squeeze:1",
            "--threshold",
            "0",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["model"], "squeeze:1");
    assert_eq!(out["items"], 2);
    assert_eq!(out["confident"], 2);
    s.lathe(&["label", "prelabel", "kinds", "--model", "squeeze:7"])
        .fails_with("squeeze");
}

#[test]
fn an_export_format_that_cannot_hold_the_task_says_which_can() {
    let s = with_images("train");
    s.lathe(&[
        "label",
        "create",
        "kinds",
        "--asset",
        "train",
        "--task",
        "image_classification",
        "--labels",
        "a,b",
    ])
    .ok();
    s.lathe(&[
        "label",
        "export",
        "kinds",
        "--format",
        "coco",
        "--out",
        s.path("x.json").to_str().unwrap(),
    ])
    .fails_with(
        "coco holds boxes and polygons; export a image_classification project as label-studio",
    );
    assert!(!s.path("x.json").exists(), "nothing half-written");
}

#[test]
fn a_registered_onnx_detector_prelabels_boxes_and_polygons() {
    use lathe_core::labeling::{Shape, assist, project};
    let s = Sandbox::new();
    let truth: [[u32; 4]; 3] = [[10, 10, 40, 30], [90, 50, 50, 40], [20, 60, 100, 50]];
    for (i, [x, y, w, h]) in truth.iter().enumerate() {
        s.file(
            &format!("shapes/{i}.png"),
            &lathe_tests::red_rectangle(*x, *y, *w, *h),
        );
    }
    s.import_images("shapes", "shapes");
    for (model, layout) in [
        ("rows", lathe_tests::red_detector::Layout::Rows),
        ("separate", lathe_tests::red_detector::Layout::Separate),
    ] {
        let file = s.file(
            &format!("{model}.onnx"),
            &lathe_tests::red_detector::model(layout),
        );
        s.lathe(&[
            "models",
            "register",
            file.to_str().unwrap(),
            "--name",
            model,
        ])
        .ok();
    }
    for (name, task, model) in [
        ("b", "bounding_boxes", "rows"),
        ("p", "polygons", "separate"),
    ] {
        s.lathe(&[
            "label", "create", name, "--asset", "shapes", "--task", task, "--labels", "red,blue",
        ])
        .ok();
        let reference = format!("{model}:1");
        let out = s
            .lathe(&["label", "prelabel", name, "--model", &reference, "--json"])
            .ok()
            .json();
        assert_eq!(out["model"], reference);
        assert_eq!(out["items"], 3, "{out}");
        assert_eq!(out["confident"], 3, "{out}");
        let ws = lathe_core::Workspace::open(s.workspace()).unwrap();
        let project = project::open(&ws, name).unwrap();
        for (position, [x, y, w, h]) in truth.iter().enumerate() {
            let want = [f64::from(*x), f64::from(*y), f64::from(*w), f64::from(*h)];
            let (_, shapes) = assist::prediction(&ws, &project, position as i64)
                .unwrap()
                .unwrap();
            let [shape] = &shapes[..] else {
                panic!("item {position}: {shapes:?}");
            };
            assert_eq!(shape.label(), "red");
            assert_eq!(shape.confidence(), Some(f64::from(0.9f32)));
            if let Shape::Polygon { points, .. } = shape {
                assert_eq!(points.len(), 4, "a box's corners");
            }
            let [l, t, r, b] = shape.bounds().unwrap();
            let found = [l, t, r - l, b - t];
            assert!(
                lathe_tests::iou(found, want) > 0.85,
                "{name} item {position}: found {found:?}, drawn at {want:?}"
            );
        }
    }
    // A model whose output is no detection says what it expected.
    let squeeze = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/onnx/onnx/onnx/backend/test/data/light/light_squeezenet.onnx");
    s.lathe(&[
        "models",
        "register",
        squeeze.to_str().unwrap(),
        "--name",
        "squeeze",
    ])
    .ok();
    s.lathe(&["label", "prelabel", "b", "--model", "squeeze:1"])
        .fails_with("model squeeze:1: its outputs [[1, 1000, 1, 1]] are neither rows");
}

#[test]
fn the_label_schema_is_shown_and_changed_from_the_cli() {
    let s = sentiment(b"text,label\ngreat,positive\nbad,negative\nfine,positive\n");
    let schema = |s: &Sandbox| {
        s.lathe(&["label", "labels", "sentiment", "--json"])
            .ok()
            .json()
    };
    let before = schema(&s);
    assert_eq!(before.as_array().unwrap().len(), 2, "{before}");
    let changed = s
        .lathe(&[
            "label",
            "labels",
            "sentiment",
            "--add",
            "neutral",
            "--color",
            "neutral=#123456",
            "--hotkey",
            "positive=9",
            "--json",
        ])
        .ok()
        .json();
    let by_name = |v: &Value, name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_name(&changed, "neutral")["color"], "#123456");
    assert_eq!(by_name(&changed, "neutral")["hotkey"], "3");
    assert_eq!(by_name(&changed, "positive")["hotkey"], "9");
    let text = s.lathe(&["label", "labels", "sentiment"]).ok().stdout;
    assert!(text.contains("3  #123456  neutral"), "{text}");
    // Refusals name the label and keep the schema as it was.
    s.lathe(&["label", "labels", "sentiment", "--drop", "positive"])
        .fails_with("label 'positive' is on 2 shape(s) and cannot be dropped");
    s.lathe(&["label", "labels", "sentiment", "--color", "nope=#ffffff"])
        .fails_with("no label 'nope'; the project has negative, positive, neutral");
    s.lathe(&["label", "labels", "sentiment", "--color", "negative=red"])
        .fails_with("label 'negative': colour 'red' is not #rrggbb");
    s.lathe(&["label", "labels", "sentiment", "--hotkey", "negative=9"])
        .fails_with("labels 'negative' and 'positive' both have hotkey '9'");
    s.lathe(&["label", "labels", "sentiment", "--hotkey", "negative=0"])
        .fails_with("label 'negative': hotkey '0' is not a digit 1–9");
    assert_eq!(schema(&s), changed);
    s.lathe(&["label", "labels", "sentiment", "--drop", "neutral"])
        .ok();
    assert_eq!(schema(&s).as_array().unwrap().len(), 2);
}

#[test]
fn figures_in_colours_never_labeled_are_found_and_told_apart_by_shape() {
    use lathe_core::labeling::{Shape, assist, project};
    let s = Sandbox::new();
    // Every image has its own ink and ground: only contrast and shape carry over.
    let inks = [
        [200, 40, 40],
        [30, 90, 200],
        [20, 140, 60],
        [90, 40, 120],
        [230, 200, 40],
        [40, 40, 40],
    ];
    let grounds = [
        [240, 240, 235],
        [250, 220, 230],
        [200, 220, 250],
        [235, 250, 220],
        [60, 60, 90],
        [210, 200, 180],
    ];
    let kinds = ["circle", "square", "triangle"];
    let mut truth = Vec::new();
    for i in 0..12 {
        let kind = kinds[i % 3];
        let at = [
            10 + (i as u32 * 23) % 80,
            8 + (i as u32 * 17) % 50,
            44 + (i as u32 % 4) * 6,
        ];
        s.file(
            &format!("figures/{i:02}.png"),
            &lathe_tests::figure(kind, at, inks[i % 6], grounds[(i + i / 6) % 6]),
        );
        truth.push((kind, at.map(f64::from)));
    }
    s.import_images("figures", "figures");
    s.lathe(&[
        "label",
        "create",
        "f",
        "--asset",
        "figures",
        "--task",
        "bounding_boxes",
        "--labels",
        "circle,square,triangle",
    ])
    .ok();
    let ws = lathe_core::Workspace::open(s.workspace()).unwrap();
    let p = project::open(&ws, "f").unwrap();
    for (position, (kind, [x, y, size])) in truth.iter().enumerate().take(6) {
        let shape = Shape::rectangle(p.task, (*kind).into(), [*x, *y, x + size, y + size], None);
        project::submit(&ws, &p, position as i64, "ann", &[shape], "human").unwrap();
    }
    let out = s
        .lathe(&["label", "prelabel", "f", "--threshold", "0.5", "--json"])
        .ok()
        .json();
    assert_eq!(out["items"], 6, "{out}");
    let mut right = 0;
    for (position, (kind, [x, y, size])) in truth.iter().enumerate().skip(6) {
        let (_, shapes) = assist::prediction(&ws, &p, position as i64)
            .unwrap()
            .unwrap();
        let [
            Shape::Box {
                label,
                x: bx,
                y: by,
                w,
                h,
                ..
            },
        ] = &shapes[..]
        else {
            panic!("item {position}: one box, not {shapes:?}");
        };
        let overlap = lathe_tests::iou([*bx, *by, *w, *h], [*x, *y, *size, *size]);
        assert!(
            overlap > 0.8,
            "item {position}: {shapes:?} for a {kind} at {x},{y} size {size}"
        );
        right += usize::from(label == kind);
    }
    assert_eq!(right, 6, "every figure gets its shape's label");
}
