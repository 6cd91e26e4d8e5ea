//! Record digests: how the chain covers the rows of the other tables.
//!
//! The definitions (which columns of `messages`, `deliveries` and `attempts`
//! are recorded verbatim, which as SHA-256, and the records the store seals
//! into the trail at insert) live with the tables, in
//! [`crate::store::records`], whose docs say why; verify, export and the
//! bundle read them from here.

pub use crate::store::records::*;
