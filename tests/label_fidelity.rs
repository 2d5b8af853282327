//! Label files from other tools, through the binary: images are measured upright (EXIF
//! orientation), coordinates a hair outside the image are taken on every edge and in every
//! format while real mistakes are refused, negative box sizes are normalized, names match
//! under Unicode normalization, forged RLE sizes are refused before anything is allocated, and
//! a COCO round trip keeps what a pycocotools user compares.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lathe_tests::{Sandbox, jpeg_with_orientation, peer_python, peer_script, png};
use serde_json::{Value, json};

fn import_coco(s: &Sandbox, coco: &Value, asset: &str, name: &str) -> lathe_tests::Run {
    let file = s.file(
        &format!("{name}.json"),
        serde_json::to_string(coco).unwrap().as_bytes(),
    );
    s.lathe(&[
        "label",
        "import",
        file.to_str().unwrap(),
        "--format",
        "coco",
        "--asset",
        asset,
        "--name",
        name,
    ])
}

fn export(s: &Sandbox, project: &str, format: &str, out: &str) -> std::path::PathBuf {
    let path = s.path(out);
    s.lathe(&[
        "label",
        "export",
        project,
        "--format",
        format,
        "--out",
        path.to_str().unwrap(),
    ])
    .ok();
    path
}

fn projects(s: &Sandbox) -> Vec<String> {
    let status = s.lathe(&["label", "status", "--json"]).ok().json();
    status
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn photos_are_measured_shown_and_exported_upright() {
    let s = Sandbox::new();
    // Stored 40 × 20 (left half red, right half blue); orientation 6 turns it upright to
    // 20 × 40 with the red half on top.
    s.file("photos/portrait.jpg", &jpeg_with_orientation(40, 20, 6));
    s.import_images("photos", "photos");
    let shown = s.lathe(&["data", "show", "photos:1", "--json"]).ok().json();
    let file = &shown["files"][0];
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(20), Some(40))
    );

    // A box drawn on the upright photo in another tool fits it.
    let coco = json!({
        "images": [{"id": 1, "file_name": "portrait.jpg", "width": 20, "height": 40}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 25, 10, 12],
                         "segmentation": [], "area": 120, "iscrowd": 0}]
    });
    import_coco(&s, &coco, "photos", "upright").ok();
    let out = export(&s, "upright", "coco", "upright.json");
    let back: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    assert_eq!(back["images"][0]["width"], 20);
    assert_eq!(back["images"][0]["height"], 40);
    // Numbers as they were read: whole numbers stay integers.
    assert_eq!(back["annotations"][0]["bbox"], json!([2, 25, 10, 12]));

    // The pixels every view and pre-labeler gets are the upright ones: red on top.
    let stored = s.path("data/photos/portrait.jpg");
    let thumb = lathe_core::images::thumbnail(&stored, 64).unwrap();
    assert_eq!((thumb.width, thumb.height), (20, 40));
    let pixel = |x: u32, y: u32| {
        let at = ((y * thumb.width + x) * 4) as usize;
        [thumb.rgba[at], thumb.rgba[at + 1], thumb.rgba[at + 2]]
    };
    assert!(
        pixel(10, 5)[0] > 150 && pixel(10, 5)[2] < 100,
        "{:?}",
        pixel(10, 5)
    );
    assert!(
        pixel(10, 35)[2] > 150 && pixel(10, 35)[0] < 100,
        "{:?}",
        pixel(10, 35)
    );
}

