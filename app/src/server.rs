//! The tracking server: MLflow's REST API and artifact proxy over HTTP (axum on tokio), in front
//! of lathe-core's `Tracking`. Routing and bytes only; the protocol lives in core. Bound to
//! loopback unless asked otherwise, and then only with a bearer token.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use lathe_core::tracking::api::Request as ApiRequest;
use lathe_core::tracking::{ErrorCode, Tracking, TrackingError, lenient};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// JSON request bodies larger than this are refused (MLflow's largest, a full log-batch, is
/// well under 1 MB).
const MAX_JSON_BYTES: usize = 16 << 20;
/// How much of an oversized body is read and dropped before answering; past it the connection
/// is closed.
const MAX_DRAIN_BYTES: usize = 64 << 20;

/// The MLflow version Lathe answers `/version` with: the newest whose version-gated client calls
/// it serves. The client gates one call on the server's version, `log_spans` (MLflow 3.4 and
/// later), which needs the trace endpoints Lathe does not serve; answering a 3.4 or later
/// would have the client send spans into 404s. Every call of 3.3 and before is ungated.
const MLFLOW_VERSION: &str = "3.3.2";

/// What `/api/3.0/mlflow/server-info` tells clients (MLflow's `get_server_info` payload): a SQL
/// store, proxied artifacts without multipart transfers (the client then uploads and downloads
/// each file in one request), no workspaces, no gateway.
async fn server_info() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "store_type": "SqlStore",
            "workspaces_enabled": false,
            "trace_archival_enabled": false,
            "multipart_uploads_enabled": false,
            "multipart_downloads_enabled": false,
            "presigned_upload_run_id_supported": false,
            "presigned_upload_model_id_supported": false,
            "features_enabled": { "gateway": false },
        }),
    )
}

#[derive(Clone)]
struct App {
    tracking: Tracking,
    token: Option<Arc<str>>,
}

pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    pub token: Option<String>,
}

/// A server that is listening: its address, and the future that serves until shut down.
pub struct Bound {
    pub addr: SocketAddr,
    listener: TcpListener,
    router: Router,
}

/// Binds the server; refuses a non-loopback address without a token.
pub async fn bind(tracking: Tracking, config: ServerConfig) -> anyhow::Result<Bound> {
    if !config.host.is_loopback() && config.token.as_deref().is_none_or(str::is_empty) {
        bail!(
            "binding to {} exposes the workspace to the network; pass --token (or set \
             LATHE_SERVER_TOKEN) so clients must send it (MLFLOW_TRACKING_TOKEN)",
            config.host
        );
    }
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let app = App {
        tracking,
        token: config.token.filter(|t| !t.is_empty()).map(Arc::from),
    };
    Ok(Bound {
        addr: listener.local_addr()?,
        listener,
        router: router(app),
    })
}

impl Bound {
    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Small answers go out at once rather than waiting on Nagle's algorithm.
        use axum::serve::ListenerExt;
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the tracking server stopped")
    }
}

/// Serves the MLflow API on 127.0.0.1 for as long as the process lives: on `port` (0 for any), or
/// a free port when another server has it. Returns the URI clients should use.
pub fn serve_in_background(tracking: Tracking, port: u16) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let bound = runtime.block_on(async {
        let config = |port| ServerConfig {
            host: loopback,
            port,
            token: None,
        };
        match bind(tracking.clone(), config(port)).await {
            Ok(bound) => Ok(bound),
            Err(_) => bind(tracking, config(0)).await,
        }
    })?;
    let uri = format!("http://{}", bound.addr);
    std::thread::Builder::new()
        .name("lathe-tracking-server".into())
        .spawn(move || {
            // The server ends with the process; its errors have nowhere better to go.
            if let Err(e) = runtime.block_on(bound.serve(std::future::pending())) {
                eprintln!("lathe: the tracking server stopped: {e:#}");
            }
        })
        .context("cannot start the tracking server thread")?;
    Ok(uri)
}

fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { MLFLOW_VERSION }))
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .route("/ajax-api/3.0/mlflow/server-info", get(server_info))
        .route("/api/2.0/mlflow/{*endpoint}", any(api))
        .route("/ajax-api/2.0/mlflow/{*endpoint}", any(api))
        .route("/get-artifact", get(run_artifact))
        .route("/model-versions/get-artifact", get(model_version_artifact))
        .route("//model-versions/get-artifact", get(model_version_artifact))
        .route(
            "/api/2.0/mlflow/logged-models/{id}/artifacts/files",
            get(logged_model_artifact),
        )
        .route(
            "/ajax-api/2.0/mlflow/logged-models/{id}/artifacts/files",
            get(logged_model_artifact),
        )
        .route("/api/2.0/mlflow-artifacts/artifacts", get(list_artifacts))
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            get(download_artifact)
                .put(upload_artifact)
                .delete(delete_artifact),
        )
        .route("/api/2.0/mlflow-artifacts/mpu/{*path}", any(no_multipart))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    json_bytes(
        status,
        serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

fn error_response(error: &TrackingError) -> Response {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        &json!({ "error_code": error.code.as_str(), "message": error.message }),
    )
}

async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    let Some(token) = &app.token else {
        return next.run(request).await;
    };
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
        next.run(request).await
    } else {
        error_response(&TrackingError::new(
            ErrorCode::Unauthenticated,
            "This server requires a token: set MLFLOW_TRACKING_TOKEN",
        ))
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error_response(&TrackingError::new(
        ErrorCode::EndpointNotFound,
        format!("No endpoint {method} {}", uri.path()),
    ))
}

async fn no_multipart() -> Response {
    // The client falls back to a plain upload when it sees this message.
    error_response(&TrackingError::new(
        ErrorCode::NotImplemented,
        "Multipart upload is not supported for the current artifact repository",
    ))
}

/// Runs blocking store work off the async threads; a panic there becomes an INTERNAL_ERROR.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TrackingError> + Send + 'static,
) -> Result<T, TrackingError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TrackingError::internal(format!("the request failed: {e}")))?
}

async fn api(State(app): State<App>, method: Method, uri: axum::http::Uri, body: Body) -> Response {
    let endpoint = match uri
        .path()
        .split_once("/mlflow/")
        .map(|(_, rest)| decode_path(rest))
    {
        Some(Ok(rest)) => rest.trim_end_matches('/').to_owned(),
        Some(Err(e)) => return error_response(&e),
        None => String::new(),
    };
    let request = match request_fields(&method, uri.query(), body).await {
        Ok(request) => request,
        Err(e) => return error_response(&e),
    };
    let tracking = app.tracking.clone();
    let method_name = method.as_str().to_owned();
    let inline = is_small_write(&method, &endpoint, &request);
    let call = move || match request {
        Fields::Body(bytes) => tracking.answer(&method_name, &endpoint, ApiRequest::Json(&bytes)),
        Fields::Query(fields) => {
            tracking.answer(&method_name, &endpoint, ApiRequest::Fields(fields))
        }
    };
    let answer = if inline {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
            .unwrap_or_else(|_| Err(TrackingError::internal("the request failed unexpectedly")))
    } else {
        blocking(call).await
    };
    match answer {
        Ok(bytes) => json_bytes(StatusCode::OK, bytes),
        Err(e) => error_response(&e),
    }
}

/// A small write (log-metric, set-tag, create-run, …) commits in a fraction of a millisecond, so
/// it runs right here on the async thread: handing it to a blocking thread and back would cost
/// more than the write, on a small machine most of a single log-metric's latency. Reads, which
/// can scan a large experiment, and large bodies go to a blocking thread.
fn is_small_write(method: &Method, endpoint: &str, request: &Fields) -> bool {
    const SMALL_BODY_BYTES: usize = 16 << 10;
    let small = matches!(request, Fields::Body(bytes) if bytes.len() <= SMALL_BODY_BYTES);
    method != Method::GET && small && !endpoint.ends_with("search")
}

/// Where a request's fields are: a JSON body, parsed later straight into the endpoint's type,
/// or a query string.
enum Fields {
    Body(Vec<u8>),
    Query(Value),
}

/// A GET's query string, or any other method's body (an empty body falls back to the query:
/// DELETE calls from some clients carry their fields there).
async fn request_fields(
    method: &Method,
    query: Option<&str>,
    body: Body,
) -> Result<Fields, TrackingError> {
    if method == Method::GET {
        return Ok(Fields::Query(lenient::query_to_json(
            query.unwrap_or_default(),
        )));
    }
    let bytes = read_bounded(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::Query(lenient::query_to_json(
            query.unwrap_or_default(),
        )));
    }
    Ok(Fields::Body(bytes))
}

