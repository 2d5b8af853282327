//! Named settings kept as their YAML's fields in JSON — datastores, compute targets —: one
//! table each (`name`, `spec`, `created_at_ms`), the same put, list, get and delete.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::Store;
use crate::{Error, Result};

/// A table of named specs and how its messages name them.
pub(crate) struct Specs {
    pub table: &'static str,
    /// `datastore`, `compute target`.
    pub what: &'static str,
    /// The command that updates one: `lathe datastore update -f`.
    pub update: &'static str,
    /// The error kind of its messages.
    pub problem: fn(String) -> Error,
}

impl Specs {
    /// Stores `spec` as `name` (`replace`: over one of that name, which must exist); when it
    /// was first made, in ms since the epoch.
    ///
    /// # Errors
    /// The name is taken and `replace` is false, or free and `replace` is true; the store
    /// cannot be written.
    pub fn put<S: Serialize>(
        &self,
        store: &Store,
        name: &str,
        spec: &S,
        replace: bool,
    ) -> Result<i64> {
        let (name, json) = (name.to_owned(), serde_json::to_string(spec)?);
        let now = chrono::Utc::now().timestamp_millis();
        store.transaction::<_, Error>(move |c| {
            let existing: Option<i64> = c
                .query_row(
                    &format!("SELECT created_at_ms FROM {} WHERE name = ?1", self.table),
                    [&name],
                    |r| r.get(0),
                )
                .optional()?;
            match existing {
                Some(_) if !replace => Err((self.problem)(format!(
                    "{} '{name}' exists; `{}` replaces it",
                    self.what, self.update
                ))),
                Some(created) => {
                    c.execute(
                        &format!("UPDATE {} SET spec = ?2 WHERE name = ?1", self.table),
                        params![name, json],
                    )?;
                    Ok(created)
                }
                None if replace => Err(self.no_such(c, &name)),
                None => {
                    c.execute(
                        &format!(
                            "INSERT INTO {} (name, spec, created_at_ms) VALUES (?1, ?2, ?3)",
                            self.table
                        ),
                        params![name, json, now],
                    )?;
                    Ok(now)
                }
            }
        })
    }

    /// Every spec with when it was made, by name.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn list<S: DeserializeOwned>(&self, store: &Store) -> Result<Vec<(S, i64)>> {
        let rows: Vec<(String, i64)> = store.read::<_, Error>(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT spec, created_at_ms FROM {} ORDER BY name",
                self.table
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        rows.into_iter()
            .map(|(spec, created)| Ok((serde_json::from_str(&spec)?, created)))
            .collect()
    }

    /// One spec with when it was made.
    ///
    /// # Errors
    /// None of that name (the nearest names suggested).
    pub fn get<S: DeserializeOwned>(&self, store: &Store, name: &str) -> Result<(S, i64)> {
        let row: Option<(String, i64)> = store.read::<_, Error>(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT spec, created_at_ms FROM {} WHERE name = ?1",
                    self.table
                ),
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })?;
        match row {
            Some((spec, created)) => Ok((serde_json::from_str(&spec)?, created)),
            None => Err(store.read::<_, Error>(|c| Ok(self.no_such(c, name)))?),
        }
    }

    /// Removes one.
    ///
    /// # Errors
    /// None of that name.
    pub fn delete(&self, store: &Store, name: &str) -> Result<()> {
        store.transaction::<_, Error>(|c| {
            if c.execute(
                &format!("DELETE FROM {} WHERE name = ?1", self.table),
                [name],
            )? == 0
            {
                return Err(self.no_such(c, name));
            }
            Ok(())
        })
    }

    fn no_such(&self, c: &Connection, name: &str) -> Error {
        let names: Vec<String> = c
            .prepare(&format!("SELECT name FROM {}", self.table))
            .and_then(|mut s| {
                s.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .unwrap_or_default();
        let hint = crate::suggest::did_you_mean(name, names.iter().map(String::as_str));
        (self.problem)(format!("there is no {} '{name}'{hint}", self.what))
    }
}
