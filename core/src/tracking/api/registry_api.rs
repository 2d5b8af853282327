//! The model registry's endpoints (`registered-models/…`, `model-versions/…`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::*;
use crate::tracking::VersionRequest;

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
                let version = self.create_model_version(VersionRequest {
                    name: required("name", req.name)?,
                    source: required("source", req.source)?,
                    run_id: req.run_id.filter(|r| !r.is_empty()),
                    run_link: req.run_link.unwrap_or_default(),
                    description: req.description.unwrap_or_default(),
                    tags: req.tags,
                    model_id: req.model_id.filter(|m| !m.is_empty()),
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
