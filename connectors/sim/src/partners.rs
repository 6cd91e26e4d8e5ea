//! All five simulators at once, wired to real connectors: what `lienthong demo`
//! and end-to-end tests need in one call.
//!
//! Credentials are random per start (no fixed demo password to leak into a real
//! deployment), and the connectors are built with the same values, so the whole
//! authentication path (tokens, sessions, WS-Security digests, API key) is exercised.

use std::sync::Arc;

use lienthong_core::schema::SchemaRegistry;
use lienthong_core::transport::TransportRegistry;

use super::ioc::{IocSim, IocSimConfig};
use super::lis::{LisSim, LisSimConfig};
use super::national_portal::{DvcqgSim, DvcqgSimConfig};
use super::province_portal::{LgspSim, LgspSimConfig};
use super::tax::{TaxSim, TaxSimConfig};
use connectors::error::ConnectorError;
use connectors::ioc::{IocClient, IocConfig};
use connectors::lis::{LisClient, LisConfig};
use connectors::national_portal::{NationalPortalClient, NationalPortalConfig};
use connectors::province_portal::{ProvincePortalClient, ProvincePortalConfig};
use connectors::secret::Secret;
use connectors::tax::{TaxClient, TaxConfig};

/// Department identity used in the simulated exchanges.
pub const SENDER_CODE: &str = "STNMT_QNAM";
pub const SENDER_NAME: &str = "Sở Tài nguyên và Môi trường tỉnh Quảng Nam";
pub const DSTCODE: &str = "H47";
pub const MADONVI: &str = "000.00.32.H47";

/// IOC batching used with the simulators (`lienthong demo`): up to this many
/// messages per request...
pub const IOC_BATCH_SIZE: usize = 50;
/// ...gathered for at most this long after the first one.
pub const IOC_LINGER_MS: u64 = 20;

/// The five running simulators and the credentials they expect.
pub struct Partners {
    pub province_portal: LgspSim,
    pub national_portal: DvcqgSim,
    pub lis: LisSim,
    pub tax: TaxSim,
    pub ioc: IocSim,
    secret: Secret,
}

impl Partners {
    /// Starts every simulator on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, ConnectorError> {
        let secret = Secret::new(uuid::Uuid::new_v4().simple().to_string());
        let province_portal =
            LgspSim::start(LgspSimConfig::new("lienthong-demo", secret.clone())).await?;
        let national_portal = DvcqgSim::start(DvcqgSimConfig {
            dstcode: DSTCODE.into(),
            username: "lienthong-demo".into(),
            password: secret.clone(),
            session_ttl: std::time::Duration::from_secs(1800),
        })
        .await?;
        let lis = LisSim::start(LisSimConfig {
            username: SENDER_CODE.into(),
            password: secret.clone(),
            actions: Default::default(),
        })
        .await?;
        let tax = TaxSim::start(TaxSimConfig::new(SENDER_CODE, secret.clone())).await?;
        let ioc = IocSim::start(IocSimConfig::new(secret.clone())).await?;
        Ok(Partners {
            province_portal,
            national_portal,
            lis,
            tax,
            ioc,
            secret,
        })
    }

    /// Makes every simulator validate with the hub's schemas; returns how many were plugged in.
    pub fn use_schemas(&self, registry: &SchemaRegistry) -> usize {
        self.province_portal.core().use_schemas(registry)
            + self.national_portal.core().use_schemas(registry)
            + self.lis.core().use_schemas(registry)
            + self.tax.core().use_schemas(registry)
            + self.ioc.core().use_schemas(registry)
    }

    /// Registers a real connector for each system, pointed at its simulator.
    /// `timeout_ms` applies to every connector. Must run inside a Tokio runtime.
    pub fn register(
        &self,
        registry: &mut TransportRegistry,
        timeout_ms: u64,
    ) -> Result<(), ConnectorError> {
        let s = &self.secret;
        let mut pp = ProvincePortalConfig::new(self.province_portal.url(), "lienthong-demo");
        pp.timeout_ms = timeout_ms;
        registry.register(
            connectors::province_portal::SYSTEM,
            Arc::new(ProvincePortalClient::with_secret(pp, s.clone())?),
        );
        let mut np = NationalPortalConfig::new(
            self.national_portal.auth_url(),
            self.national_portal.integration_url(),
            DSTCODE,
            "lienthong-demo",
        );
        np.madonvi = Some(MADONVI.into());
        np.timeout_ms = timeout_ms;
        registry.register(
            connectors::national_portal::SYSTEM,
            Arc::new(NationalPortalClient::with_password(np, s.clone())?),
        );
        let mut lis = LisConfig::new(self.lis.url(), SENDER_CODE);
        lis.timeout_ms = timeout_ms;
        registry.register(
            connectors::lis::SYSTEM,
            Arc::new(LisClient::with_password(lis, s.clone())?),
        );
        let mut tax = TaxConfig::new(self.tax.url(), SENDER_CODE, SENDER_CODE, SENDER_NAME);
        tax.timeout_ms = timeout_ms;
        registry.register(
            connectors::tax::SYSTEM,
            Arc::new(TaxClient::with_password(tax, s.clone())?),
        );
        let mut ioc = IocConfig::new(self.ioc.url());
        ioc.timeout_ms = timeout_ms;
        // The delivery layer keeps each station's messages in order, so a batch holds
        // at most one message per station with deliveries in flight; a long linger only
        // adds its length to every file of a station. A short one still merges what
        // the stations have in flight at the same moment.
        ioc.batch_size = IOC_BATCH_SIZE;
        ioc.linger_ms = IOC_LINGER_MS;
        registry.register(
            connectors::ioc::SYSTEM,
            Arc::new(IocClient::with_key(ioc, s.clone())?),
        );
        Ok(())
    }

    /// Stops every simulator.
    pub async fn shutdown(self) {
        self.province_portal.shutdown().await;
        self.national_portal.shutdown().await;
        self.lis.shutdown().await;
        self.tax.shutdown().await;
        self.ioc.shutdown().await;
    }
}
