//! End-to-end tests of the `lathe` binary's data commands: what a user types, what they see.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lathe_tests::{Sandbox, png};

const CSV: &[u8] =
    b"id,city,temp,when\n1,Oslo,-3.5,2024-01-02\n2,Lima,19.25,2024-01-03\n3,Oslo,,2024-01-04\n";

#[test]
fn import_list_show_profile_export_a_table() {
    let s = Sandbox::new();
    let csv = s.file("weather.csv", CSV);
    let out = s
        .lathe(&["data", "import", csv.to_str().unwrap(), "--name", "weather"])
        .ok();
    assert_eq!(out.stdout.trim(), "imported weather:1 (3 rows)");
    let again = s
        .lathe(&["data", "import", csv.to_str().unwrap(), "--name", "weather"])
        .ok();
    assert!(
        again.stdout.contains("unchanged: weather:1"),
        "{}",
        again.stdout
    );

    let list = s.lathe(&["data", "list", "--json"]).ok().json();
    assert_eq!(list[0]["name"], "weather");
    assert_eq!(list[0]["kind"], "table");
    assert_eq!(list[0]["latest_version"], 1);
    let text = s.lathe(&["data", "list"]).ok().stdout;
    assert!(
        text.lines().nth(1).unwrap().starts_with("weather"),
        "{text}"
    );

    let shown = s
        .lathe(&["data", "show", "weather:1", "--json"])
        .ok()
        .json();
    assert_eq!(shown["version"]["item_count"], 3);
    let columns: Vec<&str> = shown["version"]["meta"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["id", "city", "temp", "when"]);
    let versions = s.lathe(&["data", "show", "weather", "--json"]).ok().json();
    assert_eq!(versions.as_array().unwrap().len(), 1);

    let profile = s
        .lathe(&["data", "profile", "weather", "--json"])
        .ok()
        .json();
    assert_eq!(profile["rows"], 3);
    let temp = &profile["columns"][2];
    assert_eq!(temp["name"], "temp");
    assert_eq!(temp["null_count"], 1);
    assert_eq!(temp["numeric"]["min"], -3.5);
    assert_eq!(temp["numeric"]["max"], 19.25);
    let city = &profile["columns"][1];
    assert_eq!(city["top_values"][0], serde_json::json!(["Oslo", 2]));
    let profile_text = s.lathe(&["data", "profile", "weather"]).ok().stdout;
    assert!(
        profile_text.contains("temp (f64)  count 2  null 33.3%  distinct 2"),
        "{profile_text}"
    );

    // Same format: the very bytes that were imported. Another format: converted, same rows.
    let back = s.path("back.csv");
    s.lathe(&["data", "export", "weather:1", back.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&back).unwrap(), CSV);
    let parquet = s.path("back.parquet");
    s.lathe(&["data", "export", "weather", parquet.to_str().unwrap()])
        .ok();
    let out = s
        .lathe(&[
            "data",
            "import",
            parquet.to_str().unwrap(),
            "--name",
            "weather-pq",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["version"]["item_count"], 3);
    assert_eq!(out["created"], true);
}

#[test]
fn changed_content_makes_the_next_version() {
    let s = Sandbox::new();
    let csv = s.file("t.csv", b"a\n1\n");
    s.lathe(&["data", "import", csv.to_str().unwrap(), "--name", "t"])
        .ok();
    s.file("t.csv", b"a\n1\n2\n");
    let out = s
        .lathe(&[
            "data",
            "import",
            csv.to_str().unwrap(),
            "--name",
            "t",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["version"]["version"], 2);
    let first = s.lathe(&["data", "show", "t:1", "--json"]).ok().json();
    assert_eq!(first["version"]["item_count"], 1);
}

#[test]
fn images_and_text_round_trip() {
    let s = Sandbox::new();
    s.file("pics/cats/a.png", &png(3, 2));
    s.file("pics/dogs/b.png", &png(5, 4));
    let pics = s.path("data/pics");
    let out = s
        .lathe(&["data", "import", pics.to_str().unwrap(), "--name", "pets"])
        .ok();
    assert_eq!(out.stdout.trim(), "imported pets:1 (2 images)");
    let shown = s.lathe(&["data", "show", "pets:1", "--json"]).ok().json();
    assert_eq!(shown["files"][1]["path"], "dogs/b.png");
    assert_eq!(shown["files"][1]["width"], 5);
    let dest = s.path("exported-pets");
    s.lathe(&["data", "export", "pets", dest.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(dest.join("cats/a.png")).unwrap(), png(3, 2));

    let txt = s.file("notes.txt", "first\nsecond\n\nthird — ünïcode\n".as_bytes());
    let out = s
        .lathe(&[
            "data",
            "import",
            txt.to_str().unwrap(),
            "--name",
            "notes",
            "--kind",
            "text",
        ])
        .ok();
    assert_eq!(out.stdout.trim(), "imported notes:1 (3 items)");
    let dest = s.path("notes-out.jsonl");
    s.lathe(&["data", "export", "notes", dest.to_str().unwrap()])
        .ok();
    let exported = std::fs::read_to_string(&dest).unwrap();
    assert_eq!(exported.lines().count(), 3);
    assert!(
        exported.contains("\"text\":\"third — ünïcode\""),
        "{exported}"
    );
}

#[test]
fn bad_input_fails_with_one_line_and_changes_nothing() {
    let s = Sandbox::new();
    let good = s.file("good.csv", CSV);
    s.lathe(&["data", "import", good.to_str().unwrap(), "--name", "t"])
        .ok();
    let before = s.lathe(&["data", "show", "t", "--json"]).ok().stdout;

    let ragged = s.file("ragged.csv", b"a,b\n1,2\n3\n");
    s.lathe(&["data", "import", ragged.to_str().unwrap(), "--name", "t"])
        .fails_with("ragged.csv: line 3: expected 2 fields");
    let quoted = s.file("quoted.csv", b"a,b\n1,\"never closed\n2,3\n");
    s.lathe(&["data", "import", quoted.to_str().unwrap(), "--name", "t"])
        .fails_with("quoted.csv: line 2");
    let latin = s.file("latin.csv", b"a\ncaf\xe9\n");
    s.lathe(&["data", "import", latin.to_str().unwrap(), "--name", "t"])
        .fails_with("latin.csv: line 2: invalid UTF-8");
    let empty = s.file("empty.csv", b"");
    s.lathe(&["data", "import", empty.to_str().unwrap(), "--name", "t"])
        .fails_with("empty.csv: the file is empty");
    s.lathe(&["data", "import", "/no/such/file.csv", "--name", "t"])
        .fails_with("/no/such/file.csv: does not exist");
    s.file("broken/ok.png", &png(2, 2));
    let mut broken = png(16, 16);
    broken.truncate(60);
    s.file("broken/bad.png", &broken);
    let folder = s.path("data/broken");
    s.lathe(&["data", "import", folder.to_str().unwrap(), "--name", "pics"])
        .fails_with("bad.png");
    s.file("nothing/readme.md", b"no images here");
    let nothing = s.path("data/nothing");
    s.lathe(&[
        "data",
        "import",
        nothing.to_str().unwrap(),
        "--name",
        "pics",
    ])
    .fails_with("no images found");
    s.lathe(&["data", "show", "nope"])
        .fails_with("no data asset named 'nope'");
    s.lathe(&["data", "show", "t:9"])
        .fails_with("has no version 9");

    assert_eq!(
        s.lathe(&["data", "show", "t", "--json"]).ok().stdout,
        before
    );
    let list = s.lathe(&["data", "list", "--json"]).ok().json();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "a failed import must not leave an asset: {list}"
    );
}

#[test]
fn a_workspace_from_a_newer_lathe_is_refused() {
    let s = Sandbox::new();
    s.lathe(&["data", "list"]).ok();
    let db = record_future_migration(&s.workspace().join("lathe.db"));
    s.lathe(&["data", "list"])
        .fails_with(&format!("has schema version {db}"));
}

/// Records a migration this Lathe does not know, as a newer Lathe would have.
fn record_future_migration(db: &std::path::Path) -> i64 {
    let ws = lathe_core::Workspace::open(db.parent().unwrap()).unwrap();
    let future = lathe_core::db::MIGRATIONS.len() as i64 + 1;
    ws.write(|conn| {
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?1, 'future', 0)",
            [future],
        )?;
        Ok(())
    })
    .unwrap();
    future
}

