//! Tax GIP: decoding an envelope or a bare DATA never panics; a decoded tree encodes
//! into an envelope (CDATA) that decodes to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_core::codec::{decode, encode, ArrayPaths, DecodeOptions, EncodeOptions, Format};

fuzz_target!(|data: &[u8]| {
    let paths: ArrayPaths = ["BODY/ROW", "BODY/ROW/SOTHUE/TONG_TIEN/ROW_SOTHUE"]
        .into_iter()
        .collect();
    let opts = DecodeOptions {
        array_paths: Some(&paths),
        file_name: None,
    };
    let Ok(tree) = decode(Format::TaxGip, data, &opts) else {
        return;
    };
    let bytes = encode(Format::TaxGip, &tree, &EncodeOptions::default())
        .expect("a decoded tree must encode");
    let again = decode(Format::TaxGip, &bytes, &opts).unwrap_or_else(|e| {
        panic!(
            "encoded envelope must decode: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(tree, again);
});
