//! `lathe runs push|pull`: runs (info, params, every metric point, tags, dataset inputs,
//! artifacts) and registered model versions copied to a team's MLflow tracking server, and
//! runs brought back from one, so they are browsed and compared beside local ones.
//!
//! The server assigns its own run ids and version numbers; `sync_map` keeps which remote
//! thing is which local one, under the place `mlflow:<server URL>`, in both directions: a run
//! pushed and later pulled back is the same run here, and a run pulled and pushed again is
//! the same run there. A push sends only what the server lacks (metric points by step, time
//! and value; params; tags that differ; inputs; artifacts by path and size), so a second push
//! sends nothing; a pull adds only what the local run lacks. Nothing on either side is
//! overwritten: a param the server has with another value is left and named.

mod client;
mod pull;
mod push;

use rusqlite::OptionalExtension;

use crate::store::Store;
use crate::{Error, Result};

pub use client::Server;
pub use pull::pull;
pub use push::push;

/// A token for a tracking server, kept in memory only, never shown (its `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(hidden)")
    }
}

/// The place a server's rows in `sync_map` are kept under.
fn place(server: &Server) -> String {
    format!("mlflow:{}", server.uri())
}

/// The id on the other side of what is `id` on this side: a push looks up a local id (`local`
/// true), a pull a remote one; rows of both directions count.
fn mapped(store: &Store, place: &str, id: &str, local: bool) -> Result<Option<String>> {
    let (place, id) = (place.to_owned(), id.to_owned());
    let sql = if local {
        "SELECT remote FROM sync_map WHERE datastore = ?1 AND local = ?2
         ORDER BY synced_at_ms DESC LIMIT 1"
    } else {
        "SELECT local FROM sync_map WHERE datastore = ?1 AND remote = ?2
         ORDER BY synced_at_ms DESC LIMIT 1"
    };
    store.read::<_, Error>(move |c| Ok(c.query_row(sql, [&place, &id], |r| r.get(0)).optional()?))
}

/// Notes that `local` is `remote` on the server, as last pushed with `fingerprint`, and what
/// was last written there that someone there may change (`sent`: a run's tags as JSON; an
/// alias's version), so a later push tells their change from ours.
fn note_push(
    store: &Store,
    place: &str,
    (local, remote): (&str, &str),
    (fingerprint, sent): (&str, &str),
) -> Result<()> {
    let (place, local, remote, fp, sent) = (
        place.to_owned(),
        local.to_owned(),
        remote.to_owned(),
        fingerprint.to_owned(),
        sent.to_owned(),
    );
    store.transaction::<_, Error>(move |c| {
        crate::sync::note(c, "push", (&place, &remote), (&local, &fp, &sent))?;
        Ok(())
    })
}

/// Metric points as a multiset key: step, time and value — every NaN alike, and an infinity
/// as the largest finite number, which is how MLflow's SQL store keeps it.
fn point(m: &crate::tracking::types::Metric) -> (String, i64, i64, u64) {
    let value = finite(m.value);
    let bits = if value.is_nan() {
        f64::NAN.to_bits()
    } else {
        value.to_bits()
    };
    (m.key.clone(), m.step, m.timestamp, bits)
}

/// ±infinity as ±`f64::MAX` (MLflow's store writes it so); other values as they are.
fn finite(x: f64) -> f64 {
    if x == f64::INFINITY {
        f64::MAX
    } else if x == f64::NEG_INFINITY {
        f64::MIN
    } else {
        x
    }
}
