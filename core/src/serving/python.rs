//! Python workers for an online deployment: `instance_count` processes of `worker.py` in the
//! deployment's environment, each answering one request at a time (as MLflow's and Azure's
//! servers do with one sync worker per process). A request waits for a free worker; a worker
//! that dies is started again, and the request it held is answered 503 rather than left
//! hanging; a request past its deadline stops its worker (as gunicorn's timeout does) so the
//! ones queued behind it are not stuck.
//!
//! Frames between Lathe and a worker: a JSON header line, then `length` bytes of body (see
//! `worker.py`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::{Value, json};

/// The worker program, run with `python -c`.
const WORKER: &str = include_str!("worker.py");
/// Lines of a worker's stderr kept to explain why it stopped.
const TAIL: usize = 20;
/// How long a worker that failed to start again waits before the next try, at most.
const BACKOFF: Duration = Duration::from_secs(30);

/// What a worker runs.
#[derive(Debug, Clone)]
pub enum Program {
    /// An MLflow model folder, scored by MLflow's own scoring function.
    Pyfunc { model_dir: PathBuf },
    /// An Azure ML scoring script `script` in `code_dir`; `model_dir` is `AZUREML_MODEL_DIR`.
    Script {
        model_dir: PathBuf,
        code_dir: PathBuf,
        script: String,
    },
}

/// How to start the workers.
#[derive(Clone)]
pub struct Setup {
    /// The interpreter: the environment's `bin/python`, or the system's.
    pub python: PathBuf,
    /// Variables for the workers (the environment's PATH and VIRTUAL_ENV, the deployment's
    /// `environment_variables`).
    pub env: Vec<(String, String)>,
    pub program: Program,
    pub instances: u32,
    /// Hears every line a worker writes to stderr, and Lathe's own lines about the workers.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

/// Which entry point a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// MLflow's `/invocations`.
    Invocations,
    /// Azure's `/score`.
    Score,
    /// A batch job's mini batch for a scoring script's `run(mini_batch)` (see `worker.py`).
    Batch,
}

/// A worker's answer: an HTTP status, a content type and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Why a request got no answer from a worker.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkerError {
    /// The worker stopped or is starting again (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// No answer before the deadline; the worker was stopped (HTTP 408).
    #[error("{0}")]
    Timeout(String),
}

struct Job {
    op: Op,
    content_type: String,
    body: Vec<u8>,
    deadline: Instant,
    reply: Sender<Result<Reply, WorkerError>>,
}

