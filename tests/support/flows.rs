//! What the simulators saw, per dossier, in the order they saw it.

use serde_json::Value;

use super::Partners;

/// Accepted, non-duplicate bodies of one message type at one simulator.
fn accepted(core: &sim::SimCore, message_type: &str) -> Vec<String> {
    core.accepted()
        .into_iter()
        .filter(|r| r.message_type == message_type)
        .map(|r| r.body)
        .collect()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("a simulator received invalid JSON ({e}): {body}"))
}

/// DVCQG progress entries (`CapNhatTienDoHoSoMC` data items) of a dossier.
pub fn progress(p: &Partners, ma: &str) -> Vec<Value> {
    p.national
        .progress()
        .into_iter()
        .filter(|d| d["MaHoSo"] == ma)
        .collect()
}

/// `TrangThai` of each progress entry of a dossier.
pub fn progress_statuses(p: &Partners, ma: &str) -> Vec<String> {
    progress(p, ma)
        .iter()
        .map(|d| d["TrangThai"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// DVCQG `DongBoHoSoMC` records of a dossier, in order.
pub fn syncs(p: &Partners, ma: &str) -> Vec<Value> {
    accepted(p.national.core(), "DongBoHoSoMC")
        .iter()
        .flat_map(|b| json(b)["data"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["MaHoSo"] == ma)
        .collect()
}

pub fn sync_statuses(p: &Partners, ma: &str) -> Vec<String> {
    syncs(p, ma)
        .iter()
        .map(|d| d["TrangThaiHoSo"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// LGSP `status.update` bodies of a dossier.
pub fn province_updates(p: &Partners, ma: &str) -> Vec<Value> {
    accepted(p.province.core(), "status.update")
        .iter()
        .map(|b| json(b))
        .filter(|v| v["MaHoSo"] == ma)
        .collect()
}

pub fn province_statuses(p: &Partners, ma: &str) -> Vec<String> {
    province_updates(p, ma)
        .iter()
        .map(|v| v["TrangThaiHoSo"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// LIS messages of a dossier as (message type, SOAP request).
pub fn lis_messages(p: &Partners, ma: &str) -> Vec<(String, String)> {
    p.lis
        .core()
        .accepted()
        .into_iter()
        .filter(|r| r.body.contains(ma))
        .map(|r| (r.message_type, r.body))
        .collect()
}

/// GIP `<DATA>` documents of a dossier received by tax.
pub fn tax_documents(p: &Partners, ma: &str) -> Vec<String> {
    p.tax
        .documents()
        .into_iter()
        .filter(|d| d.contains(ma))
        .collect()
}
