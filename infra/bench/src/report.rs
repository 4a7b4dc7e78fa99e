//! The report: every figure of a run, the budgets they are held to, as
//! markdown and SVG bar charts.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Plan;
use crate::lambda::FunctionRun;
use crate::load::LoadRun;
use crate::proxy::Call;
use crate::stats::Summary;

/// The Lambda binaries whose size is reported: the baseline, then every function.
pub(crate) const LAMBDA_BINARIES: [&str; 8] = [
    "hello-lambda",
    "create-user",
    "get-user",
    "list-users",
    "update-user",
    "delete-user",
    "list-user-events",
    "history-worker",
];

/// The published figures the issue compares against.
const ANCHORS: &str = "Published anchors (not measured here): hello-world Init Duration on arm64, 128 MB \
(lambda-perf, Aug 2026) Rust 13.9 ms, Node.js 20 122.9 ms, Python 3.12 72.8 ms; the AWS samples' \
Products API cold p50 123 ms (Rust), 691 ms (TypeScript), 715 ms (Python).";

/// What the benchmarks ran on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) node: String,
    pub(crate) python: String,
    pub(crate) date: String,
    pub(crate) load_start: String,
    pub(crate) load_end: String,
}

impl Machine {
    pub(crate) fn summary(&self) -> String {
        format!(
            "{}, {} cores, {:.0} GiB, {}; {}; Node.js {}; {}",
            self.cpu, self.cores, self.memory_gib, self.kernel, self.rustc, self.node, self.python
        )
    }
}

/// A binary's size, alone and zipped as a Lambda deployment package.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Size {
    pub(crate) name: String,
    pub(crate) binary_bytes: u64,
    pub(crate) zip_bytes: u64,
}

impl Size {
    /// Measures `bin_dir/name`, zipping it as `bootstrap` the way
    /// cargo-lambda packages it.
    pub(crate) fn of(name: &str, bin_dir: &Path, work_dir: &Path) -> Result<Self, crate::Error> {
        let binary = bin_dir.join(name);
        let binary_bytes = std::fs::metadata(&binary)
            .map_err(|e| crate::Error::msg(format!("{}: {e}", binary.display())))?
            .len();
        let dir = work_dir.join("zip").join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&binary, dir.join("bootstrap"))?;
        let zip = dir.join("bootstrap.zip");
        let _ = std::fs::remove_file(&zip);
        let status = std::process::Command::new("zip")
            .args(["-q", "-X", "-j"])
            .arg(&zip)
            .arg(dir.join("bootstrap"))
            .status()?;
        if !status.success() {
            return Err(crate::Error::msg(format!("zip failed for {name}")));
        }
        Ok(Self {
            name: name.to_owned(),
            binary_bytes,
            zip_bytes: std::fs::metadata(&zip)?.len(),
        })
    }
}

/// DynamoDB requests of one API call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DynamoCost {
    pub(crate) function: String,
    pub(crate) case: String,
    pub(crate) as_expected: bool,
    pub(crate) status: Option<u64>,
    pub(crate) operations: Vec<String>,
    pub(crate) capacity: f64,
}

impl DynamoCost {
    pub(crate) fn new(
        function: &str,
        case: &str,
        as_expected: bool,
        status: Option<u64>,
        calls: &[Call],
    ) -> Self {
        Self {
            function: function.to_owned(),
            case: case.to_owned(),
            as_expected,
            status,
            operations: calls
                .iter()
                .map(|call| {
                    if call.status == 200 {
                        call.operation.clone()
                    } else {
                        format!("{} ({})", call.operation, call.status)
                    }
                })
                .collect(),
            capacity: calls.iter().map(|c| c.capacity).fold(0.0, |a, b| a + b),
        }
    }
}

/// List latency on one table size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ListScale {
    pub(crate) users: usize,
    /// Per page: its name, warm latency in ms, unexpected answers.
    pub(crate) pages: Vec<(String, Summary, usize)>,
    pub(crate) load: String,
}