/// Reads a JSON body of at most [`MAX_JSON_BYTES`]. A larger one is refused, but read on (up
/// to [`MAX_DRAIN_BYTES`]) before answering, so the client gets the error instead of a reset
/// connection while it is still sending.
async fn read_bounded(body: Body) -> Result<Vec<u8>, TrackingError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| TrackingError::invalid(format!("The request body broke off: {e}")))?;
        seen += chunk.len();
        if seen <= MAX_JSON_BYTES {
            bytes.extend_from_slice(&chunk);
        } else if seen > MAX_DRAIN_BYTES {
            break;
        }
    }
    if seen > MAX_JSON_BYTES {
        return Err(TrackingError::invalid(format!(
            "The request body is larger than {} MiB",
            MAX_JSON_BYTES >> 20
        )));
    }
    Ok(bytes)
}

async fn list_artifacts(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let query = lenient::query_to_json(uri.query().unwrap_or_default());
    let dir = query["path"].as_str().unwrap_or_default().to_owned();
    let tracking = app.tracking.clone();
    match blocking(move || tracking.list_artifacts(&dir)).await {
        Ok(files) => json_response(StatusCode::OK, &json!({ "files": files })),
        Err(e) => error_response(&e),
    }
}

/// A URL path percent-decoded as a path (RFC 3986 §2.1 and §3.3): each `%XX` becomes its byte
/// and nothing else changes. Unlike a query string, `+` stays a plus and `&`, `=` and `;` are
/// ordinary characters of a name. The bytes must be UTF-8.
fn decode_path(raw: &str) -> Result<String, TrackingError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| TrackingError::invalid(format!("The path '{raw}' is not UTF-8 once decoded")))
}

/// The artifact path a proxy URL names, decoded.
fn artifact_path(uri: &axum::http::Uri) -> Result<String, TrackingError> {
    decode_path(
        uri.path()
            .strip_prefix("/api/2.0/mlflow-artifacts/artifacts/")
            .unwrap_or_default(),
    )
}

async fn download_artifact(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let path = match artifact_path(&uri) {
        Ok(path) => path,
        Err(e) => return error_response(&e),
    };
    let name = path.clone();
    let tracking = app.tracking.clone();
    send_file(&name, blocking(move || tracking.artifact_file(&path)).await).await
}

/// MLflow's `/get-artifact?run_id=…&path=…`: a file of a run's artifacts.
async fn run_artifact(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let query = lenient::query_to_json(uri.query().unwrap_or_default());
    let field = |key: &str| query[key].as_str().unwrap_or_default().to_owned();
    let (run_id, path) = (
        Some(field("run_id"))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| field("run_uuid")),
        field("path"),
    );
    let name = path.clone();
    let tracking = app.tracking.clone();
    let found = blocking(move || {
        lathe_core::tracking::validate_artifact_path(&path)?;
        let root = tracking.read(|c| lathe_core::tracking::runs::get(c, &run_id))?;
        tracking.artifact_under(&root.info.artifact_uri, &path)
    });
    send_file(&name, found.await).await
}

/// MLflow's `/model-versions/get-artifact?name=…&version=…&path=…`: a file of the model a
/// registered version points at.
async fn model_version_artifact(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let query = lenient::query_to_json(uri.query().unwrap_or_default());
    let field = |key: &str| query[key].as_str().unwrap_or_default().to_owned();
    let (name, version, path) = (field("name"), field("version"), field("path"));
    let shown = path.clone();
    let tracking = app.tracking.clone();
    let found = blocking(move || {
        lathe_core::tracking::validate_artifact_path(&path)?;
        let found =
            tracking.read(|c| lathe_core::tracking::registry::get_version(c, &name, &version))?;
        tracking.artifact_under(&found.source, &path)
    });
    send_file(&shown, found.await).await
}

/// `logged-models/<id>/artifacts/files?artifact_file_path=…`: a file of a logged model.
async fn logged_model_artifact(
    State(app): State<App>,
    axum::extract::Path(id): axum::extract::Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let query = lenient::query_to_json(uri.query().unwrap_or_default());
    let Some(path) = query["artifact_file_path"].as_str().map(str::to_owned) else {
        return error_response(&TrackingError::new(
            ErrorCode::BadRequest,
            "Request must include the \"artifact_file_path\" query parameter.",
        ));
    };
    let shown = path.clone();
    let tracking = app.tracking.clone();
    let found = blocking(move || tracking.artifact_under(&format!("models:/{id}"), &path));
    send_file(&shown, found.await).await
}

