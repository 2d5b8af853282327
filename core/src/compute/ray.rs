//! A Ray cluster's Jobs API (<https://docs.ray.io/en/latest/cluster/running-applications/job-submission/rest.html>):
//! a folder packaged and uploaded once as Ray packages a `working_dir` (a zip in the cluster's
//! GCS, named by its content), a job submitted with its runtime environment, its status
//! polled, its log followed over the `logs/tail` WebSocket as it is written, and a job stopped.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;

use super::{ComputeSpec, Resources};
use crate::{Error, Result};

/// The largest package the Jobs API takes: Ray's `max_grpc_message_size` (512 MiB), which
/// bounds what its GCS stores.
pub const PACKAGE_LIMIT: u64 = 512 << 20;

/// How often a job's status is asked while it runs.
const POLL: Duration = Duration::from_millis(250);

/// How many of a failed job's last log lines its message carries.
const TAIL_LINES: usize = 5;

fn problem(message: impl Into<String>) -> Error {
    Error::Compute(message.into())
}

/// A Ray cluster's Jobs API and the headers it wants.
pub struct Cluster {
    address: String,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
    transfer: ureq::Agent,
    resources: Resources,
}

/// A job to submit.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// The shell command Ray runs (its `entrypoint`).
    pub entrypoint: String,
    /// A package [`Cluster::upload_folder`] returned: the job's working folder.
    pub working_dir: Option<String>,
    pub env_vars: BTreeMap<String, String>,
    /// Requirements Ray installs into the job's virtualenv (pip's, pinned).
    pub pip: Vec<String>,
    /// Shown in Ray's dashboard beside the job.
    pub metadata: BTreeMap<String, String>,
}

/// A job's state as the Jobs API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    /// PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED.
    pub state: String,
    pub message: String,
    pub exit_code: Option<i64>,
}

impl JobStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "SUCCEEDED" | "FAILED" | "STOPPED")
    }
}

/// How a job that did not succeed ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// Stopped because `cancel` was set.
    Cancelled,
    /// Failed or stopped from outside, in words: its state, exit code, Ray's message and the
    /// log's last lines.
    Failed(String),
}

impl Cluster {
    /// The cluster of `spec`, its headers read from the environment.
    ///
    /// # Errors
    /// A variable the spec names is not set.
    pub fn new(spec: &ComputeSpec) -> Result<Self> {
        Ok(Self {
            address: spec.address.clone(),
            headers: spec.request_headers()?,
            agent: crate::http::agent(Duration::from_secs(10)),
            transfer: crate::http::transfer_agent(Duration::from_secs(10)),
            resources: spec.resources.clone(),
        })
    }

