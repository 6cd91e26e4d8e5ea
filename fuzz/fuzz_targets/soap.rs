//! SOAP envelopes: unwrap never panics; an unwrapped body and header wrap again and
//! unwrap to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_core::codec::soap::{unwrap, wrap, SoapBody};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = unwrap(data) else { return };
    if msg.body.is_null() {
        return;
    }
    let bytes = wrap(
        SoapBody::Tree(&msg.body),
        msg.header.as_ref().filter(|h| h.is_object()),
        None,
    )
    .expect("an unwrapped body must wrap");
    let again = unwrap(&bytes).unwrap_or_else(|e| panic!("wrapped envelope must unwrap: {e}"));
    assert_eq!(msg.body, again.body);
    assert_eq!(msg.fault, again.fault);
});
