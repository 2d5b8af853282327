//! Registering a model from local files (`lathe models register PATH`): an MLmodel folder or an
//! ONNX file is copied into the artifact store under `registry/<model>/<id>/`, its signature
//! read, and a version recorded — the registered model created first if it is new.

use std::path::Path;

use serde_json::Value;

use super::api::ARTIFACTS_SCHEME;
use super::registry::{self, NewVersion};
use super::types::{ModelVersion, Tag};
use super::{Tracking, TrackingError, TrackingResult, logged_models, sources};

/// A new model version as a client asks for it (MLflow's `CreateModelVersion`).
#[derive(Debug, Clone, Default)]
pub struct VersionRequest {
    pub name: String,
    /// Where its files are: `runs:/<run>/<path>`, `models:/<logged model id>`, or a URI in
    /// the artifact store.
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: String,
    pub description: String,
    pub tags: Vec<Tag>,
    /// The MLflow 3 logged model it is a version of.
    pub model_id: Option<String>,
}

impl Tracking {
    /// Records a version of the registered model `name`, creating the model first if it is new.
    ///
    /// # Errors
    /// As [`Tracking::create_model_version`].
    pub fn register_version(&self, request: VersionRequest) -> TrackingResult<ModelVersion> {
        let name = request.name.clone();
        self.write(move |c| {
            if registry::get_model(c, &name).is_err() {
                registry::create_model(c, &name, "", &[])?;
            }
            Ok(())
        })?;
        self.create_model_version(request)
    }

    /// Records a version of an existing registered model. The source is checked as MLflow
    /// checks it (`sources::check`), the signature is read from the source's MLmodel, and a
    /// version of a logged model (`models:/<id>`, or `model_id`) takes that model's run and is
    /// listed on it.
    ///
    /// # Errors
    /// `RESOURCE_DOES_NOT_EXIST` for an unknown model; `INVALID_PARAMETER_VALUE` for a source
    /// MLflow refuses (a `..`, a local path, a run id that is not `run_id`).
    pub fn create_model_version(&self, request: VersionRequest) -> TrackingResult<ModelVersion> {
        let VersionRequest {
            name,
            source,
            run_id,
            run_link,
            description,
            tags,
            model_id: given_model,
        } = request;
        let model_id = given_model.clone().or_else(|| {
            source
                .strip_prefix("models:/")
                .map(|id| id.trim_matches('/').to_owned())
        });
        let logged = match &model_id {
            Some(id) => self.read(|c| logged_models::get(c, id)).ok(),
            None => None,
        };
        self.read(|c| sources::check(c, &source, run_id.as_deref(), given_model.as_deref()))?;
        let run_id = run_id.or_else(|| logged.and_then(|m| m.info.source_run_id));
        let new = NewVersion {
            name,
            signature: self.signature_of(&source)?,
            model_id,
            source,
            run_id,
            run_link,
            description,
            user_id: String::new(),
            tags,
        };
        self.write(move |c| {
            let made_from = new.model_id.clone();
            let version = registry::create_version(c, new)?;
            // The logged model keeps the list of versions made from it.
            if let Some(id) = made_from.filter(|id| logged_models::get(c, id).is_ok()) {
                let number = version.version.parse().unwrap_or_default();
                logged_models::tag_model_version(c, &id, &version.name, number)?;
            }
            Ok(version)
        })
    }

