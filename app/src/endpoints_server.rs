//! Serving the workspace's online endpoints: one listener per endpoint on its own address, in the
//! process that holds the `endpoints` lease (the window or `lathe server`; another process
//! takes over when it dies). A supervisor looks at the endpoints every second and starts, reloads
//! or stops listeners, so an endpoint or deployment created or changed elsewhere serves within
//! seconds, without a restart.
//!
//! Every endpoint speaks MLflow's scoring protocol (`/invocations`, `/score`, `/ping`, `/health`,
//! `/version`) and the Open Inference Protocol v2 (`/v2/...`). A request goes to a deployment by
//! the traffic split, or to the one the `azureml-model-deployment` header names; the answer
//! carries the request id (a caller's `x-request-id` is kept) and the deployment that answered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lathe_core::Store;
use lathe_core::collection::{self, Buffer, CollectorSpec, Sample};
use lathe_core::endpoints::{self, Deployment, Endpoint};
use lathe_core::serving::python::Op;
use lathe_core::serving::{Frame, PythonModel, ScoreError, Scorer, mlflow_protocol, oip, tensors};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};

/// The lease that decides which process serves the endpoints.
const LEASE: &str = "endpoints";
/// How often the supervisor looks at the endpoints.
const TICK: Duration = Duration::from_secs(1);
/// The largest request body read.
const MAX_BODY: usize = 64 << 20;
/// The MLflow version `/version` reports (the client's pinned in the tests).
const MLFLOW_VERSION: &str = "3.3.2";

/// A deployment being served: its record, its model (unset while it loads, or why it did not
/// load), a bound on the requests it takes at once, and what it answered since its health was
/// last written.
struct Live {
    deployment: Deployment,
    loaded: std::sync::OnceLock<Result<Arc<Scorer>, String>>,
    /// Sized once the model has loaded (a Python worker takes fewer requests at once).
    slots: std::sync::OnceLock<Arc<Semaphore>>,
    window: std::sync::Mutex<Window>,
    /// Its `data_collector`, and the samples not yet flushed.
    collector: Option<(CollectorSpec, Buffer)>,
    /// Failed answers logged in this health window; past `LOGGED_FAILURES` they are only
    /// counted, so a storm of them does not become a storm of writes.
    logged: std::sync::atomic::AtomicU32,
}

const LOGGED_FAILURES: u32 = 10;

