//! The report: every figure of a run, the budgets they are held to, as
//! markdown and SVG bar charts.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::budgets::{BUDGETS, Verdict};
use crate::lambda::FunctionRun;
use crate::load::LoadRun;
use crate::proxy::Call;
use crate::stats::Summary;
use crate::{FUNCTION_CORE, LOAD_CORE, Plan};

/// A binary's size, alone and zipped as a Lambda deployment package.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Size {
    pub(crate) name: String,
    pub(crate) binary_bytes: u64,
    pub(crate) zip_bytes: u64,
    /// The bootstrap `sam build` made for arm64, when it has been run.
    pub(crate) arm64_bytes: Option<u64>,
}

impl Size {
    /// Measures `binary`, and its deployment package: a zip of it as
    /// `bootstrap`, as cargo-lambda packages it (deflate, level 6).
    pub(crate) fn of(name: &str, binary: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(binary).with_context(|| binary.display().to_string())?;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let executable = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        zip.start_file("bootstrap", executable)?;
        zip.write_all(&bytes)?;
        Ok(Self {
            name: name.to_owned(),
            binary_bytes: bytes.len() as u64,
            zip_bytes: zip.finish()?.into_inner().len() as u64,
            arm64_bytes: None,
        })
    }
}

/// DynamoDB requests of one API call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DynamoCost {
    pub(crate) function: String,
    pub(crate) case: String,
    pub(crate) as_expected: bool,
    pub(crate) status: Option<u16>,
    pub(crate) calls: Vec<Call>,
}

/// List latency on one table size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ListScale {
    pub(crate) users: usize,
    pub(crate) pages: Vec<Page>,
    pub(crate) load: String,
}

/// One page of the users list on one table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Page {
    pub(crate) name: String,
    /// Warm latency in ms.
    pub(crate) latency: Summary,
    pub(crate) unexpected: usize,
    /// What one invocation's DynamoDB requests returned and read, and the
    /// capacity they consumed.
    pub(crate) items: u64,
    pub(crate) scanned: u64,
    pub(crate) capacity: f64,
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
    pub(crate) size: Size,
    /// The lever build's figures.
    pub(crate) run: Option<FunctionRun>,
    /// The reference build's, interleaved with it.
    pub(crate) reference: Option<FunctionRun>,
    pub(crate) note: String,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) plan: Plan,
    /// What it ran on: CPU, cores, memory, kernel, toolchains.
    pub(crate) machine: String,
    pub(crate) date: String,
    /// How long the whole run took (run.sh, builds included), in seconds.
    pub(crate) took_seconds: Option<u64>,
    /// The peers' main packages with the versions their lockfiles pin.
    pub(crate) peers: Vec<String>,
    pub(crate) load_start: String,
    pub(crate) load_end: String,
    pub(crate) sizes: Vec<Size>,
    pub(crate) functions: Vec<FunctionRun>,
    pub(crate) peer_functions: Vec<FunctionRun>,
    /// The load average when the interleaved cold starts ended.
    pub(crate) cold_load: String,
    pub(crate) dynamo_costs: Vec<DynamoCost>,
    pub(crate) dynamo_load: String,
    pub(crate) list_scaling: Vec<ListScale>,
    pub(crate) handlers: Vec<HandlerCost>,
    pub(crate) handlers_load: String,
    pub(crate) load: Vec<LoadRun>,
    pub(crate) levers: Vec<LeverResult>,
}

