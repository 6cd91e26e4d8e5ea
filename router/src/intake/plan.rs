//! The route-and-map plan: which targets an accepted tree goes to, and the exact
//! bytes each target will be sent.
//!
//! Mapping happens here, at intake, not at delivery: the deliveries carry the
//! bytes (and the mapping version) the message was accepted with, so a reload
//! never changes a message in flight and an as-sent replay re-sends exactly
//! those bytes. One snapshot of the active routes and mappings serves the whole
//! message, so a hot swap never splits it across two generations.
//!
//! For each target: map, validate the output against the target schema, encode.
//! Every failure of every target is collected, and any failure rejects the whole
//! message (422): a partner is never told "accepted" for a message that reaches
//! only some of its destinations.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{reasons_of, Intake};
use crate::audit::TrailEvent;
use crate::codec::Format;
use crate::routes::RouteTarget;
use crate::store::NewDelivery;

/// The deliveries of one message and the `routed` + `mapped` trail events.
pub(super) struct Plan {
    pub deliveries: Vec<NewDelivery>,
    pub trail: Vec<TrailEvent>,
}

/// One target's mapped and encoded output.
struct Mapped {
    body: Vec<u8>,
    format: Format,
}

impl Intake {
    /// Routes and maps one tree: the plan, or every reason it cannot be delivered.
    pub(super) fn plan(
        &self,
        id: &str,
        at: i64,
        system: &str,
        message_type: &str,
        tree: &Value,
    ) -> Result<Plan, Vec<String>> {
        let targets = self.targets(system, message_type, tree);
        let mut plan = Plan {
            deliveries: Vec::new(),
            trail: vec![routed_event(id, at, &targets)],
        };
        let mut reasons = Vec::new();
        for t in &targets {
            match self.map_target(t, tree) {
                Ok(out) => plan.push(id, at, t, out),
                Err(why) => reasons.extend(why),
            }
        }
        if reasons.is_empty() {
            Ok(plan)
        } else {
            Err(reasons)
        }
    }

    /// The route targets of one message, from one snapshot of the active generation
    /// (or the fixed routes when no admin layer is attached).
    fn targets(&self, system: &str, message_type: &str, tree: &Value) -> Vec<RouteTarget> {
        match self.active.as_ref().map(|a| a.load()) {
            Some(set) => set.routes.resolve(system, message_type, tree),
            None => self.routes.resolve(system, message_type, tree),
        }
    }

    /// Map, validate against the target schema, encode; the reasons when any step fails.
    fn map_target(&self, t: &RouteTarget, tree: &Value) -> Result<Mapped, Vec<String>> {
        let m = &t.mapping;
        let mapped = m
            .apply(tree)
            .map_err(|e| vec![format!("route {} → {}: {e}", t.route_id, t.system)])?;
        let Some(target_schema) = self.schemas.get(&m.target.schema) else {
            return Err(vec![format!(
                "route {} → {}: target schema `{}` is not loaded",
                t.route_id, t.system, m.target.schema
            )]);
        };
        target_schema.validate(&mapped).map_err(|e| {
            reasons_of(&e)
                .into_iter()
                .map(|r| format!("mapping {} produced invalid output: {r}", m.id))
                .collect::<Vec<_>>()
        })?;
        let body = target_schema
            .encode(&mapped)
            .map_err(|e| vec![format!("mapping {}: encoding the output failed: {e}", m.id)])?;
        Ok(Mapped {
            body,
            format: target_schema.format,
        })
    }
}

impl Plan {
    /// Adds one target's delivery and its `mapped` event.
    fn push(&mut self, id: &str, at: i64, t: &RouteTarget, out: Mapped) {
        let m = &t.mapping;
        let delivery_id = uuid::Uuid::now_v7().to_string();
        self.trail.push(TrailEvent {
            at,
            message_id: Some(id.to_string()),
            delivery_id: Some(delivery_id.clone()),
            kind: "mapped",
            actor: "intake".into(),
            detail: json!({
                "route": t.route_id, "destination": t.system, "mapping_id": m.id, "mapping_version": m.version,
                "mapping_hash": m.content_hash, "message_type": m.target.message_type, "bytes": out.body.len(),
                "body_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&out.body)),
            }),
        });
        self.deliveries.push(NewDelivery {
            id: delivery_id,
            destination: t.system.clone(),
            message_type: m.target.message_type.clone(),
            route_id: t.route_id.clone(),
            mapping_id: m.id.clone(),
            mapping_version: i64::from(m.version),
            body: Bytes::from(out.body),
            content_type: content_type_of(out.format).to_string(),
        });
    }
}

/// The `routed` event: every target the routes chose, before any is mapped.
fn routed_event(id: &str, at: i64, targets: &[RouteTarget]) -> TrailEvent {
    TrailEvent {
        at,
        message_id: Some(id.to_string()),
        delivery_id: None,
        kind: "routed",
        actor: "intake".into(),
        detail: json!({ "targets": targets.iter().map(|t| json!({"route": t.route_id, "system": t.system, "mapping": t.mapping.id})).collect::<Vec<_>>() }),
    }
}

/// Content type of an encoded delivery body.
fn content_type_of(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Xml | Format::TaxGip => "application/xml; charset=utf-8",
        Format::StationFile => "text/plain; charset=utf-8",
    }
}