impl Live {
    fn new(deployment: Deployment) -> Self {
        let collector = collection::spec(deployment.spec.data_collector.as_ref())
            .ok()
            .flatten()
            .map(|spec| (spec, Buffer::default()));
        Self {
            collector,
            deployment,
            loaded: std::sync::OnceLock::new(),
            slots: std::sync::OnceLock::new(),
            window: std::sync::Mutex::default(),
            logged: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The loaded model, or why there is none (yet).
    fn scorer(&self) -> Result<Arc<Scorer>, String> {
        match self.loaded.get() {
            Some(Ok(scorer)) => Ok(Arc::clone(scorer)),
            Some(Err(why)) => Err(format!(
                "deployment {} failed to load: {why}",
                self.deployment.spec.name
            )),
            None => Err(format!(
                "deployment {} is loading its model (building its environment or starting \
                 its workers); try again shortly",
                self.deployment.spec.name
            )),
        }
    }

    /// Offers a sampled request to the collector.
    fn collect(
        &self,
        id: &str,
        started: std::time::Instant,
        collected: Option<(Frame, Vec<Value>)>,
    ) {
        if let (Some((_, buffer)), Some((inputs, outputs))) = (&self.collector, collected) {
            buffer.offer(Sample {
                request_id: id.to_owned(),
                at_ms: lathe_core::db::now_millis(),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                inputs,
                outputs,
            });
        }
    }

    /// Writes what the collector holds (off the async threads), saying in the log what a full
    /// buffer dropped.
    fn flush(&self, store: &Store) {
        let Some((spec, buffer)) = &self.collector else {
            return;
        };
        let taken = buffer.take();
        let dropped = taken.dropped;
        if taken.kept.is_empty() && dropped == 0 {
            return;
        }
        let (store, spec) = (store.clone(), spec.clone());
        let (endpoint, name) = (
            self.deployment.endpoint.clone(),
            self.deployment.spec.name.clone(),
        );
        tokio::task::spawn_blocking(move || {
            if dropped > 0 {
                let line = format!(
                    "data collection dropped {dropped} request(s): its buffer was full ({} rows)",
                    collection::BUFFER_ROWS
                );
                let _ = endpoints::log(&store, &endpoint, &name, &line);
            }
            if let Err(e) = collection::flush_taken(&store, &endpoint, &name, &spec, &taken) {
                let _ = endpoints::log(&store, &endpoint, &name, &format!("data collection: {e}"));
            }
        });
    }

    fn is_ready(&self) -> bool {
        matches!(self.loaded.get(), Some(Ok(_)))
    }

    fn slots_total(&self) -> u32 {
        let python = self.scorer().is_ok_and(|s| s.python().is_some());
        self.deployment.spec.max_concurrent(python)
    }

    fn slots(&self) -> Arc<Semaphore> {
        Arc::clone(
            self.slots
                .get_or_init(|| Arc::new(Semaphore::new(self.slots_total() as usize))),
        )
    }

    /// Counts an answer of `status` that took `elapsed`.
    fn observe(&self, status: StatusCode, elapsed: Duration) {
        if let Ok(mut w) = self.window.lock() {
            let ms = elapsed.as_secs_f32() * 1000.0;
            if w.latencies.len() < LATENCIES {
                w.latencies.push(ms);
            } else {
                let at = (w.requests as usize) % LATENCIES;
                w.latencies[at] = ms;
            }
            w.requests += 1;
            w.errors += u64::from(!status.is_success());
        }
    }

    /// Logs a failed answer (5xx), the first few of each health window.
    fn log_failure(&self, store: &Store, id: &str, status: StatusCode) {
        if !status.is_server_error()
            || self.logged.fetch_add(1, Ordering::Relaxed) >= LOGGED_FAILURES
        {
            return;
        }
        let (store, endpoint, name) = (
            store.clone(),
            self.deployment.endpoint.clone(),
            self.deployment.spec.name.clone(),
        );
        let line = format!("request {id}: answered {status}");
        // The write waits on the writer: off the async threads.
        tokio::task::spawn_blocking(move || endpoints::log(&store, &endpoint, &name, &line));
    }

    /// The window's health point, starting a new window.
    fn take_health(&self, endpoint: &str) -> Option<endpoints::HealthPoint> {
        self.logged.store(0, Ordering::Relaxed);
        let mut w = std::mem::take(&mut *self.window.lock().ok()?);
        if w.requests == 0 {
            return None;
        }
        w.latencies.sort_by(f32::total_cmp);
        let q = |p: f64| {
            let i = ((w.latencies.len() as f64 - 1.0) * p).round() as usize;
            f64::from(w.latencies.get(i).copied().unwrap_or_default())
        };
        Some(endpoints::HealthPoint {
            endpoint: endpoint.to_owned(),
            deployment: self.deployment.spec.name.clone(),
            at_ms: lathe_core::db::now_millis(),
            seconds: w.started.elapsed().as_secs_f64(),
            requests: w.requests as i64,
            errors: w.errors as i64,
            p50_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
        })
    }
}

/// An answer, and what collection keeps of the request when it was sampled: its rows and
/// one output per row.
type Scored = (Response, Option<(Frame, Vec<Value>)>);

/// Deployments whose new version is loading while the one before keeps answering.
type Loads = BTreeMap<(String, String), Arc<Live>>;

/// Requests seen in one health window; latencies kept up to `LATENCIES`, later ones over
/// the oldest (enough for the quantiles of a window).
struct Window {
    started: std::time::Instant,
    requests: u64,
    errors: u64,
    latencies: Vec<f32>,
}

const LATENCIES: usize = 100_000;
/// How often health points are written, in supervisor ticks.
const HEALTH_EVERY: u32 = 10;

impl Default for Window {
    fn default() -> Self {
        Self {
            started: std::time::Instant::now(),
            requests: 0,
            errors: 0,
            latencies: Vec::new(),
        }
    }
}

/// What one endpoint's listener serves; swapped whole when anything changes.
struct Served {
    endpoint: Endpoint,
    deployments: BTreeMap<String, Arc<Live>>,
}

#[derive(Clone)]
struct Handle {
    served: Arc<RwLock<Arc<Served>>>,
    /// Picks deployments by the traffic split.
    draws: Arc<AtomicU64>,
    /// For the deployments' logs.
    store: Store,
}

impl Handle {
    fn now(&self) -> Option<Arc<Served>> {
        self.served.read().ok().map(|s| Arc::clone(&s))
    }

    /// An even draw in `0..below`: a SplitMix64 step per call, without a lock.
    fn draw(&self, below: u32) -> u32 {
        let mut z = self
            .draws
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % u64::from(below.max(1))) as u32
    }
}

/// Copies a request to each mirror deployment its share picks (`mirror_traffic`): scored in
/// the background within the mirror's own bounds, counted in its health, the answer dropped.
/// A request that names its deployment is not mirrored.
fn mirror<F>(handle: &Handle, served: &Served, headers: &HeaderMap, id: &str, score: &F)
where
    F: Fn(Arc<Scorer>, bool) -> Scored + Clone + Send + 'static,
{
    if headers.contains_key("azureml-model-deployment")
        || headers.contains_key(endpoints::REPLAY_HEADER)
    {
        return;
    }
    for (name, share) in &served.endpoint.spec.mirror_traffic {
        let Some(live) = served.deployments.get(name).cloned() else {
            continue;
        };
        if handle.draw(100) >= *share {
            continue;
        }
        let (score, id, draw) = (score.clone(), id.to_owned(), handle.draw(1_000_000));
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (status, collected) = match with_deployment(&live, draw, score).await {
                Ok((r, collected)) => (r.status(), collected),
                Err(r) => (r.status(), None),
            };
            live.observe(status, started.elapsed());
            live.collect(&id, started, collected);
        });
    }
}