/// The medians criterion measured for the `handle` group, with their 95 %
/// confidence intervals (criterion writes `handle/<name>/new/estimates.json`).
pub(crate) fn read_criterion(dir: &Path) -> anyhow::Result<Vec<HandlerCost>> {
    #[derive(Deserialize)]
    struct Estimates {
        median: Estimate,
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
    let group = dir.join("handle");
    let mut costs = Vec::new();
    for entry in std::fs::read_dir(&group).with_context(|| group.display().to_string())? {
        let path = entry?.path();
        let Ok(json) = std::fs::read(path.join("new/estimates.json")) else {
            continue; // criterion's own folders (report/)
        };
        let Estimates { median } = serde_json::from_slice(&json)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        costs.push(HandlerCost {
            name: name.into_owned(),
            median_us: median.point_estimate / 1000.0,
            low_us: median.confidence_interval.lower_bound / 1000.0,
            high_us: median.confidence_interval.upper_bound / 1000.0,
        });
    }
    costs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(costs)
}

const MIB: f64 = 1024.0 * 1024.0;

const ANCHORS: &str = "Published anchors (not measured here): hello-world Init Duration on arm64, 128 MB \
(lambda-perf, Aug 2026) Rust 13.9 ms, Node.js 20 122.9 ms, Python 3.12 72.8 ms; the AWS samples' \
Products API cold p50 123 ms (Rust), 691 ms (TypeScript), 715 ms (Python).";

const CAVEATS: &str = "- The machine is x86_64 with whole cores; Lambda runs the functions on \
arm64 (Graviton) with a CPU share proportional to memory (about 1/14 of a vCPU at 128 MB outside \
init), and starts a Firecracker microVM before init. Absolute times here are lower than Lambda's; \
the ratios are what carries over.
- DynamoDB is DynamoDB Local (Java, SQLite) behind a loopback TLS proxy, so warm latencies are \
mostly DynamoDB Local's, and capacity units are its own. *Own* times subtract the wait the proxy \
timed (request in to answer back); the TLS work on both ends of the connection stays in them, \
and the proxy's half runs on the harness's core while the function waits.
- The Node.js function runs on a minimal Runtime API loop written here (aws-lambda-ric from npm \
needs cmake and a native build); the Python function runs on awslambdaric from PyPI. Neither is \
bundled or minified, as a plain deployment package would not be.
- The harness builds the functions with the `storage/local-ca` feature, so they trust the \
proxy's self-signed certificate: a PEM file read at init (`USERS_API_LOCAL_CA_FILE`) that the \
deployed build does not read. The system-roots lever reads the system's roots plus that \
certificate from `SSL_CERT_FILE`.
- Our functions' init includes one `DescribeEndpoints` request (it opens the connection; see \
Levers); it is not counted in the per-call DynamoDB table.";

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1e6)
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Milliseconds as whole microseconds.
pub(crate) fn us(ms: f64) -> String {
    format!("{:.0}", ms * 1000.0)
}

pub(crate) fn ms(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}

/// `min / median` of a summary, in ms.
fn min_p50(summary: &Summary) -> String {
    format!("{} / {}", ms(summary.min), ms(summary.p50))
}

/// Writes one markdown table; `header` is its cells joined with ` | `.
fn table<const N: usize>(
    md: &mut String,
    header: &str,
    rows: impl IntoIterator<Item = [String; N]>,
) {
    let _ = writeln!(md, "| {header} |\n|{}", "---|".repeat(N));
    for row in rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    md.push('\n');
}

