//! The architecture invariants of ARCHITECTURE.md, checked: lathe-core knows nothing of the GUI
//! or the CLI; lathe-ui never touches SQLite, threads or the disk; the source keeps the house rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cargo metadata` for this machine's platform, read once for all tests.
fn metadata() -> &'static serde_json::Value {
    static METADATA: OnceLock<serde_json::Value> = OnceLock::new();
    METADATA.get_or_init(|| {
        let rustc = Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("rustc runs");
        let host = String::from_utf8_lossy(&rustc.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .expect("rustc names its host");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &host,
            ])
            .current_dir(repo())
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

/// Every package `package` depends on, directly or not (normal dependencies only).
fn dependency_closure(package: &str) -> BTreeSet<String> {
    let meta = metadata();
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, Vec<&str>> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let deps = n["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| d["pkg"].as_str().unwrap())
                .collect();
            (n["id"].as_str().unwrap(), deps)
        })
        .collect();
    let start = names
        .iter()
        .find(|(_, n)| **n == package)
        .map(|(id, _)| *id)
        .expect("package in metadata");
    let mut seen = BTreeSet::new();
    let mut stack = vec![start];
    while let Some(id) = stack.pop() {
        for dep in &nodes[id] {
            if seen.insert(names[dep].to_owned()) {
                stack.push(dep);
            }
        }
    }
    seen
}

/// The packages `package` declares as normal dependencies.
fn direct_dependencies(package: &str) -> BTreeSet<String> {
    let meta = metadata();
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .expect("package in metadata");
    pkg["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn core_knows_nothing_of_the_gui_or_the_cli() {
    let deps = dependency_closure("lathe-core");
    for forbidden in [
        "egui",
        "eframe",
        "egui_extras",
        "egui_plot",
        "winit",
        "clap",
        "indicatif",
        "rfd",
        "lathe-ui",
        // The HTTP server lives in the app; core's store is plain threads. (polars brings
        // tokio along for its own use, so the runtime itself cannot be checked this way.)
        "axum",
    ] {
        assert!(
            !deps.contains(forbidden),
            "lathe-core depends on {forbidden}"
        );
    }
    assert!(
        deps.contains("rusqlite") && deps.contains("polars"),
        "the closure was read: {deps:?}"
    );
}

#[test]
fn ui_does_not_reach_the_database_or_the_runtime() {
    let closure = dependency_closure("lathe-ui");
    for forbidden in ["eframe", "clap", "rfd"] {
        assert!(
            !closure.contains(forbidden),
            "lathe-ui depends on {forbidden}"
        );
    }
    // SQLite and tokio come in through lathe-core (polars uses tokio), so the rule is on what
    // lathe-ui itself declares and what its source uses.
    let direct = direct_dependencies("lathe-ui");
    assert!(
        direct.contains("egui"),
        "the dependencies were read: {direct:?}"
    );
    for forbidden in ["rusqlite", "tokio", "polars", "image"] {
        assert!(
            !direct.contains(forbidden),
            "lathe-ui declares a dependency on {forbidden}"
        );
    }
    for (file, text) in sources("ui/src") {
        for forbidden in [
            "rusqlite",
            "tokio",
            "std::thread",
            "thread::spawn",
            "std::fs",
            "File::open",
            "Workspace::open",
            ".recv(",
            "sleep(",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}: the UI must send commands instead",
                file.display()
            );
        }
    }
}

