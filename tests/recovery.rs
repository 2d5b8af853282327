//! Imports killed with SIGKILL leave nothing behind for good: the next process to open the
//! workspace alone removes the blobs they wrote but never recorded, and `lathe gc` sweeps what
//! older versions left, but neither touches a store another process has open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lathe_tests::{Sandbox, lathe_bin};

/// Every file under `blobs/` but the lock, as (path relative to it, size).
fn blob_files(ws: &Path) -> Vec<String> {
    let root = ws.join("blobs");
    let mut found: Vec<String> = walk(&root)
        .into_iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .filter(|p| p != ".lock")
        .collect();
    found.sort();
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The blob files a workspace's records refer to, named as `blob_files` names them.
fn recorded(ws: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(ws.join("lathe.db")).unwrap();
    let mut stmt = db.prepare("SELECT hash FROM blobs ORDER BY hash").unwrap();
    let hashes: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut files: Vec<String> = hashes
        .into_iter()
        .map(|h: String| format!("{}/{h}", &h[..2]))
        .collect();
    files.sort();
    files
}

fn csv(rows: usize, seed: usize) -> Vec<u8> {
    let mut text = String::from("id,value,label\n");
    for i in 0..rows {
        text.push_str(&format!("{i},{},{}\n", (i * 7 + seed) % 1000, i % 3));
    }
    text.into_bytes()
}

#[test]
fn imports_killed_at_any_moment_leave_nothing_once_the_workspace_is_opened_again() {
    let s = Sandbox::new();
    let ws = s.workspace();
    s.file("small.csv", &csv(10, 0));
    s.lathe(&[
        "data",
        "import",
        s.path("data/small.csv").to_str().unwrap(),
        "--name",
        "small",
    ])
    .ok();
    // Kill imports of different files at different moments: reading, storing, recording.
    for (trial, delay_ms) in [5u64, 40, 80, 120, 160, 220, 300].into_iter().enumerate() {
        let file = s.file(&format!("big{trial}.csv"), &csv(400_000, trial));
        let mut child = Command::new(lathe_bin())
            .arg("--workspace")
            .arg(&ws)
            .args(["data", "import", file.to_str().unwrap(), "--name", "big"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Any command opens the workspace; alone, it removes what the killed imports left.
    s.lathe(&["data", "list"]).ok();
    assert_eq!(blob_files(&ws), recorded(&ws));
    s.lathe(&["data", "show", "small", "--json"]).ok();
}

#[test]
fn leftovers_are_kept_while_another_process_has_the_workspace_open_and_gc_sweeps_the_rest() {
    let s = Sandbox::new();
    let ws = s.workspace();
    s.file("small.csv", &csv(10, 0));
    s.lathe(&[
        "data",
        "import",
        s.path("data/small.csv").to_str().unwrap(),
        "--name",
        "small",
    ])
    .ok();
    let kept = recorded(&ws);
    // While a server has the workspace open, what looks left over may be its own work in
    // progress: gc refuses and opening removes nothing.
    let mut server = lathe_tests::Server::start(&ws, &[]);
    // What an older Lathe killed mid-import left: a stray blob and a temporary file, with no
    // journal naming them.
    let stray = format!("ab/{}", "ab".repeat(32));
    std::fs::create_dir_all(ws.join("blobs/ab")).unwrap();
    std::fs::write(ws.join("blobs").join(&stray), b"never recorded").unwrap();
    std::fs::write(ws.join("blobs/tmp/.tmpXYZ"), b"half written").unwrap();
    s.lathe(&["gc"])
        .fails_with("another Lathe process has workspace");
    s.lathe(&["data", "list"]).ok();
    assert!(ws.join("blobs").join(&stray).is_file());
    assert!(ws.join("blobs/tmp/.tmpXYZ").is_file());
    server.kill();

    // Alone, opening removes the temporary file, and gc the blob no record names.
    let swept = s.lathe(&["gc", "--json"]).ok().json();
    assert_eq!(
        (swept["files"].as_u64(), swept["bytes"].as_u64()),
        (Some(1), Some(14))
    );
    assert_eq!(blob_files(&ws), kept);
    s.lathe(&[
        "data",
        "export",
        "small",
        s.path("out.csv").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(s.path("out.csv")).unwrap(), csv(10, 0));
}
