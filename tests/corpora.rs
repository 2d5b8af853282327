//! Real files written by others (../shared/corpora): every tabular CSV imports, a known dataset
//! profiles to its known facts, and real image folders import. Fails loudly if the corpora are
//! missing, rather than passing without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use lathe_tests::Sandbox;

fn corpora() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    assert!(
        dir.is_dir(),
        "the shared corpora are missing at {}: they sit beside the checkout",
        dir.display()
    );
    dir
}

fn csv_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            csv_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "csv") {
            out.push(path);
        }
    }
}

#[test]
fn every_tabular_csv_imports() {
    let s = Sandbox::new();
    let mut files = Vec::new();
    csv_files(&corpora().join("tabular"), &mut files);
    assert!(
        files.len() >= 10,
        "expected the tabular corpus, found {files:?}"
    );
    for (i, file) in files.iter().enumerate() {
        let out = s
            .lathe(&[
                "data",
                "import",
                file.to_str().unwrap(),
                "--name",
                &format!("t{i}"),
                "--json",
            ])
            .ok()
            .json();
        assert!(
            out["version"]["item_count"].as_i64().unwrap() > 0,
            "{}",
            file.display()
        );
    }
}

#[test]
fn titanic_profiles_to_its_known_facts() {
    let s = Sandbox::new();
    let titanic =
        corpora().join("tabular/azureml-examples/cli/assets/data/sample-data/titanic.csv");
    s.lathe(&[
        "data",
        "import",
        titanic.to_str().unwrap(),
        "--name",
        "titanic",
    ])
    .ok();
    let profile = s
        .lathe(&["data", "profile", "titanic", "--json"])
        .ok()
        .json();
    assert_eq!(profile["rows"], 891);
    let column = |name: &str| {
        profile["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(column("Age")["null_count"], 177);
    assert_eq!(column("Cabin")["null_count"], 687);
    assert_eq!(
        column("Sex")["top_values"][0],
        serde_json::json!(["male", 577])
    );
    assert_eq!(column("Survived")["numeric"]["max"], 1.0);
    assert_eq!(column("Pclass")["distinct"], 3);
}

#[test]
fn real_image_folders_import() {
    let s = Sandbox::new();
    let images = corpora().join("annotation/coco/datumaro/tests/assets/coco_dataset/coco/images");
    let out = s
        .lathe(&[
            "data",
            "import",
            images.to_str().unwrap(),
            "--name",
            "coco",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["version"]["item_count"], 2);
    let shown = s.lathe(&["data", "show", "coco:1", "--json"]).ok().json();
    assert_eq!(shown["files"][0]["path"], "train/a.jpg");
    assert_eq!(
        (
            shown["files"][0]["width"].as_i64(),
            shown["files"][0]["height"].as_i64()
        ),
        (Some(10), Some(5))
    );
}
