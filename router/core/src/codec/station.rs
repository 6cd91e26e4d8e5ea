//! Automatic monitoring station files (Thông tư 10/2021/TT-BTNMT) ⇄ tree.
//!
//! Every station's datalogger pushes one small text file per measurement time over
//! FTP. The format, as far as we know it (see `station-file-format.NOTES.md` in the
//! reference samples; the layout was recalled, not read from the circular), is:
//!
//! * file name `Province_Facility_Station_yyyyMMddHHmmss.txt`
//!   (`QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt`), the time being the measurement time;
//! * one parameter per line, five TAB-separated fields:
//!   `parameter  value  unit  yyyyMMddHHmmss  status`, status `00` measuring,
//!   `01` calibrating, `02` device fault.
//!
//! The tree (this is what station schemas and mappings see):
//!
//! ```json
//! {
//!   "file": "QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt",
//!   "province": "QNAM", "facility": "CTYXYZ", "station": "NUOCTHAI01",
//!   "station_code": "QNAM_CTYXYZ_NUOCTHAI01",
//!   "measured_at": "2022-09-15T10:30:00+07:00",
//!   "observations": [
//!     {"parameter": "pH", "value": 7.21, "unit": "-", "measured_at": "2022-09-15T10:30:00+07:00", "status": "00"}
//!   ]
//! }
//! ```
//!
//! Rules, chosen to be tolerant of what dataloggers really do and strict about data:
//!
//! * CRLF or LF line ends, a trailing newline, a UTF-8 byte-order mark and blank
//!   lines are accepted; spaces around a field are trimmed; control characters
//!   (and a stray byte-order mark) inside a field are an error.
//! * `value` keeps its exact decimal text (a JSON number through `arbitrary_precision`:
//!   `7.210` stays `7.210`); a leading `+` and redundant leading zeros (`042.5`) are
//!   removed because JSON cannot carry them. Anything else (`NaN`, `7,21`, empty) is an
//!   error naming the line and field: the hub does not guess a reading.
//! * times are Vietnam local time (UTC+7, no daylight saving) and become RFC 3339 with
//!   `+07:00`; a date that does not exist (`20220230…`) is an error.
//! * the file name is optional (`DecodeOptions::file_name`): without it, `file`,
//!   `province`, `facility`, `station` and `station_code` are `null` and `measured_at`
//!   is the first line's time. With it, the *last four* `_`-separated parts are used, so
//!   an archive prefix (`07_station_…`) is ignored; a facility abbreviation therefore
//!   cannot contain `_`. Directories in the name are ignored.
//! * files over [`limits::MAX_STATION_FILE_BYTES`] are refused.
//!
//! Encoding writes the lines back (LF line ends) from `observations`; the file name is
//! the sender's business.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use serde_json::{Map, Number, Value};

use super::{text, CodecError, DecodeOptions};
use crate::limits;

const FORMAT: &str = "station-file";

const FIELDS: [&str; 5] = ["parameter", "value", "unit", "time", "status"];

/// Vietnam's offset; it has had no daylight saving since 1975.
fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("valid offset")
}

/// Decodes a station file.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<Value, CodecError> {
    text::check_size(FORMAT, bytes, limits::MAX_STATION_FILE_BYTES)?;
    let text = text::utf8(FORMAT, bytes)?;

    let mut observations = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        observations.push(Value::Object(parse_line(line, line_no)?));
    }
    if observations.is_empty() {
        return Err(CodecError::at(
            FORMAT,
            "line 1",
            "the file has no measurement lines",
        ));
    }

    let mut tree = Map::new();
    match opts.file_name {
        Some(name) => {
            let parts = parse_file_name(name)?;
            tree.insert("file".into(), parts.file.into());
            tree.insert("province".into(), parts.province.into());
            tree.insert("facility".into(), parts.facility.into());
            tree.insert("station".into(), parts.station.into());
            tree.insert("station_code".into(), parts.station_code.into());
            tree.insert("measured_at".into(), parts.measured_at.into());
        }
        None => {
            for key in ["file", "province", "facility", "station", "station_code"] {
                tree.insert(key.into(), Value::Null);
            }
            tree.insert("measured_at".into(), observations[0]["measured_at"].clone());
        }
    }
    tree.insert("observations".into(), Value::Array(observations));
    Ok(Value::Object(tree))
}

