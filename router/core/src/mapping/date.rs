//! Dates between partner conventions: explicit Java-style patterns and time zones.
//!
//! Each partner writes dates its own way: the national portal sends
//! `yyyyMMddHHmmss` in Vietnam time, tax sends `2022-10-19 00:00:00.0` and
//! `dd-MM-yyyy`, LIS and the IOC want RFC 3339. Administrators already know the
//! Java pattern letters from the partners' specifications, so a mapping says
//! `date: { from: "yyyyMMddHHmmss", to: rfc3339, tz: Asia/Ho_Chi_Minh }`.
//!
//! We parse the pattern ourselves (instead of translating to strftime) so that
//! fixed-width fields are read exactly (`yyyyMMdd` has no separators) and a date
//! that does not exist (30 February, hour 25) is an error, never silently moved.
//! The pattern is compiled once when the mapping loads.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike,
};
use chrono_tz::Tz;

/// One pattern element.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Year4,
    Year2,
    /// Month, day, hour, minute, second: `width` 2 = exactly two digits, 1 = one or two.
    Month(u8),
    Day(u8),
    Hour(u8),
    Minute(u8),
    Second(u8),
    /// Fraction of a second, `n` digits when formatting; any 1-9 digits when parsing.
    Frac(u8),
    /// `XXX` (`+07:00`, or `Z`), `Z` (`+0700`).
    Offset {
        colon: bool,
    },
    Lit(String),
}

/// A date format: a compiled pattern or one of the named formats.
#[derive(Debug, Clone, PartialEq)]
pub enum DateFormat {
    /// RFC 3339 (`2022-10-19T00:00:00+07:00`); parsing requires an offset.
    Rfc3339,
    /// ISO 8601: like RFC 3339, but parsing also accepts a missing offset (local
    /// time in the zone), a space instead of `T`, and a bare date.
    Iso8601,
    Pattern {
        text: String,
        toks: Vec<Tok>,
    },
}

