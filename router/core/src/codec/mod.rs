//! Bytes ⇄ tree: every wire format the hub speaks, behind two functions.
//!
//! The rest of the hub never looks at bytes. Intake calls [`decode`] (usually through
//! [`crate::schema::MessageSchema::decode`], which also supplies the array paths), the
//! mapping engine works on the resulting [`serde_json::Value`] ("the tree"), and the
//! delivery side calls [`encode`]. Keeping each wire format in its own file means a
//! partner that changes its format touches exactly one file:
//!
//! | format | file | wire form | tree form |
//! |---|---|---|---|
//! | [`Format::Json`] | [`json`] | JSON | the JSON value itself |
//! | [`Format::Xml`] | [`xml`] | an XML document | `{"<root element>": <content>}`, see the convention in [`xml`] |
//! | [`Format::TaxGip`] | [`tax_gip`] | the tax GIP SOAP envelope carrying `<DATA>` in CDATA (or a bare `<DATA>`) | `{"DATA": <content>}` |
//! | [`Format::StationFile`] | [`station`] | a Thông tư 10/2021 station text file | see [`station`] |
//!
//! [`soap`] is the SOAP 1.1 envelope (wrap, unwrap, faults) used by the LIS and tax
//! connectors; it is not a [`Format`] of its own because a SOAP message is XML whose
//! interesting part is one body element. [`fragment`] holds the text-level XML
//! helpers (raw inner XML and text by local name, escaping, CDATA) that the
//! envelopes and the connectors use where bytes must pass through unchanged.
//!
//! Each wire format is written once, here: the connectors build and read their
//! SOAP envelopes, WS-Security-carrying headers and GIP documents with these
//! modules rather than with copies of their own.
//!
//! ## Untrusted input
//!
//! Everything here reads bytes from partners, so every decoder enforces the limits in
//! [`crate::limits`] *before* building anything (size first, then UTF-8, then depth
//! while parsing), rejects DTDs (no entity expansion, no external entities), never
//! panics, and reports a [`CodecError`] whose `position` says where the problem is
//! (`line 3, column 7`, `byte 120 (line 3, column 7)` or `line 4 (field 2: value)`).
//! The fuzz targets in `fuzz/` check these promises.
//!
//! Encoders obey the same limits: the hub never emits what it would refuse to read.

mod array_paths;
mod error;
pub mod fragment;
pub mod json;
pub mod soap;
pub mod station;
pub mod tax_gip;
pub(crate) mod text;
pub mod xml;

pub use array_paths::ArrayPaths;
pub use error::CodecError;

use indexmap::IndexMap;
use serde_json::Value;

/// A wire format, as named in the `x-lienthong.format` schema annotation and in mapping files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Json,
    Xml,
    TaxGip,
    StationFile,
}

impl Format {
    /// The name used in files and error messages (`json`, `xml`, `tax-gip`, `station-file`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Xml => "xml",
            Format::TaxGip => "tax-gip",
            Format::StationFile => "station-file",
        }
    }

    /// Parses the name used in files; `None` for anything else.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            "tax-gip" => Some(Format::TaxGip),
            "station-file" => Some(Format::StationFile),
            _ => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a decoder may need besides the bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions<'a> {
    /// XML only: element paths (below the document element) that are arrays even when
    /// they occur once. Usually derived from the message schema.
    pub array_paths: Option<&'a ArrayPaths>,
    /// Station files only: the file name, which carries the province, facility,
    /// station and measurement time (`Province_Facility_Station_yyyyMMddHHmmss.txt`).
    pub file_name: Option<&'a str>,
}

/// What an encoder may need besides the tree.
#[derive(Clone, Copy, Debug, Default)]
pub struct EncodeOptions<'a> {
    /// XML and tax GIP: when set, the tree is the *content* of this document element
    /// (`{"MaHoSo": ..}` with root `HoSo`); when `None`, the tree must be an object with
    /// exactly one key, the document element (`{"HoSo": {"MaHoSo": ..}}`).
    pub xml_root: Option<&'a str>,
    /// XML and tax GIP: namespace declarations written on the document element
    /// (tax GIP: on the SOAP envelope); the key `""` is the default namespace.
    pub namespaces: Option<&'a IndexMap<String, String>>,
}

/// Decodes `bytes` of the given format into a tree.
pub fn decode(format: Format, bytes: &[u8], opts: &DecodeOptions) -> Result<Value, CodecError> {
    match format {
        Format::Json => json::decode(bytes),
        Format::Xml => xml::decode(bytes, opts),
        Format::TaxGip => tax_gip::decode(bytes, opts),
        Format::StationFile => station::decode(bytes, opts),
    }
}

/// Encodes a tree into bytes of the given format.
pub fn encode(format: Format, tree: &Value, opts: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    match format {
        Format::Json => json::encode(tree),
        Format::Xml => xml::encode(tree, opts),
        Format::TaxGip => tax_gip::encode(tree, opts),
        Format::StationFile => station::encode(tree),
    }
}
