//! The checks every text decoder runs first: size, UTF-8, byte-order mark, and turning
//! a byte offset into a `line, column` a human can find in an editor.
//!
//! They run before any parser sees the input, so parsers only ever get bounded,
//! valid UTF-8, and all decoders describe positions the same way.

use super::CodecError;

/// Rejects input larger than `max` bytes, before anything is allocated for it.
pub(crate) fn check_size(format: &'static str, bytes: &[u8], max: usize) -> Result<(), CodecError> {
    if bytes.len() > max {
        return Err(CodecError::at(
            format,
            format!("byte {max}"),
            format!(
                "input is {} bytes, more than the limit of {max} bytes (router::limits); \
                 split the message or ask the hub administrator",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Validates UTF-8 and strips a leading byte-order mark.
///
/// The error names the first bad byte (0-based offset) and its line and column, so a
/// partner can find a stray Windows-1258 or TCVN3 byte in their payload.
pub(crate) fn utf8<'a>(format: &'static str, bytes: &'a [u8]) -> Result<&'a str, CodecError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(e) => {
            let at = e.valid_up_to();
            // The prefix is valid UTF-8 by definition of `valid_up_to`.
            let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let (line, column) = line_col(prefix, prefix.len());
            Err(CodecError::at(
                format,
                format!("byte {at} (line {line}, column {column})"),
                format!(
                    "byte 0x{:02X} is not valid UTF-8; the hub accepts UTF-8 only \
                     (convert the payload from its legacy encoding before sending)",
                    bytes[at]
                ),
            ))
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// Offsets past the end or inside a character are clamped to the previous boundary.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// `line L, column C` for byte `offset` in `text`.
pub(crate) fn position(text: &str, offset: usize) -> String {
    let (line, column) = line_col(text, offset);
    format!("line {line}, column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "ab\nNguyễn X";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        // "Nguyễn" is 6 characters but 8 bytes.
        let x = text.find('X').unwrap();
        assert_eq!(line_col(text, x), (2, 8));
        // Inside a multi-byte character: clamps back.
        assert_eq!(line_col(text, 9), line_col(text, 8));
        assert_eq!(line_col(text, 1000), (2, 9));
    }

    #[test]
    fn utf8_error_names_the_byte() {
        let err = utf8("json", b"{\"a\":\n\"\xC3\x28\"}").unwrap_err();
        assert_eq!(err.position, "byte 7 (line 2, column 2)");
        assert!(err.message.contains("0xC3"), "{err}");
    }

    #[test]
    fn bom_is_stripped() {
        assert_eq!(utf8("json", b"\xEF\xBB\xBF{}").unwrap(), "{}");
    }

    #[test]
    fn size_limit() {
        let err = check_size("xml", &[b' '; 11], 10).unwrap_err();
        assert!(err.message.contains("11 bytes"), "{err}");
        check_size("xml", &[b' '; 10], 10).unwrap();
    }
}
