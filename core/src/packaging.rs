//! Packaging a registered model version as a self-contained folder (`lathe models package`):
//!
//! ```text
//! OUT/model/            the model in MLflow's format: MLmodel (with its signature) and its files
//! OUT/model/conda.yaml, python_env.yaml, requirements.txt   its environment
//! OUT/model/code/lathe_pyfunc.py   for a Lathe native model: MLflow's python_function loader
//! OUT/bin/lathe         the Lathe that serves it
//! OUT/Dockerfile        serves it with `lathe models serve` on port 8080
//! ```
//!
//! A Lathe native model gets a `python_function` flavor (MLflow's documented custom-loader
//! form: `loader_module`, `code`, `data`), so `mlflow.pyfunc.load_model(OUT/model)` predicts
//! what Lathe does. The folder is written beside `OUT` and renamed into place, so a failure
//! leaves nothing behind.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value as Yaml};

use crate::tracking::Tracking;
use crate::tracking::types::ModelVersion;
use crate::{Error, Result};

const LOADER: &str = include_str!("packaging/lathe_pyfunc.py");

/// What a package holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Package {
    pub dir: PathBuf,
    /// `lathe` for a native model (given a python_function loader), else the flavors it had.
    pub flavors: Vec<String>,
    /// Every file, relative to the package.
    pub files: Vec<String>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::Endpoint(message.into())
}

/// Writes `version` as a package at `out`, with `lathe` (this program) to serve it.
///
/// # Errors
/// `out` exists and is not empty; the version's files are outside Lathe's store; a file that
/// cannot be written.
pub fn package(
    tracking: &Tracking,
    version: &ModelVersion,
    out: &Path,
    lathe: &Path,
) -> Result<Package> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .next()
            .is_some()
    {
        return Err(bad(format!(
            "{} is not empty; package into a new folder",
            out.display()
        )));
    }
    let reference = format!("{}:{}", version.name, version.version);
    let dir = tracking
        .artifact_dir(&version.source)?
        .ok_or_else(|| bad(format!("{reference}: its files are outside Lathe's store")))?;
    let listing: Vec<(String, String)> = tracking
        .artifact_tree(&dir)?
        .into_iter()
        .map(|(path, hash, _)| (path, hash))
        .collect();
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".lathe-package-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let model = staging.path().join("model");
    crate::files::unpack_tree(tracking.blobs(), &listing, &model)?;
    let native = listing
        .iter()
        .find(|(p, _)| p == "model.json" || p.ends_with("/model.json"))
        .map(|(p, _)| p.clone());
    let onnx = listing
        .iter()
        .find(|(p, _)| p.ends_with(".onnx"))
        .map(|(p, _)| p.clone())
        .filter(|_| native.is_none() && !model.join("MLmodel").exists());
    let flavors = match &onnx {
        Some(file) => onnx_mlmodel(&model, file, version.signature.as_ref())?,
        None => prepare_mlmodel(&model, native.as_deref(), &reference)?,
    };
    let requirements = match (&native, &onnx) {
        (Some(_), _) => Some("mlflow\nnumpy\npandas\n"),
        (None, Some(_)) => Some("mlflow\nonnx\nonnxruntime\n"),
        (None, None) => None,
    };
    write_environment(&model, requirements)?;
    let bin = staging.path().join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| Error::io(&bin, e))?;
    std::fs::copy(lathe, bin.join("lathe")).map_err(|e| Error::io(lathe, e))?;
    write(&staging.path().join("Dockerfile"), &dockerfile(&reference))?;
    let kept = staging.keep();
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::rename(&kept, out).map_err(|e| Error::io(out, e))?;
    let files = crate::files::tree(out)?
        .into_iter()
        .map(|(relative, _)| relative)
        .collect();
    Ok(Package {
        dir: out.to_path_buf(),
        flavors,
        files,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Gives a native model its python_function flavor (and an MLmodel when it has none);
/// returns the flavors.
fn prepare_mlmodel(model: &Path, native: Option<&str>, reference: &str) -> Result<Vec<String>> {
    let path = model.join("MLmodel");
    let mut mlmodel: Mapping = match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_yaml_ng::from_str(&text).map_err(|e| bad(format!("{reference}: MLmodel: {e}")))?
        }
        Err(_) => Mapping::new(),
    };
    if let Some(data) = native {
        let mut pyfunc = Mapping::new();
        pyfunc.insert("loader_module".into(), "lathe_pyfunc".into());
        pyfunc.insert("code".into(), "code".into());
        pyfunc.insert("data".into(), data.into());
        pyfunc.insert("env".into(), {
            let mut env = Mapping::new();
            env.insert("conda".into(), "conda.yaml".into());
            env.insert("virtualenv".into(), "python_env.yaml".into());
            Yaml::Mapping(env)
        });
        let flavors = mlmodel
            .entry("flavors".into())
            .or_insert_with(|| Yaml::Mapping(Mapping::new()));
        if let Yaml::Mapping(flavors) = flavors {
            flavors.insert("python_function".into(), Yaml::Mapping(pyfunc));
        }
        write(&model.join("code").join("lathe_pyfunc.py"), LOADER)?;
        let text = serde_yaml_ng::to_string(&mlmodel).map_err(|e| bad(e.to_string()))?;
        write(&path, &text)?;
    }
    Ok(match mlmodel.get("flavors") {
        Some(Yaml::Mapping(f)) => f
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    })
}

