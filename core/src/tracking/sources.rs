//! Where a model version may come from: the checks MLflow's server applies to
//! `model-versions/create` (`_validate_source_run` and `_validate_source_model` in
//! mlflow/server/handlers.py, 3.17), with its messages, so a client gets the same answer from
//! Lathe. A `runs:/<id>/…` source names its run by id and is not looked up; an artifact-store
//! source must lie under the run's (or the logged model's) artifacts; a local path is refused
//! (Lathe's runs keep their artifacts in its store, never in a local folder); no source may
//! climb out of where it points with `..`, `%2e%2e` or a NUL, however often it is encoded.

use rusqlite::{Connection, OptionalExtension};

use super::{TrackingError, TrackingResult};

const RELATIVE: &str = "If supplying a source as an http, https, local file path, ftp, \
     objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative \
     path references present. Please provide an absolute path.";

const LOCAL: &str = "To use a local path as a model version source, the run_id request \
     parameter has to be specified and the local path has to be contained within the artifact \
     directory of the run specified by the run_id.";

fn invalid(source: &str, why: &str) -> TrackingError {
    TrackingError::invalid(format!("Invalid model version source: '{source}'. {why}"))
}

fn identify(source: &str, parameter: &str) -> TrackingError {
    invalid(
        source,
        &format!(
            "The {parameter} request parameter must identify the resource that contains the source."
        ),
    )
}

/// `text` percent-decoded (with `+` as a space, as MLflow's `unquote_plus`) until it stops
/// changing, at most ten times: a source encoded twice hides a `..` no deeper.
fn decoded(text: &str) -> String {
    let mut current = text.to_owned();
    for _ in 0..10 {
        let next: String =
            form_urlencoded::parse(format!("x={}", current.replace('&', "%26")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Whether the source, decoded, steps back (`..`) or holds a NUL anywhere in its path.
fn climbs(source: &str) -> bool {
    let plain = decoded(source);
    let path = plain
        .split_once("://")
        .map_or(plain.as_str(), |(_, rest)| rest);
    plain.contains('\0') || path.split(['/', '\\']).any(|part| part == "..")
}

/// Whether `source` lies at or under `root` (`mlflow-artifacts:` URIs, compared decoded, part
/// by part).
fn under(source: &str, root: &str) -> bool {
    let parts = |uri: &str| -> Vec<String> {
        decoded(uri)
            .trim_start_matches("mlflow-artifacts:")
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (source, root) = (parts(source), parts(root));
    source.len() >= root.len() && source[..root.len()] == root[..]
}

fn scheme(source: &str) -> Option<&str> {
    let (scheme, _) = source.split_once(':')?;
    // A Windows drive letter is a path, not a scheme.
    (scheme.len() > 1
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

fn artifact_uri(conn: &Connection, sql: &str, id: &str) -> TrackingResult<Option<String>> {
    Ok(conn
        .query_row(sql, [id], |r| r.get::<_, String>(0))
        .optional()?)
}

/// Checks a new model version's `source` against its `run_id` and `model_id` as MLflow does;
/// the error is MLflow's INVALID_PARAMETER_VALUE with its message.
pub fn check(
    conn: &Connection,
    source: &str,
    run_id: Option<&str>,
    model_id: Option<&str>,
) -> TrackingResult<()> {
    let run_id = run_id.filter(|r| !r.is_empty());
    let model_id = model_id.filter(|m| !m.is_empty());
    if climbs(source) {
        return Err(invalid(source, RELATIVE));
    }
    match scheme(source) {
        Some("runs") => {
            let rest = source.trim_start_matches("runs:");
            if rest.starts_with("//") {
                return Err(identify(source, "run_id"));
            }
            let named = rest.trim_start_matches('/').split('/').next().unwrap_or("");
            if run_id != Some(named) {
                return Err(identify(source, "run_id"));
            }
            Ok(())
        }
        Some("models") => {
            // `models:/<logged model id>`: the id must be the version's model_id when given.
            let named = source
                .trim_start_matches("models:")
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            match model_id {
                Some(id) if named.starts_with("m-") && id != named => {
                    Err(identify(source, "model_id"))
                }
                _ => Ok(()),
            }
        }
        Some("mlflow-artifacts") => {
            let root = match (model_id, run_id) {
                (Some(id), _) => artifact_uri(
                    conn,
                    "SELECT artifact_uri FROM logged_models WHERE id = ?1",
                    id,
                )?
                .ok_or_else(|| identify(source, "model_id"))?,
                (None, Some(id)) => {
                    artifact_uri(conn, "SELECT artifact_uri FROM runs WHERE uuid = ?1", id)?
                        .ok_or_else(|| identify(source, "run_id"))?
                }
                (None, None) => return Err(identify(source, "run_id")),
            };
            if under(source, &root) {
                Ok(())
            } else {
                Err(identify(
                    source,
                    if model_id.is_some() {
                        "model_id"
                    } else {
                        "run_id"
                    },
                ))
            }
        }
        None | Some("file") => Err(invalid(source, LOCAL)),
        // Other stores (s3, gs, hdfs, …): MLflow does not look anything up.
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_checked_as_mlflow_checks_them() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("lathe.db")).unwrap();
        conn.execute(
            "INSERT INTO experiments (id, name, artifact_location, lifecycle_stage, created_at_ms, updated_at_ms)
             VALUES (1, 'e', 'mlflow-artifacts:/1', 'active', 0, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO runs (uuid, experiment_id, name, user_id, status, start_time_ms,
                 lifecycle_stage, artifact_uri)
             VALUES ('abc', 1, 'r', '', 'FINISHED', 0, 'active', 'mlflow-artifacts:/1/abc/artifacts')",
            [],
        )
        .unwrap();
        let ok = |source: &str, run: Option<&str>| check(&conn, source, run, None);
        assert!(ok("runs:/abc/model", Some("abc")).is_ok());
        // A run this server does not know, named the same inside the source: not looked up.
        assert!(ok("runs:/zzz/model", Some("zzz")).is_ok());
        assert!(ok("s3://bucket/model", Some("nope")).is_ok());
        assert!(ok("mlflow-artifacts:/1/abc/artifacts/model", Some("abc")).is_ok());
        for (source, run, says) in [
            (
                "runs:/abc/model",
                Some("other"),
                "run_id request parameter must identify",
            ),
            (
                "runs:/abc/model",
                None,
                "run_id request parameter must identify",
            ),
            (
                "runs:/abc/../x",
                Some("abc"),
                "without relative path references",
            ),
            ("s3://b/../etc", None, "without relative path references"),
            ("s3://b/..%2fetc", None, "without relative path references"),
            (
                "s3://b/%252e%252e/etc",
                None,
                "without relative path references",
            ),
            ("s3://b/x%00y", None, "without relative path references"),
            ("/etc/passwd", None, "To use a local path"),
            ("file:///tmp/model", Some("abc"), "To use a local path"),
            (
                "mlflow-artifacts:/1/other/artifacts/m",
                Some("abc"),
                "must identify",
            ),
            (
                "mlflow-artifacts:/1/abc/artifacts/m",
                Some("nope"),
                "must identify",
            ),
        ] {
            let e = check(&conn, source, run, None).unwrap_err();
            assert_eq!(e.code, super::super::ErrorCode::InvalidParameterValue);
            assert!(
                e.message
                    .starts_with(&format!("Invalid model version source: '{source}'"))
                    && e.message.contains(says),
                "{source}: {}",
                e.message
            );
        }
    }
}
