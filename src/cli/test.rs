//! `lienthong test`: run every mapping's test cases.
//!
//! Prints one line per case (`ok` or `FAIL` with a unified diff of expected vs
//! actual output), then the line `N passed, M failed`, and exits non-zero when
//! anything failed or did not load, or when FILTER selects no test case.

use std::path::PathBuf;
use std::process::ExitCode;

use router::mapping::{run_tests, MappingSet, Schemas};
use router::schema::SchemaRegistry;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of mapping files.
    #[arg(long, default_value = "mappings")]
    pub mappings: PathBuf,
    /// Directory of JSON Schemas.
    #[arg(long, default_value = "schemas")]
    pub schemas: PathBuf,
    /// Only run mappings whose id contains this text (none matching is an error).
    pub filter: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let registry = match SchemaRegistry::load(&args.schemas) {
        Ok(r) => r,
        Err(d) => {
            eprintln!("{d}");
            anyhow::bail!(
                "schemas in {} do not load; run `lienthong check` for details",
                args.schemas.display()
            );
        }
    };
    let schemas: &dyn Schemas = &registry;
    let set = match MappingSet::load(&args.mappings, schemas) {
        Ok(s) => s,
        Err(d) => {
            eprintln!("{d}");
            anyhow::bail!(
                "mappings in {} do not load; fix the errors above",
                args.mappings.display()
            );
        }
    };
    let report = run_tests(&set, schemas, args.filter.as_deref());
    for r in &report.results {
        println!("{r}");
    }
    let untested: Vec<&str> = set
        .iter()
        .filter(|m| m.tests.is_empty() && args.filter.as_deref().is_none_or(|f| m.id.contains(f)))
        .map(|m| m.id.as_str())
        .collect();
    if !untested.is_empty() {
        println!("note: no test cases in: {}", untested.join(", "));
    }
    println!("{}", report.summary_line());
    // A filter that selects nothing is a mistake (a typo in CI would pass having run nothing).
    if let (Some(f), true) = (&args.filter, report.results.is_empty()) {
        eprintln!(
            "error: no test case matches `{f}`: the filter is a part of a mapping id (e.g. `province-portal/` or `to-lis`); \
             `lienthong test` without a filter runs them all"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