/// An MLmodel for an ONNX file registered as it is: MLflow's `onnx` flavor and its
/// python_function (`mlflow.onnx`), with the signature read from the graph at registration
/// (MLflow's `mlflow.onnx.save_model` writes the same); returns the flavors.
fn onnx_mlmodel(
    model: &Path,
    file: &str,
    signature: Option<&serde_json::Value>,
) -> Result<Vec<String>> {
    let mut text = format!(
        "artifact_path: model\nflavors:\n  onnx:\n    data: {file}\n    providers:\n    - \
         CPUExecutionProvider\n  python_function:\n    data: {file}\n    env:\n      conda: \
         conda.yaml\n      virtualenv: python_env.yaml\n    loader_module: mlflow.onnx\n"
    );
    if let Some(signature) = signature {
        // MLflow keeps each side of a signature as a JSON string.
        let side = |key: &str| serde_json::to_string(&signature[key]).unwrap_or_default();
        let quoted = |json: String| serde_yaml_ng::to_string(&json).unwrap_or_default();
        text.push_str(&format!(
            "signature:\n  inputs: {}  outputs: {}",
            quoted(side("inputs")),
            quoted(side("outputs"))
        ));
    }
    write(&model.join("MLmodel"), &text)?;
    Ok(vec!["onnx".into(), "python_function".into()])
}

/// The model's environment files: kept when the model has them; written with `requirements`
/// when given (a native model: numpy and pandas for its loader, mlflow to load it; an ONNX
/// file: onnx and onnxruntime).
fn write_environment(model: &Path, requirements: Option<&str>) -> Result<()> {
    let python = "3.11";
    let written = requirements.is_some();
    let requirements = match requirements {
        Some(given) => given.to_owned(),
        None => std::fs::read_to_string(model.join("requirements.txt")).unwrap_or_default(),
    };
    if !model.join("requirements.txt").exists() || written {
        write(&model.join("requirements.txt"), &requirements)?;
    }
    if !model.join("conda.yaml").exists() || written {
        let pip: String = requirements
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("    - {}\n", l.trim()))
            .collect();
        write(
            &model.join("conda.yaml"),
            &format!(
                "channels:\n- conda-forge\ndependencies:\n- python={python}\n- pip\n- pip:\n{pip}name: mlflow-env\n"
            ),
        )?;
    }
    if !model.join("python_env.yaml").exists() || written {
        write(
            &model.join("python_env.yaml"),
            &format!(
                "python: {python}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
            ),
        )?;
    }
    Ok(())
}

/// A Dockerfile serving the package with `lathe models serve` (off loopback, so with a key,
/// printed when it starts).
fn dockerfile(reference: &str) -> String {
    format!(
        "# {reference}, served by Lathe (MLflow's /invocations and the Open Inference Protocol).\n\
         FROM debian:bookworm-slim\n\
         RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
         ca-certificates && rm -rf /var/lib/apt/lists/*\n\
         COPY bin/lathe /usr/local/bin/lathe\n\
         COPY model /opt/model\n\
         EXPOSE 8080\n\
         CMD [\"lathe\", \"models\", \"serve\", \"/opt/model\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\"]\n"
    )
}
