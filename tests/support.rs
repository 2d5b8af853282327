//! Helpers for Lathe's end-to-end tests and benchmarks: running the `lathe` binary against a
//! temporary workspace, making data files, and driving the GUI headless.

// Test support: a failed set-up step should stop the test right there, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `lathe` binary beside this test executable, built (once per test process) from the code
/// checked out: `cargo test` builds only the packages' test targets, and a binary left from an
/// earlier build would test old code.
pub fn lathe_bin() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let release = dir.file_name().is_some_and(|n| n == "release");
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "lathe", "--bin", "lathe"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(
            status.success(),
            "cannot build the lathe binary for the tests"
        );
    });
    let bin = dir.join(format!("lathe{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing after building it",
        bin.display()
    );
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
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts a failure with a one-line reason that contains `needle`.
    pub fn fails_with(self, needle: &str) {
        assert_ne!(
            self.code, 0,
            "expected failure, got success: {}",
            self.stdout
        );
        let line = self.stderr.trim_end();
        assert!(
            !line.contains('\n'),
            "the reason should be one line: {line}"
        );
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains(needle), "'{line}' should mention '{needle}'");
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    /// The window over the sandbox's workspace, as `lathe` opens it: one store for the process.
    pub fn workbench(&self) -> lathe_ui::Workbench {
        let store = lathe_core::Store::open(self.workspace()).expect("the workspace opens");
        let service = lathe_core::service::Service::new(store, std::sync::Arc::new(|| {}))
            .expect("the service starts");
        lathe_ui::Workbench::new(service)
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

    /// Imports the sandbox's data folder `folder` as the image asset `name`.
    pub fn import_images(&self, folder: &str, name: &str) {
        let path = self.path("data").join(folder);
        let path = path.to_str().expect("a UTF-8 path");
        self.lathe(&["data", "import", path, "--name", name, "--kind", "images"])
            .ok();
    }

    pub fn lathe(&self, args: &[&str]) -> Run {
        self.lathe_with(args, &[])
    }

    /// Runs the demo churn pipeline here: it registers `churn-pipeline-classifier:1` (a
    /// logistic regression over 12 scaled, one-hot features) and the table
    /// `churn_test_scored:1` (its held-out rows, scored).
    pub fn run_churn_pipeline(&self) {
        let pipeline = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../assets/pipelines/churn-classification.yml");
        let path = pipeline.to_str().expect("a UTF-8 path");
        self.lathe(&["pipeline", "run", path, "--json"]).ok();
    }

    /// As [`Sandbox::lathe`], with these variables set for the command.
    pub fn lathe_with(&self, args: &[&str], vars: &[(&str, &std::ffi::OsStr)]) -> Run {
        let output: Output = Command::new(lathe_bin())
            .arg("--workspace")
            .arg(self.workspace())
            .args(args)
            .env_remove("LATHE_WORKSPACE")
            .envs(vars.iter().map(|(k, v)| (k, v)))
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
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(width, height, image::Rgb([30, 120, 200]))
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("a PNG encodes");
    out.into_inner()
}

/// A grey 160 × 120 PNG with a red rectangle at (x, y, w, h).
pub fn red_rectangle(x: u32, y: u32, w: u32, h: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(160, 120, |px, py| {
        let inside = (x..x + w).contains(&px) && (y..y + h).contains(&py);
        image::Rgb(if inside {
            [220, 30, 30]
        } else {
            [120, 125, 118]
        })
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("a PNG encodes");
    out.into_inner()
}

/// A 160 × 120 PNG of one figure — `circle`, `square` or `triangle` (pointing up) — filling the
/// `size`-pixel square at (x, y), in colour `ink` on colour `ground`.
pub fn figure(kind: &str, [x, y, size]: [u32; 3], ink: [u8; 3], ground: [u8; 3]) -> Vec<u8> {
    let s = size as f32;
    let image = image::RgbImage::from_fn(160, 120, |px, py| {
        let (u, v) = (px as f32 + 0.5 - x as f32, py as f32 + 0.5 - y as f32);
        let inside = (0.0..s).contains(&u)
            && (0.0..s).contains(&v)
            && match kind {
                "circle" => (u - s / 2.0).powi(2) + (v - s / 2.0).powi(2) <= (s / 2.0).powi(2),
                "triangle" => (u - s / 2.0).abs() <= v / 2.0,
                _ => true,
            };
        image::Rgb(if inside { ink } else { ground })
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("a PNG encodes");
    out.into_inner()
}

/// A JPEG stored `width` × `height` whose EXIF block says how to turn it upright
/// (`orientation` 6: rotate 90° clockwise, as phones write portrait photos). The left half is
/// red and the right half blue as stored, so a test can tell where the pixels went.
pub fn jpeg_with_orientation(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, _| {
        image::Rgb(if x < width / 2 {
            [220, 20, 20]
        } else {
            [20, 20, 220]
        })
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .expect("a JPEG encodes");
    let jpeg = jpeg.into_inner();
    // APP1 "Exif": a big-endian TIFF header and one IFD entry, tag 0x0112 (Orientation), SHORT.
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Intersection over union of two boxes `[x, y, w, h]`.
pub fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let h = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = w.max(0.0) * h.max(0.0);
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// Steps a GUI harness until `done` holds, failing the test after `timeout`. Background work
/// (pages, profiles, thumbnails) arrives between steps.
pub fn run_until<S>(
    harness: &mut egui_kittest::Harness<'_, S>,
    timeout: Duration,
    what: &str,
    done: impl Fn(&egui_kittest::Harness<'_, S>) -> bool,
) {
    let start = Instant::now();
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; the window shows: {}",
            visible_text(harness)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Types `row` into the table's "Go to row" field and presses Enter.
pub fn go_to_row<S>(harness: &egui_kittest::Harness<'_, S>, row: &str) {
    use egui_kittest::kittest::Queryable;
    let field = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "Go to row");
    field.click();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    field.type_text(row);
    harness.key_press(egui::Key::Enter);
}

/// The labels and values of every node in the window, for a failure message.
/// Every text the last frame painted (charts draw theirs, out of the accessibility tree).
pub fn painted_texts<S>(h: &egui_kittest::Harness<'_, S>) -> Vec<String> {
    fn walk(shape: &egui::Shape, out: &mut Vec<String>) {
        match shape {
            egui::Shape::Text(text) => out.push(text.galley.text().to_owned()),
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for clipped in &h.output().shapes {
        walk(&clipped.shape, &mut out);
    }
    out
}

pub fn visible_text<S>(harness: &egui_kittest::Harness<'_, S>) -> String {
    use egui_kittest::kittest::NodeT;
    fn walk(node: egui_kittest::Node<'_>, out: &mut Vec<String>) {
        let a = node.accesskit_node();
        if let Some(text) = a.label().or_else(|| a.value()).filter(|t| !t.is_empty())
            && out.last() != Some(&text)
        {
            out.push(text);
        }
        for child in node.children() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    walk(harness.root(), &mut out);
    out.join(" | ")
}

/// A file dropped on the window, as the windowing system hands it to egui.
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Drops `paths` on the window at the next step.
pub fn drop_files<S>(harness: &mut egui_kittest::Harness<'_, S>, paths: &[PathBuf]) {
    for path in paths {
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DroppedPath(path.clone())));
    }
}

/// A `lathe server` on a free loopback port, killed (SIGKILL) when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub url: String,
}

impl Server {
    pub fn start(workspace: &Path, extra: &[&str]) -> Self {
        Self::start_with(workspace, extra, &[])
    }

    /// As [`Server::start`], with these variables set for the server.
    pub fn start_with(workspace: &Path, extra: &[&str], vars: &[(&str, &std::ffi::OsStr)]) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(lathe_bin())
            .arg("--workspace")
            .arg(workspace)
            .args(["server", "--port", "0"])
            .args(extra)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("lathe server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    std::io::Read::read_to_string(&mut stderr, &mut err).ok();
                }
                panic!("no address in the server's first line '{line}': {err}")
            });
        Self {
            url: format!("http://{addr}"),
            child,
        }
    }

    /// Sends SIGKILL and waits for the process to go.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP agent that returns error statuses as responses instead of failing.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends `body` with `method` to `url` and returns the status and the JSON answer.
pub fn call(agent: &ureq::Agent, method: &str, url: &str, body: &str) -> (u16, serde_json::Value) {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .expect("a well-formed request");
    let mut response = agent.run(request).expect("the server answers");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("a text body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {url}: status {status}, not JSON ({e}): {text}"));
    (status, json)
}

/// The Python with the peers (the official MLflow client, pycocotools): LATHE_PEER_PYTHON,
/// else the venv `tests/peers/setup.sh` makes. Fails the test, naming the fix, when the peers
/// are missing; checked once per test process.
pub fn peer_python() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED.get_or_init(find_peer_python).clone()
}

fn find_peer_python() -> PathBuf {
    let python = std::env::var("LATHE_PEER_PYTHON").map_or_else(
        |_| {
            let home = std::env::var("HOME").expect("HOME is set");
            PathBuf::from(format!("{home}/.cache/lathe/venv/bin/python"))
        },
        PathBuf::from,
    );
    // A test never installs anything; tests/run.sh does, before the suite starts.
    let ready = Command::new(&python)
        .args(["-c", "import mlflow, pycocotools"])
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ready,
        "{} lacks the peers (mlflow, pycocotools); run tests/run.sh, which installs them with \
         tests/peers/setup.sh",
        python.display()
    );
    python
}

/// A script under tests/peers.
/// The endpoint URL of an S3-compatible server (moto's, `peers/s3_server.py`, with the buckets
/// `lathe-test` and `lathe-other`), started once per test binary. Its process holds our pipe as
/// stdin and ends when the test binary does.
pub fn s3_server() -> &'static str {
    use std::io::BufRead;
    static SERVER: std::sync::OnceLock<(String, std::process::Child)> = std::sync::OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let mut child = Command::new(peer_python())
                .arg(peer_script("s3_server.py"))
                .args(["lathe-test", "lathe-other"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("the S3 server starts (tests/peers/setup.sh installs moto)");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().expect("its stdout"))
                .read_line(&mut line)
                .expect("it names its endpoint");
            assert!(line.starts_with("http://127.0.0.1:"), "moto said: {line:?}");
            (line.trim().to_owned(), child)
        })
        .0
}

/// The URL of a real `mlflow server` (`peers/mlflow_server.py`: SQLite backend, proxied
/// artifacts, one worker), started once per test binary in a folder of its own. Its process
/// holds our pipe as stdin and stops the server when the test binary ends.
pub fn mlflow_server() -> &'static str {
    use std::io::BufRead;
    static SERVER: std::sync::OnceLock<(String, std::process::Child, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temp dir");
            let mut child = Command::new(peer_python())
                .arg(peer_script("mlflow_server.py"))
                .arg(dir.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .expect("mlflow server starts (tests/peers/setup.sh installs mlflow)");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().expect("its stdout"))
                .read_line(&mut line)
                .expect("it names its URL");
            assert!(
                line.starts_with("http://127.0.0.1:"),
                "mlflow server did not start: {line:?}; see {}/server.log",
                dir.path().display()
            );
            (line.trim().to_owned(), child, dir)
        })
        .0
}

