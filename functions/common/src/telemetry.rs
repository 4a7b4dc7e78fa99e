//! Structured JSON logs, one object per line, as Lambda's JSON log format
//! expects.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// The crates whose logs follow the configured level all the way down:
/// ours, which never log a token, a body, an email address or a name at
/// any level.
const OUR_CRATES: [&str; 8] = [
    "common",
    "create_user",
    "get_user",
    "list_users",
    "update_user",
    "delete_user",
    "list_user_events",
    "history_worker",
];

/// Installs the JSON log subscriber with [`filter`]. The level comes from
/// `RUST_LOG`, else from Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
/// Calling it again is harmless.
pub fn init() {
    let level = ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter(level))
        .try_init();
}

/// `level` for our crates, and at most `info` for every dependency: at
/// `debug` and `trace` the Lambda runtime logs raw events (the
/// `Authorization` header, bodies, claims) and the AWS SDK logs request
/// bodies (email addresses, names), so those levels are never theirs.
pub fn filter(level: LevelFilter) -> EnvFilter {
    let dependencies = level.min(LevelFilter::INFO);
    let directives = OUR_CRATES
        .iter()
        .fold(dependencies.to_string(), |directives, krate| {
            format!("{directives},{krate}={level}")
        });
    EnvFilter::new(directives)
}
