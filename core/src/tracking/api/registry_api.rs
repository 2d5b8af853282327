//! The model registry's endpoints (`registered-models/…`, `model-versions/…`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::*;

#[derive(Deserialize)]
struct CreateModel {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct CreateVersion {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_link: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    model_id: Option<String>,
}

#[derive(Deserialize)]
struct Transition {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    version: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    archive_existing_versions: Option<bool>,
}

#[derive(Deserialize)]
struct LatestVersions {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::strings")]
    stages: Vec<String>,
}

impl Tracking {
    pub(super) fn handle_registry(
        &self,
        method: &str,
        endpoint: &str,
        body: Request<'_>,
    ) -> TrackingResult<Value> {
        match (method, endpoint) {
            ("POST", "registered-models/create") => {
                let req: CreateModel = parse(body)?;
                let name = required("name", req.name)?;
                let model = self.write(move |c| {
                    registry::create_model(
                        c,
                        &name,
                        &req.description.unwrap_or_default(),
                        &req.tags,
                    )
                })?;
                Ok(json!({ "registered_model": to_json(model)? }))
            }
            ("GET", "registered-models/get") => {
                let name = required("name", parse::<Ids>(body)?.name)?;
                let model = self.read(|c| registry::get_model(c, &name))?;
                Ok(json!({ "registered_model": to_json(model)? }))
            }
            ("POST", "registered-models/rename") => {
                let req: Ids = parse(body)?;
                let name = required("name", req.name)?;
                let new_name = required("new_name", req.new_name)?;
                let model = self.write(move |c| registry::rename_model(c, &name, &new_name))?;
                Ok(json!({ "registered_model": to_json(model)? }))
            }
            ("PATCH", "registered-models/update") => {
                let req: Ids = parse(body)?;
                let name = required("name", req.name)?;
                let description = req.description.unwrap_or_default();
                let model = self.write(move |c| registry::update_model(c, &name, &description))?;
                Ok(json!({ "registered_model": to_json(model)? }))
            }
            ("DELETE", "registered-models/delete") => {
                let name = required("name", parse::<Ids>(body)?.name)?;
                self.write(move |c| registry::delete_model(c, &name))?;
                Ok(json!({}))
            }
            ("GET" | "POST", "registered-models/search") => {
                let req: SearchRequest = parse(body)?;
                let max = req.max_results(100)?;
                let offset = search::parse_page_token(req.page_token.as_deref())?;
                let filter = req.filter.unwrap_or_default();
                let (found, next) =
                    self.read(|c| registry::search_models(c, &filter, &req.order_by, max, offset))?;
                Ok(page("registered_models", to_json(found)?, next))
            }
            ("GET" | "POST", "registered-models/get-latest-versions") => {
                let req: LatestVersions = parse(body)?;
                let name = required("name", req.name)?;
                let found = self.read(|c| registry::latest_versions(c, &name, &req.stages))?;
                Ok(json!({ "model_versions": to_json(found)? }))
            }
            ("POST", "registered-models/set-tag") => {
                let req: Ids = parse(body)?;
                let name = required("name", req.name)?;
                let key = required("key", req.key)?;
                let value = req.value.unwrap_or_default();
                self.write(move |c| registry::set_model_tag(c, &name, &key, &value))?;
                Ok(json!({}))
            }
            ("DELETE", "registered-models/delete-tag") => {
                let req: Ids = parse(body)?;
                let name = required("name", req.name)?;
                let key = required("key", req.key)?;
                self.write(move |c| registry::delete_model_tag(c, &name, &key))?;
                Ok(json!({}))
            }
            ("POST", "registered-models/alias") => {
                let req: Ids = parse(body)?;
                let name = required("name", req.name)?;
                let alias = required("alias", req.alias)?;
                let version = required("version", req.version)?;
                self.write(move |c| registry::set_alias(c, &name, &alias, &version))?;
                Ok(json!({}))
            }
            ("DELETE", "registered-models/alias") => {
                let req: Ids = parse(body)?;
                let name = required("name", req.name)?;
                let alias = required("alias", req.alias)?;
                self.write(move |c| registry::delete_alias(c, &name, &alias))?;
                Ok(json!({}))
            }
            ("GET", "registered-models/alias") => {
                let req: Ids = parse(body)?;
                let name = required("name", req.name)?;
                let alias = required("alias", req.alias)?;
                let version = self.read(|c| registry::version_by_alias(c, &name, &alias))?;
                Ok(json!({ "model_version": to_json(version)? }))
            }
            ("POST", "model-versions/create") => {
                let req: CreateVersion = parse(body)?;
                let source = required("source", req.source)?;
                // A version of an MLflow 3 logged model (`models:/<id>`) comes from the run
                // that logged it.
                let given_model = req.model_id.clone();
                let model_id = req.model_id.filter(|m| !m.is_empty()).or_else(|| {
                    source
                        .strip_prefix("models:/")
                        .map(|id| id.trim_matches('/').to_owned())
                });
                let logged = match &model_id {
                    Some(id) => self.read(|c| logged_models::get(c, id)).ok(),
                    None => None,
                };
                let given_run = req.run_id.filter(|r| !r.is_empty());
                {
                    let (source, run, model) = (source.clone(), given_run.clone(), given_model);
                    self.read(move |c| {
                        sources::check(c, &source, run.as_deref(), model.as_deref())
                    })?;
                }
                let run_id = given_run.or_else(|| logged.and_then(|m| m.info.source_run_id));
                let new = registry::NewVersion {
                    name: required("name", req.name)?,
                    signature: self.signature_of(&source)?,
                    model_id,
                    source,
                    run_id,
                    run_link: req.run_link.unwrap_or_default(),
                    description: req.description.unwrap_or_default(),
                    user_id: String::new(),
                    tags: req.tags,
                };
                let version = self.write(move |c| {
                    let made_from = new.model_id.clone();
                    let version = registry::create_version(c, new)?;
                    // The logged model keeps the list of versions made from it.
                    if let Some(id) = made_from.filter(|id| logged_models::get(c, id).is_ok()) {
                        let number = version.version.parse().unwrap_or_default();
                        logged_models::tag_model_version(c, &id, &version.name, number)?;
                    }
                    Ok(version)
                })?;
                Ok(json!({ "model_version": to_json(version)? }))
            }
            ("GET", "model-versions/get") => {
                let (name, version) = name_and_version(parse(body)?)?;
                let found = self.read(|c| registry::get_version(c, &name, &version))?;
                Ok(json!({ "model_version": to_json(found)? }))
            }
            ("PATCH", "model-versions/update") => {
                let req: Ids = parse(body)?;
                let description = req.description.clone().unwrap_or_default();
                let (name, version) = name_and_version(req)?;
                let found = self
                    .write(move |c| registry::update_version(c, &name, &version, &description))?;
                Ok(json!({ "model_version": to_json(found)? }))
            }
            ("POST", "model-versions/transition-stage") => {
                let req: Transition = parse(body)?;
                let name = required("name", req.name)?;
                let version = required("version", req.version)?;
                let stage = required("stage", req.stage)?;
                let archive = req.archive_existing_versions.unwrap_or(false);
                let found = self.write(move |c| {
                    registry::transition_stage(c, &name, &version, &stage, archive)
                })?;
                Ok(json!({ "model_version": to_json(found)? }))
            }
            ("DELETE", "model-versions/delete") => {
                let (name, version) = name_and_version(parse(body)?)?;
                self.write(move |c| registry::delete_version(c, &name, &version))?;
                Ok(json!({}))
            }
            ("GET" | "POST", "model-versions/search") => {
                let req: SearchRequest = parse(body)?;
                let max = req.max_results(10_000)?;
                let offset = search::parse_page_token(req.page_token.as_deref())?;
                let filter = req.filter.unwrap_or_default();
                let (found, next) = self
                    .read(|c| registry::search_versions(c, &filter, &req.order_by, max, offset))?;
                Ok(page("model_versions", to_json(found)?, next))
            }
            ("GET", "model-versions/get-download-uri") => {
                let (name, version) = name_and_version(parse(body)?)?;
                let found = self.read(|c| registry::get_version(c, &name, &version))?;
                Ok(json!({ "artifact_uri": found.source }))
            }
            ("POST", "model-versions/set-tag") => {
                let req: Ids = parse(body)?;
                let key = required("key", req.key.clone())?;
                let value = req.value.clone().unwrap_or_default();
                let (name, version) = name_and_version(req)?;
                self.write(move |c| registry::set_version_tag(c, &name, &version, &key, &value))?;
                Ok(json!({}))
            }
            ("DELETE", "model-versions/delete-tag") => {
                let req: Ids = parse(body)?;
                let key = required("key", req.key.clone())?;
                let (name, version) = name_and_version(req)?;
                self.write(move |c| registry::delete_version_tag(c, &name, &version, &key))?;
                Ok(json!({}))
            }
            _ => Err(TrackingError::new(
                ErrorCode::EndpointNotFound,
                format!("No endpoint {method} {endpoint} in this server"),
            )),
        }
    }
}

fn name_and_version(req: Ids) -> TrackingResult<(String, String)> {
    Ok((
        required("name", req.name)?,
        required("version", req.version)?,
    ))
}

impl Tracking {
    /// The signature of the model at `source` when it is in Lathe's artifact store and has an
    /// MLmodel file with one.
    fn signature_of(&self, source: &str) -> TrackingResult<Option<Value>> {
        // `models:/<id>` names an MLflow 3 logged model; its files are at its artifact URI.
        let resolved = match source.strip_prefix("models:/") {
            Some(id) => match self.read(|c| logged_models::get(c, id.trim_matches('/'))) {
                Ok(model) => model.info.artifact_uri,
                Err(_) => return Ok(None),
            },
            None => source.to_owned(),
        };
        let Some(dir) = resolved.strip_prefix(ARTIFACTS_SCHEME) else {
            return Ok(None);
        };
        let path = format!("{}/MLmodel", dir.trim_matches('/'));
        let Ok((file, _)) = self.artifact_file(&path) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| TrackingError::internal(format!("{}: {e}", file.display())))?;
        let model = crate::mlmodel::parse(&path, &text).map_err(TrackingError::invalid)?;
        Ok(model.signature)
    }
}
