//! `lienthong`: the integration hub binary.
//!
//! This binary is deliberately thin: it parses the command line, sets up
//! logging and the TLS provider, and calls into the `router` and `connectors`
//! crates. Each subcommand lives in its own file under `src/cli/`.

mod cli;
mod wiring;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // One TLS provider for every rustls user in the process (reqwest, lapin).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
