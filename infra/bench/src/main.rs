//! The benchmark harness of the users API (`infra/bench/run.sh` runs it):
//! cold start, warm latency, memory and size of every function run as
//! Lambda runs it, DynamoDB cost per endpoint, list latency as the table
//! grows, the handlers' CPU cost, and throughput side by side with the
//! seed's Express and FastAPI services. It prints the report and writes it
//! as markdown with SVG charts.
//!
//! It talks only to processes it starts on loopback (DynamoDB Local with
//! fake credentials); it needs no AWS account or permissions.

mod budgets;
mod calls;
mod ddb;
mod lambda;
mod levers;
mod load;
mod peers;
mod proxy;
mod report;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use local_api::stack::template::Template;
use serde::Serialize;

use crate::report::Size;

/// The core the measured process runs on.
pub(crate) const FUNCTION_CORE: usize = 0;
/// The core the load generator runs on.
pub(crate) const LOAD_CORE: usize = 1;

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
    /// Where the functions' release binaries are.
    #[arg(long)]
    bin_dir: PathBuf,
    /// The local API's binary (default: the one in `--bin-dir`).
    #[arg(long)]
    local_api: Option<PathBuf>,
    /// Where criterion wrote the handler benchmarks (target/criterion).
    #[arg(long)]
    criterion_dir: PathBuf,
    /// The Python virtual environment with the peers' requirements.
    #[arg(long)]
    venv: PathBuf,
    /// Where to write the report (markdown and SVG).
    #[arg(long)]
    out: PathBuf,
    /// Where to keep logs and scratch files.
    #[arg(long)]
    work_dir: PathBuf,
    /// When the whole run began (run.sh's start, before its builds), in
    /// seconds since the Unix epoch; the report says how long it took.
    #[arg(long, env = "BENCH_STARTED")]
    started: Option<u64>,
}

/// How much of everything to run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    /// Cold starts per function (and per lever build), interleaved.
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
        #[rustfmt::skip]
        let plan = match quick {
            true => Self { quick, cold_starts: 3, warm: 50, list_sizes: [200, 1_000], list_invocations: 20,
                connections: 16, load_seconds: 2, warm_up_seconds: 0 },
            false => Self { quick, cold_starts: 15, warm: 1_000, list_sizes: [1_000, 100_000], list_invocations: 300,
                connections: 32, load_seconds: 15, warm_up_seconds: 3 },
        };
        plan
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(error) = run(args).await {
        eprintln!("bench: {error:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).canonicalize()?;
    std::fs::create_dir_all(&args.work_dir)?;
    std::fs::create_dir_all(&args.out)?;
    // Absolute, because the processes it starts run in other folders.
    let (work_dir, out) = (args.work_dir.canonicalize()?, args.out.canonicalize()?);
    let logs = work_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let template = Template::load(&root.join("template.yaml")).context("template.yaml")?;
    let bin_dir = args.bin_dir.canonicalize()?;
    let cx = scenarios::Context {
        local_api: match args.local_api {
            Some(path) => path.canonicalize()?,
            None => bin_dir.join("local-api"),
        },
        bin_dir,
        root,
        work_dir,
        logs,
        venv: args.venv,
        plan: Plan::new(args.quick),
        template,
    };
    let mut report = report::Report {
        plan: cx.plan,
        machine: machine(),
        date: command("date -u +%F_%H:%M_UTC").replace('_', " "),
        load_start: load_average(),
        peers: peers::versions(&cx.root.join("infra/bench/peers"))?,
        ..Default::default()
    };
    say(&format!("machine: {}", report.machine));

    say("sizes");
    let hello = cx.bin_dir.join(scenarios::HELLO);
    report.sizes.push(Size::of(scenarios::HELLO, &hello)?);
    for function in &cx.template.functions {
        let binary = cx.bin_dir.join(&function.binary);
        let mut size = Size::of(&function.binary, &binary)?;
        // What `sam build` made for Lambda (arm64), when it has been run.
        let sam = cx.root.join(".aws-sam/build").join(&function.logical_id);
        size.arm64_bytes = std::fs::metadata(sam.join("bootstrap"))
            .ok()
            .map(|m| m.len());
        report.sizes.push(size);
    }

    scenarios::lambda_phases(&cx, &mut report, args.levers.as_deref()).await?;
    say("handler cost (criterion)");
    report.handlers = report::read_criterion(&args.criterion_dir)?;
    report.handlers_load = load_average();
    say("side by side under load (wrk)");
    scenarios::load_phase(&cx, &mut report).await?;

    report.load_end = load_average();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    report.took_seconds = args
        .started
        .map(|started| now.as_secs().saturating_sub(started));
    let markdown = report.markdown();
    std::fs::write(out.join("benchmarks.md"), &markdown)?;
    for (file, svg) in report.charts() {
        std::fs::write(out.join(file), svg)?;
    }
    let raw = cx.work_dir.join("results.json");
    std::fs::write(&raw, serde_json::to_vec_pretty(&report)?)?;
    println!("\n{markdown}");
    say(&format!(
        "wrote {} (raw figures in {})",
        out.join("benchmarks.md").display(),
        raw.display()
    ));
    Ok(())
}

/// Prints a progress line with the load average.
pub(crate) fn say(what: &str) {
    eprintln!("[bench] {what} (load {})", load_average());
}

/// The 1, 5 and 15 minute load averages, as `uptime` shows them.
pub(crate) fn load_average() -> String {
    use procfs::Current as _;
    procfs::LoadAverage::current().map_or_else(
        |_| String::new(),
        |load| format!("{:.2} {:.2} {:.2}", load.one, load.five, load.fifteen),
    )
}

/// A free loopback port.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// A process's resident memory in KiB: its peak (`VmHWM`) or current (`VmRSS`).
pub(crate) fn rss_kib(pid: u32, peak: bool) -> u64 {
    let status = i32::try_from(pid).map(procfs::process::Process::new);
    let status = status
        .ok()
        .and_then(Result::ok)
        .and_then(|p| p.status().ok());
    status
        .and_then(|s| if peak { s.vmhwm } else { s.vmrss })
        .unwrap_or(0)
}

/// The first line `command` prints (words split on spaces).
fn command(line: &str) -> String {
    let mut words = line.split(' ');
    let output = std::process::Command::new(words.next().unwrap_or_default())
        .args(words)
        .output();
    let output = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    output.lines().next().unwrap_or_default().trim().to_owned()
}

/// What the benchmarks ran on.
fn machine() -> String {
    use procfs::Current as _;
    // Not available_parallelism: the harness itself runs pinned to one core.
    let cpu = procfs::CpuInfo::current().ok();
    let model = cpu
        .as_ref()
        .and_then(|c| c.model_name(0))
        .unwrap_or("unknown");
    let cores = cpu.as_ref().map_or(0, procfs::CpuInfo::num_cores);
    let memory = procfs::Meminfo::current().map_or(0, |m| m.mem_total);
    let gib = memory as f64 / f64::from(1 << 30);
    let (kernel, rustc) = (command("uname -sr"), command("rustc --version"));
    let (node, python) = (command("node --version"), command("python3 --version"));
    format!("{model}, {cores} cores, {gib:.0} GiB, {kernel}; {rustc}; Node.js {node}; {python}")
}

/// Sleeps briefly between phases so one phase's stragglers do not bleed
/// into the next one's figures.
pub(crate) async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}
