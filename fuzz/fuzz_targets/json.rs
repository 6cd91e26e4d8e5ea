//! JSON codec: never panics; whatever decodes re-encodes and decodes to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_core::codec::{decode, encode, DecodeOptions, EncodeOptions, Format};

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = decode(Format::Json, data, &DecodeOptions::default()) else {
        return;
    };
    let bytes =
        encode(Format::Json, &tree, &EncodeOptions::default()).expect("a decoded tree must encode");
    let again =
        decode(Format::Json, &bytes, &DecodeOptions::default()).expect("encoded JSON must decode");
    assert_eq!(tree, again);
});
