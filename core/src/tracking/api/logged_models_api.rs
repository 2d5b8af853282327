//! MLflow 3's logged models' endpoints (`logged-models/…`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::*;

#[derive(Deserialize)]
struct CreateLoggedModel {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    experiment_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<Tag>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct LoggedModelChange {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    status: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    params: Vec<Tag>,
    #[serde(default)]
    artifact_directory_path: Option<String>,
}

#[derive(Deserialize)]
struct SearchLoggedModels {
    #[serde(default, deserialize_with = "lenient::strings")]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderField>,
    #[serde(default)]
    page_token: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetClause>,
}

#[derive(Deserialize)]
struct DatasetClause {
    #[serde(default)]
    dataset_name: Option<String>,
    #[serde(default)]
    dataset_digest: Option<String>,
}

/// Logged-model searches order by objects, not texts.
#[derive(Deserialize)]
struct OrderField {
    field_name: String,
    #[serde(
        default = "ascending_by_default",
        deserialize_with = "lenient::bool_or_true"
    )]
    ascending: bool,
}

fn ascending_by_default() -> bool {
    true
}

impl Tracking {
    /// `endpoint` is what follows `logged-models/`: "", "search", "<id>", "<id>/tags",
    /// "<id>/tags/<key>", "<id>/params" or "<id>/artifacts/directories".
    pub(super) fn handle_logged_models(
        &self,
        method: &str,
        endpoint: &str,
        body: Request<'_>,
    ) -> TrackingResult<Value> {
        let mut parts = endpoint.splitn(3, '/');
        let (first, second, rest) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next(),
            parts.next().map(str::to_owned),
        );
        let model = |m: logged_models::LoggedModel| Ok(json!({ "model": to_json(m)? }));
        match (method, first.as_str(), second) {
            ("POST", "", None) => {
                let req: CreateLoggedModel = parse(body)?;
                let new = logged_models::NewLoggedModel {
                    experiment_id: required("experiment_id", req.experiment_id)?,
                    name: req.name,
                    model_type: req.model_type,
                    source_run_id: req.source_run_id,
                    params: req.params,
                    tags: req.tags,
                };
                model(self.write(move |c| logged_models::create(c, new))?)
            }
            ("POST", "search", None) => {
                let req: SearchLoggedModels = parse(body)?;
                let max = req.max_results.unwrap_or(50).clamp(1, 50_000) as usize;
                let offset = search::parse_page_token(req.page_token.as_deref())?;
                let order: Vec<String> = req
                    .order_by
                    .iter()
                    .map(|o| {
                        format!(
                            "{} {}",
                            o.field_name,
                            if o.ascending { "ASC" } else { "DESC" }
                        )
                    })
                    .collect();
                let filter = req.filter.unwrap_or_default();
                let datasets = req
                    .datasets
                    .into_iter()
                    .map(|d| {
                        Ok(logged_models::DatasetFilter {
                            name: d.dataset_name.filter(|n| !n.is_empty()).ok_or_else(|| {
                                TrackingError::invalid(
                                    "`dataset_name` in the `datasets` clause must be specified.",
                                )
                            })?,
                            digest: d.dataset_digest.filter(|d| !d.is_empty()),
                        })
                    })
                    .collect::<TrackingResult<Vec<_>>>()?;
                let (found, next) = self.read(|c| {
                    logged_models::search(
                        c,
                        &req.experiment_ids,
                        &filter,
                        &datasets,
                        &order,
                        max,
                        offset,
                    )
                })?;
                Ok(page("models", to_json(found)?, next))
            }
            ("GET", id, None) => {
                let id = id.to_owned();
                model(self.read(|c| logged_models::get(c, &id))?)
            }
            ("PATCH", id, None) => {
                let req: LoggedModelChange = parse(body)?;
                let status = required("status", req.status)?;
                let id = id.to_owned();
                model(self.write(move |c| logged_models::finalize(c, &id, &status))?)
            }
            ("DELETE", id, None) => {
                let id = id.to_owned();
                self.write(move |c| logged_models::delete(c, &id))?;
                Ok(json!({}))
            }
            ("PATCH", id, Some("tags")) if rest.is_none() => {
                let req: LoggedModelChange = parse(body)?;
                let id = id.to_owned();
                model(self.write(move |c| {
                    logged_models::set_tags(c, &id, &req.tags)?;
                    logged_models::get(c, &id)
                })?)
            }
            ("DELETE", id, Some("tags")) => {
                let key = required("tag_key", rest)?;
                let id = id.to_owned();
                self.write(move |c| logged_models::delete_tag(c, &id, &key))?;
                Ok(json!({}))
            }
            ("POST", id, Some("params")) if rest.is_none() => {
                let req: LoggedModelChange = parse(body)?;
                let id = id.to_owned();
                self.write(move |c| logged_models::log_params(c, &id, &req.params))?;
                Ok(json!({}))
            }
            ("GET", id, Some("artifacts")) if rest.as_deref() == Some("directories") => {
                let req: LoggedModelChange = parse(body)?;
                let id = id.to_owned();
                let root = self.read(|c| logged_models::get(c, &id))?.info.artifact_uri;
                let sub = req.artifact_directory_path.unwrap_or_default();
                let files = match root.strip_prefix(ARTIFACTS_SCHEME) {
                    Some(base) => {
                        let dir = [base.trim_matches('/'), sub.trim_matches('/')]
                            .iter()
                            .filter(|p| !p.is_empty())
                            .copied()
                            .collect::<Vec<_>>()
                            .join("/");
                        self.list_artifacts(&dir)?
                    }
                    None => Vec::new(),
                };
                Ok(json!({ "root_uri": root, "files": to_json(files)? }))
            }
            _ => Err(TrackingError::new(
                ErrorCode::EndpointNotFound,
                format!("No endpoint {method} logged-models/{endpoint} in this server"),
            )),
        }
    }
}