impl DateFormat {
    pub fn parse(text: &str) -> Result<DateFormat, String> {
        match text.to_ascii_lowercase().as_str() {
            "rfc3339" => return Ok(DateFormat::Rfc3339),
            "iso8601" => return Ok(DateFormat::Iso8601),
            _ => {}
        }
        let chars: Vec<char> = text.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // quoted literal, '' is a quote
                let mut lit = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("date pattern '{text}': unclosed quote")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            lit.push(ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Lit(lit));
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            let w = |n: usize| if n >= 2 { 2 } else { 1 };
            let tok = match c {
                'y' | 'u' if n == 2 => Tok::Year2,
                'y' | 'u' if n == 4 => Tok::Year4,
                'y' | 'u' => return Err(format!("date pattern '{text}': use yyyy or yy for the year")),
                'M' if n <= 2 => Tok::Month(w(n)),
                'd' if n <= 2 => Tok::Day(w(n)),
                'H' if n <= 2 => Tok::Hour(w(n)),
                'm' if n <= 2 => Tok::Minute(w(n)),
                's' if n <= 2 => Tok::Second(w(n)),
                'S' if n <= 9 => Tok::Frac(n as u8),
                'X' if n == 3 => Tok::Offset { colon: true },
                'Z' if n == 1 => Tok::Offset { colon: false },
                c if c.is_ascii_alphabetic() => {
                    return Err(format!(
                        "date pattern '{text}': unsupported letter '{}' (known: yyyy yy MM M dd d HH H mm ss S..S XXX Z; quote literal text as 'T')",
                        c.to_string().repeat(n)
                    ))
                }
                _ => Tok::Lit(c.to_string().repeat(n)),
            };
            toks.push(tok);
            i += n;
        }
        if !toks.iter().any(|t| matches!(t, Tok::Year4 | Tok::Year2)) {
            return Err(format!("date pattern '{text}' has no year (yyyy)"));
        }
        Ok(DateFormat::Pattern {
            text: text.to_owned(),
            toks,
        })
    }

    fn name(&self) -> &str {
        match self {
            DateFormat::Rfc3339 => "rfc3339",
            DateFormat::Iso8601 => "iso8601",
            DateFormat::Pattern { text, .. } => text,
        }
    }

    /// Parse `input`; local times are in `tz`.
    pub fn read(&self, input: &str, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
        let input = input.trim();
        match self {
            DateFormat::Rfc3339 => {
                DateTime::parse_from_rfc3339(input).map_err(|e| chrono_msg(input, self.name(), e))
            }
            DateFormat::Iso8601 => {
                if let Ok(d) = DateTime::parse_from_rfc3339(input) {
                    return Ok(d);
                }
                let normalized = input.replacen(' ', "T", 1);
                if let Ok(d) = DateTime::parse_from_rfc3339(&normalized) {
                    return Ok(d);
                }
                let naive = NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M"))
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&normalized, "%Y-%m-%d")
                            .map(|d| d.and_time(NaiveTime::MIN))
                    })
                    .map_err(|e| chrono_msg(input, self.name(), e))?;
                localize(naive, tz, input)
            }
            DateFormat::Pattern { toks, .. } => self.read_pattern(toks, input, tz),
        }
    }

    fn read_pattern(
        &self,
        toks: &[Tok],
        input: &str,
        tz: Tz,
    ) -> Result<DateTime<FixedOffset>, String> {
        let b = input.as_bytes();
        let mut pos = 0usize;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut nano) =
            (None, 1u32, 1u32, 0u32, 0u32, 0u32, 0u32);
        let mut offset: Option<FixedOffset> = None;
        let mismatch = |what: &str| {
            format!(
                "date '{input}' does not match pattern '{}' ({what})",
                self.name()
            )
        };
        let digits = |pos: &mut usize, min: usize, max: usize, what: &str| -> Result<u32, String> {
            let start = *pos;
            while *pos < b.len() && *pos - start < max && b[*pos].is_ascii_digit() {
                *pos += 1;
            }
            if *pos - start < min {
                return Err(mismatch(&format!(
                    "expected {what} at character {}",
                    start + 1
                )));
            }
            Ok(input[start..*pos].parse().expect("ascii digits"))
        };
        for tok in toks {
            match tok {
                Tok::Year4 => y = Some(digits(&mut pos, 4, 4, "a 4-digit year")? as i32),
                Tok::Year2 => y = Some(2000 + digits(&mut pos, 2, 2, "a 2-digit year")? as i32),
                Tok::Month(w) => mo = digits(&mut pos, *w as usize, 2, "the month")?,
                Tok::Day(w) => d = digits(&mut pos, *w as usize, 2, "the day")?,
                Tok::Hour(w) => h = digits(&mut pos, *w as usize, 2, "the hour")?,
                Tok::Minute(w) => mi = digits(&mut pos, *w as usize, 2, "the minutes")?,
                Tok::Second(w) => s = digits(&mut pos, *w as usize, 2, "the seconds")?,
                Tok::Frac(_) => {
                    let start = pos;
                    let f = digits(&mut pos, 1, 9, "a fraction of a second")?;
                    let n = pos - start;
                    nano = f * 10u32.pow(9 - n as u32);
                }
                Tok::Offset { .. } => {
                    let rest = &input[pos..];
                    if rest.starts_with('Z') {
                        offset = FixedOffset::east_opt(0);
                        pos += 1;
                    } else {
                        let sign = match rest.as_bytes().first() {
                            Some(b'+') => 1,
                            Some(b'-') => -1,
                            _ => {
                                return Err(mismatch("expected a time zone offset such as +07:00"))
                            }
                        };
                        pos += 1;
                        let oh = digits(&mut pos, 2, 2, "the offset hours")?;
                        if input[pos..].starts_with(':') {
                            pos += 1;
                        }
                        let om = digits(&mut pos, 2, 2, "the offset minutes")?;
                        offset = FixedOffset::east_opt(sign * (oh * 3600 + om * 60) as i32);
                        if offset.is_none() {
                            return Err(format!("date '{input}': offset out of range"));
                        }
                    }
                }
                Tok::Lit(l) => {
                    if input[pos..].starts_with(l.as_str()) {
                        pos += l.len();
                    } else {
                        return Err(mismatch(&format!(
                            "expected '{l}' at character {}",
                            pos + 1
                        )));
                    }
                }
            }
        }
        if pos != b.len() {
            return Err(mismatch(&format!(
                "unexpected '{}' at character {}",
                &input[pos..],
                pos + 1
            )));
        }
        let y = y.expect("patterns always have a year");
        let date = NaiveDate::from_ymd_opt(y, mo, d).ok_or_else(|| {
            format!("date '{input}' does not exist (year {y}, month {mo}, day {d})")
        })?;
        let time = NaiveTime::from_hms_nano_opt(h, mi, s, nano)
            .ok_or_else(|| format!("date '{input}' does not exist (time {h:02}:{mi:02}:{s:02})"))?;
        let naive = date.and_time(time);
        match offset {
            Some(o) => o
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| format!("date '{input}' does not exist")),
            None => localize(naive, tz, input),
        }
    }

    /// Format `dt` in `tz`.
    pub fn write(&self, dt: &DateTime<FixedOffset>, tz: Tz) -> String {
        let local = dt.with_timezone(&tz);
        match self {
            DateFormat::Rfc3339 | DateFormat::Iso8601 => {
                local.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
            }
            DateFormat::Pattern { toks, .. } => {
                let mut out = String::with_capacity(24);
                for tok in toks {
                    use std::fmt::Write;
                    let _ = match tok {
                        Tok::Year4 => write!(out, "{:04}", local.year()),
                        Tok::Year2 => write!(out, "{:02}", local.year().rem_euclid(100)),
                        Tok::Month(w) => two(&mut out, local.month(), *w),
                        Tok::Day(w) => two(&mut out, local.day(), *w),
                        Tok::Hour(w) => two(&mut out, local.hour(), *w),
                        Tok::Minute(w) => two(&mut out, local.minute(), *w),
                        Tok::Second(w) => two(&mut out, local.second(), *w),
                        Tok::Frac(n) => {
                            let nanos = format!("{:09}", local.nanosecond() % 1_000_000_000);
                            out.push_str(&nanos[..*n as usize]);
                            Ok(())
                        }
                        Tok::Offset { colon } => {
                            let secs = local.offset().fix().local_minus_utc();
                            let sign = if secs < 0 { '-' } else { '+' };
                            let (hh, mm) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
                            if *colon {
                                write!(out, "{sign}{hh:02}:{mm:02}")
                            } else {
                                write!(out, "{sign}{hh:02}{mm:02}")
                            }
                        }
                        Tok::Lit(l) => {
                            out.push_str(l);
                            Ok(())
                        }
                    };
                }
                out
            }
        }
    }
}