/// Encodes `observations` back into station-file lines.
pub fn encode(tree: &Value) -> Result<Vec<u8>, CodecError> {
    let Some(observations) = tree.get("observations").and_then(Value::as_array) else {
        return Err(CodecError::at(
            FORMAT,
            "/observations",
            "the tree has no \"observations\" array",
        ));
    };
    let mut out = String::new();
    for (i, obs) in observations.iter().enumerate() {
        let field = |name: &str| -> Result<String, CodecError> {
            let at = format!("/observations/{i}/{name}");
            let text = match obs.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Number(_)) => v.to_string(),
                _ => {
                    return Err(CodecError::at(
                        FORMAT,
                        at,
                        format!("missing or not text: \"{name}\""),
                    ))
                }
            };
            if text.contains(['\t', '\n', '\r']) || text.trim().is_empty() {
                return Err(CodecError::at(
                    FORMAT,
                    at,
                    "must be non-empty and contain no TAB or line break",
                ));
            }
            Ok(text)
        };
        let parameter = field("parameter")?;
        let value = field("value")?;
        canonical_value(&value)
            .map_err(|m| CodecError::at(FORMAT, format!("/observations/{i}/value"), m))?;
        let unit = field("unit")?;
        let measured_at = field("measured_at")?;
        let time = chrono::DateTime::parse_from_rfc3339(&measured_at)
            .map_err(|e| {
                CodecError::at(
                    FORMAT,
                    format!("/observations/{i}/measured_at"),
                    format!("not an RFC 3339 time: {e}"),
                )
            })?
            .with_timezone(&vietnam())
            .format("%Y%m%d%H%M%S")
            .to_string();
        let status = field("status")?;
        if !matches!(status.as_str(), "00" | "01" | "02") {
            return Err(CodecError::at(
                FORMAT,
                format!("/observations/{i}/status"),
                format!("status {status:?} is not 00, 01 or 02"),
            ));
        }
        out.push_str(&format!("{parameter}\t{value}\t{unit}\t{time}\t{status}\n"));
    }
    if out.len() > limits::MAX_STATION_FILE_BYTES {
        return Err(CodecError::general(
            FORMAT,
            "encoded file is over router::limits::MAX_STATION_FILE_BYTES",
        ));
    }
    Ok(out.into_bytes())
}

fn parse_line(line: &str, line_no: usize) -> Result<Map<String, Value>, CodecError> {
    let fields: Vec<&str> = line.split('\t').map(|f| f.trim_matches(' ')).collect();
    if fields.len() != FIELDS.len() {
        return Err(CodecError::at(
            FORMAT,
            format!("line {line_no}"),
            format!(
                "expected 5 TAB-separated fields (parameter, value, unit, yyyyMMddHHmmss, status), found {}",
                fields.len()
            ),
        ));
    }
    let at = |field: usize| format!("line {line_no} (field {}: {})", field + 1, FIELDS[field]);
    for (i, field) in fields.iter().enumerate() {
        if let Some(c) = field.chars().find(|&c| c.is_control() || c == '\u{feff}') {
            return Err(CodecError::at(
                FORMAT,
                at(i),
                format!(
                    "contains the control character U+{:04X}; fields are plain text",
                    c as u32
                ),
            ));
        }
    }
    let [parameter, value, unit, time, status] =
        [fields[0], fields[1], fields[2], fields[3], fields[4]];
    if parameter.is_empty() {
        return Err(CodecError::at(FORMAT, at(0), "the parameter name is empty"));
    }
    let number = canonical_value(value).map_err(|m| CodecError::at(FORMAT, at(1), m))?;
    if unit.is_empty() {
        return Err(CodecError::at(
            FORMAT,
            at(2),
            "the unit is empty (use \"-\" for a dimensionless parameter)",
        ));
    }
    let measured_at = parse_time(time).map_err(|m| CodecError::at(FORMAT, at(3), m))?;
    if !matches!(status, "00" | "01" | "02") {
        return Err(CodecError::at(
            FORMAT,
            at(4),
            format!(
                "status {status:?} is not 00 (measuring), 01 (calibrating) or 02 (device fault)"
            ),
        ));
    }
    let mut obs = Map::new();
    obs.insert("parameter".into(), parameter.into());
    obs.insert("value".into(), Value::Number(number));
    obs.insert("unit".into(), unit.into());
    obs.insert("measured_at".into(), measured_at.into());
    obs.insert("status".into(), status.into());
    Ok(obs)
}

