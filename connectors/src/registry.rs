//! Explicit registration of the configured connectors by system id.
//!
//! No discovery, no plugin magic: the hub's config has a `connectors:` section with
//! one optional block per partner, and [`register_all`] builds exactly the ones that
//! are present (reading their secrets) and registers each under its system id. A
//! partner without a block simply has no transport, which the hub's `check` reports
//! when a route points at it.

use std::sync::Arc;

use lienthong_core::transport::TransportRegistry;
use lienthong_core::Diagnostics;
use serde::Deserialize;

use crate::error::ConnectorError;
use crate::ioc::{IocClient, IocConfig};
use crate::lis::{LisClient, LisConfig};
use crate::national_portal::{NationalPortalClient, NationalPortalConfig};
use crate::province_portal::{ProvincePortalClient, ProvincePortalConfig};
use crate::tax::{TaxClient, TaxConfig};

/// The `connectors:` section of the hub's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorsConfig {
    #[serde(default, rename = "province-portal")]
    pub province_portal: Option<ProvincePortalConfig>,
    #[serde(default, rename = "national-portal")]
    pub national_portal: Option<NationalPortalConfig>,
    #[serde(default)]
    pub lis: Option<LisConfig>,
    #[serde(default)]
    pub tax: Option<TaxConfig>,
    #[serde(default)]
    pub ioc: Option<IocConfig>,
}

impl ConnectorsConfig {
    /// Pure validation of every configured connector; `file` names the config file.
    pub fn validate(&self, file: &str) -> Diagnostics {
        let mut d = Diagnostics::default();
        if let Some(c) = &self.province_portal {
            d.extend(c.validate(file));
        }
        if let Some(c) = &self.national_portal {
            d.extend(c.validate(file));
        }
        if let Some(c) = &self.lis {
            d.extend(c.validate(file));
        }
        if let Some(c) = &self.tax {
            d.extend(c.validate(file));
        }
        if let Some(c) = &self.ioc {
            d.extend(c.validate(file));
        }
        d
    }
}

/// Builds and registers every configured connector. Must run inside a Tokio runtime
/// (the IOC connector spawns its batcher). Fails on the first connector that cannot
/// be built (missing secret, TLS provider not installed).
pub fn register_all(
    config: &ConnectorsConfig,
    registry: &mut TransportRegistry,
) -> Result<(), ConnectorError> {
    if let Some(c) = &config.province_portal {
        registry.register(
            crate::province_portal::SYSTEM,
            Arc::new(ProvincePortalClient::new(c.clone())?),
        );
    }
    if let Some(c) = &config.national_portal {
        registry.register(
            crate::national_portal::SYSTEM,
            Arc::new(NationalPortalClient::new(c.clone())?),
        );
    }
    if let Some(c) = &config.lis {
        registry.register(crate::lis::SYSTEM, Arc::new(LisClient::new(c.clone())?));
    }
    if let Some(c) = &config.tax {
        registry.register(crate::tax::SYSTEM, Arc::new(TaxClient::new(c.clone())?));
    }
    if let Some(c) = &config.ioc {
        registry.register(crate::ioc::SYSTEM, Arc::new(IocClient::new(c.clone())?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_like_json_parses_and_validates() {
        let c: ConnectorsConfig = serde_json::from_str(
            r#"{"lis": {"url": "http://lis.local/ws", "username": "HUB", "password_env": "LIS_PW"},
                "ioc": {"base_url": "not a url", "api_key_env": "IOC_KEY"}}"#,
        )
        .unwrap();
        let d = c.validate("lienthong.yaml");
        assert_eq!(d.len(), 1, "{d}");
        assert!(d.0[0].context.contains("connectors.ioc.base_url"));
        assert!(serde_json::from_str::<ConnectorsConfig>(r#"{"dvc": {}}"#).is_err());
    }

    #[tokio::test]
    async fn registers_configured_connectors_only() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "x").unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut lis = LisConfig::new("http://127.0.0.1:9/ws", "HUB");
        lis.password_file = Some(pw);
        let c = ConnectorsConfig {
            lis: Some(lis),
            ..Default::default()
        };
        let mut r = TransportRegistry::new();
        register_all(&c, &mut r).unwrap();
        assert_eq!(r.destinations().collect::<Vec<_>>(), vec!["lis"]);
        let mut bad = c.clone();
        bad.lis.as_mut().unwrap().password_file = Some(dir.path().join("missing"));
        let e = register_all(&bad, &mut TransportRegistry::new())
            .err()
            .unwrap();
        assert!(!e.is_retryable() && e.to_string().contains("connectors.lis.password"));
    }
}