    /// The signature of the model at `source` when it is in Lathe's artifact store and has an
    /// MLmodel file with one.
    fn signature_of(&self, source: &str) -> TrackingResult<Option<Value>> {
        let Ok(Some(dir)) = self.artifact_dir(source) else {
            return Ok(None);
        };
        let path = format!("{dir}/MLmodel");
        let Ok((file, _)) = self.artifact_file(&path) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| TrackingError::internal(format!("{}: {e}", file.display())))?;
        let model = crate::mlmodel::parse(&path, &text).map_err(TrackingError::invalid)?;
        Ok(model.signature)
    }

    pub fn register_local(
        &self,
        path: &Path,
        name: &str,
        description: &str,
    ) -> TrackingResult<ModelVersion> {
        let files = model_files(path)?;
        self.register_files(name, description, &files, local_signature(path)?)
    }

    /// Registers any file or folder as a custom model (Azure's `custom_model`, read by a
    /// scoring script): its files sit under their own name in the version's folder, so
    /// `AZUREML_MODEL_DIR/<name>/…` finds them as in Azure.
    ///
    /// # Errors
    /// A path that does not exist or cannot be read.
    pub fn register_custom(
        &self,
        path: &Path,
        name: &str,
        description: &str,
    ) -> TrackingResult<ModelVersion> {
        let shown = path.display();
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| TrackingError::invalid(format!("{shown}: not a file or folder")))?;
        let files = if path.is_dir() {
            folder_files(path)?
                .into_iter()
                .map(|(relative, file)| (format!("{base}/{relative}"), file))
                .collect()
        } else if path.is_file() {
            vec![(base, path.to_path_buf())]
        } else {
            return Err(TrackingError::invalid(format!("{shown}: does not exist")));
        };
        self.register_files(name, description, &files, None)
    }

    fn register_files(
        &self,
        name: &str,
        description: &str,
        files: &[(String, std::path::PathBuf)],
        signature: Option<serde_json::Value>,
    ) -> TrackingResult<ModelVersion> {
        let folder = format!("registry/{}/{}", name, uuid::Uuid::new_v4().simple());
        super::validate_artifact_path(&folder)?;
        for (relative, file) in files {
            let mut input = std::fs::File::open(file)
                .map_err(|e| TrackingError::invalid(format!("{}: {e}", file.display())))?;
            self.put_artifact(&format!("{folder}/{relative}"), &mut input)?;
        }
        let new = NewVersion {
            name: name.to_owned(),
            source: format!("{ARTIFACTS_SCHEME}{folder}"),
            run_id: None,
            run_link: String::new(),
            description: description.to_owned(),
            user_id: std::env::var("USER").unwrap_or_default(),
            tags: Vec::new(),
            signature,
            model_id: None,
        };
        self.write(move |c| {
            if registry::get_model(c, &new.name).is_err() {
                registry::create_model(c, &new.name, "", &[])?;
            }
            registry::create_version(c, new)
        })
    }
}

/// The files to copy, with their paths relative to the model: every file of an MLmodel folder,
/// or the one ONNX file.
fn model_files(path: &Path) -> TrackingResult<Vec<(String, std::path::PathBuf)>> {
    let shown = path.display();
    if path.is_dir() {
        if !path.join("MLmodel").is_file() {
            return Err(TrackingError::invalid(format!(
                "{shown}: not a model folder (it has no MLmodel file)"
            )));
        }
        return folder_files(path);
    }
    if !path.is_file() {
        return Err(TrackingError::invalid(format!("{shown}: does not exist")));
    }
    let is_onnx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if !is_onnx {
        return Err(TrackingError::invalid(format!(
            "{shown}: register an MLmodel folder or an .onnx file"
        )));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.onnx".into());
    Ok(vec![(file_name, path.to_path_buf())])
}

/// Every file of the folder `path`, relative to it.
fn folder_files(path: &Path) -> TrackingResult<Vec<(String, std::path::PathBuf)>> {
    crate::files::tree(path).map_err(|e| TrackingError::invalid(format!("{}: {e}", path.display())))
}

/// The signature of a model folder's MLmodel, or of an ONNX file's graph.
fn local_signature(path: &Path) -> TrackingResult<Option<serde_json::Value>> {
    let shown = path.display();
    if path.is_dir() {
        let text = std::fs::read_to_string(path.join("MLmodel"))
            .map_err(|e| TrackingError::invalid(format!("{shown}/MLmodel: {e}")))?;
        return Ok(crate::mlmodel::parse(&format!("{shown}/MLmodel"), &text)
            .map_err(TrackingError::invalid)?
            .signature);
    }
    let bytes = std::fs::read(path).map_err(|e| TrackingError::invalid(format!("{shown}: {e}")))?;
    Ok(Some(crate::onnx::signature(&bytes).map_err(|e| {
        TrackingError::invalid(format!("{shown}: {e}"))
    })?))
}