/// One handler's CPU time per request, from criterion.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HandlerCost {
    pub(crate) name: String,
    pub(crate) median_us: f64,
    pub(crate) low_us: f64,
    pub(crate) high_us: f64,
}

/// One lever undone, measured on create-user.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LeverResult {
    pub(crate) lever: String,
    pub(crate) variant: String,
    pub(crate) binary_bytes: u64,
    pub(crate) zip_bytes: u64,
    pub(crate) run: Option<FunctionRun>,
    pub(crate) note: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) plan: Plan,
    pub(crate) machine: Machine,
    pub(crate) sizes: Vec<Size>,
    pub(crate) functions: Vec<FunctionRun>,
    pub(crate) peer_functions: Vec<FunctionRun>,
    pub(crate) dynamo_costs: Vec<DynamoCost>,
    pub(crate) dynamo_load: String,
    pub(crate) list_scaling: Vec<ListScale>,
    pub(crate) handlers: Vec<HandlerCost>,
    pub(crate) handlers_load: String,
    pub(crate) load: Vec<LoadRun>,
    pub(crate) levers: Vec<LeverResult>,
    pub(crate) notes: Vec<String>,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

/// The medians criterion measured for the `handle` group.
pub(crate) fn read_criterion(dir: &Path) -> Result<Vec<HandlerCost>, crate::Error> {
    let group = dir.join("handle");
    let mut costs = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&group)
        .map_err(|e| crate::Error::msg(format!("{}: {e}", group.display())))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("new/estimates.json").exists())
        .collect();
    entries.sort();
    for path in entries {
        let estimates: Estimates =
            serde_json::from_slice(&std::fs::read(path.join("new/estimates.json"))?)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        costs.push(HandlerCost {
            name,
            median_us: estimates.median.point_estimate / 1000.0,
            low_us: estimates.median.confidence_interval.lower_bound / 1000.0,
            high_us: estimates.median.confidence_interval.upper_bound / 1000.0,
        });
    }
    Ok(costs)
}

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1_000_000.0)
}

fn mib_from_kib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn verdict(holds: bool) -> &'static str {
    if holds { "**holds**" } else { "**missed**" }
}

/// Budget figures, computed once for the table and the charts.
struct Figures<'a> {
    hello: Option<&'a FunctionRun>,
    create: Option<&'a FunctionRun>,
    node: Option<&'a FunctionRun>,
    python: Option<&'a FunctionRun>,
}