/// A decimal `[+-]digits[.digits]` as a JSON number keeping its text (minus `+` and
/// redundant leading zeros).
fn canonical_value(value: &str) -> Result<Number, String> {
    let (sign, unsigned) = match value.as_bytes().first() {
        Some(b'-') => ("-", &value[1..]),
        Some(b'+') => ("", &value[1..]),
        _ => ("", value),
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !frac.is_none_or(digits) {
        return Err(format!(
            "{value:?} is not a decimal number (expected e.g. 7.21 or -0.5, with a dot)"
        ));
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let canonical = match frac {
        Some(f) => format!("{sign}{int}.{f}"),
        None => format!("{sign}{int}"),
    };
    serde_json::from_str::<Number>(&canonical)
        .map_err(|e| format!("{value:?} is not a number: {e}"))
}

/// `yyyyMMddHHmmss` (Vietnam time) → RFC 3339 with `+07:00`.
fn parse_time(time: &str) -> Result<String, String> {
    if time.len() != 14 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{time:?} is not a time in the form yyyyMMddHHmmss (14 digits)"
        ));
    }
    let n = |range: std::ops::Range<usize>| time[range].parse::<u32>().unwrap_or(u32::MAX);
    let (year, month, day) = (n(0..4) as i32, n(4..6), n(6..8));
    let (hour, minute, second) = (n(8..10), n(10..12), n(12..14));
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        format!("the date {year:04}-{month:02}-{day:02} in {time:?} does not exist")
    })?;
    let clock = NaiveTime::from_hms_opt(hour, minute, second).ok_or_else(|| {
        format!("the time {hour:02}:{minute:02}:{second:02} in {time:?} does not exist")
    })?;
    let local = vietnam()
        .from_local_datetime(&NaiveDateTime::new(date, clock))
        .single()
        .ok_or_else(|| format!("{time:?} is not a valid local time"))?;
    Ok(local.to_rfc3339())
}

struct FileName {
    file: String,
    province: String,
    facility: String,
    station: String,
    station_code: String,
    measured_at: String,
}

