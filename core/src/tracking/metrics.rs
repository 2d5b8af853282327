//! Metric points. A logged batch is stored as one chunk per key: the points packed as
//! little-endian `(step i64, timestamp i64, value f64)`, 24 bytes each. So ingestion writes a row
//! per key per request instead of a row per point, and a history read decodes a few blobs.
//! `latest_metrics` keeps each run's latest point per key (MLflow's rule: highest step, then
//! timestamp, then value) for search and display.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::TrackingResult;
use super::types::Metric;

const POINT_BYTES: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: i64,
    pub timestamp: i64,
    pub value: f64,
}

impl Point {
    /// MLflow's order for "latest": step, then timestamp, then value (NaN lowest).
    fn is_later_than(&self, other: &Point) -> bool {
        let value = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
        (self.step, self.timestamp)
            .cmp(&(other.step, other.timestamp))
            .then(value(self.value).total_cmp(&value(other.value)))
            .is_gt()
    }
}

pub fn encode(points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * POINT_BYTES);
    for p in points {
        out.extend_from_slice(&p.step.to_le_bytes());
        out.extend_from_slice(&p.timestamp.to_le_bytes());
        out.extend_from_slice(&p.value.to_le_bytes());
    }
    out
}

pub fn decode(bytes: &[u8], into: &mut Vec<Point>) {
    for chunk in bytes.chunks_exact(POINT_BYTES) {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&chunk[i * 8..i * 8 + 8]);
            b
        };
        into.push(Point {
            step: i64::from_le_bytes(word(0)),
            timestamp: i64::from_le_bytes(word(1)),
            value: f64::from_le_bytes(word(2)),
        });
    }
}

pub fn key_id(conn: &Connection, key: &str) -> TrackingResult<i64> {
    conn.prepare_cached("INSERT INTO metric_keys (key) VALUES (?1) ON CONFLICT (key) DO NOTHING")?
        .execute([key])?;
    Ok(conn
        .prepare_cached("SELECT id FROM metric_keys WHERE key = ?1")?
        .query_row([key], |r| r.get(0))?)
}

/// Stores `metrics` for the run with row id `run`: one chunk per key, and the latest points.
pub fn append(conn: &Connection, run: i64, metrics: &[Metric]) -> TrackingResult<()> {
    let mut by_key: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for m in metrics {
        by_key.entry(&m.key).or_default().push(Point {
            step: m.step,
            timestamp: m.timestamp,
            value: m.value,
        });
    }
    let mut insert = conn
        .prepare_cached("INSERT INTO metric_chunks (run_id, key_id, points) VALUES (?1, ?2, ?3)")?;
    for (key, points) in by_key {
        let key_id = key_id(conn, key)?;
        insert.execute(params![run, key_id, encode(&points)])?;
        let Some(newest) = points
            .iter()
            .copied()
            .reduce(|a, b| if b.is_later_than(&a) { b } else { a })
        else {
            continue;
        };
        update_latest(conn, run, key_id, newest)?;
    }
    Ok(())
}

fn update_latest(conn: &Connection, run: i64, key_id: i64, newest: Point) -> TrackingResult<()> {
    let current: Option<Point> = conn
        .prepare_cached(
            "SELECT step, timestamp_ms, value, is_nan FROM latest_metrics
             WHERE run_id = ?1 AND key_id = ?2",
        )?
        .query_row(params![run, key_id], |r| {
            let is_nan: bool = r.get(3)?;
            Ok(Point {
                step: r.get(0)?,
                timestamp: r.get(1)?,
                value: if is_nan {
                    f64::NAN
                } else {
                    r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN)
                },
            })
        })
        .optional()?;
    if current.is_some_and(|c| !newest.is_later_than(&c)) {
        return Ok(());
    }
    // SQLite stores NaN as NULL, so NaN is kept as a flag beside a NULL value.
    let value = (!newest.value.is_nan()).then_some(newest.value);
    conn.prepare_cached(
        "INSERT INTO latest_metrics (run_id, key_id, value, is_nan, timestamp_ms, step)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (run_id, key_id) DO UPDATE SET value = excluded.value,
             is_nan = excluded.is_nan, timestamp_ms = excluded.timestamp_ms, step = excluded.step",
    )?
    .execute(params![
        run,
        key_id,
        value,
        newest.value.is_nan(),
        newest.timestamp,
        newest.step
    ])?;
    Ok(())
}

/// Every point of one metric of one run, ordered by step then timestamp.
pub fn history(conn: &Connection, run: i64, key: &str) -> TrackingResult<Vec<Point>> {
    let key_id: Option<i64> = conn
        .prepare_cached("SELECT id FROM metric_keys WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    let Some(key_id) = key_id else {
        return Ok(Vec::new());
    };
    let mut points = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT points FROM metric_chunks WHERE run_id = ?1 AND key_id = ?2 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![run, key_id])?;
    while let Some(row) = rows.next()? {
        let blob: Vec<u8> = row.get(0)?;
        decode(&blob, &mut points);
    }
    points.sort_by_key(|p| (p.step, p.timestamp));
    Ok(points)
}

/// The latest point of each metric of the runs whose row ids are `ids` (a comma-separated
/// list the store made), as (run row id, metric), by run then key.
pub fn latest_of(conn: &Connection, ids: &str) -> TrackingResult<Vec<(i64, Metric)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT m.run_id, k.key, m.value, m.is_nan, m.timestamp_ms, m.step
         FROM latest_metrics m JOIN metric_keys k ON k.id = m.key_id
         WHERE m.run_id IN ({ids}) ORDER BY m.run_id, k.key"
    ))?;
    let rows = stmt.query_map([], |r| {
        let is_nan: bool = r.get(3)?;
        Ok((
            r.get(0)?,
            Metric {
                key: r.get(1)?,
                value: if is_nan {
                    f64::NAN
                } else {
                    r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN)
                },
                timestamp: r.get(4)?,
                step: r.get(5)?,
                ..Metric::default()
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_survive_encoding() {
        let points = [
            Point {
                step: -1,
                timestamp: 1_700_000_000_000,
                value: 0.25,
            },
            Point {
                step: i64::MAX,
                timestamp: 0,
                value: f64::NEG_INFINITY,
            },
        ];
        let mut back = Vec::new();
        decode(&encode(&points), &mut back);
        assert_eq!(back, points);
    }

    #[test]
    fn latest_is_highest_step_then_time_then_value() {
        let p = |step, timestamp, value| Point {
            step,
            timestamp,
            value,
        };
        assert!(p(2, 0, 0.0).is_later_than(&p(1, 9, 9.0)));
        assert!(p(1, 2, 0.0).is_later_than(&p(1, 1, 9.0)));
        assert!(p(1, 1, 2.0).is_later_than(&p(1, 1, 1.0)));
        assert!(p(1, 1, 0.0).is_later_than(&p(1, 1, f64::NAN)));
        assert!(!p(1, 1, 1.0).is_later_than(&p(1, 1, 1.0)));
    }
}
