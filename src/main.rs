//! `lienthong`: the integration hub binary.
//!
//! This binary is deliberately thin: it parses the command line, sets up
//! logging and the TLS provider, and calls into the `router` and `connectors`
//! crates. Each subcommand lives in its own file under `src/cli/`.

mod cli;
mod wiring;

use clap::Parser;

/// mimalloc rather than the system allocator: the hub allocates and frees many
/// small buffers per message (JSON trees, trail events, HTTP and SQL buffers) on
/// several threads, and glibc's `malloc`/`free` were about 12 % of the hub
/// process's CPU in the RabbitMQ benchmark's profile. With mimalloc the
/// benchmark's hub rate rose by 5-8 % (BENCHMARKS.md, section "RabbitMQ").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