impl Report {
    pub(crate) fn new(plan: Plan, machine: Machine) -> Self {
        Self {
            plan,
            machine,
            sizes: Vec::new(),
            functions: Vec::new(),
            peer_functions: Vec::new(),
            dynamo_costs: Vec::new(),
            dynamo_load: String::new(),
            list_scaling: Vec::new(),
            handlers: Vec::new(),
            handlers_load: String::new(),
            load: Vec::new(),
            levers: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn figures(&self) -> Figures<'_> {
        let function = |name: &str| self.functions.iter().find(|f| f.name == name);
        let peer = |word: &str| self.peer_functions.iter().find(|f| f.name.contains(word));
        Figures {
            hello: function("hello-lambda"),
            create: function("create-user"),
            node: peer("Node.js"),
            python: peer("Python"),
        }
    }

    fn size(&self, name: &str) -> Option<&Size> {
        self.sizes.iter().find(|s| s.name == name)
    }

    fn load_run(&self, server: &str, scenario: &str) -> Option<&LoadRun> {
        self.load
            .iter()
            .find(|r| r.server.starts_with(server) && r.scenario == scenario)
    }

    fn api_functions(&self) -> impl Iterator<Item = &FunctionRun> {
        self.functions.iter().filter(|f| f.name != "hello-lambda")
    }

    /// The budgets of issue 5, each with its measured figure.
    fn budgets(&self) -> Vec<(String, String, String)> {
        let mut rows = Vec::new();
        let f = self.figures();
        if let Some(hello) = f.hello {
            let worst = self
                .api_functions()
                .map(|run| (run.init_ms.p50 / hello.init_ms.p50, run.name.as_str()))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((ratio, name)) = worst {
                rows.push((
                    "init ≤ 1.3 × hello-world".to_owned(),
                    format!(
                        "worst {name}: {} ms vs {} ms = {ratio:.2}×",
                        ms(ratio * hello.init_ms.p50),
                        ms(hello.init_ms.p50)
                    ),
                    verdict(ratio <= 1.3).to_owned(),
                ));
            }
        }
        // The peers open no connection at init; the lazy-connection lever is
        // create-user doing the same.
        let lazy = self
            .levers
            .iter()
            .find(|l| l.lever.starts_with("DynamoDB connection"))
            .and_then(|l| l.run.as_ref());
        if let Some(create) = f.create {
            for (peer, factor, label) in [(f.node, 8.0, "Node.js"), (f.python, 5.0, "Python")] {
                if let Some(peer) = peer {
                    let ratio = peer.init_ms.p50 / create.init_ms.p50;
                    let like_for_like = lazy.map_or(String::new(), |lazy| {
                        format!(
                            "; without opening the connection at init, as the {label} one: \
                             {} ms = {:.1}×",
                            ms(lazy.init_ms.p50),
                            peer.init_ms.p50 / lazy.init_ms.p50
                        )
                    });
                    rows.push((
                        format!("init ≥ {factor:.0}× faster than {label} (create-user)"),
                        format!(
                            "{} ms vs {} ms = {ratio:.1}× (cold start incl. first invocation: \
                             {:.1}×){like_for_like}",
                            ms(create.init_ms.p50),
                            ms(peer.init_ms.p50),
                            (peer.init_ms.p50 + peer.first_ms.p50)
                                / (create.init_ms.p50 + create.first_ms.p50)
                        ),
                        verdict(ratio >= factor).to_owned(),
                    ));
                }
            }
        }
        if let Some(worst) = self
            .handlers
            .iter()
            .max_by(|a, b| a.median_us.total_cmp(&b.median_us))
        {
            rows.push((
                "handler CPU ≤ 50 µs per request".to_owned(),
                format!("worst {}: {:.1} µs", worst.name, worst.median_us),
                verdict(worst.median_us <= 50.0).to_owned(),
            ));
        }
        for scenario in ["GET /users/{id}", "POST /users"] {
            let ours = self.load_run("Rust", scenario);
            for (peer, factor) in [("Node.js", 3.0), ("Python", 5.0)] {
                if let (Some(ours), Some(theirs)) = (ours, self.load_run(peer, scenario)) {
                    let ratio = ours.rps / theirs.rps;
                    let p99 = ours.p99_ms / theirs.p99_ms;
                    rows.push((
                        format!("{scenario}: ≥ {factor:.0}× {peer}'s requests/s, p99 ≤ ⅓"),
                        format!(
                            "{:.0} vs {:.0} req/s = {ratio:.1}×; p99 {} vs {} ms = {p99:.2}×",
                            ours.rps,
                            theirs.rps,
                            ms(ours.p99_ms),
                            ms(theirs.p99_ms)
                        ),
                        verdict(ratio >= factor && p99 <= 1.0 / 3.0).to_owned(),
                    ));
                }
            }
        }
        let largest = self
            .sizes
            .iter()
            .filter(|s| s.name != "hello-lambda")
            .max_by_key(|s| s.binary_bytes);
        if let Some(largest) = largest {
            rows.push((
                "release binary ≤ 6 MB unzipped per function".to_owned(),
                format!("largest {}: {} MB", largest.name, mb(largest.binary_bytes)),
                verdict(largest.binary_bytes <= 6_000_000).to_owned(),
            ));
        }
        if let Some(worst) = self.api_functions().max_by_key(|f| f.peak_rss_kib) {
            rows.push((
                "peak RSS ≤ 20 MB".to_owned(),
                format!(
                    "largest {}: {} MiB",
                    worst.name,
                    mib_from_kib(worst.peak_rss_kib)
                ),
                verdict(worst.peak_rss_kib <= 20 * 1024).to_owned(),
            ));
        }
        if !self.dynamo_costs.is_empty() {
            let off: Vec<String> = self
                .dynamo_costs
                .iter()
                .filter(|c| c.function != "history-worker" && c.status.is_some_and(|s| s < 400))
                .filter(|c| c.operations.len() != 1)
                .map(|c| format!("{} ({})", c.case, c.operations.len()))
                .collect();
            rows.push((
                "exactly one DynamoDB request per successful API call".to_owned(),
                if off.is_empty() {
                    "every successful call: 1".to_owned()
                } else {
                    format!("not 1: {}", off.join("; "))
                },
                verdict(off.is_empty()).to_owned(),
            ));
        }
        if let [small, large] = self.list_scaling.as_slice() {
            let p50 = |scale: &ListScale| scale.pages.first().map_or(0.0, |p| p.1.p50);
            let ratio = p50(large) / p50(small);
            rows.push((
                format!("flat list latency, {} → {} users", small.users, large.users),
                format!(
                    "first page p50 {} → {} ms = {ratio:.2}×",
                    ms(p50(small)),
                    ms(p50(large))
                ),
                verdict(ratio <= 1.25).to_owned(),
            ));
        }
        rows
    }

    /// The report as markdown; chart files are named relative to `out`.
    pub(crate) fn markdown(&self, _out: &Path) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `infra/bench/run.sh{}` on {}. Machine: {}. Load average (1/5/15 min) \
             {} at the start, {} at the end; each section gives the load when it ran: other \
             people compile on this machine, so expect ±25 % noise.\n",
            if self.plan.quick { " --quick" } else { "" },
            m.date,
            m.summary(),
            m.load_start,
            m.load_end
        );
        if self.plan.quick {
            let _ = writeln!(
                md,
                "> **Quick mode**: too few samples to publish; it only proves the harness works.\n"
            );
        }
        let _ = writeln!(md, "## Budgets\n");
        let _ = writeln!(md, "| budget | measured | |\n|---|---|---|");
        let budgets = self.budgets();
        for (budget, measured, holds) in &budgets {
            let _ = writeln!(md, "| {budget} | {measured} | {holds} |");
        }
        let missed: Vec<&str> = budgets
            .iter()
            .filter(|(_, _, holds)| holds.contains("missed"))
            .filter_map(|(budget, _, _)| advice(budget))
            .collect();
        if !missed.is_empty() {
            let _ = writeln!(md, "\nWhat would close the missed ones:\n");
            for text in missed {
                let _ = writeln!(md, "- {text}");
            }
        }

