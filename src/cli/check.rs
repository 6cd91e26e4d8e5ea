//! `lienthong check`: validate everything an administrator edits, before the hub sees it.
//!
//! Schemas, mappings (with their lookups and schema checks) and routes are
//! loaded exactly as the hub loads them, and every problem of every file is
//! printed at once as `file:line:column: context: message`. With `--config`, the
//! hub configuration is validated too (`router::config::Config::load`), and so is
//! what needs both the config and the routes: a system a route delivers to
//! with no URL and no connector is named as a warning
//! (`Config::unconfigured_targets`, the question `serve` asks before it opens
//! anything: it starts, and those deliveries wait for configuration). The exit
//! code is non-zero on any problem, so `check` can gate a deployment; a
//! warning does not fail it, since `serve` does not refuse it either.

use std::path::PathBuf;
use std::process::ExitCode;

use router::config::Config;
use router::mapping::{MappingSet, NoSchemas, Schemas};
use router::routes::Routes;
use router::schema::SchemaRegistry;
use router::Diagnostics;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The hub's configuration file; its mappings/schemas/routes locations are used
    /// unless --mappings/--schemas are given.
    #[arg(long, short = 'c', env = "LIENTHONG_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of mapping files (with routes.yaml and lookups/) [default: mappings].
    #[arg(long)]
    pub mappings: Option<PathBuf>,
    /// Directory of JSON Schemas [default: schemas].
    #[arg(long)]
    pub schemas: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut problems = Diagnostics::default();
    let config = match &args.config {
        None => None,
        Some(path) => match Config::load(Some(path)) {
            Ok(c) => Some(c),
            Err(d) => {
                problems.extend(d);
                None
            }
        },
    };
    let mappings_dir = args
        .mappings
        .clone()
        .or_else(|| config.as_ref().map(|c| c.mappings_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("mappings"));
    let schemas_dir = args
        .schemas
        .clone()
        .or_else(|| config.as_ref().map(|c| c.schemas_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("schemas"));
    let routes_file = match (&args.mappings, &config) {
        (None, Some(c)) => c.routes_file.clone(),
        _ => mappings_dir.join("routes.yaml"),
    };
    let registry = match SchemaRegistry::load(&schemas_dir) {
        Ok(r) => Some(r),
        Err(d) => {
            problems.extend(d);
            None
        }
    };
    let schemas: &dyn Schemas = match &registry {
        Some(r) => r,
        None => &NoSchemas,
    };
    let set = match MappingSet::load(&mappings_dir, schemas) {
        Ok(s) => Some(s),
        Err(d) => {
            problems.extend(d);
            None
        }
    };
    let mut routes = None;
    if let Some(set) = &set {
        if routes_file.is_file() {
            match Routes::load(&routes_file, set, schemas) {
                Ok(r) => routes = Some(r),
                Err(d) => problems.extend(d),
            }
        }
    }
    if let (Some(config), Some(set), Some(routes)) = (&config, &set, &routes) {
        for t in unconfigured_targets(config, set, routes) {
            eprintln!(
                "warning: {}: destinations.{t}: {}",
                config.source_name(),
                router::config::waiting_for_configuration(&t)
            );
        }
    }
    if !problems.is_empty() {
        for d in &problems.0 {
            eprintln!("{d}");
        }
        eprintln!("check failed: {} problem(s)", problems.len());
        return Ok(ExitCode::FAILURE);
    }
    let cases: usize = set
        .as_ref()
        .map_or(0, |s| s.iter().map(|m| m.tests.len()).sum());
    println!(
        "ok: {}{} schema(s), {} mapping(s) with {} test case(s), {} route(s){}",
        if config.is_some() { "config, " } else { "" },
        registry.as_ref().map_or(0, SchemaRegistry::len),
        set.as_ref().map_or(0, MappingSet::len),
        cases,
        routes.as_ref().map_or(0, Routes::len),
        if routes_file.is_file() {
            String::new()
        } else {
            format!(" (no {})", routes_file.display())
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// The systems the routes deliver to with neither a `destinations.<id>.url` nor
/// a connector under `connectors:` (what `serve` asks with the transports it built).
fn unconfigured_targets(config: &Config, set: &MappingSet, routes: &Routes) -> Vec<String> {
    let targets = router::config::route_targets(routes, set);
    config.unconfigured_targets(&targets, |t| {
        config.destinations.get(t).is_some_and(|d| d.url.is_some())
            || (t != crate::wiring::settings::STATIONS_KEY && config.connectors.contains_key(t))
    })
}
