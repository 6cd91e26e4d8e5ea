//! placeholder until the connectors are all written
use router::delivery::TransportRegistry;
#[derive(Debug, Default)]
pub struct ConnectorsConfig;
pub fn register_all(_c: &ConnectorsConfig, _r: &mut TransportRegistry) {}
