//! The budgets a run is held to. Each budget is one value that carries its
//! name, its threshold, how it is measured from the report and what would
//! close it when missed, so the advice cannot come apart from its budget.

use crate::lambda::FunctionRun;
use crate::report::{ListScale, Report, Size, mib, ms, us};
use crate::scenarios::HELLO;

/// One budget. In its name, `{t}` stands for the threshold.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) name: &'static str,
    pub(crate) threshold: f64,
    measure: Measure,
    /// What would close it when it is missed.
    pub(crate) advice: &'static str,
}

/// What a budget compares, read from the report: the worst function's own
/// init work (median init less its DynamoDB wait, less hello-world's median
/// init); a peer's median cold start over create-user's; a peer's median own
/// time per warm invocation over create-user's, and its CPU time per warm
/// invocation by the kernel's count; the slowest handler's CPU
/// µs, or one handler's; ours over a peer's
/// requests/s in a scenario (with p99 at most a third of theirs); the
/// largest binary, zip (MB) or arm64 bootstrap (MiB); the largest peak RSS
/// (MiB); DynamoDB requests per successful call; the large table's list
/// latency over the small one's, and the items it read.
#[derive(Debug, Clone, Copy)]
enum Measure {
    OwnInit,
    ColdVsPeer(&'static str),
    OwnVsPeer(&'static str),
    CpuVsPeer(&'static str),
    HandlerCpu,
    HandlerCpuOf(&'static str),
    LoadVsPeer(&'static str, &'static str),
    Binary,
    Zip,
    Arm64,
    PeakRss,
    DynamoRequests,
    FlatList,
    FlatListReads,
}

/// A budget's state, with the measured figure (the floor, when missed).
#[derive(Debug)]
pub(crate) enum Verdict {
    Holds(String),
    Missed(String),
    NotMeasured(String),
}

const INIT: &str = "what is left is the work of opening the DynamoDB connection at init (DNS, \
TCP and the TLS handshake, whose proxy half runs while the function waits), building the SDK \
client (about 0.4 ms) and loading a 5 MB binary rather than a 1 MB one; the lazy-connection lever \
of `run.sh --levers` shows init without the connection, at the cost of the first invocation";
const PEERS: &str = "our init opens the DynamoDB connection (TLS and one request) and the first \
invocation waits for DynamoDB Local; the peers' init opens none (compare the lazy-connection \
lever), so the ratio is bounded by DynamoDB Local's own latency";
const CPU: &str = "the slowest handler's time is parsing, validation, the memory store and its log \
line; profile it with the criterion benchmark";
const CPU_LEVEL: &str = "the release profile builds the crates every request runs through \
(Cargo.toml names them) at opt-level 3 and the rest at \"z\": measured side by side (criterion, interleaved), that took \
create-user from 14.1-19.2 µs to 11.9 and the event decode from 8.6-9.8 to 5.9 for 3.1 % more \
binary, where \"s\" everywhere cost 8.8 %; profiled at \"z\", the response's JSON serialisation \
was a quarter of list-users and the log line a fifth of create-user: what closes the rest is less \
per-request work (last month's figures predate the log line's metrics and the email and name \
canonicalisation), not the optimisation level";
const OWN: &str = "the floor is hello-world's own time, which is nothing but the Runtime API \
client's two HTTP exchanges and is mostly CPU (the CPU column); above it, create-user's is the \
SDK's DynamoDB request, and the handler (the handler cost table) is about 1 % of it. Compare the \
CPU rows, which count only what the process ran";
const OWN_CPU: &str = "sampled with perf, the Rust time per invocation above hello-world's has no \
hot spot (no symbol above 1.2 %): the SDK's orchestrator, interceptors and config layers, HTTP \
header maps, hyper, allocation, SigV4 and TLS, and a sixth of it in the kernel (the socket and \
the log file's writes); the SDK and HTTP stack at opt-level 3 took create-user 5 % lower for \
11.5 % more binary, so what closes it is fewer layers per request (a smaller HTTP client under \
the SDK, or DynamoDB's JSON protocol signed and sent directly), not the optimisation level";
const LOAD: &str = "under `POST` ours is the in-memory store growing by tens of thousands of users \
a second (hash map and B-tree growth, the history worker sharing the one core), not the handler, \
whose CPU cost is a few µs; a pre-sized store would remove the tail";
const SIZE: &str = "by symbol, what is left in create-user is the AWS SDK (client, orchestrator, \
SigV4), rustls and ring (ring's P-256 table alone is 151 KB), hyper with HTTP/2 (h2 is 257 KB, \
which aws-smithy-http-client turns on although DynamoDB speaks HTTP/1.1), encoding_rs (155 KB, \
through lambda_http) and std; the unwind tables (.eh_frame and its index, 675 KB) stay under \
panic = abort because `-C force-unwind-tables=no` cannot reach the precompiled std or ring's C \
objects. Closing it takes -Z build-std (nightly) or dropping the tables after the link (about \
0.68 MB), a non-PIE build (about 0.4 MB of dynamic relocations) and an HTTP/1.1-only SDK client \
(about 0.3 MB)";
const RSS: &str = "the tokio runtime, the SDK client's buffers and connection pool; see the \
roots and credentials levers";
const DYNAMO: &str = "DELETE and an email change read the user first (GetItem) to learn the \
address whose claim they free; removing the old claim from the table stream (the history worker \
already consumes it) would make each one conditional write, at the cost of the address staying \
taken for a second or so. A replayed Idempotency-Key costs a second request only on a retry";
const LIST: &str = "each page is one Query on an index; a rise would be DynamoDB Local's, not the \
query's";

/// Every budget, in the report's order.
#[rustfmt::skip]
pub(crate) const BUDGETS: &[Budget] = &[
    Budget { name: "own init work (init − its DynamoDB wait − hello-world's init, medians) of every function ≤ {t} ms",
        threshold: 1.0, measure: Measure::OwnInit, advice: INIT },
    Budget { name: "cold start ≥ {t}× faster than the Node.js create-user",
        threshold: 15.0, measure: Measure::ColdVsPeer("Node.js"), advice: PEERS },
    Budget { name: "cold start ≥ {t}× faster than the Python create-user",
        threshold: 25.0, measure: Measure::ColdVsPeer("Python"), advice: PEERS },
    Budget { name: "create-user's own time per warm invocation (p50) ≤ 1/{t} of Node.js's",
        threshold: 10.0, measure: Measure::OwnVsPeer("Node.js"), advice: OWN },
    Budget { name: "create-user's own time per warm invocation (p50) ≤ 1/{t} of Python's",
        threshold: 15.0, measure: Measure::OwnVsPeer("Python"), advice: OWN },
    Budget { name: "create-user's CPU time per warm invocation (the kernel's count) ≤ 1/{t} of Node.js's",
        threshold: 10.0, measure: Measure::CpuVsPeer("Node.js"), advice: OWN_CPU },
    Budget { name: "create-user's CPU time per warm invocation (the kernel's count) ≤ 1/{t} of Python's",
        threshold: 15.0, measure: Measure::CpuVsPeer("Python"), advice: OWN_CPU },
    Budget { name: "handler CPU ≤ {t} µs per request",
        threshold: 50.0, measure: Measure::HandlerCpu, advice: CPU },
    Budget { name: "create-user handler CPU ≤ {t} µs",
        threshold: 6.0, measure: Measure::HandlerCpuOf("create-user"), advice: CPU_LEVEL },
    Budget { name: "list-users handler CPU ≤ {t} µs",
        threshold: 19.0, measure: Measure::HandlerCpuOf("list-users"), advice: CPU_LEVEL },
    Budget { name: "`GET /users/{id}`: ≥ {t}× Node.js's requests/s, p99 ≤ ⅓",
        threshold: 3.0, measure: Measure::LoadVsPeer("GET /users/{id}", "Node.js"), advice: LOAD },
    Budget { name: "`GET /users/{id}`: ≥ {t}× Python's requests/s, p99 ≤ ⅓",
        threshold: 5.0, measure: Measure::LoadVsPeer("GET /users/{id}", "Python"), advice: LOAD },
    Budget { name: "`POST /users`: ≥ {t}× Node.js's requests/s, p99 ≤ ⅓",
        threshold: 3.0, measure: Measure::LoadVsPeer("POST /users", "Node.js"), advice: LOAD },
    Budget { name: "`POST /users`: ≥ {t}× Python's requests/s, p99 ≤ ⅓",
        threshold: 5.0, measure: Measure::LoadVsPeer("POST /users", "Python"), advice: LOAD },
    Budget { name: "every release binary ≤ {t} MB (x86_64, the harness build)",
        threshold: 4.0, measure: Measure::Binary, advice: SIZE },
    Budget { name: "every zip ≤ {t} MB",
        threshold: 2.0, measure: Measure::Zip, advice: SIZE },
    Budget { name: "every arm64 bootstrap ≤ {t} MiB (as `sam build` makes it)",
        threshold: 4.0, measure: Measure::Arm64, advice: SIZE },
    Budget { name: "peak RSS ≤ {t} MiB",
        threshold: 10.0, measure: Measure::PeakRss, advice: RSS },
    Budget { name: "exactly {t} DynamoDB request per successful API call",
        threshold: 1.0, measure: Measure::DynamoRequests, advice: DYNAMO },
    Budget { name: "flat list latency: the large table's first page p50 ≤ {t}× the small one's",
        threshold: 1.25, measure: Measure::FlatList, advice: LIST },
    Budget { name: "flat list cost: the large table's first page reads ≤ {t}× the items the small one's does",
        threshold: 1.0, measure: Measure::FlatListReads, advice: LIST },
];

const MIB: f64 = 1024.0 * 1024.0;

fn verdict(holds: bool, measured: String) -> Verdict {
    match holds {
        true => Verdict::Holds(measured),
        false => Verdict::Missed(measured),
    }
}

fn not_measured(why: &str) -> Verdict {
    Verdict::NotMeasured(format!("not measured: {why}"))
}

/// The function of `runs` with the largest `value`.
fn worst(runs: &[FunctionRun], value: impl Fn(&FunctionRun) -> f64) -> Option<&FunctionRun> {
    let ours = runs.iter().filter(|f| f.name != HELLO);
    ours.max_by(|a, b| value(a).total_cmp(&value(b)))
}

impl Budget {
    /// The budget's name with its threshold.
    pub(crate) fn title(&self) -> String {
        self.name.replace("{t}", &self.threshold.to_string())
    }

    /// Measures the budget on `report`.
    pub(crate) fn check(&self, report: &Report) -> Verdict {
        let t = self.threshold;
        let hello = report.functions.iter().find(|f| f.name == HELLO);
        // create-user and the peer's create-user whose name holds `peer`.
        let create_and = |peer: &str| {
            let ours = report.functions.iter().find(|f| f.name == "create-user")?;
            let theirs = report
                .peer_functions
                .iter()
                .find(|f| f.name.contains(peer))?;
            Some((ours, theirs))
        };
        let largest = |bytes: fn(&Size) -> u64, what: &str| {
            let sizes = report.sizes.iter().filter(|s| s.name != HELLO);
            let Some(size) = sizes.max_by_key(|s| bytes(s)) else {
                return not_measured("no sizes");
            };
            let value = bytes(size) as f64 / 1e6;
            verdict(
                value <= t,
                format!("largest {}: {value:.2} {what}", size.name),
            )
        };
        match self.measure {
            Measure::OwnInit => {
                let own = |run: &FunctionRun| run.init_without_dynamo_ms().p50;
                let (Some(hello), Some(run)) = (hello, worst(&report.functions, own)) else {
                    return not_measured("no cold starts");
                };
                let (init, wait, base) = (
                    run.init_ms().p50,
                    run.init_wait_ms().p50,
                    hello.init_ms().p50,
                );
                let work = own(run) - base;
                let text = format!(
                    "worst {}: {} ms (init {} − DynamoDB {} − hello-world {} ms)",
                    run.name,
                    ms(work),
                    ms(init),
                    ms(wait),
                    ms(base)
                );
                verdict(work <= t, text)
            }
            Measure::ColdVsPeer(peer) => {
                let Some((ours, theirs)) = create_and(peer) else {
                    return not_measured("no peer run");
                };
                let ratio = theirs.cold_ms().p50 / ours.cold_ms().p50;
                let init = theirs.init_ms().p50 / ours.init_ms().p50;
                let (ours, theirs) = (ms(ours.cold_ms().p50), ms(theirs.cold_ms().p50));
                verdict(
                    ratio >= t,
                    format!("{ours} vs {theirs} ms = {ratio:.1}× (init alone {init:.1}×)"),
                )
            }
            Measure::OwnVsPeer(peer) => {
                let (Some((ours, theirs)), Some(hello)) = (create_and(peer), hello) else {
                    return not_measured("no peer run");
                };
                let (ours, theirs) = (ours.own_ms().p50, theirs.own_ms().p50);
                let ratio = theirs / ours;
                let floor = us(hello.own_ms().p50);
                verdict(
                    ratio >= t,
                    format!(
                        "{} vs {} µs = 1/{ratio:.1} (hello-world's: {floor} µs)",
                        us(ours),
                        us(theirs)
                    ),
                )
            }
            Measure::CpuVsPeer(peer) => {
                let Some((ours, theirs)) = create_and(peer) else {
                    return not_measured("no peer run");
                };
                let (Some(ours), Some(theirs)) = (ours.cpu_ms(), theirs.cpu_ms()) else {
                    return not_measured("the kernel keeps no schedstat");
                };
                let ratio = theirs / ours;
                verdict(
                    ratio >= t,
                    format!("{} vs {} µs = 1/{ratio:.1}", us(ours), us(theirs)),
                )
            }
            Measure::HandlerCpuOf(handler) => {
                match report.handlers.iter().find(|h| h.name == handler) {
                    Some(cost) => verdict(
                        cost.median_us <= t,
                        format!(
                            "{:.1} µs (95 % interval {:.1}–{:.1})",
                            cost.median_us, cost.low_us, cost.high_us
                        ),
                    ),
                    None => not_measured("no criterion result"),
                }
            }
            Measure::HandlerCpu => {
                let slowest = report
                    .handlers
                    .iter()
                    .max_by(|a, b| a.median_us.total_cmp(&b.median_us));
                let Some(slowest) = slowest else {
                    return not_measured("no criterion results");
                };
                verdict(
                    slowest.median_us <= t,
                    format!("worst {}: {:.1} µs", slowest.name, slowest.median_us),
                )
            }
            Measure::LoadVsPeer(scenario, peer) => {
                let run = |server: &str| {
                    report
                        .load
                        .iter()
                        .find(|r| r.server.starts_with(server) && r.scenario == scenario)
                };
                let (Some(ours), Some(theirs)) = (run("Rust"), run(peer)) else {
                    return not_measured("no load run");
                };
                let (ratio, p99) = (ours.rps / theirs.rps, ours.p99_ms / theirs.p99_ms);
                let (rps, their_rps, p99_ms, their_p99) =
                    (ours.rps, theirs.rps, ms(ours.p99_ms), ms(theirs.p99_ms));
                let text = format!(
                    "{rps:.0} vs {their_rps:.0} req/s = {ratio:.1}×; p99 {p99_ms} vs {their_p99} ms = {p99:.2}×"
                );
                verdict(ratio >= t && p99 <= 1.0 / 3.0, text)
            }
            Measure::Binary => largest(|s| s.binary_bytes, "MB"),
            Measure::Zip => largest(|s| s.zip_bytes, "MB"),
            Measure::Arm64 => {
                let ours = report.sizes.iter().filter(|s| s.name != HELLO);
                let arm64: Option<Vec<_>> = ours.map(|s| Some((s.arm64_bytes?, &s.name))).collect();
                let Some((bytes, name)) = arm64.and_then(|sizes| sizes.into_iter().max()) else {
                    return not_measured(
                        "a function has no bootstrap in .aws-sam/build; run `sam build` first",
                    );
                };
                let value = bytes as f64 / MIB;
                verdict(value <= t, format!("largest {name}: {value:.2} MiB"))
            }
            Measure::PeakRss => match worst(&report.functions, |r| r.peak_rss_kib as f64) {
                Some(run) => verdict(
                    run.peak_rss_kib as f64 <= t * 1024.0,
                    format!("largest {}: {} MiB", run.name, mib(run.peak_rss_kib)),
                ),
                None => not_measured("no runs"),
            },
            Measure::DynamoRequests => {
                let successful = report
                    .dynamo_costs
                    .iter()
                    .filter(|c| c.status.is_some_and(|s| s < 400));
                let off: Vec<String> = successful
                    .filter(|c| c.calls.len() as f64 != t)
                    .map(|c| format!("{} ({})", c.case, c.calls.len()))
                    .collect();
                match (report.dynamo_costs.is_empty(), off.is_empty()) {
                    (true, _) => not_measured("no DynamoDB runs"),
                    (false, true) => verdict(true, "every successful call: 1".to_owned()),
                    (false, false) => verdict(false, format!("not 1: {}", off.join("; "))),
                }
            }
            Measure::FlatList => {
                let [small, large] = report.list_scaling.as_slice() else {
                    return not_measured("no list runs");
                };
                let p50 = |scale: &ListScale| scale.pages.first().map_or(0.0, |p| p.latency.p50);
                let ratio = p50(large) / p50(small);
                let (users, more, from, to) =
                    (small.users, large.users, ms(p50(small)), ms(p50(large)));
                verdict(
                    ratio <= t,
                    format!("{users} → {more} users: {from} → {to} ms = {ratio:.2}×"),
                )
            }
            Measure::FlatListReads => {
                let [small, large] = report.list_scaling.as_slice() else {
                    return not_measured("no list runs");
                };
                let first =
                    |scale: &ListScale| scale.pages.first().map(|p| (p.scanned, p.capacity));
                let (Some((small_read, small_units)), Some((large_read, large_units))) =
                    (first(small), first(large))
                else {
                    return not_measured("no list pages");
                };
                let (users, more) = (small.users, large.users);
                verdict(
                    large_read as f64 <= t * small_read as f64 && small_read > 0,
                    format!(
                        "{users} → {more} users: {small_read} → {large_read} items read, \
                         {small_units:.1} → {large_units:.1} capacity units"
                    ),
                )
            }
        }
    }
}