        let _ = writeln!(
            md,
            "\n## Cold start, latency, memory and size per function\n"
        );
        let _ = writeln!(
            md,
            "Each function's release binary runs as Lambda runs it: spawned (pinned to core \
             {core}) with `AWS_LAMBDA_RUNTIME_API` pointing at the harness's Runtime API and \
             DynamoDB Local behind a TLS proxy as its endpoint. *Init* is spawn → first \
             `/next` request (Lambda's Init Duration); *first* is the first invocation \
             (event handed out → response posted, Lambda's Duration), so a cold start is \
             init + first. Medians of {cold} cold starts; warm figures over {warm} invocations \
             of the last instance. The Node.js and Python rows are create-user written with \
             `@aws-sdk/client-dynamodb` v3 and boto3, started the same way.\n",
            core = crate::FUNCTION_CORE,
            cold = self.plan.cold_starts,
            warm = self.plan.warm
        );
        let _ = writeln!(
            md,
            "| function | binary MB | zip MB | init p50 ms | first p50 ms | warm p50 ms | warm p99 ms | peak RSS MiB | unexpected answers | load |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for run in self.functions.iter().chain(&self.peer_functions) {
            let (binary, zip) = self
                .size(&run.name)
                .map_or(("–".to_owned(), "–".to_owned()), |s| {
                    (mb(s.binary_bytes), mb(s.zip_bytes))
                });
            let _ = writeln!(
                md,
                "| {} | {binary} | {zip} | {} | {} | {} | {} | {} | {} | {} |",
                run.name,
                ms(run.init_ms.p50),
                ms(run.first_ms.p50),
                ms(run.warm_ms.p50),
                ms(run.warm_ms.p99),
                mib_from_kib(run.peak_rss_kib),
                run.unexpected,
                run.load
            );
        }
        let _ = writeln!(
            md,
            "\n![Cold start per function](benchmarks-cold-start.svg)\n\n{ANCHORS}\n"
        );