struct Listener {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl Listener {
    /// Stops listening, writing what its deployments collected.
    fn stop(mut self, store: &Store) {
        if let Some(served) = self.handle.now() {
            served.deployments.values().for_each(|d| d.flush(store));
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the supervisor on its own runtime and thread; it lives as long as the process.
pub fn spawn(store: Store) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lathe-endpoints")
        .enable_all()
        .build()
        .context("cannot start the endpoints' runtime")?;
    std::thread::Builder::new()
        .name("lathe-endpoint-supervisor".into())
        .spawn(move || runtime.block_on(supervise(store)))
        .context("cannot start the endpoint supervisor")?;
    Ok(())
}

async fn supervise(store: Store) {
    let me = format!(
        "pid-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let mut listeners: BTreeMap<String, Listener> = BTreeMap::new();
    let mut loads = Loads::new();
    let mut seen = None;
    let mut ticks = 0u32;
    loop {
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(HEALTH_EVERY) {
            let points: Vec<endpoints::HealthPoint> = listeners
                .iter()
                .filter_map(|(name, l)| l.handle.now().map(|s| (name.clone(), s)))
                .flat_map(|(name, served)| {
                    served
                        .deployments
                        .values()
                        .filter_map(|live| live.take_health(&name))
                        .collect::<Vec<_>>()
                })
                .collect();
            if let Err(e) = endpoints::record_health(&store, points) {
                eprintln!("lathe: recording endpoint health: {e}");
            }
            for l in listeners.values() {
                if let Some(served) = l.handle.now() {
                    served.deployments.values().for_each(|d| d.flush(&store));
                }
            }
            // Windows that passed before the last flush become data asset versions.
            let sealing = store.clone();
            let before = lathe_core::db::now_millis() - 3 * i64::from(HEALTH_EVERY) * 1000;
            tokio::task::spawn_blocking(move || {
                if let Err(e) = collection::seal(&sealing, before) {
                    eprintln!("lathe: collected data: {e}");
                }
                // Then what each endpoint's collection limits no longer allow goes.
                match collection::enforce(&sealing, lathe_core::db::now_millis()) {
                    Ok(removed) => {
                        for r in removed {
                            let line = format!(
                                "collected data: removed {} ({}, {})",
                                r.asset,
                                lathe_core::format::bytes(r.bytes as i64),
                                r.why
                            );
                            let _ = endpoints::log(&sealing, &r.endpoint, &r.deployment, &line);
                        }
                    }
                    Err(e) => eprintln!("lathe: collected data limits: {e}"),
                }
            });
        }
        let leader = store.take_lease(LEASE, &me, TICK * 5).unwrap_or(false);
        if !leader {
            for (_, l) in std::mem::take(&mut listeners) {
                l.stop(&store);
            }
            seen = None;
        } else {
            let now = endpoints::fingerprint(&store).ok();
            if now.is_some() && now != seen {
                seen = now;
                match reconcile(&store, &mut listeners, &mut loads).await {
                    // Looked at again next tick until every model has loaded.
                    Ok(pending) if pending => seen = None,
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("lathe: serving endpoints: {e:#}");
                        seen = None;
                    }
                }
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Brings the listeners in line with the workspace: new endpoints listen, changed deployments
/// load their model in the background (the previous one serving meanwhile), deleted endpoints
/// stop. Says whether a model is still loading.
async fn reconcile(
    store: &Store,
    listeners: &mut BTreeMap<String, Listener>,
    loads: &mut Loads,
) -> anyhow::Result<bool> {
    let wanted = endpoints::endpoints(store)?;
    let names: Vec<String> = wanted.iter().map(|e| e.spec.name.clone()).collect();
    for gone in listeners
        .keys()
        .filter(|n| !names.contains(n))
        .cloned()
        .collect::<Vec<_>>()
    {
        if let Some(l) = listeners.remove(&gone) {
            l.stop(store);
        }
    }
    let mut pending = false;
    let mut current = Vec::new();
    for endpoint in wanted {
        let name = endpoint.spec.name.clone();
        let before = listeners.get(&name).and_then(|l| l.handle.now());
        let mut deployments = BTreeMap::new();
        for d in endpoints::deployments(store, &name)? {
            let key = (name.clone(), d.spec.name.clone());
            current.push(key.clone());
            let old = before
                .as_ref()
                .and_then(|b| b.deployments.get(&d.spec.name))
                .cloned();
            let live = match old.clone().filter(|old| {
                old.deployment.updated_at_ms == d.updated_at_ms
                    && old.deployment.model_version == d.model_version
            }) {
                // Loaded, loading or failed: the same load either way.
                Some(same) => same,
                None => {
                    let next = match loads
                        .get(&key)
                        .filter(|l| l.deployment.updated_at_ms == d.updated_at_ms)
                    {
                        Some(loading) => Arc::clone(loading),
                        None => {
                            let live = Arc::new(Live::new(d));
                            start_load(store, &live);
                            loads.insert(key.clone(), Arc::clone(&live));
                            live
                        }
                    };
                    // The version before keeps answering until the new one is ready.
                    match old.filter(|o| o.is_ready()) {
                        Some(previous) if next.loaded.get().is_none() => {
                            pending = true;
                            previous
                        }
                        _ => {
                            loads.remove(&key);
                            next
                        }
                    }
                }
            };
            deployments.insert(live.deployment.spec.name.clone(), live);
        }
        // A deployment no longer served keeps what it collected.
        for old in before.iter().flat_map(|b| b.deployments.values()) {
            if !deployments.values().any(|new| Arc::ptr_eq(new, old)) {
                old.flush(store);
            }
        }
        let served = Arc::new(Served {
            endpoint,
            deployments,
        });
        match listeners.get(&name) {
            Some(l) => {
                if let Ok(mut slot) = l.handle.served.write() {
                    *slot = served;
                }
            }
            None => match listen(store, served).await {
                Ok(listener) => {
                    listeners.insert(name, listener);
                }
                Err(e) => {
                    for d in endpoints::deployments(store, &name)? {
                        let why = format!("{e:#}");
                        let _ = endpoints::log(store, &name, &d.spec.name, &why);
                        let _ = endpoints::set_state(store, &name, &d.spec.name, "failed", &why);
                    }
                }
            },
        }
    }
    loads.retain(|key, _| current.contains(key));
    Ok(pending)
}

/// Loads `live`'s model on a blocking thread, logging how it went and recording its state;
/// it answers as soon as the model is set.
fn start_load(store: &Store, live: &Arc<Live>) {
    let (store, live) = (store.clone(), Arc::clone(live));
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let d = live.deployment.clone();
        let scorer = tokio::task::spawn_blocking({
            let (store, d) = (store.clone(), d.clone());
            move || load(&store, &d)
        })
        .await
        .unwrap_or_else(|e| Err(format!("loading the model stopped: {e}")));
        let (state, message, line) = match &scorer {
            Ok(s) => (
                "ready",
                String::new(),
                format!(
                    "ready: model {}:{} loaded in {} ms ({}, {} input(s))",
                    d.model_name,
                    d.model_version,
                    started.elapsed().as_millis(),
                    s.describe(),
                    s.inputs.len()
                ),
            ),
            Err(why) => (
                "failed",
                why.clone(),
                format!(
                    "failed to load model {}:{}: {why}",
                    d.model_name, d.model_version
                ),
            ),
        };
        let _ = live.loaded.set(scorer);
        tokio::task::spawn_blocking(move || {
            let _ = endpoints::log(&store, &d.endpoint, &d.spec.name, &line);
            let _ = endpoints::set_state(&store, &d.endpoint, &d.spec.name, state, &message);
        })
        .await
        .ok();
    });
}

/// Loads a deployment's model: in process, or in Python workers in its environment.
fn load(store: &Store, d: &Deployment) -> Result<Arc<Scorer>, String> {
    let tracking = store.tracking();
    let found = tracking
        .read(|c| lathe_core::tracking::registry::get_version(c, &d.model_name, &d.model_version))
        .map_err(|e| format!("model {}:{}: {e}", d.model_name, d.model_version))?;
    let log = {
        let (store, endpoint, name) = (store.clone(), d.endpoint.clone(), d.spec.name.clone());
        Arc::new(move |line: &str| {
            let _ = endpoints::log(&store, &endpoint, &name, line);
        })
    };
    let hosting = lathe_core::serving::Hosting {
        runtime: &d.runtime,
        instances: d.spec.instance_count.unwrap_or(1),
        variables: d.spec.variables(),
        timeout: Duration::from_millis(d.spec.timeout_ms()),
        log,
    };
    Scorer::host(&tracking, &found, Some(&hosting)).map(Arc::new)
}

async fn listen(store: &Store, served: Arc<Served>) -> anyhow::Result<Listener> {
    // A host name (`localhost`) is resolved as the endpoint was created with it.
    let (host, port) = (served.endpoint.host.clone(), served.endpoint.port);
    let tcp = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| {
            format!(
                "endpoint {} cannot listen on {host}:{port}",
                served.endpoint.spec.name
            )
        })?;
    let handle = Handle {
        served: Arc::new(RwLock::new(served)),
        draws: Arc::new(AtomicU64::new(0x9E37_79B9_7F4A_7C15)),
        store: store.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(handle.clone());
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let tcp = tcp.tap_io(|s| {
            let _ = s.set_nodelay(true);
        });
        let _ = axum::serve(tcp, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Listener {
        handle,
        stop: Some(stop),
    })
}

fn router(handle: Handle) -> Router {
    Router::new()
        .route("/ping", get(|| async { "\n" }))
        .route("/health", get(|| async { "\n" }))
        .route("/version", get(|| async { MLFLOW_VERSION }))
        .route("/invocations", post(invocations))
        .route("/score", post(score))
        .route("/v2", get(server_metadata))
        .route(
            "/v2/health/live",
            get(|| async { Json(json!({ "live": true })) }),
        )
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{model}", get(model_metadata))
        .route("/v2/models/{model}/ready", get(model_ready))
        .route("/v2/models/{model}/infer", post(infer))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_metadata_at),
        )
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_ready_at),
        )
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer_at),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": "no such route on this endpoint" })),
            )
        })
        .layer(middleware::from_fn_with_state(handle.clone(), authenticate))
        .with_state(handle)
}

struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        let mut response = Body::from(self.0.to_string()).into_response();
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        response
    }
}

/// Asks for the key when the endpoint wants one (`Authorization: Bearer KEY`, as Azure).
async fn authenticate(State(handle): State<Handle>, request: Request, next: Next) -> Response {
    let Some(served) = handle.now() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the endpoint is reloading").into_response();
    };
    if served.endpoint.key_required {
        let given = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !served.endpoint.accepts(given) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": "this endpoint needs its key: Authorization: Bearer KEY (lathe online-endpoint get-credentials NAME)" })),
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// The deployment that answers: the one the header names, else one drawn by the split.
/// Why a request is not scored: a status and the reason.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        failure(self.0, &self.1)
    }
}

fn route(handle: &Handle, served: &Served, headers: &HeaderMap) -> Result<Arc<Live>, Refusal> {
    let named = headers
        .get("azureml-model-deployment")
        .and_then(|v| v.to_str().ok());
    if let Some(name) = named {
        return served.deployments.get(name).cloned().ok_or_else(|| {
            let known: Vec<&String> = served.deployments.keys().collect();
            Refusal(
                StatusCode::NOT_FOUND,
                format!(
                    "endpoint {} has no deployment '{name}' ({known:?})",
                    served.endpoint.spec.name
                ),
            )
        });
    }
    let split = &served.endpoint.spec.traffic;
    let total: u32 = split.values().sum();
    if total == 0 {
        return Err(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no deployment of {} takes traffic; set it with `lathe online-endpoint update {} --traffic \"DEPLOYMENT=100\"`, or name one in the azureml-model-deployment header",
                served.endpoint.spec.name, served.endpoint.spec.name
            ),
        ));
    }
    let mut draw = handle.draw(total);
    for (name, share) in split {
        if draw < *share {
            return served.deployments.get(name).cloned().ok_or_else(|| {
                Refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("deployment {name} is not loaded yet"),
                )
            });
        }
        draw -= share;
    }
    Err(Refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "the traffic split is empty".to_owned(),
    ))
}