fn parse_file_name(path: &str) -> Result<FileName, CodecError> {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let bad = |message: String| CodecError::at(FORMAT, format!("file name {file:?}"), message);
    let expected = "expected Province_Facility_Station_yyyyMMddHHmmss.txt";
    let stem = file
        .strip_suffix(".txt")
        .or_else(|| file.strip_suffix(".TXT"))
        .ok_or_else(|| bad(format!("does not end in .txt; {expected}")))?;
    let parts: Vec<&str> = stem.split('_').collect();
    if parts.len() < 4 || parts[parts.len() - 4..].iter().any(|p| p.is_empty()) {
        return Err(bad(format!(
            "has fewer than four non-empty parts separated by '_'; {expected}"
        )));
    }
    let [province, facility, station, time] = [
        parts[parts.len() - 4],
        parts[parts.len() - 3],
        parts[parts.len() - 2],
        parts[parts.len() - 1],
    ];
    let measured_at = parse_time(time).map_err(|m| bad(format!("{m}; {expected}")))?;
    Ok(FileName {
        file: file.to_string(),
        province: province.to_string(),
        facility: facility.to_string(),
        station: station.to_string(),
        station_code: format!("{province}_{facility}_{station}"),
        measured_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAME: &str = "QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt";

    fn dec(text: &str, name: Option<&str>) -> Result<Value, CodecError> {
        decode(
            text.as_bytes(),
            &DecodeOptions {
                array_paths: None,
                file_name: name,
            },
        )
    }

    #[test]
    fn decodes_the_documented_tree() {
        let tree = dec("\u{feff}pH\t7.210\t-\t20220915103000\t00\r\nCOD\t042.5\tmg/L\t20220915103000\t02\r\n\r\n", Some(NAME))
            .unwrap();
        let expected: Value = serde_json::from_str(
            r#"{"file": "QNAM_CTYXYZ_NUOCTHAI01_20220915103000.txt",
                "province": "QNAM", "facility": "CTYXYZ", "station": "NUOCTHAI01",
                "station_code": "QNAM_CTYXYZ_NUOCTHAI01", "measured_at": "2022-09-15T10:30:00+07:00",
                "observations": [
                  {"parameter": "pH", "value": 7.210, "unit": "-", "measured_at": "2022-09-15T10:30:00+07:00", "status": "00"},
                  {"parameter": "COD", "value": 42.5, "unit": "mg/L", "measured_at": "2022-09-15T10:30:00+07:00", "status": "02"}
                ]}"#,
        )
        .unwrap();
        assert_eq!(tree, expected);
        // Exact decimal text.
        assert_eq!(tree["observations"][0]["value"].to_string(), "7.210");
    }

    #[test]
    fn round_trip() {
        let text = "pH\t7.21\t-\t20220915103000\t00\nNH4+\t-0.5\tmg/L\t20220915103500\t01\n";
        let tree = dec(text, Some(NAME)).unwrap();
        let bytes = encode(&tree).unwrap();
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), text);
        assert_eq!(
            decode(
                &bytes,
                &DecodeOptions {
                    array_paths: None,
                    file_name: Some(NAME)
                }
            )
            .unwrap(),
            tree
        );
    }

    #[test]
    fn without_file_name_and_with_prefix() {
        let tree = dec("pH\t7\t-\t20220915103000\t00", None).unwrap();
        assert_eq!(tree["station_code"], Value::Null);
        assert_eq!(tree["measured_at"], json!("2022-09-15T10:30:00+07:00"));
        let tree = dec(
            "pH\t7\t-\t20220915103000\t00",
            Some("/ftp/in/07_station_QNAM_A_B_20220915103000.txt"),
        )
        .unwrap();
        assert_eq!(tree["station_code"], json!("QNAM_A_B"));
        assert_eq!(
            tree["file"],
            json!("07_station_QNAM_A_B_20220915103000.txt")
        );
    }

    #[test]
    fn bad_lines_name_line_and_field() {
        let ok = "pH\t7.21\t-\t20220915103000\t00\n";
        let cases = [
            (
                "pH\t7.21\t-\t20220915103000\n",
                "line 2",
                "expected 5 TAB-separated fields",
            ),
            (
                "pH\t7,21\t-\t20220915103000\t00\n",
                "line 2 (field 2: value)",
                "not a decimal number",
            ),
            (
                "pH\tNaN\t-\t20220915103000\t00\n",
                "line 2 (field 2: value)",
                "not a decimal number",
            ),
            (
                "pH\t7\t\t20220915103000\t00\n",
                "line 2 (field 3: unit)",
                "unit is empty",
            ),
            (
                "pH\t7\t-\t20220230103000\t00\n",
                "line 2 (field 4: time)",
                "2022-02-30",
            ),
            (
                "pH\t7\t-\t20220915253000\t00\n",
                "line 2 (field 4: time)",
                "does not exist",
            ),
            (
                "pH\t7\t-\t2022091510300\t00\n",
                "line 2 (field 4: time)",
                "14 digits",
            ),
            (
                "pH\t7\t-\t20220915103000\t03\n",
                "line 2 (field 5: status)",
                "not 00",
            ),
            (
                "\t7\t-\t20220915103000\t00\n",
                "line 2 (field 1: parameter)",
                "empty",
            ),
            (
                "p\rH\t7\t-\t20220915103000\t00\n",
                "line 2 (field 1: parameter)",
                "U+000D",
            ),
            (
                "pH\t7\tmg\u{feff}\t20220915103000\t00\n",
                "line 2 (field 3: unit)",
                "U+FEFF",
            ),
        ];
        for (line, position, message) in cases {
            let e = dec(&format!("{ok}{line}"), Some(NAME)).unwrap_err();
            assert_eq!(e.position, position, "{line:?}: {e}");
            assert!(e.message.contains(message), "{line:?}: {e}");
        }
        let e = dec("\n\r\n", None).unwrap_err();
        assert!(e.message.contains("no measurement lines"), "{e}");
        let e = dec(ok, Some("QNAM_X_20220915103000.txt")).unwrap_err();
        assert!(e.message.contains("four"), "{e}");
        let e = dec(ok, Some("QNAM_X_Y_20220231103000.txt")).unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
        let e = dec(ok, Some("QNAM_X_Y_20220915103000.csv")).unwrap_err();
        assert!(e.message.contains(".txt"), "{e}");
        let e = decode(
            b"pH\t7\t\xB5g\t20220915103000\t00",
            &DecodeOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.position, "byte 5 (line 1, column 6)");
        let big = vec![b'\n'; limits::MAX_STATION_FILE_BYTES + 1];
        assert!(decode(&big, &DecodeOptions::default())
            .unwrap_err()
            .message
            .contains("limit"));
    }

    #[test]
    fn encode_errors() {
        assert!(encode(&json!({}))
            .unwrap_err()
            .message
            .contains("observations"));
        let e = encode(
            &json!({"observations": [{"parameter": "pH", "value": "x", "unit": "-",
            "measured_at": "2022-09-15T10:30:00+07:00", "status": "00"}]}),
        )
        .unwrap_err();
        assert_eq!(e.position, "/observations/0/value");
        // A UTC time is written in Vietnam time.
        let bytes = encode(
            &json!({"observations": [{"parameter": "pH", "value": 7, "unit": "-",
            "measured_at": "2022-09-15T03:30:00Z", "status": "00"}]}),
        )
        .unwrap();
        assert_eq!(bytes, b"pH\t7\t-\t20220915103000\t00\n");
    }
}