#[test]
fn every_edge_and_format_takes_rounding_and_refuses_real_mistakes() {
    let s = Sandbox::new();
    s.file("images/a.png", &png(100, 50));
    s.import_images("images", "images");
    let coco = |bbox: Value| {
        json!({
            "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 50}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox,
                             "segmentation": [], "area": 1, "iscrowd": 0}]
        })
    };
    // A hair outside on each of the four edges, from float rounding: taken, pulled onto it.
    let hairs = [
        (
            json!([-0.0000003, 10, 20, 10]),
            json!([0.0, 10.0, 19.9999997, 10.0]),
        ),
        (
            json!([10, -0.0000003, 20, 10]),
            json!([10.0, 0.0, 20.0, 9.9999997]),
        ),
        (
            json!([80, 10, 20.0000001, 10]),
            json!([80.0, 10.0, 20.0, 10.0]),
        ),
        (
            json!([10, 40, 20, 10.0000001]),
            json!([10.0, 40.0, 20.0, 10.0]),
        ),
    ];
    for (i, (bbox, kept)) in hairs.into_iter().enumerate() {
        let name = format!("hair{i}");
        import_coco(&s, &coco(bbox.clone()), "images", &name).ok();
        let out = export(&s, &name, "coco", &format!("{name}.json"));
        let back: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
        let got: Vec<f64> = back["annotations"][0]["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let want: Vec<f64> = kept
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-6,
                "{bbox}: kept {got:?}, wanted {want:?}"
            );
        }
    }
    // A negative width and height, as some tools write a box dragged up and left: normalized.
    import_coco(&s, &coco(json!([30, 40, -20, -30])), "images", "flipped").ok();
    let out = export(&s, "flipped", "coco", "flipped.json");
    let back: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    assert_eq!(back["annotations"][0]["bbox"], json!([10, 10, 20, 30]));
    // Really outside, on any edge: refused, naming the annotation; nothing stored.
    let before = projects(&s);
    for bbox in [
        json!([-3, 10, 20, 10]),
        json!([10, -3, 20, 10]),
        json!([90, 10, 20, 10]),
        json!([10, 45, 20, 10]),
        json!([10, 10, 0, 10]),
    ] {
        import_coco(&s, &coco(bbox.clone()), "images", "bad").fails_with("annotation 1");
    }
    assert_eq!(projects(&s), before);

    // The same tolerance in YOLO (normalized centres) and VOC (corners).
    let yolo = s.path("yolo");
    std::fs::create_dir_all(yolo.join("labels")).unwrap();
    std::fs::write(yolo.join("classes.txt"), "thing\n").unwrap();
    // x from -0.000001 × 100 to 0.2 × 100; y up to 50.0000025.
    std::fs::write(
        yolo.join("labels/a.txt"),
        "0 0.0999995 0.80000005 0.200001 0.4\n",
    )
    .unwrap();
    s.lathe(&[
        "label",
        "import",
        yolo.to_str().unwrap(),
        "--format",
        "yolo",
        "--asset",
        "images",
        "--name",
        "yolo-hair",
    ])
    .ok();
    std::fs::write(
        yolo.join("labels/a.txt"),
        "0 0.15 0.5 0.2 0.4\n0 1.05 0.5 0.2 0.4\n",
    )
    .unwrap();
    s.lathe(&[
        "label",
        "import",
        yolo.to_str().unwrap(),
        "--format",
        "yolo",
        "--asset",
        "images",
        "--name",
        "yolo-bad",
    ])
    .fails_with("line 2");
    let voc = s.file(
        "voc/a.xml",
        b"<annotation><filename>a.png</filename><object><name>thing</name><bndbox>\
          <xmin>-0.2</xmin><ymin>0</ymin><xmax>100.3</xmax><ymax>50</ymax></bndbox></object></annotation>",
    );
    s.lathe(&[
        "label",
        "import",
        voc.to_str().unwrap(),
        "--format",
        "voc",
        "--asset",
        "images",
        "--name",
        "voc-hair",
    ])
    .ok();
    let out = export(&s, "voc-hair", "coco", "voc-hair.json");
    let back: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    assert_eq!(back["annotations"][0]["bbox"], json!([0, 0, 100, 50]));
}

#[test]
fn names_match_under_unicode_normalization() {
    let s = Sandbox::new();
    // On disk decomposed (NFD, as unzipped on macOS); in the label file composed (NFC).
    let nfd = "cafe\u{301}.png";
    s.file(&format!("images/{nfd}"), &png(20, 20));
    s.import_images("images", "images");
    let coco = json!({
        "images": [{"id": 1, "file_name": "caf\u{e9}.png", "width": 20, "height": 20}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5],
                         "segmentation": [], "area": 25, "iscrowd": 0}]
    });
    import_coco(&s, &coco, "images", "accents").ok();
    let yolo = s.path("yolo");
    std::fs::create_dir_all(yolo.join("labels")).unwrap();
    std::fs::write(yolo.join("classes.txt"), "thing\n").unwrap();
    std::fs::write(yolo.join("labels/caf\u{e9}.txt"), "0 0.5 0.5 0.2 0.2\n").unwrap();
    s.lathe(&[
        "label",
        "import",
        yolo.to_str().unwrap(),
        "--format",
        "yolo",
        "--asset",
        "images",
        "--name",
        "accents-yolo",
    ])
    .ok();
    // A name that is really different is still refused.
    let other = json!({
        "images": [{"id": 1, "file_name": "cafe.png", "width": 20, "height": 20}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": []
    });
    import_coco(&s, &other, "images", "plain").fails_with("cafe.png");
}

#[test]
fn a_forged_rle_size_is_refused_before_anything_is_allocated() {
    let s = Sandbox::new();
    s.file("images/a.png", &png(8, 6));
    s.import_images("images", "images");
    for size in [
        json!([100000, 100000]),
        json!([4294967296u64, 4294967296u64]),
        json!([6, 9]),
    ] {
        let coco = json!({
            "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 6}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 1,
                             "segmentation": {"size": size, "counts": [0, 4]}}]
        });
        import_coco(&s, &coco, "images", "forged").fails_with("annotation 7");
    }
    assert!(projects(&s).is_empty());
}

/// What pycocotools sees differ between two COCO files (tests/peers/coco_compare.py).
fn coco_differences(before: &std::path::Path, after: &std::path::Path) -> Value {
    let out = std::process::Command::new(peer_python())
        .arg(peer_script("coco_compare.py"))
        .args([before, after])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "coco_compare.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    summary["differences"].clone()
}