fn failure(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

fn stamp(mut response: Response, id: &str, deployment: Option<&str>) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-request-id", v);
    }
    if let Some(d) = deployment.and_then(|d| HeaderValue::from_str(d).ok()) {
        response.headers_mut().insert("azureml-model-deployment", d);
    }
    response
}

/// Runs `score` on the deployment within its concurrency bound and timeout; `draw` (of a
/// million) decides whether collection samples the request.
async fn with_deployment<F>(live: &Arc<Live>, draw: u32, score: F) -> Result<Scored, Response>
where
    F: FnOnce(Arc<Scorer>, bool) -> Scored + Send + 'static,
{
    let sampled = live
        .collector
        .as_ref()
        .is_some_and(|(spec, _)| f64::from(draw) < spec.sampling_rate * 1_000_000.0);
    let scorer = live
        .scorer()
        .map_err(|why| failure(StatusCode::SERVICE_UNAVAILABLE, &why))?;
    let Ok(_slot) = live.slots().try_acquire_owned() else {
        return Err(failure(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "deployment {} has {} requests in hand (max_concurrent_requests_per_instance × instance_count)",
                live.deployment.spec.name,
                live.slots_total()
            ),
        ));
    };
    // Python workers keep their own deadline (and stop a worker past it): theirs answers first.
    let margin = if scorer.python().is_some() {
        Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    let timeout = Duration::from_millis(live.deployment.spec.timeout_ms()) + margin;
    let scoring = tokio::task::spawn_blocking(move || score(scorer, sampled));
    match tokio::time::timeout(timeout, scoring).await {
        Ok(Ok(scored)) => Ok(scored),
        Ok(Err(e)) => Err(failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("scoring stopped: {e}"),
        )),
        Err(_) => Err(failure(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "no answer within request_timeout_ms ({} ms)",
                live.deployment.spec.timeout_ms()
            ),
        )),
    }
}

