//! Command-line interface. One file per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod audit;
pub mod check;
pub mod demo;
pub mod dossier;
pub mod healthcheck;
pub mod logging;
pub mod map;
pub mod messages;
pub mod replay;
pub mod serve;
pub mod test;

/// lienthong: the integration hub of the Quảng Nam Department of Natural Resources and Environment.
#[derive(Debug, Parser)]
#[command(name = "lienthong", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config, routes, mappings, schemas and lookups; report every error at once.
    Check(check::Args),
    /// Run every mapping's test cases; ends with `N passed, M failed`.
    Test(test::Args),
    /// Print the mapped output of input files, or stream JSON lines with --jsonl.
    Map(map::Args),
    /// Run the hub.
    Serve(serve::Args),
    /// Run the hub with simulated partners and feed it realistic traffic.
    Demo(demo::Args),
    /// Verify the tamper-evident trail, export audit bundles, prune old payloads.
    Audit(audit::Args),
    /// Search messages and show one with everything that happened to it.
    Messages(messages::Args),
    /// Follow one dossier across all systems.
    Dossier(dossier::Args),
    /// Replay deliveries (as sent, or mapped again), with dry-run diffs.
    Replay(replay::Args),
    /// Exit 0 when the hub's /readyz answers 2xx (for container healthchecks).
    Healthcheck(healthcheck::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Test(args) => test::run(args),
        Command::Map(args) => map::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Messages(args) => messages::run(args),
        Command::Dossier(args) => dossier::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
    }
}
