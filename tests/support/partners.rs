//! The five partner simulators, their credentials, and the `connectors:` YAML that points the hub at them.

use std::path::Path;
use std::time::Duration;

use connectors::Secret;
use sim::ioc::{IocSim, IocSimConfig};
use sim::lis::{LisSim, LisSimConfig};
use sim::national_portal::{DvcqgSim, DvcqgSimConfig};
use sim::province_portal::{LgspSim, LgspSimConfig};
use sim::tax::{TaxSim, TaxSimConfig};
use sim::SimCore;

const LGSP_KEY: &str = "hub-stnmt-qnam";
const LGSP_SECRET: &str = "lgsp-secret-Đ9";
const DVCQG_USER: &str = "stnmt-qnam";
const DVCQG_PASSWORD: &str = "dvcqg-pass-Ơ4";
const DSTCODE: &str = "H47";
const LIS_USER: &str = "HUB_STNMT";
const LIS_PASSWORD: &str = "lis-pass-Ư7";
const TAX_USER: &str = "STNMT_QNAM";
const TAX_PASSWORD: &str = "gip-pass-Â2";
/// ASCII: an API key travels in an HTTP header.
const IOC_KEY: &str = "ioc-key-5f3a9c27";

/// Every secret the partners hold; none may appear in a hub log.
pub const SECRETS: [&str; 5] = [
    LGSP_SECRET,
    DVCQG_PASSWORD,
    LIS_PASSWORD,
    TAX_PASSWORD,
    IOC_KEY,
];

/// The five running simulators.
pub struct Partners {
    pub province: LgspSim,
    pub national: DvcqgSim,
    pub lis: LisSim,
    pub tax: TaxSim,
    pub ioc: IocSim,
}

impl Partners {
    /// Starts all five; `session_ttl` is the DVCQG session lifetime, `token_ttl` the LGSP token's.
    pub async fn start(token_ttl: Duration, session_ttl: Duration) -> Partners {
        super::init();
        let mut lgsp = LgspSimConfig::new(LGSP_KEY, Secret::new(LGSP_SECRET));
        lgsp.token_ttl = token_ttl;
        let province = LgspSim::start(lgsp)
            .await
            .expect("starting the LGSP simulator");
        let national = DvcqgSim::start(DvcqgSimConfig {
            dstcode: DSTCODE.into(),
            username: DVCQG_USER.into(),
            password: Secret::new(DVCQG_PASSWORD),
            session_ttl,
        })
        .await
        .expect("starting the DVCQG simulator");
        let lis = LisSim::start(LisSimConfig {
            username: LIS_USER.into(),
            password: Secret::new(LIS_PASSWORD),
            actions: Default::default(),
        })
        .await
        .expect("starting the LIS simulator");
        let tax = TaxSim::start(TaxSimConfig::new(TAX_USER, Secret::new(TAX_PASSWORD)))
            .await
            .expect("starting the tax simulator");
        let ioc = IocSim::start(IocSimConfig::new(Secret::new(IOC_KEY)))
            .await
            .expect("starting the IOC simulator");
        let p = Partners {
            province,
            national,
            lis,
            tax,
            ioc,
        };
        p.plug_schemas();
        p
    }

    /// Every simulator validates what it receives against the hub's own schemas
    /// (`schemas/<system>/*`): the business part of each message (DVCQG without the
    /// connector's `session`, GIP `HEADER`+`BODY` without `SECURITY`), so a mapping
    /// that drifts from the partner contract is refused here as the partner would.
    fn plug_schemas(&self) {
        let schemas = router::schema::SchemaRegistry::load(&super::root().join("schemas"))
            .unwrap_or_else(|d| panic!("loading schemas/:\n{d}"));
        for (system, core) in self.cores() {
            assert!(
                core.use_schemas(&schemas) > 0,
                "no schema under schemas/{system}/ for its simulator"
            );
        }
    }

    /// Writes one secret file per partner under `dir/secrets/` and returns the `connectors:` block
    /// (indented two spaces) pointing at the simulators. `timeout_ms` bounds every partner call.
    pub fn connectors_yaml(&self, dir: &Path, timeout_ms: u64, ioc_linger_ms: u64) -> String {
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets).expect("creating the secrets folder");
        let file = |name: &str, value: &str| {
            let p = secrets.join(name);
            std::fs::write(&p, format!("{value}\n")).expect("writing a secret file");
            p.display().to_string()
        };
        format!(
            "  province-portal:\n    base_url: {pp}\n    consumer_key: {LGSP_KEY}\n    consumer_secret_file: {pps}\n    timeout_ms: {timeout_ms}\n    token_refresh_margin_secs: 0\n\
             \x20 national-portal:\n    auth_url: {na}\n    integration_url: {ni}\n    dstcode: {DSTCODE}\n    username: {DVCQG_USER}\n    password_file: {nps}\n    madonvi: 000.00.32.H47\n    timeout_ms: {timeout_ms}\n\
             \x20 lis:\n    url: {lis}\n    username: {LIS_USER}\n    password_file: {lps}\n    timeout_ms: {timeout_ms}\n\
             \x20 tax:\n    url: {tax}\n    username: {TAX_USER}\n    password_file: {tps}\n    sender_code: STNMT_QNAM\n    sender_name: Sở Tài nguyên và Môi trường tỉnh Quảng Nam\n    timeout_ms: {timeout_ms}\n\
             \x20 ioc:\n    base_url: {ioc}\n    api_key_file: {ips}\n    linger_ms: {ioc_linger_ms}\n    timeout_ms: {timeout_ms}\n",
            pp = self.province.url(),
            pps = file("lgsp", LGSP_SECRET),
            na = self.national.auth_url(),
            ni = self.national.integration_url(),
            nps = file("dvcqg", DVCQG_PASSWORD),
            lis = self.lis.url(),
            lps = file("lis", LIS_PASSWORD),
            tax = self.tax.url(),
            tps = file("tax", TAX_PASSWORD),
            ioc = self.ioc.url(),
            ips = file("ioc", IOC_KEY),
        )
    }

    /// Every simulator's core, by system id.
    pub fn cores(&self) -> [(&'static str, &std::sync::Arc<SimCore>); 5] {
        [
            ("province-portal", self.province.core()),
            ("national-portal", self.national.core()),
            ("lis", self.lis.core()),
            ("tax", self.tax.core()),
            ("ioc", self.ioc.core()),
        ]
    }

    /// Fails when any simulator rejected a message as invalid (a fault we injected is fine).
    pub fn assert_nothing_rejected(&self) {
        for (system, core) in self.cores() {
            let bad: Vec<String> = core
                .received()
                .into_iter()
                .filter(|r| {
                    r.outcome.starts_with("rejected: ")
                        && !r.outcome.contains("session expired")
                        && !r.outcome.contains("invalid credentials")
                })
                .map(|r| format!("{} {}: {}", r.message_type, r.outcome, r.body))
                .collect();
            assert!(
                bad.is_empty(),
                "{system} rejected messages:\n{}",
                bad.join("\n")
            );
        }
    }

    pub async fn shutdown(self) {
        self.province.shutdown().await;
        self.national.shutdown().await;
        self.lis.shutdown().await;
        self.tax.shutdown().await;
        self.ioc.shutdown().await;
    }
}