/// The Python with Ray: LATHE_RAY_PYTHON, else the venv tests/peers/setup.sh makes.
pub fn ray_python() -> PathBuf {
    let python = std::env::var("LATHE_RAY_PYTHON").map_or_else(
        |_| {
            let home = std::env::var("HOME").expect("HOME is set");
            PathBuf::from(format!("{home}/.cache/lathe/venv-ray/bin/python"))
        },
        PathBuf::from,
    );
    assert!(
        python.exists(),
        "{} is missing; run tests/run.sh, which installs Ray with tests/peers/setup.sh",
        python.display()
    );
    python
}

/// A real Ray head (`peers/ray_head.py`: loopback only, 2 CPUs), started once per test
/// binary: the Jobs API's URL and the head's process group. Its process holds our pipe as
/// stdin and stops the head when the test binary ends.
pub fn ray_head() -> (&'static str, u32) {
    use std::io::BufRead;
    static HEAD: std::sync::OnceLock<(String, u32, std::process::Child, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    let head = HEAD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut child = Command::new(ray_python())
            .arg(peer_script("ray_head.py"))
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("the Ray head starts (tests/peers/setup.sh installs Ray)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("it names its URL");
        let (url, group) = line.trim().split_once(' ').unwrap_or_else(|| {
            panic!(
                "the Ray head did not start: {line:?}; see {}/head.log",
                dir.path().display()
            )
        });
        (
            url.to_owned(),
            group.parse().expect("a process group"),
            child,
            dir,
        )
    });
    (&head.0, head.1)
}