/// Streams an artifact file with the headers MLflow's server sends
/// (`_response_with_file_attachment_headers`): its type guessed from its name, an attachment
/// disposition naming it, and `nosniff` so a browser never runs it as a page.
async fn send_file(
    name: &str,
    found: Result<(std::path::PathBuf, u64), TrackingError>,
) -> Response {
    let (file, size) = match found {
        Ok(found) => found,
        Err(e) => return error_response(&e),
    };
    let opened = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(e) => {
            return error_response(&TrackingError::internal(format!("{}: {e}", file.display())));
        }
    };
    let file_name = name.rsplit('/').next().unwrap_or(name);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(mime_type(file_name)) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&content_disposition(file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    (
        headers,
        Body::from_stream(tokio_util::io::ReaderStream::new(opened)),
    )
        .into_response()
}

/// A file's type as MLflow guesses it (`_guess_mime_type`): plain text for the extensions of
/// text it lists (and the files `MLmodel` and `MLproject`), else by extension, else bytes.
fn mime_type(file_name: &str) -> &'static str {
    const TEXT: [&str; 26] = [
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "ipynb",
        "MLmodel",
        "MLproject",
    ];
    let extension = match file_name.rsplit_once('.') {
        Some((_, extension)) if !extension.is_empty() => extension,
        _ => file_name,
    };
    // MLflow's list names `mlproject` in lower case (and `MLmodel` as written).
    if TEXT.contains(&extension) || extension.eq_ignore_ascii_case("mlproject") {
        return "text/plain";
    }
    mime_guess::from_ext(extension)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

/// `attachment; filename=…` (RFC 6266), quoted when needed; a name beyond ASCII also as
/// `filename*=UTF-8''…` (RFC 5987) after an ASCII fallback, as MLflow writes it.
fn content_disposition(file_name: &str) -> String {
    let quoted = |name: &str| {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b));
        if token {
            name.to_owned()
        } else {
            format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
        }
    };
    if file_name.is_ascii() {
        return format!("attachment; filename={}", quoted(file_name));
    }
    let fallback: String = file_name.chars().filter(char::is_ascii).collect();
    let fallback = if fallback.is_empty() {
        "download".to_owned()
    } else {
        fallback
    };
    const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    format!(
        "attachment; filename={}; filename*=UTF-8''{}",
        quoted(&fallback),
        percent_encoding::utf8_percent_encode(file_name, ATTR)
    )
}

async fn upload_artifact(State(app): State<App>, uri: axum::http::Uri, body: Body) -> Response {
    let path = match artifact_path(&uri) {
        Ok(path) => path,
        Err(e) => return error_response(&e),
    };
    let path = match lathe_core::tracking::validate_artifact_path(&path) {
        Ok(path) => path,
        Err(e) => return error_response(&e),
    };
    // The body streams into the blob store on a blocking thread, a chunk at a time.
    let (chunks, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(8);
    let tracking = app.tracking.clone();
    let store = blocking(move || {
        let mut reader = ChannelReader {
            receiver,
            current: Bytes::new(),
        };
        tracking.put_artifact(&path, &mut reader)
    });
    let feed = async move {
        use futures_util::StreamExt;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string());
            let failed = chunk.is_err();
            if chunks.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let (stored, ()) = tokio::join!(store, feed);
    match stored {
        Ok(_) => json_response(StatusCode::OK, &json!({})),
        Err(e) => error_response(&e),
    }
}

async fn delete_artifact(State(app): State<App>, uri: axum::http::Uri) -> Response {
    let path = match artifact_path(&uri) {
        Ok(path) => path,
        Err(e) => return error_response(&e),
    };
    let tracking = app.tracking.clone();
    match blocking(move || tracking.delete_artifact(&path)).await {
        Ok(()) => json_response(StatusCode::OK, &json!({})),
        Err(e) => error_response(&e),
    }
}

/// Reads an upload's chunks as they arrive from the async side.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!("the upload broke off: {e}")));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_as_paths_not_queries() {
        for (raw, decoded) in [
            ("reports/R%26D%20notes.txt", "reports/R&D notes.txt"),
            ("reports/R&D notes.txt", "reports/R&D notes.txt"),
            ("a+b=c;d", "a+b=c;d"),
            ("a%2Bb", "a+b"),
            ("h%23t", "h#t"),
            ("100%.txt", "100%.txt"),
            ("%C3%BC%E6%97%A5", "ü日"),
        ] {
            assert_eq!(decode_path(raw).unwrap(), decoded, "{raw}");
        }
        assert!(decode_path("bad%FF").is_err());
    }
}
