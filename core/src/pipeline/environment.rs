//! Environments: what a command step runs in. A spec is the system's own programs, or a Python
//! virtual environment with a list of pip requirements. Specs come from Azure ML environment YAML
//! (a conda file's dependencies: its pip list, and conda packages as pip requirements), from a
//! requirements file, or from a registered environment (`azureml:name:version`). A virtual
//! environment is built once per spec, in a folder named by the spec's hash, and reused after.

use crate::pipeline::{PipelineError, PipelineResult};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::executor::process::run_program;

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::tracking::Tracking;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvSpec {
    /// Lathe itself runs the step (built-in components).
    Native,
    /// The system's programs, as found on PATH.
    System,
    /// A Python virtual environment with these pip requirements.
    Python { requirements: Vec<String> },
}

impl EnvSpec {
    /// The spec's identity: equal specs share one built environment.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        crate::blobs::hash_bytes(&json)[..16].to_owned()
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Native => "Lathe (native)".into(),
            Self::System => "the system".into(),
            Self::Python { requirements } if requirements.is_empty() => {
                "a Python virtual environment".into()
            }
            Self::Python { requirements } => format!(
                "a Python virtual environment with {}",
                requirements.join(" ")
            ),
        }
    }
}

/// Reads an environment from Azure ML environment YAML (`conda_file` as a path beside it or
/// inline; an `image` alone means the system) or a requirements file (one requirement a line).
pub fn from_file(path: &Path) -> PipelineResult<EnvSpec> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    );
    if is_yaml {
        from_yaml(&text, base)
            .map_err(|e| PipelineError::Invalid(format!("{}: {e}", path.display())))
    } else {
        Ok(EnvSpec::Python {
            requirements: requirement_lines(&text),
        })
    }
}

fn requirement_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An environment definition as YAML text; relative `conda_file` paths start at `base`.
pub fn from_yaml(text: &str, base: &Path) -> PipelineResult<EnvSpec> {
    let root: Value = crate::yaml::from_str(text)?;
    let map = root
        .as_mapping()
        .ok_or("an environment is a YAML mapping of fields")?;
    let conda = match map.get("conda_file") {
        None => None,
        Some(Value::String(file)) => {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("conda_file: cannot read {}: {e}", path.display()))?;
            Some(
                crate::yaml::from_str::<Value>(&text)
                    .map_err(|e| format!("conda_file {}: {e}", path.display()))?,
            )
        }
        Some(inline) => Some(inline.clone()),
    };
    match conda {
        Some(conda) => Ok(EnvSpec::Python {
            requirements: conda_requirements(&conda)?,
        }),
        // An image (or a build context) alone is a container Lathe does not run locally.
        None => Ok(EnvSpec::System),
    }
}