/// Runs the Python `code` with `s3`, a boto3 client of [`s3_server`]; its stdout.
pub fn boto3(code: &str) -> String {
    let script = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='t', aws_secret_access_key='t')\n{code}\n",
        s3_server()
    );
    let out = Command::new(peer_python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(name)
}

/// Prints the median, 95th percentile and worst of a set of frame times.
pub fn report_frames(what: &str, frames: &mut [Duration]) {
    frames.sort();
    let pct = |p: f64| frames[((frames.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "frame time, {what}: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (target < 16 ms)",
        pct(0.5),
        pct(0.95),
        pct(1.0)
    );
}

/// Scrolls with the mouse wheel as the window does: a plain egui context (no accessibility tree),
/// a wheel turn a frame after five still frames, each frame run and tessellated (the CPU side of
/// a frame; no GPU here). `inspect` sees each frame's shapes; returns the scrolling frames' times.
pub fn wheel_scroll_frames(
    workbench: &mut lathe_ui::Workbench,
    frames: usize,
    pointer: egui::Pos2,
    mut inspect: impl FnMut(usize, &[egui::epaint::ClippedShape]),
) -> Vec<Duration> {
    let ctx = egui::Context::default();
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1280.0, 800.0));
    let mut times = Vec::new();
    for frame in 0..frames {
        let mut input = egui::RawInput {
            screen_rect: Some(screen),
            time: Some(frame as f64 / 60.0),
            ..Default::default()
        };
        input.events.push(egui::Event::PointerMoved(pointer));
        if frame >= 5 {
            input.events.push(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, -400.0),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Wheel,
                modifiers: egui::Modifiers::NONE,
            });
        }
        let start = Instant::now();
        let mut output = ctx.run_ui(input, |ui| workbench.ui(ui));
        output.textures_delta.clear();
        let primitives = ctx.tessellate(output.shapes.clone(), output.pixels_per_point);
        if frame >= 5 {
            times.push(start.elapsed());
        }
        std::hint::black_box(primitives);
        inspect(frame, &output.shapes);
    }
    times
}