        let _ = writeln!(md, "## Handler cost\n");
        let _ = writeln!(
            md,
            "CPU time of one `handle` call on the memory store (criterion, thread CPU time, \
             release profile; the request is built outside the measurement). Everything \
             else a request costs is DynamoDB. Load {}.\n",
            self.handlers_load
        );
        let _ = writeln!(
            md,
            "| handler | median µs | 95 % interval µs |\n|---|---|---|"
        );
        for cost in &self.handlers {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.1}–{:.1} |",
                cost.name, cost.median_us, cost.low_us, cost.high_us
            );
        }

        let _ = writeln!(md, "\n## Side by side under load\n");
        let _ = writeln!(
            md,
            "Each server pinned to core {} and `wrk` (1 thread, {} connections, {} s after a \
             {} s warm-up) to core {} on loopback; ours is `local-api` (the real handlers \
             behind the API Gateway emulation) on its memory store; the peers are the \
             seed's services written here with the same validation and status codes. \
             `POST /users` sends a fresh address per request; `GET` reads one user. Every \
             server writes one JSON log line per request.\n",
            crate::FUNCTION_CORE,
            self.plan.connections,
            self.plan.load_seconds,
            self.plan.warm_up_seconds,
            crate::LOAD_CORE
        );
        let _ = writeln!(
            md,
            "| server | scenario | requests/s | p50 ms | p99 ms | errors | RSS idle MiB | peak RSS MiB | load |\n|---|---|---|---|---|---|---|---|---|"
        );
        for run in &self.load {
            let _ = writeln!(
                md,
                "| {} | `{}` | {:.0} | {} | {} | {} | {} | {} | {} |",
                run.server,
                run.scenario,
                run.rps,
                ms(run.p50_ms),
                ms(run.p99_ms),
                run.errors,
                mib_from_kib(run.idle_rss_kib),
                mib_from_kib(run.peak_rss_kib),
                run.load
            );
        }
        let _ = writeln!(md, "\n![Requests per second](benchmarks-throughput.svg)\n");

        let _ = writeln!(md, "## DynamoDB requests per API call\n");
        let _ = writeln!(
            md,
            "Counted by the proxy in front of DynamoDB Local; capacity from \
             `ReturnConsumedCapacity: TOTAL`, which the proxy adds to each request \
             (DynamoDB Local's figures, not AWS's). Load {}.\n",
            self.dynamo_load
        );
        let _ = writeln!(
            md,
            "| function | call | status | requests | operations | capacity units |\n|---|---|---|---|---|---|"
        );
        for cost in &self.dynamo_costs {
            let _ = writeln!(
                md,
                "| {} | {} | {}{} | {} | {} | {:.1} |",
                cost.function,
                cost.case,
                cost.status.map_or("–".to_owned(), |s| s.to_string()),
                if cost.as_expected {
                    ""
                } else {
                    " (unexpected)"
                },
                cost.operations.len(),
                cost.operations.join(", "),
                cost.capacity
            );
        }

        let _ = writeln!(md, "\n## List latency as the table grows\n");
        let _ = writeln!(
            md,
            "`GET /users?limit=20` through list-users (one `Query` on the `byCreation` \
             index), warm, on tables seeded with `BatchWriteItem`.\n"
        );
        let _ = writeln!(
            md,
            "| users | page | p50 ms | p99 ms | invocations | unexpected | load |\n|---|---|---|---|---|---|---|"
        );
        for scale in &self.list_scaling {
            for (page, summary, unexpected) in &scale.pages {
                let _ = writeln!(
                    md,
                    "| {} | {page} | {} | {} | {} | {unexpected} | {} |",
                    scale.users,
                    ms(summary.p50),
                    ms(summary.p99),
                    summary.n,
                    scale.load
                );
            }
        }

        if !self.levers.is_empty() {
            let _ = writeln!(md, "\n## Levers\n");
            let _ = writeln!(
                md,
                "create-user rebuilt with one lever undone at a time (or changed), against \
                 the deployed build, measured the same way.\n"
            );
            let _ = writeln!(
                md,
                "| lever | build | binary MB | zip MB | init p50 ms | first p50 ms | warm p50 ms | peak RSS MiB | note | load |\n|---|---|---|---|---|---|---|---|---|---|"
            );
            for lever in &self.levers {
                let cell =
                    |f: fn(&FunctionRun) -> String| lever.run.as_ref().map_or("–".to_owned(), f);
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    lever.lever,
                    lever.variant,
                    mb(lever.binary_bytes),
                    mb(lever.zip_bytes),
                    cell(|r| ms(r.init_ms.p50)),
                    cell(|r| ms(r.first_ms.p50)),
                    cell(|r| ms(r.warm_ms.p50)),
                    cell(|r| mib_from_kib(r.peak_rss_kib)),
                    lever.note,
                    cell(|r| r.load.clone())
                );
            }
        }

        let _ = writeln!(md, "\n## What this does not measure\n");
        let _ = writeln!(
            md,
            "- The machine is x86_64 with whole cores; Lambda runs the functions on arm64 \
             (Graviton) with a CPU share proportional to memory (about 1/14 of a vCPU at 128 MB \
             outside init), and starts a Firecracker microVM before init. Absolute times \
             here are lower than Lambda's; the ratios are what carries over.\n\
             - DynamoDB is DynamoDB Local (Java, SQLite) behind a loopback TLS proxy, so \
             warm latencies are mostly DynamoDB Local's, and capacity units are its own.\n\
             - The Node.js function runs on a minimal Runtime API loop written here \
             (aws-lambda-ric from npm needs cmake and a native build); the Python function \
             runs on awslambdaric from PyPI. Neither is bundled or minified, as a plain \
             deployment package would not be.\n\
             - The functions read their root certificates from `SSL_CERT_FILE`: the system's \
             roots plus the proxy's test CA in one file, as Amazon Linux 2023 keeps its roots \
             in one bundle (without it, rustls-native-certs on this Debian machine also reads \
             every file in /etc/ssl/certs).\n\
             - Our functions' init includes one `DescribeEndpoints` request (it opens the \
             connection; see Levers); it is not counted in the per-call DynamoDB table."
        );
        for note in &self.notes {
            let _ = writeln!(md, "- {note}");
        }
        md
    }

    /// The SVG charts: file name and content.
    pub(crate) fn charts(&self) -> Vec<(&'static str, String)> {
        let mut cold = Vec::new();
        for run in self.functions.iter().chain(&self.peer_functions) {
            cold.push(Bar {
                label: run.name.clone(),
                parts: vec![run.init_ms.p50, run.first_ms.p50],
            });
        }
        let mut throughput = Vec::new();
        for run in &self.load {
            throughput.push(Bar {
                label: format!(
                    "{} — {}",
                    run.server.split(" (").next().unwrap_or(&run.server),
                    run.scenario
                ),
                parts: vec![run.rps],
            });
        }
        vec![
            (
                "benchmarks-cold-start.svg",
                bar_chart(
                    "Cold start, ms (median): init + first invocation",
                    &["init", "first invocation"],
                    &cold,
                    "ms",
                ),
            ),
            (
                "benchmarks-throughput.svg",
                bar_chart(
                    "Requests per second, one core (wrk)",
                    &["requests/s"],
                    &throughput,
                    "req/s",
                ),
            ),
        ]
    }
}

