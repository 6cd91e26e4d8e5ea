//! Station files: never panics; a decoded file encodes back to lines that decode to
//! the same tree. The first input line may be a file name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_core::codec::{decode, encode, DecodeOptions, EncodeOptions, Format};

fuzz_target!(|data: &[u8]| {
    // Use the fuzzer's first line as a file name half the time.
    let (file_name, body) = match data.split_first() {
        Some((b'#', rest)) => match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (std::str::from_utf8(&rest[..i]).ok(), &rest[i + 1..]),
            None => (None, rest),
        },
        _ => (None, data),
    };
    let opts = DecodeOptions {
        array_paths: None,
        file_name,
    };
    let Ok(tree) = decode(Format::StationFile, body, &opts) else {
        return;
    };
    let bytes = encode(Format::StationFile, &tree, &EncodeOptions::default())
        .expect("a decoded tree must encode");
    let again = decode(Format::StationFile, &bytes, &opts).unwrap_or_else(|e| {
        panic!(
            "encoded file must decode: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(tree, again);
});