/// Every point of one metric of a run, read page by page from the tracking server at `base`.
pub fn metric_history(base: &str, run: &str, key: &str) -> Vec<serde_json::Value> {
    let agent = http();
    let mut points = Vec::new();
    let mut token = String::new();
    loop {
        let url = format!(
            "{base}/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key={key}&page_token={token}"
        );
        let (status, page) = call(&agent, "GET", &url, "");
        assert_eq!(status, 200, "{page}");
        points.extend(page["metrics"].as_array().cloned().unwrap_or_default());
        match page["next_page_token"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_owned(),
            _ => return points,
        }
    }
}

/// A real, tiny ONNX detector built node by node: it finds the red pixels of a 64 × 64 input
/// (red above green by 0.3) and reports their bounding box as class 0 with score 0.9 — in
/// either layout exporters write.
pub mod red_detector {
    use prost::Message;
    use tract_onnx::pb::attribute_proto::AttributeType;
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
    use tract_onnx::pb::{
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
        TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
    };

    #[derive(Clone, Copy)]
    pub enum Layout {
        /// One `[1, N, 6]` output in input pixels.
        Rows,
        /// Boxes `[1, N, 4]` as fractions, scores `[1, N]`, integer classes `[1, N]`.
        Separate,
    }

    fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: data,
            ..Default::default()
        }
    }

    fn ints(name: &str, data: Vec<i64>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            int64_data: data,
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: inputs.iter().map(|i| (*i).to_owned()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    fn int(name: &str, i: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            i,
            r#type: AttributeType::Int as i32,
            ..Default::default()
        }
    }

    fn int_list(name: &str, ints: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: ints.to_vec(),
            r#type: AttributeType::Ints as i32,
            ..Default::default()
        }
    }

    fn value(name: &str, elem: DataType, dims: &[i64]) -> ValueInfoProto {
        let dim = dims
            .iter()
            .map(|d| Dimension {
                value: Some(dimension::Value::DimValue(*d)),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: elem as i32,
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn model(layout: Layout) -> Vec<u8> {
        let all = || vec![int_list("axes", &[1, 2, 3]), int("keepdims", 0)];
        let mut nodes = vec![
            node("Slice", &["image", "zero", "one", "channel"], "red", vec![]),
            node(
                "Slice",
                &["image", "one", "two", "channel"],
                "green",
                vec![],
            ),
            node("Sub", &["red", "green"], "redness", vec![]),
            node("Greater", &["redness", "cut"], "is_red", vec![]),
            node("Cast", &["is_red"], "mask", vec![int("to", 1)]),
            // Right and bottom edges: the largest (index + 1) under the mask.
            node("Mul", &["mask", "xs_after"], "mx", vec![]),
            node("ReduceMax", &["mx"], "x2", all()),
            node("Mul", &["mask", "ys_after"], "my", vec![]),
            node("ReduceMax", &["my"], "y2", all()),
            // Left and top: 64 − the largest (64 − index).
            node("Mul", &["mask", "xs_before"], "mxb", vec![]),
            node("ReduceMax", &["mxb"], "xb", all()),
            node("Sub", &["side", "xb"], "x1", vec![]),
            node("Mul", &["mask", "ys_before"], "myb", vec![]),
            node("ReduceMax", &["myb"], "yb", all()),
            node("Sub", &["side", "yb"], "y1", vec![]),
            node("ReduceMax", &["mask"], "any", all()),
            node("Mul", &["any", "certainty"], "score", vec![]),
        ];
        let (outputs, extra) = match layout {
            Layout::Rows => {
                nodes.push(node(
                    "Concat",
                    &["x1", "y1", "x2", "y2", "score", "class"],
                    "row",
                    vec![int("axis", 0)],
                ));
                nodes.push(node(
                    "Reshape",
                    &["row", "rows_shape"],
                    "detections",
                    vec![],
                ));
                (
                    vec![value("detections", DataType::Float, &[1, 1, 6])],
                    vec![ints("rows_shape", vec![1, 1, 6])],
                )
            }
            Layout::Separate => {
                nodes.push(node(
                    "Concat",
                    &["x1", "y1", "x2", "y2"],
                    "corners",
                    vec![int("axis", 0)],
                ));
                nodes.push(node("Div", &["corners", "side"], "fractions", vec![]));
                nodes.push(node(
                    "Reshape",
                    &["fractions", "boxes_shape"],
                    "boxes",
                    vec![],
                ));
                nodes.push(node("Reshape", &["score", "one_by_one"], "scores", vec![]));
                nodes.push(node("Cast", &["class"], "class_i", vec![int("to", 7)]));
                nodes.push(node(
                    "Reshape",
                    &["class_i", "one_by_one"],
                    "labels",
                    vec![],
                ));
                (
                    vec![
                        value("boxes", DataType::Float, &[1, 1, 4]),
                        value("labels", DataType::Int64, &[1, 1]),
                        value("scores", DataType::Float, &[1, 1]),
                    ],
                    vec![
                        ints("boxes_shape", vec![1, 1, 4]),
                        ints("one_by_one", vec![1, 1]),
                    ],
                )
            }
        };
        let index: Vec<f32> = (0..64).map(|i| i as f32).collect();
        let mut initializer = vec![
            ints("zero", vec![0]),
            ints("one", vec![1]),
            ints("two", vec![2]),
            ints("channel", vec![1]),
            floats("cut", &[], vec![0.3]),
            floats("side", &[1], vec![64.0]),
            floats("certainty", &[1], vec![0.9]),
            floats("class", &[1], vec![0.0]),
            floats(
                "xs_after",
                &[1, 1, 1, 64],
                index.iter().map(|i| i + 1.0).collect(),
            ),
            floats(
                "ys_after",
                &[1, 1, 64, 1],
                index.iter().map(|i| i + 1.0).collect(),
            ),
            floats(
                "xs_before",
                &[1, 1, 1, 64],
                index.iter().map(|i| 64.0 - i).collect(),
            ),
            floats(
                "ys_before",
                &[1, 1, 64, 1],
                index.iter().map(|i| 64.0 - i).collect(),
            ),
        ];
        initializer.extend(extra);
        ModelProto {
            ir_version: 7,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(GraphProto {
                name: "red_detector".into(),
                node: nodes,
                initializer,
                input: vec![value("image", DataType::Float, &[1, 3, 64, 64])],
                output: outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// Serves a package's model folder (`OUT/model`) with the package's own `bin/lathe`, run in
/// `empty` as a workspace of its own; the process and its base URL (from its first line).
pub fn serve_package(out: &Path, empty: &Path) -> (std::process::Child, String) {
    serve_model(&out.join("bin/lathe"), &out.join("model"), empty)
}

/// `program models serve source` run in `empty`; the process and its base URL.
pub fn serve_model(program: &Path, source: &Path, empty: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    std::fs::create_dir_all(empty).unwrap();
    let mut serving = Command::new(program)
        .args(["models", "serve"])
        .arg(source)
        .current_dir(empty)
        .env("LATHE_WORKSPACE", empty)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(serving.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in '{line}'"))
        .to_owned();
    (serving, base)
}

/// Registers the churn pipeline's logistic regression (`churn-pipeline-classifier:1`, which
/// takes raw rows) without its preprocessing as `churn-features:1`: the same weights over the
/// prepared (one-hot, scaled) features, for tests of the protocols in feature space.
pub fn register_feature_model(sandbox: &Sandbox) {
    let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
    let tracking = store.tracking();
    let version = tracking
        .read(|c| lathe_core::tracking::registry::get_version(c, "churn-pipeline-classifier", "1"))
        .unwrap();
    let dir = version.source.strip_prefix("mlflow-artifacts:/").unwrap();
    let (_, hash, _) = tracking
        .artifact_tree(dir)
        .unwrap()
        .into_iter()
        .find(|(p, _, _)| p.ends_with("model.json"))
        .unwrap();
    let mut model: lathe_core::ml::Model =
        serde_json::from_slice(&std::fs::read(tracking.blobs().path(&hash)).unwrap()).unwrap();
    assert!(
        model.preprocessing.is_some(),
        "the pipeline's model prepares raw rows"
    );
    model.preprocessing = None;
    let folder = sandbox.path("churn-features");
    model.save(&folder).unwrap();
    sandbox
        .lathe(&[
            "models",
            "register",
            folder.to_str().unwrap(),
            "--name",
            "churn-features",
        ])
        .ok();
}

/// The demo pipeline's registered model (`churn-pipeline-classifier:1`): its features,
/// classes, weights and intercepts, read from its `model.json` in the artifact store.
pub fn logistic_weights(sandbox: &Sandbox) -> (Vec<String>, Vec<String>, Vec<Vec<f64>>, Vec<f64>) {
    let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
    let tracking = store.tracking();
    let version = tracking
        .read(|c| lathe_core::tracking::registry::get_version(c, "churn-pipeline-classifier", "1"))
        .unwrap();
    let dir = version.source.strip_prefix("mlflow-artifacts:/").unwrap();
    let (_, hash, _) = tracking
        .artifact_tree(dir)
        .unwrap()
        .into_iter()
        .find(|(p, _, _)| p.ends_with("model.json"))
        .unwrap();
    let model: Value =
        serde_json::from_slice(&std::fs::read(tracking.blobs().path(&hash)).unwrap()).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let body = &model["body"];
    assert_eq!(
        body["kind"], "softmax",
        "the demo registers its logistic regression"
    );
    (
        strings(&model["features"]),
        strings(&body["classes"]),
        body["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                w.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect(),
        body["intercepts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect(),
    )
}

/// What multinomial logistic regression predicts for `row`: the class of the largest score, and
/// the second class's softmax probability.
pub fn expected(classes: &[String], w: &[Vec<f64>], b: &[f64], row: &[f64]) -> (String, f64) {
    let scores: Vec<f64> = w
        .iter()
        .zip(b)
        .map(|(w, b)| w.iter().zip(row).map(|(a, x)| a * x).sum::<f64>() + b)
        .collect();
    let best = (0..scores.len()).fold(0, |i, j| if scores[j] > scores[i] { j } else { i });
    let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = scores.iter().map(|s| (s - top).exp()).sum();
    (classes[best].clone(), (scores[1] - top).exp() / total)
}

/// Metric `key` of a run as `lathe runs show --json` prints it.
pub fn run_metric(run: &Value, key: &str) -> f64 {
    run["run"]["data"]["metrics"]
        .as_array()
        .expect("the run's metrics")
        .iter()
        .find(|m| m["key"] == key)
        .unwrap_or_else(|| panic!("no metric {key} in {run}"))["value"]
        .as_f64()
        .expect("a number")
}

/// Logs and registers `tests/peers/sklearn_model.py`'s iris classifier as `name` into the
/// tracking server at `url` with the official MLflow client, and returns what it printed: the
/// held-out rows (`columns`, `data`), scikit-learn's own `predict` of them, and the `version`.
pub fn log_sklearn_model(url: &str, name: &str) -> Value {
    let logged = Command::new(peer_python())
        .arg(peer_script("sklearn_model.py"))
        .arg(name)
        .env("MLFLOW_TRACKING_URI", url)
        .output()
        .expect("python runs");
    assert!(
        logged.status.success(),
        "{}",
        String::from_utf8_lossy(&logged.stderr)
    );
    // The last line: the client may print its own (a link to the run) before it.
    let printed = String::from_utf8_lossy(&logged.stdout);
    serde_json::from_str(printed.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {printed}"))
}

/// Saves, with MLflow, a scikit-learn logistic regression over `features` (fitted on random
/// rows) into the folder `dir`: the peer's side of the benchmarks.
pub fn save_sklearn_logistic(features: &[&str], dir: &Path) {
    let script = format!(
        "import numpy as np, pandas as pd, mlflow.sklearn\n\
         from sklearn.linear_model import LogisticRegression\n\
         cols = {features:?}\n\
         rng = np.random.default_rng(0)\n\
         x = pd.DataFrame(rng.normal(size=(500, len(cols))), columns=cols)\n\
         y = (x.sum(axis=1) > 0).astype(int)\n\
         m = LogisticRegression().fit(x, y)\n\
         mlflow.sklearn.save_model(m, {:?}, input_example=x.head(1))\n",
        dir.display().to_string()
    );
    let made = Command::new(peer_python())
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Reads `lathe online-endpoint show ENDPOINT --json` until `done` holds, failing the test
/// after a minute with `what` and the last answer.
pub fn endpoint_until(
    sandbox: &Sandbox,
    endpoint: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = sandbox
            .lathe(&["online-endpoint", "show", endpoint, "--json"])
            .ok()
            .json();
        if done(&shown) {
            return shown;
        }
        assert!(Instant::now() < deadline, "{what}: {shown}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The rows an endpoint's `show --json` says it collected of `kind` (`model_inputs`,
/// `model_outputs`).
pub fn collected_rows(shown: &serde_json::Value, kind: &str) -> i64 {
    shown["collected"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter(|w| w["kind"] == kind)
                .map(|w| w["rows"].as_i64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Milliseconds since the epoch as RFC 3339 in UTC, as `--at` and `--window` take them.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
