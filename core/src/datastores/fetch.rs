//! Objects of a datastore brought to a local folder, for an import: `s3://bucket/key` (the
//! datastore of that bucket) or Azure ML's `azureml://datastores/<name>/paths/<path>` (a path
//! under the datastore's prefix); an object, or every object under a prefix as a folder.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Datastore, DatastoreSpec, problem, s3::Client};
use crate::jobs::Progress;
use crate::store::Store;
use crate::{Error, Result};

/// Whether `text` is a datastore URI this module reads.
pub fn is_uri(text: &str) -> bool {
    text.starts_with("s3://") || text.starts_with("azureml://")
}

/// A URI resolved to a datastore and a key (or prefix) in its bucket.
#[derive(Debug, Clone)]
pub struct Location {
    pub datastore: DatastoreSpec,
    pub key: String,
}

/// Resolves `uri`: `s3://bucket/key` through `datastore` when named, else the one datastore
/// of that bucket; `azureml://datastores/<name>/paths/<path>` through datastore `name`.
///
/// # Errors
/// Not such a URI; no datastore of that bucket (or several, with their names); a path with
/// `..`.
pub fn resolve(store: &Store, uri: &str, datastore: Option<&str>) -> Result<Location> {
    if let Some(rest) = uri.strip_prefix("azureml://datastores/") {
        let (name, path) = rest.split_once("/paths/").ok_or_else(|| {
            problem(format!(
                "{uri}: expected azureml://datastores/<name>/paths/<path>"
            ))
        })?;
        let spec = super::get(store, name)?.spec;
        let key = format!("{}{}", spec.prefix, checked(uri, path)?);
        return Ok(Location {
            datastore: spec,
            key,
        });
    }
    let rest = uri.strip_prefix("s3://").ok_or_else(|| {
        problem(format!(
            "{uri}: expected s3://bucket/key or azureml://datastores/<name>/paths/<path>"
        ))
    })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let spec = match datastore {
        Some(name) => {
            let spec = super::get(store, name)?.spec;
            if spec.bucket != bucket {
                return Err(problem(format!(
                    "{uri} is in bucket '{bucket}', datastore '{name}' in '{}'",
                    spec.bucket
                )));
            }
            spec
        }
        None => {
            let of_bucket: Vec<Datastore> = super::list(store)?
                .into_iter()
                .filter(|d| d.spec.bucket == bucket)
                .collect();
            match of_bucket.as_slice() {
                [one] => one.spec.clone(),
                [] => {
                    return Err(problem(format!(
                        "no datastore is of bucket '{bucket}'; add one with `lathe datastore \
                         create -f` (it says where the bucket is and its credentials)"
                    )));
                }
                several => {
                    let names: Vec<&str> = several.iter().map(|d| d.spec.name.as_str()).collect();
                    return Err(problem(format!(
                        "datastores {} are all of bucket '{bucket}'; name one with --datastore",
                        names.join(", ")
                    )));
                }
            }
        }
    };
    Ok(Location {
        datastore: spec,
        key: checked(uri, key)?.to_owned(),
    })
}

fn checked<'a>(uri: &str, key: &'a str) -> Result<&'a str> {
    if key.split('/').any(|part| part == "..") || key.contains('\0') {
        return Err(problem(format!("{uri}: a key with '..' is refused")));
    }
    Ok(key)
}

/// Downloads what `location` names into the folder `into`: one object as a file named as its
/// key's last part, or every object under the prefix as a folder of the same shape. The path
/// to import.
///
/// # Errors
/// Nothing at the key or under it (named); the datastore unreachable; a cancel.
pub fn download(
    location: &Location,
    into: &Path,
    threads: usize,
    progress: &Progress,
) -> Result<PathBuf> {
    let client = Client::new(&location.datastore)?;
    let place = format!("s3://{}/{}", location.datastore.bucket, location.key);
    progress.start_stage("listing", 0);
    let key = location.key.trim_end_matches('/');
    let exact = !location.key.ends_with('/') && !key.is_empty();
    let mut objects: Vec<(String, u64)> = Vec::new();
    if exact {
        objects = client
            .list_all(key)?
            .into_iter()
            .filter(|o| o.key == key)
            .map(|o| (o.key, o.size))
            .collect();
    }
    let (root, folder) = if objects.is_empty() {
        let prefix = if key.is_empty() {
            String::new()
        } else {
            format!("{key}/")
        };
        objects = client
            .list_all(&prefix)?
            .into_iter()
            .filter(|o| !o.key.ends_with('/'))
            .map(|o| (o.key, o.size))
            .collect();
        if objects.is_empty() {
            return Err(problem(format!("there is no object at or under {place}")));
        }
        let name = key
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(&location.datastore.bucket);
        (prefix, Some(into.join(name)))
    } else {
        (String::new(), None)
    };
    let target = |object: &str| -> Result<PathBuf> {
        let relative = match &folder {
            Some(dir) => dir.join(checked(
                &place,
                object.strip_prefix(&root).unwrap_or(object),
            )?),
            None => into.join(object.rsplit('/').next().unwrap_or(object)),
        };
        Ok(relative)
    };
    progress.start_stage("downloading", objects.iter().map(|(_, s)| s).sum());
    let made = Mutex::new(());
    crate::sync::transfer::each(&objects, threads, progress, |(object, size)| {
        let path = target(object)?;
        if let Some(dir) = path.parent() {
            let _one_at_a_time = made.lock();
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        client.get_into(object, None, &mut file)?;
        progress.advance(*size);
        Ok(())
    })?;
    Ok(folder.unwrap_or_else(|| into.join(key.rsplit('/').next().unwrap_or(key))))
}
