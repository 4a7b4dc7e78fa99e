//! The benchmark harness of the users API (`infra/bench/run.sh` runs it):
//! cold start, warm latency, memory and size of every function run as
//! Lambda runs it, DynamoDB cost per endpoint, list latency as the table
//! grows, the handlers' CPU cost, and throughput side by side with the
//! seed's Express and FastAPI services. It prints the report and writes it
//! as markdown with SVG charts.
//!
//! It talks only to processes it starts on loopback (DynamoDB Local with
//! fake credentials); it needs no AWS account or permissions.

mod ddb;
mod events;
mod lambda;
mod levers;
mod load;
mod proxy;
mod report;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

/// The core the measured process runs on.
pub(crate) const FUNCTION_CORE: &str = "0";
/// The core the load generator runs on.
pub(crate) const LOAD_CORE: &str = "1";

/// Runs the benchmarks and writes the report.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// A few minutes' run that proves the harness works (for CI); its
    /// figures are not worth publishing.
    #[arg(long, env = "BENCH_QUICK")]
    quick: bool,
    /// Also measure the create-user builds listed in this manifest
    /// (written by levers.sh: one build per lever undone).
    #[arg(long)]
    levers: Option<PathBuf>,
    /// Where the release binaries are.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Where criterion wrote the handler benchmarks (target/criterion).
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// The Python virtual environment with the peers' requirements.
    #[arg(long)]
    venv: Option<PathBuf>,
    /// Where to write the report (markdown and SVG).
    #[arg(long)]
    out: PathBuf,
    /// Where to keep logs and scratch files.
    #[arg(long)]
    work_dir: PathBuf,
}

/// An error of the harness, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Invoke(#[from] local_api::runtime_api::InvokeError),
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl Error {
    pub(crate) fn msg(text: impl Into<String>) -> Self {
        Self::Message(text.into())
    }
}

/// How much of everything to run.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    /// Cold starts per function.
    pub(crate) cold_starts: usize,
    /// Warm invocations per function.
    pub(crate) warm: usize,
    /// Users in the small and the large table of the list benchmark.
    pub(crate) list_sizes: [usize; 2],
    /// List invocations per table and page.
    pub(crate) list_invocations: usize,
    /// wrk's connections.
    pub(crate) connections: u32,
    /// wrk's measured seconds per scenario.
    pub(crate) load_seconds: u64,
    /// wrk's unmeasured warm-up seconds per scenario.
    pub(crate) warm_up_seconds: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                cold_starts: 2,
                warm: 50,
                list_sizes: [200, 1_000],
                list_invocations: 20,
                connections: 16,
                load_seconds: 2,
                warm_up_seconds: 0,
            }
        } else {
            Self {
                quick,
                cold_starts: 10,
                warm: 1_000,
                list_sizes: [1_000, 100_000],
                list_invocations: 300,
                connections: 32,
                load_seconds: 15,
                warm_up_seconds: 3,
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(error) = run(args).await {
        eprintln!("bench: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let root = root.canonicalize()?;
    let plan = Plan::new(args.quick);
    std::fs::create_dir_all(&args.work_dir)?;
    std::fs::create_dir_all(&args.out)?;
    // Absolute, because the processes it starts run in other folders.
    let args = Args {
        work_dir: args.work_dir.canonicalize()?,
        out: args.out.canonicalize()?,
        bin_dir: args.bin_dir.canonicalize()?,
        ..args
    };
    let logs = args.work_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut report = report::Report::new(plan, machine());
    say(&format!("machine: {}", report.machine.summary()));

    say("sizes");
    for name in report::LAMBDA_BINARIES {
        report
            .sizes
            .push(report::Size::of(name, &args.bin_dir, &args.work_dir)?);
    }

    let scenarios = scenarios::Context {
        root: root.clone(),
        bin_dir: args.bin_dir.clone(),
        work_dir: args.work_dir.clone(),
        logs: logs.clone(),
        venv: args.venv.clone(),
        plan,
    };
    scenarios::lambda_phases(&scenarios, &mut report).await?;

    if let Some(dir) = &args.criterion_dir {
        say("handler cost (criterion)");
        report.handlers = report::read_criterion(dir)?;
        report.handlers_load = load_average();
    }

    say("side by side under load (wrk)");
    scenarios::load_phase(&scenarios, &mut report).await?;

    if let Some(manifest) = &args.levers {
        say("levers: create-user built with each lever undone");
        report.levers = levers::run(&scenarios, manifest).await?;
    }

    report.machine.load_end = load_average();
    let markdown = report.markdown(&args.out);
    std::fs::write(args.out.join("benchmarks.md"), &markdown)?;
    for (file, svg) in report.charts() {
        std::fs::write(args.out.join(file), svg)?;
    }
    std::fs::write(
        args.work_dir.join("results.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    println!("\n{markdown}");
    say(&format!(
        "wrote {} (raw figures in {})",
        args.out.join("benchmarks.md").display(),
        args.work_dir.join("results.json").display()
    ));
    Ok(())
}

/// Prints a progress line with the load average.
pub(crate) fn say(what: &str) {
    eprintln!("[bench] {what} (load {})", load_average());
}

/// The 1, 5 and 15 minute load averages, as `uptime` shows them.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// A free loopback port.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// A process's peak resident memory (`VmHWM`), in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmHWM:")
}

/// A process's resident memory now (`VmRSS`), in KiB.
pub(crate) fn current_rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// What the benchmarks ran on.
fn machine() -> report::Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: u64 = meminfo
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0);
    let command = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    report::Machine {
        cpu,
        // Not available_parallelism: the harness itself runs pinned to one core.
        cores: cpuinfo
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count(),
        memory_gib: memory_kib as f64 / 1024.0 / 1024.0,
        kernel: command("uname", &["-sr"]),
        rustc: command("rustc", &["--version"]),
        node: command("node", &["--version"]),
        python: command("python3", &["--version"]),
        date: command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        load_start: load_average(),
        load_end: String::new(),
    }
}

/// Sleeps briefly between phases so one phase's stragglers do not bleed
/// into the next one's figures.
pub(crate) async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}
