//! Durations as administrators write them: `250ms`, `30s`, `5m`, `1h`, or bare seconds.

use std::time::Duration;

/// Parses `250ms`, `30s`, `5m`, `2h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| {
        format!("`{text}` is not a duration: write e.g. `250ms`, `30s`, `5m` or `1h`")
    })?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`: use ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{text}` is not a valid duration"));
    }
    if secs > MAX_DURATION_SECS {
        return Err(format!(
            "`{text}` is longer than any setting needs (the most is {}h, one year)",
            MAX_DURATION_SECS as u64 / 3600
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{text}` is not a valid duration"))
}

/// The longest duration a setting may have: one year. Anything longer is a typo
/// (or an attack on arithmetic that would wrap), never an intent.
pub const MAX_DURATION_SECS: f64 = 365.0 * 86_400.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5 days").unwrap_err().contains("unit"));
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn huge_values_are_refused_not_wrapped_or_panicking() {
        for t in [
            "9300000000000000s",
            "99999999999999999999999h",
            "1e400s",
            "8761h",
        ] {
            assert!(parse_duration(t).is_err(), "{t}");
        }
        assert_eq!(
            parse_duration("8760h").unwrap(),
            Duration::from_secs(365 * 86_400)
        );
    }
}