/// What would close a missed budget, by the start of its name.
fn advice(budget: &str) -> Option<&'static str> {
    const ADVICE: [(&str, &str); 7] = [
        (
            "init ≤ 1.3",
            "**init vs hello-world**: the gap is work a function must do before its first \
             request: JSON logging, the AWS configuration and SDK client (with its TLS setup and \
             root certificates) and, by choice, opening the DynamoDB connection (see Levers: \
             without it init drops, and the first request pays instead). Closing it needs less \
             init work: a client built from Lambda's environment without aws-config's provider \
             chain, compiled-in roots instead of reading the system's, or keeping the connection \
             lazy, which only moves the cost.",
        ),
        (
            "init ≥ 8",
            "**init vs Node.js**: our init includes opening the DynamoDB connection (TLS and one \
             request), the Node.js one does not; compare the lazy-connection lever's init with \
             it. Beyond that, the same init work as above.",
        ),
        ("init ≥ 5", "**init vs Python**: as for Node.js."),
        (
            "POST /users",
            "**POST p99 under load**: ours is the in-memory store growing by tens of thousands of \
             users a second (hash map and B-tree growth, and the history worker sharing the one \
             core), not the handler, whose CPU cost is a few µs; a pre-sized store, or a run \
             short enough to stay below the resize points, would remove the tail.",
        ),
        (
            "release binary",
            "**binary size**: ring instead of aws-lc-rs and panic = \"abort\" each save about \
             0.7 MB (see Levers; neither is applied: ring has no post-quantum key exchange and \
             abort turns a panic into a cold start); building the DynamoDB client from Lambda's \
             environment instead of aws-config's provider chain would drop the STS and SSO \
             clients the chain links in.",
        ),
        (
            "exactly one",
            "**one DynamoDB request per call**: DELETE and an email change read the user first \
             (GetItem) to learn the address whose claim they free; removing the old claim from \
             the table stream (the history worker already consumes it) would make each one \
             conditional write, at the cost of the address staying taken for a second or so. A \
             replayed Idempotency-Key costs a second request only on a client's retry.",
        ),
        (
            "flat list",
            "**list latency**: each page is one Query on an index; a rise would be DynamoDB \
             Local's, not the query's.",
        ),
    ];
    ADVICE
        .iter()
        .find(|(start, _)| budget.starts_with(start))
        .map(|(_, text)| *text)
}

