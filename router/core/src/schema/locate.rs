//! Where is `/properties/MaHoSo/pattern` in this file? Best-effort positions for
//! diagnostics about a JSON document that parsed fine.
//!
//! `serde_json::Value` forgets positions, but an administrator needs `file:line:column`
//! for a problem found *after* parsing (a bad `x-lienthong.format`, an invalid regex).
//! Rather than keep a second, span-carrying tree, this walks the (already valid) text
//! along a JSON pointer, skipping values it does not descend into. If anything is
//! unexpected it gives up and the diagnostic has no position; it never panics.

/// Byte offset of the value (or the key, for the last object segment) at `segments`.
pub(crate) fn locate(text: &str, segments: &[String]) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = ws(b, 0);
    for (n, seg) in segments.iter().enumerate() {
        match *b.get(i)? {
            b'{' => {
                i = ws(b, i + 1);
                loop {
                    if *b.get(i)? == b'}' {
                        return None;
                    }
                    let key_start = i;
                    let key_end = string_end(b, i)?;
                    let key: String = serde_json::from_str(text.get(key_start..key_end)?).ok()?;
                    i = ws(b, key_end);
                    if *b.get(i)? != b':' {
                        return None;
                    }
                    i = ws(b, i + 1);
                    if key == *seg {
                        if n + 1 == segments.len() {
                            return Some(key_start);
                        }
                        break;
                    }
                    i = ws(b, value_end(b, i, 0)?);
                    match *b.get(i)? {
                        b',' => i = ws(b, i + 1),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                let index: usize = seg.parse().ok()?;
                i = ws(b, i + 1);
                for _ in 0..index {
                    i = ws(b, value_end(b, i, 0)?);
                    if *b.get(i)? != b',' {
                        return None;
                    }
                    i = ws(b, i + 1);
                }
            }
            _ => return None,
        }
    }
    Some(i)
}

/// 1-based `(line, column)` of the JSON pointer in `text`, `(0, 0)` when not found.
pub(crate) fn line_col(text: &str, pointer: &str) -> (usize, usize) {
    locate(text, &segments(pointer))
        .map_or((0, 0), |offset| crate::codec::text::line_col(text, offset))
}

/// Splits a JSON pointer into unescaped segments.
pub(crate) fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `i` is at `"`; returns the offset after the closing quote.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if *b.get(i)? != b'"' {
        return None;
    }
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// Offset just after the value starting at `i`.
fn value_end(b: &[u8], i: usize, depth: usize) -> Option<usize> {
    if depth > 256 {
        return None;
    }
    match *b.get(i)? {
        b'"' => string_end(b, i),
        open @ (b'{' | b'[') => {
            let close = if open == b'{' { b'}' } else { b']' };
            let mut j = ws(b, i + 1);
            if *b.get(j)? == close {
                return Some(j + 1);
            }
            loop {
                if open == b'{' {
                    j = ws(b, string_end(b, j)?);
                    if *b.get(j)? != b':' {
                        return None;
                    }
                    j = ws(b, j + 1);
                }
                j = ws(b, value_end(b, j, depth + 1)?);
                match *b.get(j)? {
                    b',' => j = ws(b, j + 1),
                    c if c == close => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        _ => {
            let mut j = i;
            while matches!(b.get(j), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items() {
        let text = "{\n  \"a\": {\"x\": [1, {\"y\": \"}\"}, 3]},\n  \"b/c\": true,\n  \"x-lienthong\": {\"format\": \"yaml\"}\n}";
        let at =
            |p: &str| locate(text, &segments(p)).map(|o| crate::codec::text::line_col(text, o));
        assert_eq!(at("/x-lienthong/format"), Some((4, 19)));
        assert_eq!(at("/b~1c"), Some((3, 3)));
        assert_eq!(at("/a/x/2"), Some((2, 30)));
        assert_eq!(at("/a/x/1/y"), Some((2, 19)));
        assert_eq!(at("/nope"), None);
        assert_eq!(at(""), Some((1, 1)));
    }
}
