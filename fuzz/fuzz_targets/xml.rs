//! XML codec: never panics; whatever decodes re-encodes and decodes to the same tree,
//! with and without array paths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_core::codec::{decode, encode, ArrayPaths, DecodeOptions, EncodeOptions, Format};

fuzz_target!(|data: &[u8]| {
    let paths: ArrayPaths = ["a", "a/b", "ROW", "BODY/ROW"].into_iter().collect();
    for array_paths in [None, Some(&paths)] {
        let opts = DecodeOptions {
            array_paths,
            file_name: None,
        };
        let Ok(tree) = decode(Format::Xml, data, &opts) else {
            return;
        };
        let bytes = encode(Format::Xml, &tree, &EncodeOptions::default())
            .expect("a decoded tree must encode");
        let again = decode(Format::Xml, &bytes, &opts).unwrap_or_else(|e| {
            panic!(
                "encoded XML must decode: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(
            tree,
            again,
            "round trip changed the tree:\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
});