fn two(out: &mut String, v: u32, w: u8) -> std::fmt::Result {
    use std::fmt::Write;
    if w == 2 {
        write!(out, "{v:02}")
    } else {
        write!(out, "{v}")
    }
}

fn localize(naive: NaiveDateTime, tz: Tz, input: &str) -> Result<DateTime<FixedOffset>, String> {
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.fixed_offset())
        .ok_or_else(|| {
            format!("date '{input}' does not exist in time zone {tz} (daylight-saving gap)")
        })
}

fn chrono_msg(input: &str, pattern: &str, e: chrono::ParseError) -> String {
    if e.kind() == chrono::format::ParseErrorKind::OutOfRange {
        format!("date '{input}' does not exist")
    } else {
        format!("date '{input}' does not match {pattern} ({e})")
    }
}

/// A compiled `date` op: `from` → `to` in `tz`.
#[derive(Debug, Clone)]
pub struct DateOp {
    pub from: DateFormat,
    pub to: DateFormat,
    pub tz: Tz,
}

impl DateOp {
    pub fn apply(&self, input: &str) -> Result<String, String> {
        let dt = self.from.read(input, self.tz)?;
        Ok(self.to.write(&dt, self.tz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(from: &str, to: &str) -> DateOp {
        DateOp {
            from: DateFormat::parse(from).unwrap(),
            to: DateFormat::parse(to).unwrap(),
            tz: chrono_tz::Asia::Ho_Chi_Minh,
        }
    }

    #[test]
    fn rfc3339_to_compact_vietnam_time() {
        let o = op("rfc3339", "yyyyMMddHHmmss");
        assert_eq!(o.apply("2022-10-18T17:30:05Z").unwrap(), "20221019003005");
        assert_eq!(
            o.apply("2022-10-19T00:30:05+07:00").unwrap(),
            "20221019003005"
        );
    }

    #[test]
    fn tax_dates_to_iso8601() {
        let o = op("yyyy-MM-dd HH:mm:ss.S", "iso8601");
        assert_eq!(
            o.apply("2022-10-19 00:00:00.0").unwrap(),
            "2022-10-19T00:00:00+07:00"
        );
        assert_eq!(
            op("iso8601", "rfc3339")
                .apply("2022-10-19 00:00:00.0")
                .unwrap(),
            "2022-10-19T00:00:00+07:00"
        );
        assert_eq!(
            op("dd-MM-yyyy", "yyyy-MM-dd").apply("05-03-2023").unwrap(),
            "2023-03-05"
        );
        assert_eq!(
            op("yyyyMMddHHmmss", "rfc3339")
                .apply("20221019003005")
                .unwrap(),
            "2022-10-19T00:30:05+07:00"
        );
        assert_eq!(
            op("yyyy-MM-dd'T'HH:mm:ssXXX", "yyyyMMddHHmmss")
                .apply("2022-10-19T00:00:00Z")
                .unwrap(),
            "20221019070000"
        );
        assert_eq!(
            op("rfc3339", "yyyy-MM-dd HH:mm:ss.SSS")
                .apply("2022-10-19T00:00:00.25+07:00")
                .unwrap(),
            "2022-10-19 00:00:00.250"
        );
    }

    #[test]
    fn impossible_dates_are_errors() {
        let e = op("yyyyMMddHHmmss", "rfc3339")
            .apply("20230230101010")
            .unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = op("yyyyMMddHHmmss", "rfc3339")
            .apply("20230228251010")
            .unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = op("rfc3339", "iso8601")
            .apply("2023-02-30T00:00:00Z")
            .unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = op("dd-MM-yyyy", "iso8601").apply("2023-02-03").unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = op("yyyyMMdd", "iso8601").apply("202302031").unwrap_err();
        assert!(e.contains("unexpected '1'"), "{e}");
    }

    #[test]
    fn bad_patterns_are_explained() {
        assert!(DateFormat::parse("yyyy-MM-dd QQ")
            .unwrap_err()
            .contains("unsupported letter 'QQ'"));
        assert!(DateFormat::parse("MM-dd").unwrap_err().contains("no year"));
    }
}
