//! Helpers for Lathe's end-to-end tests and benchmarks: running the `lathe` binary against a
//! temporary workspace, making data files, and driving the GUI headless.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The `lathe` binary cargo built beside this test executable.
pub fn lathe_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe.parent().and_then(Path::parent).expect("test executables live in target/<profile>/deps");
    let bin = dir.join(format!("lathe{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} is missing: run the tests with `cargo test --workspace` so cargo builds it", bin.display());
    bin
}

/// A temporary workspace and data folder for one test.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "lathe failed: {}{}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts a failure with a one-line reason that contains `needle`.
    pub fn fails_with(self, needle: &str) {
        assert_ne!(self.code, 0, "expected failure, got success: {}", self.stdout);
        let line = self.stderr.trim_end();
        assert!(!line.contains('\n'), "the reason should be one line: {line}");
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains(needle), "'{line}' should mention '{needle}'");
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("a temp dir") }
    }

    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    /// Writes a data file under the sandbox and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join("data").join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn lathe(&self, args: &[&str]) -> Run {
        let output: Output = Command::new(lathe_bin())
            .arg("--workspace")
            .arg(self.workspace())
            .args(args)
            .env_remove("LATHE_WORKSPACE")
            .output()
            .expect("lathe runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A small PNG of one colour.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 0..height {
        raw.push(0u8);
        for _ in 0..width {
            raw.extend_from_slice(&[30, 120, 200]);
        }
    }
    encode_png(width, height, &raw)
}

fn encode_png(width: u32, height: u32, filtered_rows: &[u8]) -> Vec<u8> {
    // Stored (uncompressed) deflate blocks keep this dependency-free and exact.
    let mut zlib = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = filtered_rows.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in filtered_rows {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", zlib.as_slice()), (b"IEND", &[][..])] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Steps a GUI harness until `done` holds, failing the test after `timeout`. Background work
/// (pages, profiles, thumbnails) arrives between steps.
pub fn run_until<S>(harness: &mut egui_kittest::Harness<'_, S>, timeout: Duration, what: &str, done: impl Fn(&egui_kittest::Harness<'_, S>) -> bool) {
    let start = Instant::now();
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One turn of the mouse wheel over `at`, by `pages` pages (positive scrolls down).
pub fn wheel<S>(harness: &egui_kittest::Harness<'_, S>, at: egui::Pos2, pages: f32) {
    harness.hover_at(at);
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, -pages * 600.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::NONE,
    });
}