#[test]
fn json_errors_are_json_and_unknown_names_get_the_nearest_suggested() {
    let s = Sandbox::new();
    let table = s.file("customers.csv", b"id,name\n1,a\n2,b\n");
    s.lathe(&[
        "data",
        "import",
        table.to_str().unwrap(),
        "--name",
        "customers",
    ])
    .ok();
    // With --json an error is a JSON object on stdout, with the same non-zero exit.
    for args in [
        &["data", "show", "custmers", "--json"][..],
        &["label", "status", "nope", "--json"][..],
        &["data", "show", "--json"][..],
        &["models", "show", "chrun", "--json"][..],
    ] {
        let run = s.lathe(args);
        assert_ne!(run.code, 0, "{args:?}");
        let answer: serde_json::Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", run.stdout));
        assert!(answer["error"].is_string(), "{args:?}: {answer}");
    }
    // A name that does not exist gets the nearest ones suggested, with or without --json.
    s.lathe(&["data", "show", "custmers"])
        .fails_with("no data asset named 'custmers'; did you mean 'customers'?");
    let answer = s.lathe(&["data", "profile", "Customer", "--json"]).json();
    assert_eq!(
        answer["error"],
        "no data asset named 'Customer'; did you mean 'customers'?"
    );
    s.lathe(&["data", "show", "zzz"])
        .fails_with("no data asset named 'zzz'");
    s.lathe(&["runs", "list", "--experiment", "Defualt"])
        .fails_with("no experiment named or numbered 'Defualt'; did you mean 'Default'?");
}
