//! Log output that a request cannot forge.
//!
//! Request paths and header values reach log fields (a message type from the
//! URL, a reason that quotes a header). The text format writes a field's value
//! as it is, so a path with `%0A` would end the log line and start a forged one,
//! and `%00` would write a NUL byte into the log file. Escaping at every
//! `tracing::info!` call would hold only until someone forgets one, so the
//! escaping is done here, once, on the way out: tracing-subscriber's fmt layer
//! formats each event into a buffer and writes it with one `write`, so every
//! control character in a buffer except its final newline came from a field,
//! and is written as an escape (`\n`, `\0`, `\u{1b}`). The JSON format escapes
//! by itself and goes through the same writer harmlessly.

use std::io::{self, Write};

/// `stderr`, with control characters inside an event escaped.
pub struct EscapingStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapingStderr {
    type Writer = EscapingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter
    }
}

pub struct EscapingWriter;

impl Write for EscapingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().lock().write_all(&escape(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `buf` with every control character but a final newline escaped.
pub fn escape(buf: &[u8]) -> Vec<u8> {
    let (body, end) = match buf.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (buf, &b""[..]),
    };
    if !body.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
        return buf.to_vec();
    }
    let mut out = Vec::with_capacity(buf.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            b'\t' => out.push(b),
            b if b.is_ascii_control() => out.extend_from_slice(format!("\\u{{{b:x}}}").as_bytes()),
            b => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn a_field_cannot_end_the_line_or_write_a_nul() {
        let line = b"INFO rejected message_type=a\nINFO forged\0 \x1b[31m\n";
        assert_eq!(
            escape(line),
            b"INFO rejected message_type=a\\nINFO forged\\0 \\u{1b}[31m\n".to_vec()
        );
        assert_eq!(escape(b"plain\n"), b"plain\n".to_vec());
    }
}