#[test]
fn a_coco_round_trip_keeps_what_pycocotools_compares() {
    let s = Sandbox::new();
    s.file("images/a.png", &png(100, 50));
    s.file("images/b.png", &png(80, 60));
    s.import_images("images", "images");
    // Boxes and polygons mixed; category ids 3, 7, 12 with supercategories; image ids 11 and
    // 42; numbers as another tool wrote them, float noise included; CVAT's attributes.
    let coco = json!({
        "images": [
            {"id": 11, "file_name": "a.png", "width": 100, "height": 50},
            {"id": 42, "file_name": "b.png", "width": 80, "height": 60}
        ],
        "categories": [
            {"id": 3, "name": "cat", "supercategory": "animal"},
            {"id": 7, "name": "dog", "supercategory": "animal"},
            {"id": 12, "name": "car", "supercategory": "vehicle"}
        ],
        "annotations": [
            {"id": 101, "image_id": 11, "category_id": 3, "segmentation": [],
             "bbox": [52.78, 10.1, 20.3, 15.7], "area": 318.71, "iscrowd": 0,
             "attributes": {"occluded": false}},
            {"id": 102, "image_id": 11, "category_id": 12,
             "segmentation": [[10.5, 10.25, 40.75, 10.25, 40.75, 30.5, 10.5, 30.5, 5.1, 20.2]],
             "bbox": [5.1, 10.25, 35.65, 20.250000000000004], "area": 666.0, "iscrowd": 0},
            {"id": 250, "image_id": 42, "category_id": 7, "segmentation": [],
             "bbox": [0, 0, 80, 60], "area": 4800, "iscrowd": 0}
        ]
    });
    let before = s.file(
        "before.json",
        serde_json::to_string(&coco).unwrap().as_bytes(),
    );
    import_coco(&s, &coco, "images", "mixed").ok();
    let after = export(&s, "mixed", "coco", "after.json");
    let differences = coco_differences(&before, &after);
    assert_eq!(differences, json!([]), "pycocotools sees differences");
    // The boxes are still boxes, in a project that holds both.
    let back: Value = serde_json::from_slice(&std::fs::read(&after).unwrap()).unwrap();
    let kinds: Vec<bool> = back["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["segmentation"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(kinds, [true, false, true]);
    let text = std::fs::read_to_string(&after).unwrap();
    assert!(
        text.contains("52.78") && !text.contains("52.779999"),
        "{text}"
    );
    // And through Lathe again: still the same.
    let file = after.to_str().unwrap();
    s.lathe(&[
        "label", "import", file, "--format", "coco", "--asset", "images", "--name", "again",
    ])
    .ok();
    let again = export(&s, "again", "coco", "again.json");
    assert_eq!(coco_differences(&before, &again), json!([]));
}

#[test]
fn voc_flags_and_label_studio_ids_survive_a_round_trip() {
    let s = Sandbox::new();
    s.file("images/a.png", &png(100, 50));
    s.import_images("images", "images");
    let voc = s.file(
        "voc/a.xml",
        b"<annotation><filename>a.png</filename><object><name>cat</name><pose>Left</pose>\
          <truncated>1</truncated><difficult>1</difficult><bndbox><xmin>5.5</xmin>\
          <ymin>2</ymin><xmax>10.1</xmax><ymax>20.3</ymax></bndbox></object></annotation>",
    );
    s.lathe(&[
        "label",
        "import",
        voc.to_str().unwrap(),
        "--format",
        "voc",
        "--asset",
        "images",
        "--name",
        "flags",
    ])
    .ok();
    let out = export(&s, "flags", "voc", "voc-out");
    let xml = std::fs::read_to_string(out.join("Annotations/a.xml")).unwrap();
    for kept in [
        "<pose>Left</pose>",
        "<truncated>1</truncated>",
        "<difficult>1</difficult>",
        "<xmin>5.5</xmin>",
        "<xmax>10.1</xmax>",
        "<ymax>20.3</ymax>",
    ] {
        assert!(xml.contains(kept), "{kept} in {xml}");
    }

    let tasks = json!([
        {"id": 901, "data": {"image": "/data/upload/1/a.png"},
         "annotations": [{"id": 5, "result": [
            {"id": "Xy12ab", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
             "original_width": 100, "original_height": 50,
             "value": {"x": 33.333333333333336, "y": 10.0, "width": 20.5, "height": 40.0,
                       "rotation": 0, "rectanglelabels": ["cat"]}}]}]}
    ]);
    let file = s.file("ls.json", serde_json::to_string(&tasks).unwrap().as_bytes());
    s.lathe(&[
        "label",
        "import",
        file.to_str().unwrap(),
        "--format",
        "label-studio",
        "--asset",
        "images",
        "--name",
        "ls",
    ])
    .ok();
    let out = export(&s, "ls", "label-studio", "ls-out.json");
    let back: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    assert_eq!(back[0]["id"], 901);
    let result = &back[0]["annotations"][0]["result"][0];
    assert_eq!(result["id"], "Xy12ab");
    assert_eq!(result["value"]["x"], 33.333333333333336);
    assert_eq!(result["value"]["width"], 20.5);
}