impl Report {
    /// The report as markdown; the charts are next to it.
    pub(crate) fn markdown(&self) -> String {
        let (plan, core, load_core) = (self.plan, FUNCTION_CORE, LOAD_CORE);
        let (quick, cold_starts, warm) = (plan.quick, plan.cold_starts, plan.warm);
        let (connections, load_seconds, warm_up) =
            (plan.connections, plan.load_seconds, plan.warm_up_seconds);
        let (date, machine, cold_load) = (&self.date, &self.machine, &self.cold_load);
        let (load_start, load_end) = (&self.load_start, &self.load_end);
        let (handlers_load, dynamo_load) = (&self.handlers_load, &self.dynamo_load);
        let mode = if quick { " --quick" } else { "" };
        let took = self.took_seconds.map_or(String::new(), |took| {
            format!(
                " The whole run took {} min {} s, builds included.",
                took / 60,
                took % 60
            )
        });
        let peers = self.peers.join(", ");
        let mut md = format!(
            "# Benchmarks\n\nGenerated by `infra/bench/run.sh{mode}` on {date}.{took} Machine: \
             {machine}. Load average (1/5/15 min) {load_start} at the start, {load_end} at the \
             end; each section gives the load when it ran: other people compile on this machine, \
             so expect ±25 % noise. The peers, as their lockfiles pin them: {peers}.\n\n"
        );
        if quick {
            md.push_str("> **Quick mode**: too few samples to publish; it only proves the harness works.\n\n");
        }
        md.push_str(
            "## Budgets\n\nA missed budget shows its measured value and what would close it.\n\n",
        );
        let budgets = BUDGETS.iter().map(|budget| {
            let (measured, verdict, advice) = match budget.check(self) {
                Verdict::Holds(measured) => (measured, "**holds**", ""),
                Verdict::Missed(measured) => (measured, "**missed**", budget.advice),
                Verdict::NotMeasured(why) => (why, "not measured", ""),
            };
            [
                budget.title(),
                measured,
                verdict.to_owned(),
                advice.to_owned(),
            ]
        });
        table(
            &mut md,
            "budget | measured | | what would close it",
            budgets,
        );

        let _ = writeln!(
            md,
            "## Cold start, latency, memory and size per function\n\nEach function's release binary \
             runs as Lambda runs it: spawned on core {core} (the harness pins the thread that \
             starts it, so no wrapper runs first) with `AWS_LAMBDA_RUNTIME_API` pointing at the \
             harness's Runtime API and DynamoDB Local behind a TLS proxy as its endpoint. *Init* \
             is spawn → first `/next` request (Lambda's Init Duration); *own init* is init minus \
             the wait on DynamoDB during it; *first* is the first invocation (Lambda's Duration); \
             a cold start is init + first. {cold_starts} cold starts each, interleaved across the \
             functions (round 1: every function once, round 2: again, ...), shown as minimum / \
             median; the cold starts ended at load {cold_load}. Warm figures over {warm} \
             invocations of one instance of each function, interleaved the same way after a \
             fifth as many unmeasured rounds. *Own* is an invocation's time from the event \
             being handed over to the response being posted, minus the time it waited on \
             DynamoDB; *CPU* is the CPU time the process ran per warm invocation, by the kernel's \
             count (the sum over its threads of `/proc/<pid>/task/*/schedstat`, over the \
             measured invocations), which no timer of the harness's shares. The Node.js and Python rows are create-user written with \
             `@aws-sdk/client-dynamodb` v3 and boto3, started the same way. *arm64* is the \
             bootstrap `sam build` made (run `sam build` before run.sh for it).\n"
        );
        let size = |name: &str| self.sizes.iter().find(|s| s.name == name);
        let header = "function | binary MB | zip MB | arm64 MiB | init ms min / p50 | own init ms p50 | first ms min / p50 | cold start ms min / p50 | warm p50 ms | warm p99 ms | own µs p50 / p99 | CPU µs per invocation | peak RSS MiB | unexpected answers | load";
        table(
            &mut md,
            header,
            self.functions
                .iter()
                .chain(&self.peer_functions)
                .map(|run| {
                    let size = size(&run.name);
                    let cell = |f: fn(&Size) -> Option<String>| {
                        size.and_then(f).unwrap_or_else(|| "–".to_owned())
                    };
                    [
                        run.name.clone(),
                        cell(|s| Some(mb(s.binary_bytes))),
                        cell(|s| Some(mb(s.zip_bytes))),
                        cell(|s| Some(format!("{:.2}", s.arm64_bytes? as f64 / MIB))),
                        min_p50(&run.init_ms()),
                        ms(run.init_without_dynamo_ms().p50),
                        min_p50(&run.first_ms()),
                        min_p50(&run.cold_ms()),
                        ms(run.warm_ms().p50),
                        ms(run.warm_ms().p99),
                        format!("{} / {}", us(run.own_ms().p50), us(run.own_ms().p99)),
                        run.cpu_ms().map_or_else(|| "–".to_owned(), us),
                        mib(run.peak_rss_kib),
                        run.unexpected.to_string(),
                        run.load.clone(),
                    ]
                }),
        );
        let _ = writeln!(
            md,
            "![Cold start per function](benchmarks-cold-start.svg)\n\n{ANCHORS}\n"
        );

        let _ = writeln!(
            md,
            "## Handler cost\n\nCPU time of one `handle` call on the memory store (criterion, thread \
             CPU time, release profile; the request is built outside the measurement). Everything \
             else a request costs is DynamoDB. Load {handlers_load}.\n"
        );
        table(
            &mut md,
            "handler | median µs | 95 % interval µs",
            self.handlers.iter().map(|c| {
                [
                    c.name.clone(),
                    format!("{:.1}", c.median_us),
                    format!("{:.1}–{:.1}", c.low_us, c.high_us),
                ]
            }),
        );

        let _ = writeln!(
            md,
            "## Side by side under load\n\nEach server pinned to core {core} and `wrk` (1 thread, \
             {connections} connections, {load_seconds} s after a {warm_up} s warm-up) to core \
             {load_core} on loopback; ours is `local-api` \
             (the real handlers behind the API Gateway emulation) on its memory store; the peers \
             are the seed's services written here with the same validation and status codes. \
             `POST /users` sends a fresh address per request; `GET` reads one user. Every server \
             writes one JSON log line per request.\n"
        );
        let header = "server | scenario | requests/s | p50 ms | p99 ms | errors | RSS idle MiB | peak RSS MiB | load";
        table(
            &mut md,
            header,
            self.load.iter().map(|r| {
                [
                    r.server.clone(),
                    format!("`{}`", r.scenario),
                    format!("{:.0}", r.rps),
                    ms(r.p50_ms),
                    ms(r.p99_ms),
                    r.errors.to_string(),
                    mib(r.idle_rss_kib),
                    mib(r.peak_rss_kib),
                    r.load.clone(),
                ]
            }),
        );
        md.push_str("![Requests per second](benchmarks-throughput.svg)\n\n");

        let _ = writeln!(
            md,
            "## DynamoDB requests per API call\n\nCounted by the proxy in front of DynamoDB Local; \
             capacity from `ReturnConsumedCapacity: TOTAL`, which the proxy adds to each request \
             (DynamoDB Local's figures, not AWS's). Load {dynamo_load}.\n"
        );
        table(
            &mut md,
            "function | call | status | requests | operations | capacity units",
            self.dynamo_costs.iter().map(|c| {
                let status = c.status.map_or("–".to_owned(), |s| s.to_string())
                    + if c.as_expected { "" } else { " (unexpected)" };
                let operations: Vec<String> = c.calls.iter().map(Call::describe).collect();
                let capacity: f64 = c.calls.iter().map(|c| c.capacity).sum();
                [
                    c.function.clone(),
                    c.case.clone(),
                    status,
                    c.calls.len().to_string(),
                    operations.join(", "),
                    format!("{capacity:.1}"),
                ]
            }),
        );

        md.push_str(
            "## List cost and latency as the table grows\n\n`GET /users?limit=20` through \
             list-users (one `Query` on the `byCreation` index), warm, on tables seeded with \
             `BatchWriteItem` (without a stream, which only slows DynamoDB Local's writes). \
             *Returned* and *read* are the `Count` and `ScannedCount` DynamoDB answered for one \
             invocation, *capacity* what it reported as consumed: what DynamoDB bills does not \
             grow with the table.\n\n",
        );
        let rows = self.list_scaling.iter().flat_map(|scale| {
            scale.pages.iter().map(|page| {
                [
                    scale.users.to_string(),
                    page.name.clone(),
                    page.items.to_string(),
                    page.scanned.to_string(),
                    format!("{:.1}", page.capacity),
                    ms(page.latency.p50),
                    ms(page.latency.p99),
                    page.latency.n.to_string(),
                    page.unexpected.to_string(),
                    scale.load.clone(),
                ]
            })
        });
        table(
            &mut md,
            "users | page | returned | read | capacity units | p50 ms | p99 ms | invocations | unexpected | load",
            rows,
        );

        if self.levers.is_empty() {
            md.push_str(
                "## Levers\n\n`infra/bench/run.sh --levers` rebuilds create-user once per build \
                 lever (levers.sh) and measures each build against the reference; this run was \
                 made without it.\n\n",
            );
        } else {
            let _ = writeln!(
                md,
                "## Levers\n\ncreate-user rebuilt with one lever undone at a time (or changed). Each \
                 build is cold-started {cold_starts} times interleaved with the reference build \
                 (reference, lever, reference, lever, ...), on the DynamoDB Local of the main table, \
                 so both see the same load; *ref.* is the reference of the same session. Figures are \
                 minimum / median.\n"
            );
            let header = "lever | build | binary MB | zip MB | init ms | ref. init ms | first ms | ref. first ms | warm p50 ms | peak RSS MiB | note | load";
            table(
                &mut md,
                header,
                self.levers.iter().map(|lever| {
                    let cell = |run: &Option<FunctionRun>, f: fn(&FunctionRun) -> String| {
                        run.as_ref().map_or("–".to_owned(), f)
                    };
                    let (run, reference) = (&lever.run, &lever.reference);
                    [
                        lever.lever.clone(),
                        lever.variant.clone(),
                        mb(lever.size.binary_bytes),
                        mb(lever.size.zip_bytes),
                        cell(run, |r| min_p50(&r.init_ms())),
                        cell(reference, |r| min_p50(&r.init_ms())),
                        cell(run, |r| min_p50(&r.first_ms())),
                        cell(reference, |r| min_p50(&r.first_ms())),
                        cell(run, |r| ms(r.warm_ms().p50)),
                        cell(run, |r| mib(r.peak_rss_kib)),
                        lever.note.clone(),
                        cell(run, |r| r.load.clone()),
                    ]
                }),
            );
        }

        let _ = writeln!(md, "## What this does not measure\n\n{CAVEATS}");
        md
    }