/// The running workers of one deployment; dropping it stops them.
pub struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub instances: u32,
    /// Versions the first worker reported (`python`, `mlflow`).
    pub versions: Value,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("instances", &self.instances)
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `setup.instances` workers and waits until each has loaded the model (or run
    /// `init()`).
    ///
    /// # Errors
    /// A worker that cannot be started or stops while loading: the interpreter named, with
    /// the last lines it wrote (a Python traceback's last line names the cause).
    pub fn start(setup: &Setup) -> Result<Self, String> {
        let instances = setup.instances.max(1);
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        let threads = (0..instances)
            .map(|n| {
                let (setup, queue, ready) = (setup.clone(), queue.clone(), ready_tx.clone());
                std::thread::Builder::new()
                    .name(format!("lathe-worker-{n}"))
                    .spawn(move || serve(n, &setup, &queue, &ready))
                    .map_err(|e| format!("cannot start a thread for worker {n}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        drop(ready_tx);
        let mut pool = Self {
            jobs: Some(jobs),
            threads,
            instances,
            versions: Value::Null,
        };
        for _ in 0..instances {
            match ready_rx.recv() {
                Ok(Ok(versions)) => pool.versions = versions,
                Ok(Err(why)) => return Err(why),
                Err(_) => return Err("the workers stopped while loading".into()),
            }
        }
        Ok(pool)
    }

    /// Sends a request to the first free worker and waits for its answer until `timeout`.
    ///
    /// # Errors
    /// [`WorkerError::Unavailable`] when the worker stops (it is started again) or the pool
    /// is stopping; [`WorkerError::Timeout`] past `timeout`.
    pub fn call(
        &self,
        op: Op,
        content_type: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Reply, WorkerError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let job = Job {
            op,
            content_type: content_type.to_owned(),
            body,
            deadline: Instant::now() + timeout,
            reply,
        };
        let stopping = || WorkerError::Unavailable("the deployment's workers are stopping".into());
        self.jobs
            .as_ref()
            .ok_or_else(stopping)?
            .send(job)
            .map_err(|_| stopping())?;
        answer.recv().unwrap_or_else(|_| Err(stopping()))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends each worker's loop, which stops its process.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A running worker process.
struct Process {
    child: Child,
    stdin: ChildStdin,
    frames: Receiver<(Value, Vec<u8>)>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Process {
    fn start(n: u32, setup: &Setup) -> Result<(Self, Value), String> {
        let mut command = Command::new(&setup.python);
        command.arg("-c").arg(WORKER);
        match &setup.program {
            Program::Pyfunc { model_dir } => {
                command.arg("pyfunc").arg(model_dir);
            }
            Program::Script {
                model_dir,
                code_dir,
                script,
            } => {
                command
                    .arg("script")
                    .arg(model_dir)
                    .arg(code_dir)
                    .arg(script)
                    .current_dir(code_dir);
            }
        }
        let mut child = command
            .envs(setup.env.iter().map(|(k, v)| (k, v)))
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", setup.python.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err("the worker's pipes are missing".into());
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let named =
            |what: &str| std::thread::Builder::new().name(format!("lathe-worker-{n}-{what}"));
        let unread = |e: std::io::Error| format!("cannot start a thread reading worker {n}: {e}");
        {
            let (tail, log) = (Arc::clone(&tail), Arc::clone(&setup.log));
            named("stderr")
                .spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        log(&format!("worker {n}: {line}"));
                        let mut tail = tail
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if tail.len() == TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                })
                .map_err(unread)?;
        }
        let (frame_tx, frames) = crossbeam_channel::unbounded();
        named("stdout")
            .spawn(move || {
                let mut out = BufReader::new(stdout);
                while let Some(frame) = read_frame(&mut out) {
                    if frame_tx.send(frame).is_err() {
                        return;
                    }
                }
            })
            .map_err(unread)?;
        let mut process = Self {
            child,
            stdin,
            frames,
            tail,
        };
        match process.frames.recv() {
            Ok((header, _)) if header["ready"] == true => Ok((process, header)),
            _ => {
                let why = process.stopped();
                Err(format!(
                    "worker {n} ({}) stopped while loading: {why}",
                    setup.python.display()
                ))
            }
        }
    }

    /// Waits for the stopped process and says how it ended, with its last stderr line.
    fn stopped(&mut self) -> String {
        let status = self
            .child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        // The stderr reader may still be reading the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = tail
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| "it wrote nothing".into());
        format!("{status}; {last}")
    }

    fn ask(&mut self, job: &Job) -> Result<Reply, Ask> {
        let header = json!({
            "op": match job.op {
                Op::Invocations => "invocations",
                Op::Score => "score",
                Op::Batch => "batch",
            },
            "content_type": job.content_type,
            "length": job.body.len(),
        });
        let mut frame = header.to_string().into_bytes();
        frame.push(b'\n');
        frame.extend_from_slice(&job.body);
        if self
            .stdin
            .write_all(&frame)
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(Ask::Stopped);
        }
        let wait = job.deadline.saturating_duration_since(Instant::now());
        match self.frames.recv_timeout(wait) {
            Ok((header, body)) => Ok(Reply {
                status: header["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(500),
                content_type: header["content_type"]
                    .as_str()
                    .unwrap_or("application/json")
                    .to_owned(),
                body,
            }),
            Err(RecvTimeoutError::Timeout) => Err(Ask::Late),
            Err(RecvTimeoutError::Disconnected) => Err(Ask::Stopped),
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Ask {
    Stopped,
    Late,
}

/// One header line and its body, or `None` at the end of the stream.
fn read_frame(out: &mut impl BufRead) -> Option<(Value, Vec<u8>)> {
    let mut line = String::new();
    if out.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let header: Value = serde_json::from_str(&line).ok()?;
    let length = usize::try_from(header["length"].as_u64().unwrap_or(0)).ok()?;
    let mut body = vec![0; length];
    out.read_exact(&mut body).ok()?;
    Some((header, body))
}

/// Worker `n`'s loop: start the process, answer jobs, start it again when it stops.
fn serve(n: u32, setup: &Setup, queue: &Receiver<Job>, ready: &Sender<Result<Value, String>>) {
    let mut process = match Process::start(n, setup) {
        Ok((process, versions)) => {
            let _ = ready.send(Ok(versions));
            Some(process)
        }
        Err(why) => {
            let _ = ready.send(Err(why));
            return;
        }
    };
    let mut backoff = Duration::from_secs(1);
    let mut next_try = Instant::now();
    let mut down = String::new();
    loop {
        if process.is_none() && Instant::now() >= next_try {
            match Process::start(n, setup) {
                Ok((started, _)) => {
                    (setup.log)(&format!("worker {n} started again"));
                    process = Some(started);
                    backoff = Duration::from_secs(1);
                }
                Err(why) => {
                    (setup.log)(&format!("{why}; trying again in {} s", backoff.as_secs()));
                    down = why;
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF);
                }
            }
        }
        let job = match queue.recv_timeout(Duration::from_secs(1)) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if Instant::now() >= job.deadline {
            let _ = job.reply.send(Err(WorkerError::Timeout(
                "no worker was free within request_timeout_ms".into(),
            )));
            continue;
        }
        let Some(running) = process.as_mut() else {
            let _ = job.reply.send(Err(WorkerError::Unavailable(format!(
                "worker {n} is starting again after it stopped: {down}"
            ))));
            continue;
        };
        let answer = match running.ask(&job) {
            Ok(reply) => Ok(reply),
            Err(Ask::Stopped) => {
                let why = process
                    .take()
                    .map(|mut gone| gone.stopped())
                    .unwrap_or_default();
                (setup.log)(&format!(
                    "worker {n} stopped while answering ({why}); starting it again"
                ));
                down = why.clone();
                Err(WorkerError::Unavailable(format!(
                    "the worker answering this request stopped ({why}); it is being started again"
                )))
            }
            Err(Ask::Late) => {
                if let Some(late) = process.take() {
                    late.kill();
                }
                (setup.log)(&format!(
                    "worker {n} gave no answer within the request timeout; stopped, starting it again"
                ));
                down = "it was stopped after a request timed out".into();
                Err(WorkerError::Timeout(
                    "no answer within request_timeout_ms; the worker was stopped and is starting again"
                        .into(),
                ))
            }
        };
        let _ = job.reply.send(answer);
    }
    if let Some(process) = process {
        process.kill();
    }
}