async fn body_bytes(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is over {} MiB", MAX_BODY >> 20),
        )
    })
}

async fn invocations(State(handle): State<Handle>, request: Request) -> Response {
    mlflow_or_script(handle, request, Op::Invocations).await
}

/// Azure's `/score`: a scoring script's `run()`, or MLflow's protocol for any other model.
async fn score(State(handle): State<Handle>, request: Request) -> Response {
    mlflow_or_script(handle, request, Op::Score).await
}

async fn mlflow_or_script(handle: Handle, request: Request, op: Op) -> Response {
    let (parts, body) = request.into_parts();
    let id = request_id(&parts.headers);
    let Some(served) = handle.now() else {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "the endpoint is reloading");
    };
    let live = match route(&handle, &served, &parts.headers) {
        Ok(live) => live,
        Err(refusal) => return stamp(refusal.into_response(), &id, None),
    };
    let bytes = match body_bytes(body).await {
        Ok(b) => b,
        Err(response) => return stamp(response, &id, None),
    };
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let started = std::time::Instant::now();
    let score = move |scorer: Arc<Scorer>, sampled: bool| -> Scored {
        if let Some(python) = scorer.python() {
            return in_python(python, &scorer, op, &content_type, &bytes, sampled);
        }
        match mlflow_protocol::answer(&bytes, &content_type, &scorer) {
            Ok((answer, frame)) => {
                let collected = match frame.filter(|_| sampled) {
                    Some(frame) => answer["predictions"]
                        .as_array()
                        .filter(|outputs| outputs.len() == frame.rows)
                        .map(|outputs| (frame, outputs.clone())),
                    // A tensor model's request is read again only when sampled.
                    None if sampled => mlflow_protocol::tensor_rows(&bytes, &scorer, &answer),
                    None => None,
                };
                (Json(answer).into_response(), collected)
            }
            Err(e) => (
                (status_of(&e), Json(mlflow_protocol::error(&e))).into_response(),
                None,
            ),
        }
    };
    mirror(&handle, &served, &parts.headers, &id, &score);
    let replay = parts.headers.contains_key(endpoints::REPLAY_HEADER);
    answer(&handle, &live, replay, &id, started, score).await
}

