//! Monitoring-station intake helpers (Thông tư 10/2021/TT-BTNMT stations).
//!
//! The hub decodes a station file into the station tree (`lienthong_core::codec::station`);
//! before mapping it to the IOC's shape the pipeline calls
//! [`threshold::Evaluator::enrich`], which marks each observation against the
//! national limits (QCVN 40:2011 for industrial wastewater, QCVN 05:2023 for
//! ambient air) and returns the alerts to raise. [`silence`] notices stations that
//! stopped sending; [`dropfolder`] turns the department's FTP drop folders into
//! submissions without ever reading a half-written file.

pub mod dropfolder;
pub mod silence;
pub mod threshold;

pub use threshold::{Alert, AlertKind, Evaluator, ThresholdsConfig};
