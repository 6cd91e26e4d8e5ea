//! Where the CPU went during a benchmark phase: CPU seconds of the broker
//! (`beam.smp`), of PostgreSQL (every `postgres` process) and of the bench
//! process itself (the hub, the load generator and the sink), read from
//! `/proc` before and after the phase (Linux only; elsewhere the line is
//! skipped). Everything shares one machine, so a rate is bounded by the sum
//! of these per message: with 2 cores, 2 s of CPU per second in all.
//!
//! A process that ends inside the phase takes its CPU time with it, so take
//! the second snapshot before shutting anything down.

use std::collections::HashMap;
use std::time::Instant;

/// CPU seconds per process group at one moment.
pub struct Snapshot {
    at: Instant,
    /// (pid, group) -> CPU seconds (user + system).
    procs: HashMap<(u32, Group), f64>,
    /// The whole machine's idle seconds (all cores).
    idle: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Group {
    Broker,
    Database,
    Bench,
}

/// Clock ticks per second of `/proc` times (USER_HZ: 100 on Linux).
const TICKS: f64 = 100.0;

pub fn snapshot() -> Option<Snapshot> {
    let me = std::process::id();
    let mut procs = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let group = match &stat[open + 1..close] {
            "beam.smp" => Group::Broker,
            "postgres" => Group::Database,
            _ if pid == me => Group::Bench,
            _ => continue,
        };
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // Fields 14 and 15 of proc(5), utime and stime, are 11 and 12 after the comm.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        procs.insert((pid, group), (ticks(11) + ticks(12)) / TICKS);
    }
    let idle = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .next()?
        .split_whitespace()
        .nth(4)?
        .parse::<f64>()
        .ok()?
        / TICKS;
    Some(Snapshot {
        at: Instant::now(),
        procs,
        idle,
    })
}

/// Prints CPU milliseconds per message for each group between `before` and
/// `after`, and the machine's idle share.
pub fn print(label: &str, before: &Option<Snapshot>, after: &Option<Snapshot>, messages: usize) {
    let (Some(b), Some(a)) = (before, after) else {
        return;
    };
    let used = |g: Group| -> f64 {
        a.procs
            .iter()
            .filter(|((_, group), _)| *group == g)
            .map(|(k, t)| t - b.procs.get(k).copied().unwrap_or(0.0))
            .sum()
    };
    let per_msg = |s: f64| s * 1000.0 / messages.max(1) as f64;
    let (broker, db, bench) = (
        used(Group::Broker),
        used(Group::Database),
        used(Group::Bench),
    );
    let wall = a.at.duration_since(b.at).as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "{label}: CPU per message: RabbitMQ {:.3} ms, PostgreSQL {:.3} ms, this process {:.3} ms; in all {:.3} ms; machine idle {:.0} %",
        per_msg(broker),
        per_msg(db),
        per_msg(bench),
        per_msg(broker + db + bench),
        100.0 * (a.idle - b.idle) / (wall * cores).max(f64::EPSILON),
    );
}
