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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every subcommand, as `lienthong sub sub --name`.
    fn args(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            out.push((format!("{path} {id}"), a.clone()));
        }
        for sub in cmd.get_subcommands() {
            args(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
        let mut all = Vec::new();
        args(&super::Cli::command(), "lienthong", &mut all);
        assert!(
            all.len() > 40,
            "the walk found only {} arguments",
            all.len()
        );
        // `lienthong X --help` explains every flag and positional.
        let bare: Vec<&str> = all
            .iter()
            .filter(|(_, a)| a.get_help().is_none() && a.get_long_help().is_none())
            .map(|(p, _)| p.as_str())
            .collect();
        assert!(bare.is_empty(), "arguments without help text: {bare:#?}");
        // `--config` is `-c` and LIENTHONG_CONFIG wherever it exists.
        let mut configs = 0;
        for (p, a) in all.iter().filter(|(_, a)| a.get_id() == "config") {
            configs += 1;
            assert_eq!(a.get_short(), Some('c'), "{p}: --config without -c");
            assert_eq!(
                a.get_env().and_then(|e| e.to_str()),
                Some("LIENTHONG_CONFIG"),
                "{p}: --config does not read LIENTHONG_CONFIG"
            );
        }
        assert!(configs >= 8, "only {configs} --config arguments found");
    }
}