    /// The SVG charts: file name and content.
    pub(crate) fn charts(&self) -> Vec<(&'static str, String)> {
        let runs = self.functions.iter().chain(&self.peer_functions);
        let bar = |run: &FunctionRun| {
            (
                run.name.clone(),
                vec![run.init_ms().p50, run.first_ms().p50],
            )
        };
        let cold: Vec<Bar> = runs.map(bar).collect();
        let throughput: Vec<Bar> = self
            .load
            .iter()
            .map(|run| {
                let server = run.server.split(" (").next().unwrap_or(&run.server);
                (format!("{server} — {}", run.scenario), vec![run.rps])
            })
            .collect();
        let title = "Cold start, ms (median): init + first invocation";
        let cold = bar_chart(title, &["init", "first invocation"], &cold, "ms");
        let title = "Requests per second, one core (wrk)";
        let throughput = bar_chart(title, &["requests/s"], &throughput, "req/s");
        vec![
            ("benchmarks-cold-start.svg", cold),
            ("benchmarks-throughput.svg", throughput),
        ]
    }
}

/// A bar's label and its stacked parts.
type Bar = (String, Vec<f64>);

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal, stacked bar chart. Written by hand rather than with a
/// plotting crate: two charts of labelled bars are forty lines of SVG
/// text, shorter than configuring `plotters` for horizontal stacked bars
/// with long labels, and the text diffs cleanly in docs/.
fn bar_chart(title: &str, legend: &[&str], bars: &[Bar], unit: &str) -> String {
    const COLORS: [&str; 2] = ["#2b6cb0", "#90cdf4"];
    let (label_width, chart_width, row, top) = (330.0, 420.0, 26.0, 56.0);
    let height = top + row * bars.len() as f64 + 20.0;
    let width = label_width + chart_width + 110.0;
    let max = bars
        .iter()
        .map(|b| b.1.iter().sum::<f64>())
        .fold(f64::MIN_POSITIVE, f64::max);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="22" font-size="15" font-weight="bold">{}</text>
"##,
        escape(title)
    );
    for (i, name) in legend.iter().enumerate() {
        let (x, color, name) = (10.0 + 160.0 * i as f64, COLORS[i % 2], escape(name));
        let (square, text) = (r#"y="32" width="12" height="12""#, x + 18.0);
        let _ = writeln!(svg, r#"<rect x="{x}" {square} fill="{color}"/>"#);
        let _ = writeln!(svg, r#"<text x="{text}" y="43">{name}</text>"#);
    }
    for (i, (label, parts)) in bars.iter().enumerate() {
        let (y, label) = (top + row * i as f64, escape(label));
        let (text_x, text_y, bar_y) = (label_width - 8.0, y + 16.0, y + 3.0);
        let _ = writeln!(
            svg,
            r#"<text x="{text_x}" y="{text_y}" text-anchor="end">{label}</text>"#
        );
        let mut x = label_width;
        for (j, part) in parts.iter().enumerate() {
            let (w, color) = ((part / max * chart_width).max(0.5), COLORS[j % 2]);
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{bar_y:.1}" width="{w:.1}" height="18" fill="{color}"/>"#
            );
            x += w;
        }
        let (total, x) = (ms(parts.iter().sum()), x + 6.0);
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{text_y}">{total} {unit}</text>"#
        );
    }
    svg.push_str("</svg>\n");
    svg
}
