//! The CPU cost of each function's `handle` on the memory store: parsing
//! and validating the request, the store call, and writing the response and
//! its log line, for one request. Requests are built outside the measured
//! time (from the same API Gateway fixture as the handler tests), and the
//! time is the thread's CPU time, so other processes on the machine do not
//! inflate it.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture must stop the run loudly"
)]

use std::future::Future;
use std::time::Duration;

use common::domain::{Email, Timestamp, User, UserId, UserName};
use common::lambda_http::{Body, Request, Response};
use common::store::{MemoryStore, UserStore};
use common::testing::TestRequest;
use cpu_time::ThreadTime;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

/// Requests built, then handled, per measured batch.
const BATCH: u64 = 200;

fn block_on<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    runtime.block_on(future)
}

fn user(n: u64) -> User {
    User::new(
        Email::parse(&format!("user{n}@example.com")).expect("email"),
        UserName::parse(&format!("User {n}")).expect("name"),
        Timestamp::now(),
    )
}

/// Measures `handle` over `iters` requests made by `make` (untimed), in
/// batches; `prepare` runs before each batch, untimed, on the store.
fn measure(
    store: &MemoryStore,
    iters: u64,
    counter: &mut u64,
    mut prepare: impl FnMut(&MemoryStore, u64) -> Vec<Request>,
    handle: impl Fn(&MemoryStore, Request) -> Response<Body>,
) -> Duration {
    let mut spent = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(BATCH);
        let requests = prepare(store, *counter);
        *counter += batch;
        let requests: Vec<Request> = requests.into_iter().take(batch as usize).collect();
        let started = ThreadTime::now();
        for request in requests {
            std::hint::black_box(handle(store, request));
        }
        spent += started.elapsed();
        left -= batch;
    }
    spent
}

/// The functions' JSON log subscriber, writing nowhere: each request's log
/// line (with its metrics) is formatted, as on Lambda, but not printed.
fn install_logging() {
    common::telemetry::init_with_writer(std::io::sink);
}

const EVENT: &str = include_str!("../../../functions/common/fixtures/apigw-v2-request.json");

fn handlers(c: &mut Criterion) {
    install_logging();
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
                std::hint::black_box(
                    common::lambda_http::request::from_str(std::hint::black_box(EVENT))
                        .expect("event"),
                );
            }
            started.elapsed()
        });
    });

    group.bench_function("create-user", |b| {
        let store = MemoryStore::new();
        let mut counter = 0;
        b.iter_custom(|iters| {
            measure(
                &store,
                iters,
                &mut counter,
                |_, first| {
                    (first..first + BATCH)
                        .map(|n| {
                            TestRequest::new("POST /users", "/users")
                                .json(&json!({"email": format!("new{n}@example.com"), "name": "Ada Lovelace"}))
                                .build()
                        })
                        .collect()
                },
                |store, request| block_on(&runtime, create_user::handle(store, request)),
            )
        });
    });

    let store = MemoryStore::new();
    let mut ids: Vec<UserId> = Vec::new();
    for n in 0..1_000 {
        let user = user(n);
        block_on(&runtime, store.create(&user, None)).expect("create");
        ids.push(user.id);
    }

    group.bench_function("get-user", |b| {
        let mut counter = 0;
        b.iter_custom(|iters| {
            measure(
                &store,
                iters,
                &mut counter,
                |_, first| {
                    (first..first + BATCH)
                        .map(|n| {
                            let id = ids[n as usize % ids.len()];
                            TestRequest::new("GET /users/{id}", &format!("/users/{id}"))
                                .id(id)
                                .build()
                        })
                        .collect()
                },
                |store, request| block_on(&runtime, get_user::handle(store, request)),
            )
        });
    });

    group.bench_function("list-users", |b| {
        let mut counter = 0;
        b.iter_custom(|iters| {
            measure(
                &store,
                iters,
                &mut counter,
                |_, _| {
                    (0..BATCH)
                        .map(|_| TestRequest::new("GET /users", "/users?limit=20").build())
                        .collect()
                },
                |store, request| block_on(&runtime, list_users::handle(store, request)),
            )
        });
    });

    group.bench_function("update-user", |b| {
        let mut counter = 0;
        b.iter_custom(|iters| {
            measure(
                &store,
                iters,
                &mut counter,
                |_, first| {
                    (first..first + BATCH)
                        .map(|n| {
                            let id = ids[n as usize % ids.len()];
                            TestRequest::new("PATCH /users/{id}", &format!("/users/{id}"))
                                .id(id)
                                .body(
                                    "application/merge-patch+json",
                                    format!(r#"{{"name":"Renamed {n}"}}"#),
                                )
                                .build()
                        })
                        .collect()
                },
                |store, request| block_on(&runtime, update_user::handle(store, request)),
            )
        });
    });

    group.bench_function("list-user-events", |b| {
        let mut counter = 0;
        b.iter_custom(|iters| {
            measure(
                &store,
                iters,
                &mut counter,
                |_, first| {
                    (first..first + BATCH)
                        .map(|n| {
                            let id = ids[n as usize % ids.len()];
                            TestRequest::new(
                                "GET /users/{id}/events",
                                &format!("/users/{id}/events"),
                            )
                            .id(id)
                            .build()
                        })
                        .collect()
                },
                |store, request| block_on(&runtime, list_user_events::handle(store, request)),
            )
        });
    });

    group.bench_function("delete-user", |b| {
        let store = MemoryStore::new();
        let mut counter = 10_000;
        b.iter_custom(|iters| {
            measure(
                &store,
                iters,
                &mut counter,
                |store, first| {
                    (first..first + BATCH)
                        .map(|n| {
                            let user = user(n);
                            block_on(&runtime, store.create(&user, None)).expect("create");
                            let id = user.id;
                            TestRequest::new("DELETE /users/{id}", &format!("/users/{id}"))
                                .id(id)
                                .build()
                        })
                        .collect()
                },
                |store, request| block_on(&runtime, delete_user::handle(store, request)),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, handlers);
criterion_main!(benches);
