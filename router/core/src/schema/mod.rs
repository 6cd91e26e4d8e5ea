//! The schema registry: one JSON Schema (draft 2020-12) per message type.
//!
//! A message type is `(system, message_type)`; its schema lives in
//! `schemas/<system>/<message_type>.schema.json` and its id is `<system>/<message_type>`.
//! The schema is the single description of a message the hub relies on, so besides
//! validating it also tells the codecs how to read and write the message, through the
//! `x-lienthong` annotation at its root:
//!
//! ```json
//! "x-lienthong": {
//!   "format": "json" | "xml" | "tax-gip" | "station-file",
//!   "correlation": "/MaHoSo",        // JSON pointer: dossier code or station code
//!   "message_id": "/MsgId",          // optional: the partner's message id (idempotency)
//!   "dedupe_key": ["/MaHoSo", "/NgayTiepNhan"],   // optional: natural key when there is no message id
//!   "xml": { "root": "HoSo", "namespaces": { "": "urn:..." } }   // xml formats only
//! }
//! ```
//!
//! For XML formats the schema describes the *tree form* (see the convention in
//! [`crate::codec::xml`]) of the document element's **content**: [`MessageSchema::decode`]
//! checks the document element against `xml.root` (by local name) and strips it, and
//! [`MessageSchema::encode`] writes it back with the declared namespaces. `xml.root` is
//! required for `xml`; for `tax-gip` the element is always `DATA` (the envelope
//! operation is the tax connector's business). The paths the schema types as
//! `"array"` become the [`ArrayPaths`] that make a lone XML element a list of one.
//!
//! Loading is all-or-nothing and reports every problem at once, each with
//! `file:line:column`, so an administrator fixes a whole batch in one pass; schemas are
//! compiled once, at load. Validation reports every failing instance path, not just
//! the first, because a partner fixing a rejected message wants the full list.
//!
//! Files: [`registry`] (loading, diagnostics), [`annotation`] (`x-lienthong`),
//! [`arrays`] (array paths from the schema), [`message`] (validate/decode/encode),
//! `locate` (positions inside a JSON file).

mod annotation;
pub mod arrays;
mod locate;
mod message;
mod registry;

pub use crate::codec::ArrayPaths;
pub use annotation::Annotation;
pub use message::MessageSchema;
pub use registry::SchemaRegistry;