/// A conda file's pip requirements, with its conda packages (bar python and pip) as pip
/// requirements too: `scikit-learn=1.0.2` becomes `scikit-learn==1.0.2`.
fn conda_requirements(conda: &Value) -> PipelineResult<Vec<String>> {
    let deps = conda
        .get("dependencies")
        .and_then(Value::as_sequence)
        .ok_or("conda_file: needs a 'dependencies' list")?;
    let mut out = Vec::new();
    for dep in deps {
        match dep {
            Value::String(conda) => {
                let name = conda.split(['=', '<', '>', ' ']).next().unwrap_or_default();
                if matches!(name, "python" | "pip") || name.is_empty() {
                    continue;
                }
                let (name, version) = conda.split_once('=').unwrap_or((conda, ""));
                let version = version.trim_start_matches('=');
                out.push(if version.is_empty() {
                    name.to_owned()
                } else if version.contains(['<', '>', '*']) {
                    format!("{name}{version}")
                } else {
                    format!("{name}=={version}")
                });
            }
            Value::Mapping(m) => {
                for pip in m
                    .get("pip")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                {
                    if let Some(p) = pip.as_str() {
                        out.push(p.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A component's `environment`: a built-in's `lathe:native`, `system`, a registered
/// `azureml:name:version` (or `@latest`), or an inline definition (YAML text).
pub fn resolve(tracking: &Tracking, environment: &str, origin: &Path) -> PipelineResult<EnvSpec> {
    match environment.trim() {
        "lathe:native" => Ok(EnvSpec::Native),
        "system" | "lathe:system" => Ok(EnvSpec::System),
        reference if reference.starts_with("azureml:") => {
            let rest = &reference["azureml:".len()..];
            let (name, version) = match rest.split_once('@') {
                Some((name, _label)) => (name, None),
                None => match rest.split_once(':') {
                    Some((name, version)) => (name, Some(version)),
                    None => (rest, None),
                },
            };
            registered(tracking, name, version)?.ok_or_else(|| {
                PipelineError::Invalid(format!(
                    "environment '{reference}' is not registered in this workspace; register one \
                     under that name with `lathe environment register FILE --name {name}`"
                ))
            })
        }
        inline => from_yaml(inline, origin),
    }
}

/// A registered environment's spec; the newest version when `version` is `None`.
pub fn registered(
    tracking: &Tracking,
    name: &str,
    version: Option<&str>,
) -> PipelineResult<Option<EnvSpec>> {
    let (name, version) = (name.to_owned(), version.map(str::to_owned));
    let spec: Option<String> = tracking.read(move |c| {
        Ok(c.query_row(
            "SELECT spec FROM environments WHERE name = ?1 AND (?2 IS NULL OR version = ?2)
                 ORDER BY created_at DESC LIMIT 1",
            rusqlite::params![name, version],
            |r| r.get(0),
        )
        .optional()?)
    })?;
    spec.map(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
        .transpose()
        .map_err(PipelineError::from)
}

/// A registered environment, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub name: String,
    pub version: String,
    pub spec: EnvSpec,
    pub created_at: i64,
}

/// Registers `path` (environment YAML or a requirements file) as `name`; the version is the
/// one given, or one more than the newest.
pub fn register(
    tracking: &Tracking,
    path: &Path,
    name: &str,
    version: Option<&str>,
) -> PipelineResult<Registered> {
    let spec = from_file(path)?;
    let yaml = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    let (name, version) = (name.to_owned(), version.map(str::to_owned));
    let json = serde_json::to_string(&spec)?;
    let created_at = crate::db::now_millis();
    let (name, version) = tracking.write(move |c| {
        let version = match version {
            Some(v) => v,
            None => {
                let newest: Option<i64> = c.query_row(
                    "SELECT MAX(CAST(version AS INTEGER)) FROM environments WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )?;
                (newest.unwrap_or(0) + 1).to_string()
            }
        };
        c.execute(
            "INSERT INTO environments (name, version, yaml, spec, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![name, version, yaml, json, created_at],
        )
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                crate::tracking::TrackingError::new(
                    crate::tracking::ErrorCode::ResourceAlreadyExists,
                    "that name and version are already registered; give another --version",
                )
            } else {
                e.into()
            }
        })?;
        Ok((name, version))
    })?;
    Ok(Registered {
        name,
        version,
        spec,
        created_at,
    })
}

pub fn list(tracking: &Tracking) -> PipelineResult<Vec<Registered>> {
    tracking
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, version, spec, created_at FROM environments ORDER BY name, created_at",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        ?
        .into_iter()
        .map(|(name, version, spec, created_at)| {
            Ok(Registered {
                name,
                version,
                spec: serde_json::from_str(&spec)?,
                created_at,
            })
        })
        .collect()
}

/// Takes the lock file `<locks>/env-<hash>.lock`, waiting (and saying so) while another
/// process holds it, until `cancel` is set; the lock goes with the returned file.
fn lock_across_processes(
    locks: &Path,
    hash: &str,
    log: &dyn Fn(&str),
    cancel: &AtomicBool,
) -> PipelineResult<std::fs::File> {
    std::fs::create_dir_all(locks).map_err(|e| PipelineError::io(locks, e))?;
    let path = locks.join(format!("env-{hash}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| PipelineError::io(&path, e))?;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(PipelineError::Invalid(format!("{}: {e}", path.display())));
            }
        }
        if !told {
            log("waiting for another Lathe process building this environment");
            told = true;
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(PipelineError::Cancelled);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Where environments are built and kept for the whole machine, so every workspace (and every
/// test) shares one build per spec: `LATHE_CACHE_DIR`, else `$XDG_CACHE_HOME/lathe`, else
/// `~/.cache/lathe`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("LATHE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("lathe");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("lathe")
}

/// The Python a process in `built` runs: the environment's own, or the system's
/// (`LATHE_PYTHON`, else `python3` on PATH).
pub fn python(built: &Built) -> PathBuf {
    built.bin.as_ref().map_or_else(
        || PathBuf::from(std::env::var("LATHE_PYTHON").unwrap_or_else(|_| "python3".into())),
        |bin| bin.join("python"),
    )
}

/// The variables that put `built`'s programs first: PATH and VIRTUAL_ENV (none for the system).
pub fn variables(built: &Built) -> Vec<(String, String)> {
    let Some(bin) = &built.bin else {
        return Vec::new();
    };
    let path = std::env::var("PATH").unwrap_or_default();
    let mut env = vec![("PATH".into(), format!("{}:{path}", bin.display()))];
    if let Some(venv) = bin.parent() {
        env.push(("VIRTUAL_ENV".into(), venv.display().to_string()));
    }
    env
}

/// A built environment: the folder of its programs (none for the system) and its packages.
#[derive(Debug, Clone)]
pub struct Built {
    pub bin: Option<PathBuf>,
    pub packages: String,
}

/// One build at a time in this process: two steps needing the same new environment wait for
/// one build. Across processes, a lock file per environment does the same.
static BUILDING: Mutex<()> = Mutex::new(());

/// Makes `spec` ready under `<root>/envs/`, building it the first time. `log` hears the build;
/// `cancel` stops it (the build's programs are stopped and its folder removed).
pub fn materialize(
    root: &Path,
    spec: &EnvSpec,
    log: &(dyn Fn(&str) + Sync),
    cancel: &AtomicBool,
) -> PipelineResult<Built> {
    let EnvSpec::Python { requirements } = spec else {
        return Ok(Built {
            bin: None,
            packages: String::new(),
        });
    };
    let envs = root.join("envs");
    let dir = envs.join(spec.hash());
    let ready = dir.join(".lathe-ready");
    let _one = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Held until the build is done (or failed): another process building it is waited for.
    let _across = lock_across_processes(&root.join("locks"), &spec.hash(), log, cancel)?;
    if let Ok(packages) = std::fs::read_to_string(&ready) {
        return Ok(Built {
            bin: Some(dir.join("bin")),
            packages,
        });
    }
    log(&format!(
        "building {} in {}",
        spec.describe(),
        dir.display()
    ));
    // A folder without the marker is an interrupted build: start again.
    let _ = std::fs::remove_dir_all(&dir);
    let python = std::env::var("LATHE_PYTHON").unwrap_or_else(|_| "python3".into());
    let failed = |what: &str, e: String| {
        let _ = std::fs::remove_dir_all(&dir);
        format!("building the environment failed: {what}: {e}")
    };
    run_program(
        Command::new(&python).arg("-m").arg("venv").arg(&dir),
        log,
        cancel,
    )
    .map_err(|e| failed(&format!("{python} -m venv"), e.to_string()))?;
    let venv_python = dir.join("bin").join("python");
    if !requirements.is_empty() {
        run_program(
            Command::new(&venv_python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                ])
                .args(requirements),
            log,
            cancel,
        )
        .map_err(|e| failed("pip install", e.to_string()))?;
    }
    let freeze = Command::new(&venv_python)
        .args(["-m", "pip", "freeze", "--disable-pip-version-check"])
        .output()
        .map_err(|e| failed("pip freeze", e.to_string()))?;
    let packages = String::from_utf8_lossy(&freeze.stdout).into_owned();
    std::fs::write(&ready, &packages).map_err(|e| failed("marking it ready", e.to_string()))?;
    log(&format!(
        "environment ready: {} packages",
        packages.lines().count()
    ));
    Ok(Built {
        bin: Some(dir.join("bin")),
        packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_registered_twice_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = Tracking::open(dir.path().join("ws")).unwrap();
        let file = dir.path().join("requirements.txt");
        std::fs::write(&file, "numpy\n").unwrap();
        register(&tracking, &file, "env", Some("1")).unwrap();
        let again = register(&tracking, &file, "env", Some("1")).unwrap_err();
        assert_eq!(
            again.to_string(),
            "that name and version are already registered; give another --version"
        );
        assert_eq!(
            register(&tracking, &file, "env", None).unwrap().version,
            "2"
        );
    }

    #[test]
    fn waiting_for_another_process_build_can_be_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let spec = EnvSpec::Python {
            requirements: vec!["nothing-to-install".into()],
        };
        let never = AtomicBool::new(false);
        let _other =
            lock_across_processes(&dir.path().join("locks"), &spec.hash(), &|_| {}, &never)
                .unwrap();
        let cancel = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            let waiting = scope.spawn(|| materialize(dir.path(), &spec, &|_| {}, &cancel));
            std::thread::sleep(std::time::Duration::from_millis(200));
            cancel.store(true, Ordering::Relaxed);
            waiting.join().unwrap()
        });
        assert!(matches!(result, Err(PipelineError::Cancelled)));
    }

    #[test]
    fn a_build_another_process_has_in_hand_is_waited_for_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let spec = EnvSpec::Python {
            requirements: vec!["nothing-to-install".into()],
        };
        let envs = dir.path().join("envs");
        // Another process holds the lock: a second open file description conflicts like one.
        let never = AtomicBool::new(false);
        let other = lock_across_processes(&dir.path().join("locks"), &spec.hash(), &|_| {}, &never)
            .unwrap();
        let built = envs.join(spec.hash());
        let (result, heard) = std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                let heard = Mutex::new(Vec::new());
                let built = materialize(
                    dir.path(),
                    &spec,
                    &|line| heard.lock().unwrap().push(line.to_owned()),
                    &never,
                );
                (built, heard.into_inner().unwrap())
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(!waiting.is_finished(), "waits for the other build");
            // The other process finishes its build, then lets go.
            std::fs::create_dir_all(&built).unwrap();
            std::fs::write(built.join(".lathe-ready"), "numpy==2.0\n").unwrap();
            drop(other);
            waiting.join().unwrap()
        });
        assert_eq!(result.unwrap().packages, "numpy==2.0\n");
        assert_eq!(
            heard,
            ["waiting for another Lathe process building this environment"],
            "no build of its own"
        );
    }

    #[test]
    fn conda_files_become_pip_requirements() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("conda.yml"),
            "name: t\ndependencies:\n  - python=3.8\n  - pip=21.2.4\n  - scikit-learn=0.24.2\n  - numpy\n  - pip:\n    - mlflow==2.0\n    - azureml-core\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("env.yml"),
            "name: t\nimage: mcr.microsoft.com/azureml/base\nconda_file: conda.yml\n",
        )
        .unwrap();
        let spec = from_file(&dir.path().join("env.yml")).unwrap();
        assert_eq!(
            spec,
            EnvSpec::Python {
                requirements: vec![
                    "scikit-learn==0.24.2".into(),
                    "numpy".into(),
                    "mlflow==2.0".into(),
                    "azureml-core".into()
                ]
            }
        );
        assert_eq!(
            from_yaml("image: x\n", dir.path()).unwrap(),
            EnvSpec::System
        );
        std::fs::write(dir.path().join("req.txt"), "pandas # tables\n\nnumpy>=1\n").unwrap();
        assert_eq!(
            from_file(&dir.path().join("req.txt")).unwrap(),
            EnvSpec::Python {
                requirements: vec!["pandas".into(), "numpy>=1".into()]
            }
        );
        let missing = from_yaml("conda_file: nope.yml\n", dir.path())
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("conda_file: cannot read"), "{missing}");
    }
}
