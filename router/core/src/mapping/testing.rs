//! The mapping test runner behind `lienthong test`.
//!
//! Every mapping carries example messages and the exact output expected for
//! each (or a piece of the error expected). Running them after every edit is
//! how an administrator knows a change did what they meant and nothing else.
//! Each case runs the same path as the hub: validate the input against the
//! source schema, map, validate the output against the target schema, then
//! compare the whole output with `expect`. A failure carries a unified diff.

use serde_json::Value;
use similar::TextDiff;

use super::model::{CompiledMapping, Expect, TestInput};
use super::{MappingSet, Schemas};

/// What happened to one case.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseOutcome {
    Passed,
    /// Output differs: a unified diff of expected vs actual (pretty JSON).
    WrongOutput {
        diff: String,
    },
    /// An error happened where an output was expected.
    UnexpectedError {
        error: String,
    },
    /// An output was produced where an error was expected.
    ExpectedError {
        wanted: String,
        output: String,
    },
    /// An error happened, but not the one expected.
    WrongError {
        wanted: String,
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub mapping: String,
    pub case: String,
    /// `file:line` of the case.
    pub origin: String,
    pub outcome: CaseOutcome,
}

/// All results of a run.
#[derive(Debug, Clone, Default)]
pub struct TestReport {
    pub results: Vec<CaseResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == CaseOutcome::Passed)
            .count()
    }
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
    /// `N passed, M failed`.
    pub fn summary_line(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            CaseOutcome::Passed => write!(f, "ok    {} :: {}", self.mapping, self.case),
            other => {
                writeln!(
                    f,
                    "FAIL  {} :: {} ({})",
                    self.mapping, self.case, self.origin
                )?;
                match other {
                    CaseOutcome::WrongOutput { diff } => {
                        writeln!(f, "      output differs (- expected, + actual):")?;
                        write!(f, "{diff}")
                    }
                    CaseOutcome::UnexpectedError { error } => {
                        write!(f, "      unexpected error: {error}")
                    }
                    CaseOutcome::ExpectedError { wanted, output } => {
                        write!(f, "      expected an error containing {wanted:?}, but got output:\n{output}")
                    }
                    CaseOutcome::WrongError { wanted, error } => {
                        write!(
                            f,
                            "      expected an error containing {wanted:?}, got: {error}"
                        )
                    }
                    CaseOutcome::Passed => Ok(()),
                }
            }
        }
    }
}

/// Run the cases of every mapping whose id contains `filter` (all when `None`).
pub fn run_tests(set: &MappingSet, schemas: &dyn Schemas, filter: Option<&str>) -> TestReport {
    let mut report = TestReport::default();
    for m in set.iter() {
        if filter.is_some_and(|f| !m.id.contains(f)) {
            continue;
        }
        report.results.extend(run_mapping(m, schemas));
    }
    report
}

/// Run one mapping's cases.
pub fn run_mapping(m: &CompiledMapping, schemas: &dyn Schemas) -> Vec<CaseResult> {
    m.tests
        .iter()
        .map(|case| {
            let actual = run_case(m, schemas, &case.input);
            let outcome = match (&case.expect, actual) {
                (Expect::Output(want), Ok(got)) if *want == got => CaseOutcome::Passed,
                (Expect::Output(want), Ok(got)) => CaseOutcome::WrongOutput {
                    diff: diff(want, &got),
                },
                (Expect::Output(_), Err(error)) => CaseOutcome::UnexpectedError { error },
                (Expect::ErrorContaining(wanted), Err(error))
                    if error.contains(wanted.as_str()) =>
                {
                    CaseOutcome::Passed
                }
                (Expect::ErrorContaining(wanted), Err(error)) => CaseOutcome::WrongError {
                    wanted: wanted.clone(),
                    error,
                },
                (Expect::ErrorContaining(wanted), Ok(got)) => CaseOutcome::ExpectedError {
                    wanted: wanted.clone(),
                    output: pretty(&got),
                },
            };
            CaseResult {
                mapping: m.id.clone(),
                case: case.name.clone(),
                origin: case.origin.clone(),
                outcome,
            }
        })
        .collect()
}

fn run_case(
    m: &CompiledMapping,
    schemas: &dyn Schemas,
    input: &TestInput,
) -> Result<Value, String> {
    let decoded;
    let tree = match input {
        TestInput::Tree(v) => v,
        TestInput::Bytes { path, bytes } => {
            let name = path.file_name().and_then(|n| n.to_str());
            decoded = schemas
                .decode(&m.source.schema, bytes, name)
                .map_err(|e| format!("input file {}: {e}", path.display()))?;
            &decoded
        }
    };
    schemas
        .validate(&m.source.schema, tree)
        .map_err(|e| format!("input: {e}"))?;
    let out = m.apply(tree).map_err(|e| e.to_string())?;
    schemas
        .validate(&m.target.schema, &out)
        .map_err(|e| format!("output: {e}"))?;
    Ok(out)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Unified diff of two trees as pretty JSON.
pub fn diff(expected: &Value, actual: &Value) -> String {
    let (e, a) = (pretty(expected) + "\n", pretty(actual) + "\n");
    TextDiff::from_lines(&e, &a)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}
