//! The CPU cost of each function's `handle` on the memory store: parsing
//! and validating the request, the store call, and writing the response and
//! its log line, for one request. The routes come from template.yaml and
//! the handlers from the local API's table of them; requests are built
//! outside the measured time (with the shared API Gateway event builder),
//! and the time is the thread's CPU time, so other processes on the machine
//! do not inflate it.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture must stop the run loudly"
)]

use std::time::Duration;

use common::domain::{Email, Timestamp, User, UserId, UserName};
use common::lambda_http::Request;
use cpu_time::ThreadTime;
use criterion::{Criterion, criterion_group, criterion_main};
use local_api::gateway::server::HANDLERS;
use local_api::stack::template::Template;
use storage::{MemoryStore, UserStore};

#[allow(
    dead_code,
    reason = "the harness's table of API calls; not all of it is used here"
)]
#[path = "../src/calls.rs"]
mod calls;

/// Requests built, then handled, per measured batch.
const BATCH: u64 = 200;
/// Users in the store before each benchmark.
const USERS: u64 = 1_000;

const EVENT: &str = include_str!("../../../functions/common/fixtures/apigw-v2-request.json");

fn user(n: u64) -> User {
    User::new(
        Email::parse(&format!("user{n}@example.com")).expect("email"),
        UserName::parse(&format!("User {n}")).expect("name"),
        Timestamp::now(),
    )
}

fn handlers(c: &mut Criterion) {
    // The functions' JSON log subscriber, writing nowhere: each request's
    // log line (with its metrics) is formatted, as on Lambda, not printed.
    telemetry::log::init_with_writer(std::io::sink);
    // Timers on, as in the functions' runtime: every request runs under its
    // time budget.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("handle");

    // Not a handler: what lambda_http spends turning the event into a request.
    group.bench_function("(decode API Gateway event)", |b| {
        b.iter_custom(|iters| {
            let started = ThreadTime::now();
            for _ in 0..iters {
                let event = std::hint::black_box(EVENT);
                std::hint::black_box(common::lambda_http::request::from_str(event).expect("event"));
            }
            started.elapsed()
        });
    });

    let template = Template::load(&local_api::default_template_path()).expect("template.yaml");
    for route in &template.routes {
        let (_, handler) = HANDLERS
            .iter()
            .find(|(name, _)| *name == route.function)
            .expect("every routed function has a handler");
        let call = calls::workload(&template, route).expect("every route has a call in calls.rs");
        let store = MemoryStore::new();
        let created = |n: u64| -> UserId {
            let user = user(n);
            runtime.block_on(store.create(&user, None)).expect("create");
            user.id
        };
        let ids: Vec<UserId> = (0..USERS).map(created).collect();
        let deletes = route.method == "DELETE";
        let request = |n: u64| -> Request {
            // A user of its own for each delete.
            let id = match deletes {
                true => created(USERS + n),
                false => ids[n as usize % ids.len()],
            };
            // The workload's user ids all name this request's user.
            let named = ["user", "other", "doomed"].map(|name| (name, id.to_string()));
            let vars = [
                &named[..],
                &[("n", n.to_string()), ("tag", "bench".to_owned())],
            ]
            .concat();
            calls::request(&template, call, &vars)
                .expect("the call fits its route")
                .build()
        };
        let mut counter = 0;
        group.bench_function(route.function.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(BATCH);
                    let requests: Vec<Request> = (counter..counter + batch).map(&request).collect();
                    counter += batch;
                    let started = ThreadTime::now();
                    for request in requests {
                        std::hint::black_box(runtime.block_on(handler(&store, request)));
                    }
                    spent += started.elapsed();
                    left -= batch;
                }
                spent
            });
        });
    }
    group.finish();
}

criterion_group!(benches, handlers);
criterion_main!(benches);
