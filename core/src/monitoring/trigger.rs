//! When a monitor runs, and the windows it looks at: Azure ML's schedule triggers (a
//! recurrence, or a cron expression) in UTC, and ISO 8601 durations for data windows.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// How often a recurrence repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

impl Frequency {
    pub const NAMES: [&'static str; 5] = ["minute", "hour", "day", "week", "month"];

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "minute" => Some(Self::Minute),
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A schedule's trigger, as Azure ML's schedule YAML writes it (`trigger:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// Every `interval` `frequency`s, at the `hours` and `minutes` given (and on the
    /// `week_days` or `month_days`), counted from `start_ms`.
    Recurrence {
        frequency: Frequency,
        interval: u32,
        hours: Vec<u32>,
        minutes: Vec<u32>,
        /// 0 = Monday … 6 = Sunday.
        week_days: Vec<u32>,
        month_days: Vec<u32>,
    },
    /// A five-field cron expression.
    Cron { expression: String },
}

pub const WEEK_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl Trigger {
    /// The first time strictly after `after_ms` the trigger fires, counting a recurrence's
    /// intervals from `anchor_ms` (the schedule's start or creation). `None` when it never
    /// fires again (a cron expression that cannot match).
    pub fn next_after(&self, anchor_ms: i64, after_ms: i64) -> Option<i64> {
        let after = Utc.timestamp_millis_opt(after_ms).single()?;
        let anchor = Utc.timestamp_millis_opt(anchor_ms).single()?;
        match self {
            Self::Cron { expression } => {
                let cron = croner::Cron::from_str(expression).ok()?;
                cron.find_next_occurrence(&after, false)
                    .ok()
                    .map(|t| t.timestamp_millis())
            }
            Self::Recurrence {
                frequency,
                interval,
                hours,
                minutes,
                week_days,
                month_days,
            } => next_recurrence(
                *frequency,
                (*interval).max(1),
                hours,
                minutes,
                week_days,
                month_days,
                anchor,
                after,
            )
            .map(|t| t.timestamp_millis()),
        }
    }

    /// The default production window (Azure ML's SDK, `_get_default_monitoring_window`): a
    /// day for minute and hour recurrences, N days for every N days, 7N for weeks, 30N for
    /// months, 7 days for a cron trigger. In milliseconds.
    pub fn default_window_ms(&self) -> i64 {
        const DAY: i64 = 86_400_000;
        match self {
            Self::Cron { .. } => 7 * DAY,
            Self::Recurrence {
                frequency,
                interval,
                ..
            } => {
                let n = i64::from((*interval).max(1));
                match frequency {
                    Frequency::Minute | Frequency::Hour => DAY,
                    Frequency::Day => n * DAY,
                    Frequency::Week => 7 * n * DAY,
                    Frequency::Month => 30 * n * DAY,
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn next_recurrence(
    frequency: Frequency,
    interval: u32,
    hours: &[u32],
    minutes: &[u32],
    week_days: &[u32],
    month_days: &[u32],
    anchor: DateTime<Utc>,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let n = i64::from(interval);
    match frequency {
        Frequency::Minute => {
            // anchor + k·n minutes, the first after `after`.
            let step = n * 60_000;
            let since = (after.timestamp_millis() - anchor.timestamp_millis()).max(-step);
            let k = since.div_euclid(step) + 1;
            Utc.timestamp_millis_opt(anchor.timestamp_millis() + k * step)
                .single()
        }
        Frequency::Hour => {
            let minutes = if minutes.is_empty() {
                vec![anchor.minute()]
            } else {
                minutes.to_vec()
            };
            let base = anchor.with_minute(0)?.with_second(0)?.with_nanosecond(0)?;
            let hours_since = (after - base).num_hours().max(0);
            let mut k = (hours_since / n) * n;
            for _ in 0..4 {
                let hour = base + Duration::hours(k);
                let mut at: Vec<DateTime<Utc>> = minutes
                    .iter()
                    .filter_map(|&m| hour.with_minute(m))
                    .collect();
                at.sort();
                if let Some(t) = at.into_iter().find(|t| *t > after && *t >= anchor) {
                    return Some(t);
                }
                k += n;
            }
            None
        }
        Frequency::Day | Frequency::Week | Frequency::Month => {
            let times: Vec<NaiveTime> = {
                let hours = if hours.is_empty() {
                    vec![anchor.hour()]
                } else {
                    hours.to_vec()
                };
                let minutes = if minutes.is_empty() {
                    vec![anchor.minute()]
                } else {
                    minutes.to_vec()
                };
                let mut t: Vec<NaiveTime> = hours
                    .iter()
                    .flat_map(|&h| {
                        minutes
                            .iter()
                            .filter_map(move |&m| NaiveTime::from_hms_opt(h, m, 0))
                    })
                    .collect();
                t.sort();
                t
            };
            let first = anchor.date_naive();
            let mut day = after.date_naive().max(first);
            // Far enough for a monthly recurrence every 12 months on the 31st.
            for _ in 0..(800 * n) {
                if day_fires(frequency, n, week_days, month_days, first, day) {
                    for t in &times {
                        let at = Utc.from_utc_datetime(&day.and_time(*t));
                        if at > after && at >= anchor {
                            return Some(at);
                        }
                    }
                }
                day = day.succ_opt()?;
            }
            None
        }
    }
}

fn day_fires(
    frequency: Frequency,
    n: i64,
    week_days: &[u32],
    month_days: &[u32],
    first: NaiveDate,
    day: NaiveDate,
) -> bool {
    match frequency {
        Frequency::Day => (day - first).num_days() % n == 0,
        Frequency::Week => {
            let weekday = day.weekday().num_days_from_monday();
            let on = if week_days.is_empty() {
                weekday == first.weekday().num_days_from_monday()
            } else {
                week_days.contains(&weekday)
            };
            let week_of = |d: NaiveDate| {
                (d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
                    .num_days_from_ce()
            };
            on && i64::from((week_of(day) - week_of(first)) / 7) % n == 0
        }
        Frequency::Month => {
            let on = if month_days.is_empty() {
                day.day() == first.day()
            } else {
                month_days.contains(&day.day())
            };
            let months = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
            on && (months(day) - months(first)) % n == 0
        }
        Frequency::Minute | Frequency::Hour => true,
    }
}

/// A date and time as ISO 8601 writes it (`2026-12-06T05:00:00Z`, with an offset, without
/// one meaning UTC, or a date alone meaning its midnight UTC), in milliseconds.
///
/// # Errors
/// The text is none of those.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .map(|t| t.and_utc().timestamp_millis())
        })
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
        })
        .map_err(|_| format!("'{text}' is not a date and time (2026-01-31T00:00:00Z)"))
}

/// An ISO 8601 duration (`P7D`, `PT1H30M`, `P1W`, `PT90S`) in milliseconds. Years and months
/// are refused: their length depends on the date (Azure ML writes windows in days).
///
/// # Errors
/// The text is not such a duration, naming why.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = |why: &str| Err(format!("'{text}' is not an ISO 8601 duration ({why})"));
    let Some(rest) = text.trim().strip_prefix(['P', 'p']) else {
        return bad("it starts with P, as P7D or PT1H");
    };
    let mut total: i64 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            'T' | 't' => in_time = true,
            '0'..='9' | '.' => number.push(c),
            unit => {
                let Ok(value) = number.parse::<f64>() else {
                    return bad("a number goes before each unit");
                };
                number.clear();
                let ms = match (in_time, unit.to_ascii_uppercase()) {
                    (false, 'W') => 7.0 * 86_400_000.0,
                    (false, 'D') => 86_400_000.0,
                    (true, 'H') => 3_600_000.0,
                    (true, 'M') => 60_000.0,
                    (true, 'S') => 1000.0,
                    (false, 'Y' | 'M') => {
                        return bad("years and months have no fixed length; use days");
                    }
                    _ => return bad("units are W, D, and after T: H, M, S"),
                };
                total += (value * ms).round() as i64;
                any = true;
            }
        }
    }
    if !number.is_empty() || !any {
        return bad("a unit follows each number");
    }
    if total <= 0 {
        return bad("it must be longer than zero");
    }
    Ok(total)
}

/// A duration as ISO 8601, the largest units first (`P1DT2H`, `PT5M`).
pub fn format_duration(ms: i64) -> String {
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (hours, rest) = (rest / 3_600_000, rest % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = rest as f64 / 1000.0;
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0.0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if seconds > 0.0 {
            out.push_str(&format!("{seconds}S"));
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    fn recurrence(frequency: Frequency, interval: u32, hours: &[u32], minutes: &[u32]) -> Trigger {
        Trigger::Recurrence {
            frequency,
            interval,
            hours: hours.to_vec(),
            minutes: minutes.to_vec(),
            week_days: vec![],
            month_days: vec![],
        }
    }

    #[test]
    fn recurrences_fire_when_azure_says() {
        let anchor = at("2026-01-05T10:00:00Z");
        // Daily at 3:15.
        let daily = recurrence(Frequency::Day, 1, &[3], &[15]);
        assert_eq!(
            daily.next_after(anchor, anchor),
            Some(at("2026-01-06T03:15:00Z"))
        );
        // Every 7 days at 3:15, counted from the anchor's day.
        let weekly = recurrence(Frequency::Day, 7, &[3], &[15]);
        assert_eq!(
            weekly.next_after(anchor, at("2026-01-06T00:00:00Z")),
            Some(at("2026-01-12T03:15:00Z"))
        );
        // Every 2 minutes from the anchor.
        let fast = recurrence(Frequency::Minute, 2, &[], &[]);
        assert_eq!(
            fast.next_after(anchor, at("2026-01-05T10:03:00Z")),
            Some(at("2026-01-05T10:04:00Z"))
        );
        // Weekdays at 20:00 and 22:30 (the corpus' generation safety monitor).
        let weekdays = Trigger::Recurrence {
            frequency: Frequency::Week,
            interval: 1,
            hours: vec![22, 20],
            minutes: vec![0, 30],
            week_days: vec![0, 1, 2, 3, 4],
            month_days: vec![],
        };
        // 2026-01-09 is a Friday: after 22:30 Friday comes Monday 20:00.
        assert_eq!(
            weekdays.next_after(anchor, at("2026-01-09T22:30:00Z")),
            Some(at("2026-01-12T20:00:00Z"))
        );
        let cron = Trigger::Cron {
            expression: "15 3 * * *".into(),
        };
        assert_eq!(
            cron.next_after(anchor, anchor),
            Some(at("2026-01-06T03:15:00Z"))
        );
        assert_eq!(daily.default_window_ms(), 86_400_000);
        assert_eq!(weekly.default_window_ms(), 7 * 86_400_000);
    }

    #[test]
    fn durations_read_and_write() {
        assert_eq!(parse_duration("P7D"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration("PT1H30M"), Ok(5_400_000));
        assert_eq!(parse_duration("P1W"), Ok(7 * 86_400_000));
        assert!(parse_duration("P1M").unwrap_err().contains("use days"));
        assert!(parse_duration("7D").is_err());
        assert!(parse_duration("PT0S").is_err());
        assert_eq!(format_duration(5_400_000), "PT1H30M");
        assert_eq!(format_duration(86_400_000 + 120_000), "P1DT2M");
    }
}