struct Bar {
    label: String,
    parts: Vec<f64>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal, stacked bar chart.
fn bar_chart(title: &str, legend: &[&str], bars: &[Bar], unit: &str) -> String {
    const COLORS: [&str; 2] = ["#2b6cb0", "#90cdf4"];
    let label_width = 330.0;
    let chart_width = 420.0;
    let row = 26.0;
    let top = 56.0;
    let height = top + row * bars.len() as f64 + 20.0;
    let max = bars
        .iter()
        .map(|b| b.parts.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let width = label_width + chart_width + 110.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="22" font-size="15" font-weight="bold">{}</text>"##,
        escape(title)
    );
    for (i, name) in legend.iter().enumerate() {
        let x = 10.0 + 160.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="32" width="12" height="12" fill="{}"/><text x="{}" y="43">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 18.0,
            escape(name)
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_width - 8.0,
            y + 16.0,
            escape(&bar.label)
        );
        let mut x = label_width;
        for (j, part) in bar.parts.iter().enumerate() {
            let w = (part / max * chart_width).max(0.5);
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="18" fill="{}"/>"#,
                y + 3.0,
                COLORS[j % COLORS.len()]
            );
            x += w;
        }
        let total: f64 = bar.parts.iter().sum();
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}">{} {unit}</text>"#,
            x + 6.0,
            y + 16.0,
            if total >= 100.0 {
                format!("{total:.0}")
            } else {
                format!("{total:.1}")
            }
        );
    }
    svg.push_str("</svg>\n");
    svg
}