#[test]
fn only_the_app_starts_eframe_and_parses_arguments() {
    for dir in ["core/src", "ui/src"] {
        for (file, text) in sources(dir) {
            for forbidden in ["eframe::", "clap::", "run_native"] {
                assert!(
                    !text.contains(forbidden),
                    "{} uses {forbidden}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn house_rules_hold_in_every_source_file() {
    for dir in ["core/src", "ui/src", "app/src"] {
        for (file, text) in sources(dir) {
            assert!(
                file.file_name().unwrap() != "mod.rs",
                "{}: no mod.rs files",
                file.display()
            );
            assert!(
                text.starts_with("//!"),
                "{} should open with a //! line saying what it is for",
                file.display()
            );
        }
    }
}

#[test]
fn pipelines_services_and_labeling_fail_with_error_types_not_strings() {
    // An error as a `String` cannot be matched (a cancel told from a fault, a missing input
    // from a bad one); these domains have their own enums (PipelineError, LabelError, Failure).
    for dir in ["core/src/pipeline", "core/src/service", "core/src/labeling"] {
        for (file, text) in sources(dir) {
            let name = file.strip_prefix(repo()).unwrap().display().to_string();
            for (i, _) in shipped(&text).match_indices("Result<") {
                let signature: String = text[i..].chars().take_while(|c| *c != '{').collect();
                let head = signature.split('\n').next().unwrap_or_default();
                assert!(
                    !head.contains(", String>"),
                    "{name}: `{head}` fails with a String; use the domain's error type"
                );
            }
        }
    }
}

/// The part of a source file that ships: what comes before its `#[cfg(test)]` module.
fn shipped(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn the_store_alone_opens_connections_and_begins_transactions() {
    // core/src/store.rs holds the one writer and the readers; core/src/db.rs opens connections
    // for it and applies migrations (BEGIN IMMEDIATE). Nowhere else may a connection be opened
    // or a transaction begun, and no transaction is DEFERRED (a deferred write can fail with
    // "database is locked" midway instead of waiting its turn).
    let owners = ["core/src/store.rs", "core/src/db.rs"];
    let forbidden = [
        "Connection::open",
        "db::open(",
        "db::connect(",
        "open_in_memory",
        "unchecked_transaction",
        ".transaction()",
        "transaction_with_behavior",
        "BEGIN",
        "DEFERRED",
        "Deferred",
    ];
    for dir in ["core/src", "ui/src", "app/src"] {
        for (file, text) in sources(dir) {
            let name = file.strip_prefix(repo()).unwrap().display().to_string();
            let code = shipped(&text);
            if owners.contains(&name.as_str()) {
                for bad in [
                    "unchecked_transaction",
                    ".transaction()",
                    "DEFERRED",
                    "Deferred",
                ] {
                    assert!(!code.contains(bad), "{name}: `{bad}`");
                }
                for (i, _) in code.match_indices("BEGIN") {
                    assert!(
                        code[i..].starts_with("BEGIN IMMEDIATE"),
                        "{name}: a transaction that is not BEGIN IMMEDIATE"
                    );
                }
                continue;
            }
            for bad in forbidden {
                assert!(
                    !code.contains(bad),
                    "{name}: `{bad}` outside the store (use Store::transaction, Store::write \
                     or Store::read)"
                );
            }
        }
    }
}

#[test]
fn migrations_are_append_only() {
    // Hashes of migrations that shipped. Editing one breaks every workspace made with it; add a
    // new migration instead. (A new migration appends a line here.)
    let shipped = [
        "f8c6ff3fd21b3213372c412982458441862f8777eec0e151ff482988a4c7a6b4",
        "9f8dc7e0d14155b2a8c2dcbec2c3915c0518a950ba37f3bca3de62c095fdea59",
        "1c8d98eb1ede68839f3fd556e09cd413f30b3056c4fd703cafcf9ffad5bd6069",
        "e1f64e1341d20bf881d1a777bfd7866399661712fb0e640e77a6fbfb143089d6",
        "6f59adb50f6f6427dfb8a3d3441eb29a670afd0dfa1f1151834edf351322f856",
        "41b38133673bc57844003fe9bb8ff5a1a73b5dea044f9b809a0bad3aa42f5ecd",
        "88b8b4d5eecb438d9bba33c8c21db37878d9aa36b1e81f045bb04d60782de80d",
        "922acbfaf99028e93309ddbeba644739205c497a6593e8181a686f4f228de2db",
        "a9bd52947dd5b9b037cf33bbfe0be226830218d452c7503c934be5f24be5d109",
        "1c3447a0fa302a5fb0898c48060fe159f284ef338ba4eb8e3c4879a16714cf93",
        "70ead6f0a07eab375ec30f7d6de9b7ece896f3255714ebc24ea0e7e75548be48",
        "7b70c4db0756bd52fb03a9779a9107629694fb910ca31964795c289a9e016c32",
        "470c2b346dcb2fdc81e1eb8afb567c79eeebb5728dc8b2195bf050e286ac862f",
        "a4a85a447cec988fd7537027f629aa3ca248801a0bf33fc0b0c20f11b9e08f7f",
        "35430c56e07c68e3397729da4cf4829318e55c97b8a241484703796de819818e",
        "3ffe0fcb684c8545a3d1b08114b90376b12058aa4795411d34a1e64f8257fc56",
        "787b0037081c38a08066367b957eb449402a06d390b245ef2650fd090d05c950",
        "9494eb0e99ac273b8b17230059142c76d5c6cc0381cbab4c9fd6647dd2d58662",
        "3e429c6e425687d931c49b45f17b9d4d3d5886285b883c3a18e698387f760941",
        "821798345ad2fac0c4ad342092035148a0ea5c05699464f2174db3ddfe800084",
    ];
    let current: Vec<String> = lathe_core::db::MIGRATIONS
        .iter()
        .map(|sql| lathe_core::db::migration_hash(sql))
        .collect();
    assert!(
        current.len() >= shipped.len(),
        "a shipped migration was removed"
    );
    for (i, hash) in shipped.iter().enumerate() {
        assert_eq!(
            &current[i],
            hash,
            "migration {} was edited after it shipped",
            i + 1
        );
    }
}

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join(dir)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// The string literals of a Rust source file (plain and raw), comments and char literals left
/// out, with escapes as written: enough to find the characters a message can show.
fn string_literals(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            // A char literal ('"', '\'', 'x'), not a lifetime.
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 3,
            '\'' if chars.get(i + 1) == Some(&'\\') => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            'r' if matches!(chars.get(i + 1), Some('#' | '"'))
                && (i == 0 || !chars[i - 1].is_alphanumeric() && chars[i - 1] != '_') =>
            {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let start = i + 2 + hashes;
                let mut end = start;
                while end < chars.len()
                    && !(chars[end] == '"'
                        && chars[end + 1..].iter().take(hashes).all(|c| *c == '#')
                        && chars.len() - end > hashes)
                {
                    end += 1;
                }
                out.push(chars[start..end.min(chars.len())].iter().collect());
                i = end + 1 + hashes;
            }
            '"' => {
                let mut literal = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        literal.push(chars[i]);
                        i += 1;
                    }
                    if i < chars.len() {
                        literal.push(chars[i]);
                    }
                    i += 1;
                }
                out.push(literal);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn every_text_the_window_can_show_has_glyphs_in_its_fonts() {
    // The window's fonts: egui's, as the app loads them.
    let ctx = egui::Context::default();
    let mut output = ctx.run_ui(egui::RawInput::default(), |_| {});
    // No renderer takes the font atlas here.
    output.textures_delta.clear();
    let mut missing: std::collections::BTreeMap<char, BTreeSet<String>> = Default::default();
    // Core's messages reach the window too (the status bar, error lines, the designer).
    for dir in ["core/src", "ui/src"] {
        for (path, text) in sources(dir) {
            for literal in string_literals(&text) {
                for c in literal.chars().filter(|c| !c.is_ascii()) {
                    let shown = ctx.fonts_mut(|f| {
                        f.has_glyph(&egui::FontId::proportional(14.0), c)
                            && f.has_glyph(&egui::FontId::monospace(14.0), c)
                    });
                    if !shown {
                        let file = path.strip_prefix(repo()).unwrap().display().to_string();
                        missing.entry(c).or_default().insert(file);
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "characters the window's fonts cannot draw (they show as boxes): {missing:?}"
    );
}

#[test]
fn string_literals_are_found_and_comments_skipped() {
    let source = "// a \"comment\"\nlet x = \"one → two\"; let c = '\"'; let r = r#\"raw \"x\" ✖\"#; /* \"no\" */";
    assert_eq!(string_literals(source), ["one → two", "raw \"x\" ✖"]);
}
