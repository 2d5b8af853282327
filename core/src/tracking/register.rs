//! Registering a model from local files (`lathe models register PATH`): an MLmodel folder or an
//! ONNX file is copied into the artifact store under `registry/<model>/<id>/`, its signature
//! read, and a version recorded — the registered model created first if it is new.

use std::path::Path;

use super::api::ARTIFACTS_SCHEME;
use super::registry::{self, NewVersion};
use super::types::ModelVersion;
use super::{Tracking, TrackingError, TrackingResult};

impl Tracking {
    pub fn register_local(
        &self,
        path: &Path,
        name: &str,
        description: &str,
    ) -> TrackingResult<ModelVersion> {
        let shown = path.display().to_string();
        let files = model_files(path)?;
        let signature = if path.is_dir() {
            let text = std::fs::read_to_string(path.join("MLmodel"))
                .map_err(|e| TrackingError::invalid(format!("{shown}/MLmodel: {e}")))?;
            crate::mlmodel::parse(&format!("{shown}/MLmodel"), &text)
                .map_err(TrackingError::invalid)?
                .signature
        } else {
            let bytes =
                std::fs::read(path).map_err(|e| TrackingError::invalid(format!("{shown}: {e}")))?;
            Some(
                crate::onnx::signature(&bytes)
                    .map_err(|e| TrackingError::invalid(format!("{shown}: {e}")))?,
            )
        };
        let folder = format!("registry/{}/{}", name, uuid::Uuid::new_v4().simple());
        super::validate_artifact_path(&folder)?;
        for (relative, file) in &files {
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
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            let entry = entry.map_err(|e| TrackingError::invalid(format!("{shown}: {e}")))?;
            if entry.file_type().is_file() {
                let relative = entry
                    .path()
                    .strip_prefix(path)
                    .map_err(|e| TrackingError::internal(e.to_string()))?
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((relative, entry.path().to_path_buf()));
            }
        }
        return Ok(files);
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