/// Scores on `live` (mirrored already), counts the answer in its health, logs a failure, and
/// stamps the request id and the deployment that answered.
async fn answer<F>(
    handle: &Handle,
    live: &Arc<Live>,
    replay: bool,
    id: &str,
    started: std::time::Instant,
    score: F,
) -> Response
where
    F: FnOnce(Arc<Scorer>, bool) -> Scored + Send + 'static,
{
    // A replayed request is never sampled.
    let draw = if replay {
        u32::MAX
    } else {
        handle.draw(1_000_000)
    };
    let (response, collected) = match with_deployment(live, draw, score).await {
        Ok(scored) => scored,
        Err(r) => (r, None),
    };
    live.observe(response.status(), started.elapsed());
    live.collect(id, started, collected);
    live.log_failure(&handle.store, id, response.status());
    let name = live.deployment.spec.name.clone();
    stamp(response, id, Some(&name))
}

fn status_of(e: &ScoreError) -> StatusCode {
    match e {
        ScoreError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ScoreError::Model(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ScoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ScoreError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
    }
}

/// A request's body handed to a Python worker as it came: a scoring script's `run()` for
/// `/score`, MLflow's own scoring function for `/invocations`.
fn in_python(
    python: &PythonModel,
    scorer: &Scorer,
    op: Op,
    content_type: &str,
    body: &Bytes,
    sampled: bool,
) -> Scored {
    let op = match (python.script, op) {
        (true, Op::Invocations) => {
            return (
                failure(
                    StatusCode::NOT_FOUND,
                    "this deployment runs a scoring script: POST to /score",
                ),
                None,
            );
        }
        (true, _) => Op::Score,
        (false, _) => Op::Invocations,
    };
    match python.call(op, content_type, body.to_vec()) {
        Ok(reply) => {
            let collected = (sampled && reply.status == 200)
                .then(|| {
                    let answer: Value = serde_json::from_slice(&reply.body).ok()?;
                    if python.script {
                        // A script's request and answer are its own: kept whole.
                        let mut frame = Frame::default();
                        let text = String::from_utf8_lossy(body).into_owned();
                        frame
                            .push(collection::SCRIPT_REQUEST.into(), vec![Value::String(text)])
                            .ok()?;
                        return Some((frame, vec![answer]));
                    }
                    mlflow_rows(body, content_type, scorer, &answer)
                })
                .flatten();
            let mut response = Body::from(reply.body).into_response();
            *response.status_mut() =
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if let Ok(v) = HeaderValue::from_str(&reply.content_type) {
                response.headers_mut().insert("content-type", v);
            }
            (response, collected)
        }
        Err(e) => {
            let e = ScoreError::from(e);
            (failure(status_of(&e), &e.to_string()), None)
        }
    }
}

/// A sampled MLflow-protocol request's rows and its answer's predictions, one per row; `None`
/// for a request that is not rows (tensors) or an answer of another length.
fn mlflow_rows(
    body: &[u8],
    content_type: &str,
    scorer: &Scorer,
    answer: &Value,
) -> Option<(Frame, Vec<Value>)> {
    let frame = mlflow_protocol::decode(body, content_type, &scorer.input_names()).ok()?;
    let outputs = answer["predictions"].as_array()?.clone();
    (outputs.len() == frame.rows).then_some((frame, outputs))
}

async fn server_metadata() -> Response {
    Json(json!({ "name": "lathe", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"] })).into_response()
}

async fn ready(State(handle): State<Handle>) -> Response {
    let ready = handle
        .now()
        .is_some_and(|s| s.deployments.values().any(|d| d.is_ready()));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready }))).into_response()
}

/// The deployment that serves model `model` (`version`): the one the header or the split picks,
/// when the path names the endpoint or that deployment's model.
fn model_deployment(
    handle: &Handle,
    headers: &HeaderMap,
    model: &str,
    version: Option<&str>,
) -> Result<(Arc<Live>, Arc<Scorer>), Refusal> {
    let served = handle.now().ok_or_else(|| {
        Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the endpoint is reloading".to_owned(),
        )
    })?;
    let live = route(handle, &served, headers)?;
    let d = &live.deployment;
    let named = model == served.endpoint.spec.name || model == d.model_name;
    if !named || version.is_some_and(|v| v != d.model_version) {
        return Err(Refusal(
            StatusCode::NOT_FOUND,
            format!(
                "unknown model '{model}'{}: this endpoint serves '{}' (model {} version {})",
                version.map(|v| format!(" version {v}")).unwrap_or_default(),
                served.endpoint.spec.name,
                d.model_name,
                d.model_version
            ),
        ));
    }
    match live.scorer() {
        Ok(s) => Ok((Arc::clone(&live), s)),
        Err(why) => Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, why)),
    }
}

