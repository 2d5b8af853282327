//! Plain-text formatting shared by the CLI and the GUI, so both say the same thing the same way.

use std::time::{Duration, UNIX_EPOCH};

/// `1.5 MiB`, `312 B`.
pub fn bytes(size_bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = size_bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{size_bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A stored timestamp (seconds since the epoch) as `2026-11-26 07:14 UTC`.
pub fn timestamp(secs: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// `1,000,000`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A statistic with a sensible number of digits.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 1e6 || value.abs() < 1e-3 {
        format!("{value:.3e}")
    } else {
        format!("{value:.3}")
    }
}

/// A metric's value in a column of values: `digits` decimals for ordinary sizes (so the
/// column lines up, 0 included), scientific notation for p-values and other tiny or huge
/// values, `inf` and `NaN` as such.
pub fn metric(value: f64, digits: usize) -> String {
    if value == 0.0 || (1e-3..1e6).contains(&value.abs()) {
        format!("{value:.digits$}")
    } else if value.is_finite() {
        format!("{value:.*e}", digits.saturating_sub(2).max(1))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_line_up_and_p_values_stay_readable() {
        assert_eq!(metric(0.0, 3), "0.000");
        assert_eq!(metric(0.30419, 3), "0.304");
        assert_eq!(metric(2.886e-5, 4), "2.89e-5");
        assert_eq!(metric(2.886e-5, 3), "2.9e-5");
        assert_eq!(metric(f64::INFINITY, 3), "inf");
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(312), "312 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(-1234), "-1,234");
        assert_eq!(count(12), "12");
        assert_eq!(timestamp(0), "1970-01-01 00:00 UTC");
        assert_eq!(number(2.5), "2.500");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(1.5e7), "15000000");
        assert_eq!(number(12_345_678.5), "1.235e7");
    }
}