    /// The Jobs API's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// GETs `path` and reads its JSON.
    ///
    /// # Errors
    /// The cluster unreachable (within 10 s), refusing the headers, or answering what is not
    /// a Ray dashboard's JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        let mut request = self.agent.get(format!("{}{path}", self.address));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let (status, body) = self.answer(path, request.call())?;
        match status {
            200..=299 => serde_json::from_str(&body).map_err(|_| {
                problem(format!(
                    "{} answered {path} with what is not JSON: is it a Ray dashboard?",
                    self.address
                ))
            }),
            _ => Err(self.refused(path, status, &body)),
        }
    }

    /// Packages `folder` as Ray packages a `working_dir` — a zip of its files, paths relative
    /// to it, named `_ray_pkg_<hash>.zip` by its content — and uploads it unless the cluster
    /// has it; its URI (`gcs://…`).
    ///
    /// # Errors
    /// The folder cannot be read; the package is over [`PACKAGE_LIMIT`]; the cluster refuses.
    pub fn upload_folder(&self, folder: &Path) -> Result<String> {
        let zipped = zip_folder(folder)?;
        if zipped.len() as u64 > PACKAGE_LIMIT {
            return Err(problem(format!(
                "{} zips to {}, over the {} a Ray job's working folder may be (the Jobs API's \
                 limit, Ray's max_grpc_message_size); keep data out of the code folder and \
                 pass it as an input",
                folder.display(),
                crate::format::bytes(zipped.len() as i64),
                crate::format::bytes(PACKAGE_LIMIT as i64)
            )));
        }
        let hash = blake3::hash(&zipped).to_hex();
        let name = format!("_ray_pkg_{}.zip", &hash[..32]);
        let path = format!("/api/packages/gcs/{name}");
        // A GET pins a package the cluster has for a while, so it is there for the submit.
        let mut request = self.agent.get(format!("{}{path}", self.address));
        for (header, value) in &self.headers {
            request = request.header(header, value);
        }
        let (status, body) = self.answer(&path, request.call())?;
        match status {
            200 => {}
            404 => {
                let mut request = self.transfer.put(format!("{}{path}", self.address));
                for (header, value) in &self.headers {
                    request = request.header(header, value);
                }
                let (status, body) = self.answer(&path, request.send(&zipped[..]))?;
                if !(200..300).contains(&status) {
                    return Err(self.refused(&path, status, &body));
                }
            }
            _ => return Err(self.refused(&path, status, &body)),
        }
        Ok(format!("gcs://{name}"))
    }

    /// Submits a job; its submission id.
    ///
    /// # Errors
    /// The cluster refuses the job (Ray's message).
    pub fn submit(&self, job: &Submission) -> Result<String> {
        let mut runtime_env = json!({ "env_vars": job.env_vars });
        if let Some(dir) = &job.working_dir {
            runtime_env["working_dir"] = json!(dir);
        }
        if !job.pip.is_empty() {
            runtime_env["pip"] = json!(job.pip);
        }
        let mut body = json!({
            "entrypoint": job.entrypoint,
            "runtime_env": runtime_env,
            "metadata": job.metadata,
        });
        if let Some(cpus) = self.resources.num_cpus {
            body["entrypoint_num_cpus"] = json!(cpus);
        }
        if let Some(gpus) = self.resources.num_gpus {
            body["entrypoint_num_gpus"] = json!(gpus);
        }
        if let Some(memory) = &self.resources.memory
            && let Ok(bytes) = memory.bytes()
        {
            body["entrypoint_memory"] = json!(bytes);
        }
        let path = "/api/jobs/";
        let mut request = self
            .agent
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json");
        for (header, value) in &self.headers {
            request = request.header(header, value);
        }
        let (status, text) = self.answer(path, request.send(&serde_json::to_vec(&body)?[..]))?;
        if !(200..300).contains(&status) {
            return Err(self.refused(path, status, &text));
        }
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        answer["submission_id"]
            .as_str()
            .or_else(|| answer["job_id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| problem(format!("{} accepted the job but named no id", self.address)))
    }

    /// A job's status.
    ///
    /// # Errors
    /// The cluster unreachable or refusing; no such job.
    pub fn status(&self, id: &str) -> Result<JobStatus> {
        let job = self.get(&format!("/api/jobs/{id}"))?;
        Ok(JobStatus {
            state: job["status"].as_str().unwrap_or("").to_owned(),
            message: job["message"].as_str().unwrap_or("").to_owned(),
            exit_code: job["driver_exit_code"].as_i64(),
        })
    }

    /// Asks the cluster to stop a job.
    ///
    /// # Errors
    /// The cluster unreachable or refusing.
    pub fn stop(&self, id: &str) -> Result<()> {
        let path = format!("/api/jobs/{id}/stop");
        let mut request = self.agent.post(format!("{}{path}", self.address));
        for (header, value) in &self.headers {
            request = request.header(header, value);
        }
        let (status, body) = self.answer(&path, request.send(&b""[..]))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.refused(&path, status, &body))
        }
    }

    /// Runs `job` to its end: its log's lines to `log` as they are written, its status asked
    /// every 250 ms, the job stopped when `cancel` is set. `Ok` when it succeeded.
    ///
    /// # Errors
    /// The outer error: the cluster unreachable or refusing the job. The inner: how a job
    /// that did not succeed ended.
    pub fn run(
        &self,
        job: &Submission,
        log: &(dyn Fn(&str) + Sync),
        cancel: &AtomicBool,
    ) -> Result<std::result::Result<(), Ended>> {
        let id = self.submit(job)?;
        log(&format!("ray job {id} submitted to {}", self.address));
        let tail = Mutex::new(VecDeque::with_capacity(TAIL_LINES));
        let log_line = |line: &str| {
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.to_owned());
            }
            log(line);
        };
        let done = AtomicBool::new(false);
        let (status, stopped) = std::thread::scope(|scope| {
            let follower = std::thread::Builder::new()
                .name("lathe-ray-log".into())
                .spawn_scoped(scope, || self.follow(&id, &log_line, &done));
            let outcome = self.wait(&id, cancel);
            // The log ends when the job does; a follower still reading gives up soon after.
            done.store(true, Ordering::Relaxed);
            if let Ok(handle) = follower {
                let _ = handle.join();
            }
            outcome
        })?;
        // A job that ended before its log could be followed: its log read once, whole.
        let followed = tail.lock().map(|t| !t.is_empty()).unwrap_or(true);
        if !followed && let Ok(logs) = self.get(&format!("/api/jobs/{id}/logs")) {
            for line in logs["logs"].as_str().unwrap_or("").lines() {
                log_line(line);
            }
        }
        if status.state == "SUCCEEDED" {
            return Ok(Ok(()));
        }
        if stopped {
            return Ok(Err(Ended::Cancelled));
        }
        let last: Vec<String> = tail.into_inner().unwrap_or_default().into();
        let mut message = match (status.state.as_str(), status.exit_code) {
            ("STOPPED", _) => "the Ray job was stopped from outside Lathe".to_owned(),
            (_, Some(code)) => format!("the Ray job failed with exit code {code}"),
            _ => "the Ray job failed".to_owned(),
        };
        // Ray's message repeats the log after its first line; the log's last lines follow.
        let said = status.message.lines().next().unwrap_or("").trim();
        let said = said.trim_end_matches([':', ',']);
        if !said.is_empty() {
            message.push_str(&format!(" ({said})"));
        }
        if !last.is_empty() {
            message.push_str(&format!(": {}", last.join(" | ")));
        }
        Ok(Err(Ended::Failed(message)))
    }

    /// Polls a job until it ends; stops it on `cancel`. Its last status, and whether this
    /// stopped it.
    fn wait(&self, id: &str, cancel: &AtomicBool) -> Result<(JobStatus, bool)> {
        let mut stopped = false;
        loop {
            if cancel.load(Ordering::Relaxed) && !stopped {
                self.stop(id)?;
                stopped = true;
            }
            let status = self.status(id)?;
            if status.is_terminal() {
                return Ok((status, stopped));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Follows a job's log over the `logs/tail` WebSocket until the job's log ends, or `done`
    /// is set and nothing arrives for a second. A log that cannot be followed is said once.
    fn follow(&self, id: &str, log: &(dyn Fn(&str) + Sync), done: &AtomicBool) {
        let url = format!(
            "{}/api/jobs/{id}/logs/tail",
            self.address
                .replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1)
        );
        let mut request = match tungstenite::client::IntoClientRequest::into_client_request(&url) {
            Ok(r) => r,
            Err(e) => return log(&format!("(cannot follow the job's log: {e})")),
        };
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()),
                tungstenite::http::HeaderValue::from_str(value),
            ) {
                request.headers_mut().insert(name, value);
            }
        }
        let mut socket = match tungstenite::connect(request) {
            Ok((socket, _)) => socket,
            Err(e) => return log(&format!("(cannot follow the job's log: {e})")),
        };
        let timeout = Some(Duration::from_millis(500));
        match socket.get_mut() {
            MaybeTlsStream::Plain(s) => set_timeout(s, timeout),
            MaybeTlsStream::Rustls(s) => set_timeout(s.get_mut(), timeout),
            _ => {}
        }
        let mut partial = String::new();
        let mut quiet_since: Option<Instant> = None;
        loop {
            match socket.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    quiet_since = None;
                    partial.push_str(text.as_str());
                    while let Some(end) = partial.find('\n') {
                        let line: String = partial.drain(..=end).collect();
                        log(line.trim_end_matches(['\n', '\r']));
                    }
                }
                Ok(tungstenite::Message::Close(_)) => break,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if done.load(Ordering::Relaxed) {
                        let since = *quiet_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(1) {
                            break;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        if !partial.is_empty() {
            log(partial.trim_end());
        }
    }

    /// A response's status and body; an unreachable cluster in words.
    fn answer(
        &self,
        path: &str,
        sent: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, String)> {
        let mut response = sent.map_err(|e| {
            problem(format!(
                "cannot reach the Ray cluster at {} ({}) for {path}; is the address the \
                 dashboard's (port 8265 by default) and the cluster running?",
                self.address,
                crate::http::failure(&e).reason
            ))
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .unwrap_or_default();
        Ok((status, body))
    }

    fn refused(&self, path: &str, status: u16, body: &str) -> Error {
        match status {
            401 | 403 => problem(format!(
                "the Ray cluster at {} refused the request ({status}); check token_env and \
                 headers",
                self.address
            )),
            404 if path == "/api/version" => problem(format!(
                "{} answered 404 to /api/version: is it a Ray dashboard (the Jobs API's \
                 address)?",
                self.address
            )),
            _ => {
                // Ray answers errors as a traceback; its last line says what went wrong.
                let reason = body.trim().lines().last().unwrap_or("").trim();
                problem(format!(
                    "the Ray cluster at {} answered {status} to {path}{}",
                    self.address,
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {reason}")
                    }
                ))
            }
        }
    }
}

fn set_timeout(stream: &mut TcpStream, timeout: Option<Duration>) {
    let _ = stream.set_read_timeout(timeout);
}

/// `folder`'s files in a zip, paths relative to it, sorted, with a fixed time: the same
/// folder always gives the same bytes, so an unchanged folder is uploaded once.
fn zip_folder(folder: &Path) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        for entry in walkdir::WalkDir::new(folder).sort_by_file_name() {
            let entry = entry.map_err(|e| problem(format!("{}: {e}", folder.display())))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(folder)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = std::fs::read(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            zip.start_file(relative, options)
                .map_err(|e| problem(format!("packaging {}: {e}", folder.display())))?;
            zip.write_all(&bytes)
                .map_err(|e| problem(format!("packaging {}: {e}", folder.display())))?;
        }
        zip.finish()
            .map_err(|e| problem(format!("packaging {}: {e}", folder.display())))?;
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_zips_to_the_same_bytes_every_time_with_its_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("train.py"), b"print(1)\n").unwrap();
        std::fs::write(dir.path().join("src/util.py"), b"x = 2\n").unwrap();
        let first = zip_folder(dir.path()).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(dir.path().join("train.py"), b"print(1)\n").unwrap();
        assert_eq!(
            zip_folder(dir.path()).unwrap(),
            first,
            "same content, same bytes"
        );
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(first)).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        assert_eq!(names, ["src/util.py", "train.py"]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("src/util.py").unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "x = 2\n");
    }
}
