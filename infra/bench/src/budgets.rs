//! The budgets a run is held to. Each budget is one value that carries its
//! name, its threshold, how it is measured from the report and what would
//! close it when missed, so the advice cannot come apart from its budget.

use crate::lambda::FunctionRun;
use crate::report::{ListScale, Report, Size, mib, ms};
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

/// What a budget compares, read from the report: the worst function's
/// median init or cold start over hello-world's; a peer's median cold start
/// over create-user's; the slowest handler's CPU µs; ours over a peer's
/// requests/s in a scenario (with p99 at most a third of theirs); the
/// largest binary, zip (MB) or arm64 bootstrap (MiB); the largest peak RSS
/// (MiB); DynamoDB requests per successful call; the large table's list
/// latency over the small one's.
#[derive(Debug, Clone, Copy)]
enum Measure {
    InitVsHello,
    ColdVsHello,
    ColdVsPeer(&'static str),
    HandlerCpu,
    LoadVsPeer(&'static str, &'static str),
    Binary,
    Zip,
    Arm64,
    PeakRss,
    DynamoRequests,
    FlatList,
}

/// A budget's state, with the measured figure (the floor, when missed).
#[derive(Debug)]
pub(crate) enum Verdict {
    Holds(String),
    Missed(String),
    NotMeasured(String),
}

const INIT: &str = "what is left above hello-world is the DynamoDB connection opened at init: \
DNS, TCP, a TLS handshake and one DescribeEndpoints round trip, here to DynamoDB Local through the \
harness's TLS proxy (the lazy-connection lever shows init without it); building the SDK client \
takes about 0.4 ms and the log subscriber 0.03 ms";
const COLD: &str = "the first invocation's DynamoDB calls: DynamoDB Local (a JVM on SQLite) takes \
milliseconds per call, which hello-world never waits for; its warm p50 for the same call is the \
floor of the first invocation";
const PEERS: &str = "our init opens the DynamoDB connection (TLS and one request) and the first \
invocation waits for DynamoDB Local; the peers' init opens none (compare the lazy-connection \
lever), so the ratio is bounded by DynamoDB Local's own latency";
const CPU: &str = "the slowest handler's time is parsing, validation, the memory store and its log \
line; profile it with the criterion benchmark";
const LOAD: &str = "under `POST` ours is the in-memory store growing by tens of thousands of users \
a second (hash map and B-tree growth, the history worker sharing the one core), not the handler, \
whose CPU cost is a few µs; a pre-sized store would remove the tail";
const SIZE: &str = "what is left is the AWS SDK (client, orchestrator, SigV4, and aws-config's \
default chain with its STS client, about 0.4 MB, kept for runs off Lambda), rustls and ring, hyper \
with HTTP/2, and std (formatting, the backtrace printer); untried levers: no default chain, a \
non-PIE build (no dynamic relocations, about 0.4 MB), no unwind tables under panic = abort (about \
0.5 MB), -Z build-std";
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
    Budget { name: "init (median) of every function ≤ {t}× hello-world's",
        threshold: 2.0, measure: Measure::InitVsHello, advice: INIT },
    Budget { name: "cold start (init + first invocation, median) of every function ≤ {t}× hello-world's",
        threshold: 3.0, measure: Measure::ColdVsHello, advice: COLD },
    Budget { name: "cold start ≥ {t}× faster than the Node.js create-user",
        threshold: 15.0, measure: Measure::ColdVsPeer("Node.js"), advice: PEERS },
    Budget { name: "cold start ≥ {t}× faster than the Python create-user",
        threshold: 25.0, measure: Measure::ColdVsPeer("Python"), advice: PEERS },
    Budget { name: "handler CPU ≤ {t} µs per request",
        threshold: 50.0, measure: Measure::HandlerCpu, advice: CPU },
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
            Measure::InitVsHello | Measure::ColdVsHello => {
                let of = match self.measure {
                    Measure::InitVsHello => FunctionRun::init_ms,
                    _ => FunctionRun::cold_ms,
                };
                let (Some(hello), Some(run)) = (hello, worst(&report.functions, |r| of(r).p50))
                else {
                    return not_measured("no cold starts");
                };
                let (ours, base) = (of(run), of(hello));
                let ratio = ours.p50 / base.p50;
                let (p50, base_p50) = (ms(ours.p50), ms(base.p50));
                let (min, base_min) = (ms(ours.min), ms(base.min));
                let text = format!(
                    "worst {}: {p50} vs {base_p50} ms = {ratio:.2}× (min {min} vs {base_min} ms)",
                    run.name
                );
                verdict(ratio <= t, text)
            }
            Measure::ColdVsPeer(peer) => {
                let create = report.functions.iter().find(|f| f.name == "create-user");
                let theirs = report.peer_functions.iter().find(|f| f.name.contains(peer));
                let (Some(ours), Some(theirs)) = (create, theirs) else {
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
                let p50 = |scale: &ListScale| scale.pages.first().map_or(0.0, |p| p.1.p50);
                let ratio = p50(large) / p50(small);
                let (users, more, from, to) =
                    (small.users, large.users, ms(p50(small)), ms(p50(large)));
                verdict(
                    ratio <= t,
                    format!("{users} → {more} users: {from} → {to} ms = {ratio:.2}×"),
                )
            }
        }
    }
}
