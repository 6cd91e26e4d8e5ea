//! `lienthong map`: run one mapping by hand, or over a stream of JSON lines.
//!
//! `lienthong map --mapping mappings/x/y.yaml FILE...` does for each file what
//! the hub does at intake: decode by the source format (JSON, XML, tax GIP,
//! station file), validate against the source schema, map, validate against
//! the target schema, encode in the target format, and print the result. It is
//! the administrator's "what would the partner receive?" tool.
//!
//! `--jsonl` streams JSON lines from stdin to stdout, one message per line,
//! with buffered output. A bad line is reported on stderr with its line number
//! and the stream goes on; the exit code says whether any line failed.
//! `--identity` parses and re-serializes each line without mapping: the
//! baseline the mapping benchmark compares against (see BENCHMARKS.md).

use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use router::codec::{self, EncodeOptions, Format};
use router::mapping::{CompiledMapping, MappingSet, NoSchemas, Schemas};
use router::schema::SchemaRegistry;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mapping file to run (e.g. mappings/province-portal/dossier-filed.to-lis.yaml).
    #[arg(long)]
    pub mapping: PathBuf,
    /// Directory of mapping files (ids and lookup files are relative to it).
    #[arg(long, default_value = "mappings")]
    pub mappings: PathBuf,
    /// Directory of JSON Schemas.
    #[arg(long, default_value = "schemas")]
    pub schemas: PathBuf,
    /// Stream JSON lines from stdin to stdout (the mapped tree as one JSON line each).
    #[arg(long)]
    pub jsonl: bool,
    /// With --jsonl: parse and re-serialize each line without mapping (benchmark baseline).
    #[arg(long, requires = "jsonl")]
    pub identity: bool,
    /// Skip validation against the source and target schemas.
    #[arg(long)]
    pub no_validate: bool,
    /// Input files (`-` for stdin). Not used with --jsonl.
    pub inputs: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let registry = if args.schemas.is_dir() {
        match SchemaRegistry::load(&args.schemas) {
            Ok(r) => Some(r),
            Err(d) => {
                eprintln!("{d}");
                anyhow::bail!(
                    "schemas in {} do not load; run `lienthong check`",
                    args.schemas.display()
                );
            }
        }
    } else if args.schemas.as_os_str() == "schemas" {
        None // default directory absent: run without schemas
    } else {
        anyhow::bail!("schemas directory {} not found", args.schemas.display());
    };
    // An empty schema directory means "no schemas": nothing to check against.
    let registry = registry.filter(|r| !r.is_empty());
    let schemas: &dyn Schemas = match &registry {
        Some(r) => r,
        None => &NoSchemas,
    };
    if !args.mapping.is_file() {
        anyhow::bail!("mapping file {} not found", args.mapping.display());
    }
    let mappings_dir = if args.mappings.is_dir() {
        args.mappings.clone()
    } else {
        args.mapping
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let mapping = match MappingSet::load_one(&mappings_dir, &args.mapping, schemas) {
        Ok(m) => m,
        Err(d) => {
            eprintln!("{d}");
            anyhow::bail!(
                "mapping {} does not load; fix the errors above",
                args.mapping.display()
            );
        }
    };
    let validate = !args.no_validate && registry.is_some();
    if args.jsonl {
        if !args.inputs.is_empty() {
            anyhow::bail!("--jsonl reads stdin; do not give input files");
        }
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let failed = jsonl(
            &mapping,
            schemas,
            validate,
            args.identity,
            stdin.lock(),
            stdout.lock(),
        )?;
        if failed > 0 {
            eprintln!("{failed} line(s) failed");
            return Ok(ExitCode::FAILURE);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let inputs = if args.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.inputs.clone()
    };
    let mut failed = 0;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for input in &inputs {
        match map_file(&mapping, registry.as_ref(), validate, input) {
            Ok(bytes) => {
                out.write_all(&bytes)?;
                if !bytes.ends_with(b"\n") {
                    out.write_all(b"\n")?;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e:#}", input.display());
            }
        }
    }
    out.flush()?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn map_file(
    mapping: &CompiledMapping,
    registry: Option<&SchemaRegistry>,
    validate: bool,
    input: &Path,
) -> anyhow::Result<Vec<u8>> {
    let bytes = if input.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading stdin")?;
        b
    } else {
        std::fs::read(input).context("cannot read input file")?
    };
    let file_name = input.file_name().and_then(|n| n.to_str());
    let source_schema = registry.and_then(|r| r.get(&mapping.source.schema));
    let tree = match &source_schema {
        Some(s) => s.decode_with(&bytes, file_name)?,
        None => {
            let format = Format::parse(&mapping.source.format)
                .with_context(|| format!("unknown source format {}", mapping.source.format))?;
            let opts = codec::DecodeOptions {
                array_paths: None,
                file_name,
            };
            codec::decode(format, &bytes, &opts)?
        }
    };
    if validate {
        if let Some(s) = &source_schema {
            s.validate(&tree)
                .context("input does not match the source schema")?;
        }
    }
    let out = mapping.apply(&tree)?;
    let target_schema = registry.and_then(|r| r.get(&mapping.target.schema));
    if validate {
        if let Some(s) = &target_schema {
            s.validate(&out)
                .context("mapped output does not match the target schema")?;
        }
    }
    let format = Format::parse(&mapping.target.format)
        .with_context(|| format!("unknown target format {}", mapping.target.format))?;
    let opts = match (&mapping.target.xml, &target_schema) {
        (Some(x), _) => EncodeOptions {
            xml_root: Some(&x.root),
            namespaces: Some(&x.namespaces),
        },
        (None, Some(s)) => {
            return Ok(s.encode(&out)?);
        }
        (None, None) => EncodeOptions::default(),
    };
    if format == Format::Json {
        let mut v = serde_json::to_vec_pretty(&out)?;
        v.push(b'\n');
        return Ok(v);
    }
    Ok(codec::encode(format, &out, &opts)?)
}

/// Map JSON lines from `input` to `output`. Returns the number of failed lines.
pub fn jsonl(
    mapping: &CompiledMapping,
    schemas: &dyn Schemas,
    validate: bool,
    identity: bool,
    mut input: impl BufRead,
    output: impl Write,
) -> anyhow::Result<usize> {
    let mut out = BufWriter::with_capacity(256 * 1024, output);
    let mut line = Vec::with_capacity(4096);
    let mut number = 0usize;
    let mut failed = 0usize;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .context("reading stdin")?;
        if n == 0 {
            break;
        }
        number += 1;
        let text = trim_line(&line);
        if text.is_empty() {
            continue;
        }
        match one_line(mapping, schemas, validate, identity, text) {
            Ok(v) => {
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                failed += 1;
                // Flush first so stdout and stderr stay in order when both go to a terminal.
                out.flush()?;
                eprintln!("line {number}: {e}");
            }
        }
    }
    out.flush()?;
    Ok(failed)
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

fn one_line(
    mapping: &CompiledMapping,
    schemas: &dyn Schemas,
    validate: bool,
    identity: bool,
    text: &[u8],
) -> Result<Value, String> {
    if text.len() > router::limits::MAX_BODY_BYTES {
        return Err(format!(
            "line is {} bytes, over the {}-byte limit",
            text.len(),
            router::limits::MAX_BODY_BYTES
        ));
    }
    let tree = codec::decode(Format::Json, text, &Default::default()).map_err(|e| e.to_string())?;
    if identity {
        return Ok(tree);
    }
    if validate {
        schemas
            .validate(&mapping.source.schema, &tree)
            .map_err(|e| format!("input: {e}"))?;
    }
    let out = mapping.apply(&tree).map_err(|e| e.to_string())?;
    if validate {
        schemas
            .validate(&mapping.target.schema, &out)
            .map_err(|e| format!("output: {e}"))?;
    }
    Ok(out)
}