async fn model_metadata(
    State(h): State<Handle>,
    headers: HeaderMap,
    Path(model): Path<String>,
) -> Response {
    match model_deployment(&h, &headers, &model, None) {
        Ok((_, scorer)) => Json(oip::metadata(&scorer)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn model_metadata_at(
    State(h): State<Handle>,
    headers: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    match model_deployment(&h, &headers, &model, Some(&version)) {
        Ok((_, scorer)) => Json(oip::metadata(&scorer)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn model_ready(
    State(h): State<Handle>,
    headers: HeaderMap,
    Path(model): Path<String>,
) -> Response {
    match model_deployment(&h, &headers, &model, None) {
        Ok((_, scorer)) => {
            Json(json!({ "name": scorer.model_name, "ready": true })).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn model_ready_at(
    State(h): State<Handle>,
    headers: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    match model_deployment(&h, &headers, &model, Some(&version)) {
        Ok((_, scorer)) => {
            Json(json!({ "name": scorer.model_name, "ready": true })).into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn infer(State(h): State<Handle>, Path(model): Path<String>, request: Request) -> Response {
    infer_on(h, model, None, request).await
}

async fn infer_at(
    State(h): State<Handle>,
    Path((model, version)): Path<(String, String)>,
    request: Request,
) -> Response {
    infer_on(h, model, Some(version), request).await
}

async fn infer_on(
    handle: Handle,
    model: String,
    version: Option<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let id = request_id(&parts.headers);
    let (live, _) = match model_deployment(&handle, &parts.headers, &model, version.as_deref()) {
        Ok(found) => found,
        Err(r) => return stamp(r.into_response(), &id, None),
    };
    let bytes = match body_bytes(body).await {
        Ok(b) => b,
        Err(r) => return stamp(r, &id, None),
    };
    let header_length = parts
        .headers
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let started = std::time::Instant::now();
    let score = move |scorer: Arc<Scorer>, sampled: bool| -> Scored {
        let answered = oip::answer(&bytes, header_length, &scorer);
        let collected = match (&answered, sampled) {
            (Ok((body, None)), true) => oip_rows(&bytes, header_length, &scorer, body),
            _ => None,
        };
        (oip_response(answered), collected)
    };
    if let Some(served) = handle.now() {
        mirror(&handle, &served, &parts.headers, &id, &score);
    }
    let replay = parts.headers.contains_key(endpoints::REPLAY_HEADER);
    answer(&handle, &live, replay, &id, started, score).await
}

/// A sampled Open Inference Protocol request's rows (a tabular model's columns, or a tensor
/// model's tensors by their first axis) and what was answered for each: the first output's
/// value, or a tensor model's outputs (see `tensors::output_rows`).
fn oip_rows(
    body: &[u8],
    header_length: Option<usize>,
    scorer: &Scorer,
    answered: &[u8],
) -> Option<(Frame, Vec<Value>)> {
    let request = oip::decode(body, header_length).ok()?;
    let answer: Value = serde_json::from_slice(answered).ok()?;
    if scorer.onnx().is_some() {
        let frame = tensors::row_frame(&request.tensors)?;
        let outputs: Vec<tensors::Tensor> = answer["outputs"]
            .as_array()?
            .iter()
            .map(|o| {
                Some(tensors::Tensor {
                    name: o["name"].as_str()?.to_owned(),
                    datatype: o["datatype"].as_str()?.to_owned(),
                    shape: o["shape"]
                        .as_array()?
                        .iter()
                        .map(|d| d.as_u64().map(|d| d as usize))
                        .collect::<Option<_>>()?,
                    data: o["data"].as_array()?.clone(),
                })
            })
            .collect::<Option<_>>()?;
        let answers = tensors::output_rows(&outputs, frame.rows)?;
        return Some((frame, answers));
    }
    let frame = oip::frame_of(&request.tensors, &scorer.input_names()).ok()?;
    let outputs = answer["outputs"][0]["data"].as_array()?.clone();
    (outputs.len() == frame.rows).then_some((frame, outputs))
}

fn oip_response(answered: Result<(Vec<u8>, Option<usize>), ScoreError>) -> Response {
    match answered {
        Ok((body, None)) => {
            let mut r = Body::from(body).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
        Ok((body, Some(header))) => {
            let mut r = Body::from(body).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&header.to_string()) {
                r.headers_mut().insert("inference-header-content-length", v);
            }
            r
        }
        Err(e) => (status_of(&e), Json(oip::error(&e.to_string()))).into_response(),
    }
}
