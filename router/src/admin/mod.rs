//! # Administrators: versioned mappings, one gate, safe hot reload
//!
//! Mappings are what administrators change while the hub runs. A bad change
//! must never reach partners, and a good one must take effect without a
//! restart and without losing or duplicating a single message. This module is
//! how that is guaranteed:
//!
//! ```text
//!  PUT /api/v1/mappings/{id} ─┐
//!  console editor ────────────┼─▶ gate: (a) compile ─▶ (b) schema + routes check
//!  edit under mappings/ ──────┘        ─▶ (c) the mapping's own tests
//!   (watch, debounced)                 ─▶ (d) dry run on the last N real messages
//!                                      ─▶ (e) commit a new version + trail event
//!                                               ─▶ rebuild the active set ─▶ atomic swap
//! ```
//!
//! * [`versions`]: the tables of versions, the active pointer and the generation
//!   counter replicas poll.
//! * [`gate`]: steps (a)–(d), with a report an administrator can act on.
//! * [`active`]: the swap handle intake reads the active mappings and routes through.
//! * [`service`]: ties them together (propose, rollback, refresh, bootstrap from files).
//! * [`watch`]: the debounced file watcher that feeds edits to the same gate.
//! * [`api`]: the `/api/v1/mappings` HTTP endpoints.
//!
//! Every path goes through [`service::MappingAdmin::propose`], so there is one
//! gate and one place that activates. Messages already accepted are never
//! touched by a reload: intake maps and stores the mapped bytes (with the
//! mapping version) in the same transaction that answers `202`.

pub mod access;
pub mod active;
pub mod api;
pub mod gate;
pub mod service;
pub mod versions;
pub mod watch;

pub use active::{ActiveMappings, ActiveSet};
pub use gate::{GateOptions, GateReport};
pub use service::{AdminOptions, MappingAdmin};
pub use versions::{Origin, VersionStore};

/// What can go wrong when changing mappings.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The caller's precondition (`If-Match`) does not name the active version.
    #[error(
        "mapping '{mapping_id}': the active version is {}, but the request expected {}; \
         someone changed it in the meantime: reload it, re-apply your change and send it again with If-Match: {}",
        fmt_version(.current), fmt_version(.expected), fmt_version(.current)
    )]
    Conflict {
        mapping_id: String,
        expected: Option<i64>,
        current: Option<i64>,
    },

    /// The gate refused the change; the report says which step and why.
    #[error("mapping '{}': refused at gate step '{}': {}", .0.mapping_id, .0.failed_step().unwrap_or("?"), .0.summary())]
    Rejected(Box<GateReport>),

    /// The request itself is malformed (missing If-Match, bad id, not UTF-8...).
    #[error("{0}")]
    BadRequest(String),

    #[error(transparent)]
    Router(#[from] crate::Error),
}

fn fmt_version(v: &Option<i64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

impl AdminError {
    /// Could the same request succeed later, unchanged? A conflict or a refusal never does.
    pub fn is_retryable(&self) -> bool {
        match self {
            AdminError::Conflict { .. } | AdminError::Rejected(_) | AdminError::BadRequest(_) => {
                false
            }
            AdminError::Router(e) => e.is_retryable(),
        }
    }
}
