//! The deployed shape, run locally (`local-api --lambda`): what only shows
//! when each function is its own process under its own role. The HTTP
//! contract itself runs in `--lambda` mode too (`on_every_backend!`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use local_api::iam::Policy;
use local_api::iam::coverage::AccessLog;
use local_api::iam::dynamodb::KeySchema;
use local_api::iam::proxy::{IamProxy, Principal};
use local_api::lambda::LambdaOptions;
use local_api::stack::deployment::LocalResources;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Api, Backend, body_json, dynamodb_endpoint, lambda_options, on_every_backend,
};

/// A folder of links to the function binaries where one function is a
/// script instead; removed when dropped.
pub(crate) struct Binaries {
    pub(crate) options: LambdaOptions,
}

impl Binaries {
    /// The binaries with `function` replaced by `script`, in which `REAL`
    /// stands for the real binary and `DIR` for this folder.
    pub(crate) fn with(function: &str, script: &str) -> Self {
        let options = lambda_options();
        let dir = std::env::temp_dir().join(format!("local-api-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        for entry in std::fs::read_dir(&options.dir).expect("binaries folder") {
            let path = entry.expect("entry").path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && path.is_file()
                && !name.contains('.')
            {
                std::os::unix::fs::symlink(&path, dir.join(name)).expect("link");
            }
        }
        let target = dir.join(function);
        let _ = std::fs::remove_file(&target);
        let script = script
            .replace("REAL", &options.dir.join(function).display().to_string())
            .replace("DIR", &dir.display().to_string());
        std::fs::write(&target, script).expect("script");
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("executable");
        Self {
            options: LambdaOptions { dir, ..options },
        }
    }
}

impl Drop for Binaries {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.options.dir);
    }
}

/// Takes the next invocation from the Runtime API, then runs `then`.
fn script_taking_an_invocation(then: &str) -> String {
    format!(
        r#"#!/usr/bin/env bash
exec 3<>"/dev/tcp/${{AWS_LAMBDA_RUNTIME_API%:*}}/${{AWS_LAMBDA_RUNTIME_API#*:}}"
printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: local\r\n\r\n' >&3
read -r _ <&3
{then}
"#
    )
}

/// Waits until `function` has `count` idle instances: an instance whose
/// extensions still work on an invocation after its response is busy, as
/// on Lambda, and a request meanwhile would start another.
async fn until_idle(api: &Api, function: &str, count: usize) {
    let pool = &api.functions().pools[function];
    let started = Instant::now();
    while pool.idle() < count {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{function}: {} idle instances after 10 s, not {count}",
            pool.idle()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn get_status(api: &Api) -> (u16, Value) {
    api.get_json(&format!("/users/{}", ulid::Ulid::new())).await
}

const GATEWAY_500: &str = r#"{"message":"Internal Server Error"}"#;

/// `X-Note: caf\xE9`: one byte outside UTF-8, legal `obs-text` in HTTP/1.1.
fn latin1_note() -> reqwest::header::HeaderValue {
    reqwest::header::HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a legal header byte")
}

/// The same request answers the same in-process and in `--lambda` mode:
/// the byte reaches the function (read as ISO-8859-1, see
/// `local_api::gateway::server`), not a 500 from the local API.
async fn a_header_byte_outside_utf8_reaches_the_function(backend: Backend) {
    let api = Api::local(backend).await;
    let user = api.created(&api.email("latin1"), "Ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    let response = api
        .request(Method::GET, &path)
        .header("x-note", latin1_note())
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200, "{}", body_json(response).await);
}

on_every_backend!(a_header_byte_outside_utf8_reaches_the_function);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_byte_outside_utf8_is_in_the_lambda_event_read_as_latin1() {
    // Writes the event of its first invocation to DIR/event, then exits.
    let script = script_taking_an_invocation(
        r#"length=0
while IFS= read -r line <&3; do
  line="${line%$'\r'}"
  [ -z "$line" ] && break
  case "${line,,}" in content-length:*) length="${line#*:}"; length="${length// /}" ;; esac
done
head -c "$length" <&3 > 'DIR/event'
exit 1"#,
    );
    let binaries = Binaries::with("get-user", &script);
    let api = Api::local_with(Backend::Lambda, None, binaries.options.clone()).await;
    let response = api
        .request(Method::GET, &format!("/users/{}", ulid::Ulid::new()))
        .header("x-note", latin1_note())
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 500, "the script exits without answering");
    let event: Value = serde_json::from_slice(
        &std::fs::read(binaries.options.dir.join("event")).expect("the event was written"),
    )
    .expect("the event is JSON");
    assert_eq!(event["headers"]["x-note"], "caf\u{e9}", "{event}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_function_answers_like_api_gateway_and_the_next_request_gets_a_fresh_instance() {
    // Crashes while handling its first invocation, then behaves.
    let script = format!(
        "#!/usr/bin/env bash\nif [ ! -e 'DIR/crashed' ]; then\n  touch 'DIR/crashed'\n{crash}fi\nexec 'REAL'\n",
        crash = script_taking_an_invocation("  exit 1").replace("#!/usr/bin/env bash\n", ""),
    );
    let binaries = Binaries::with("get-user", &script);
    let api = Api::local_with(Backend::Lambda, None, binaries.options.clone()).await;
    let (status, body) = get_status(&api).await;
    assert_eq!((status, body.to_string()), (500, GATEWAY_500.to_owned()));
    let (status, _) = get_status(&api).await;
    assert_eq!(status, 404, "a fresh instance serves the next request");
    until_idle(&api, "get-user", 1).await;
    let (status, _) = get_status(&api).await;
    assert_eq!(status, 404);
    assert_eq!(
        api.functions().pools["get-user"].inits().len(),
        2,
        "the crashed instance was replaced once, the fresh one stayed warm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_past_its_timeout_answers_500_after_the_templates_timeout() {
    let binaries = Binaries::with("get-user", &script_taking_an_invocation("exec sleep 60"));
    let api = Api::local_with(Backend::Lambda, None, binaries.options.clone()).await;
    let started = Instant::now();
    let (status, body) = get_status(&api).await;
    let took = started.elapsed();
    assert_eq!((status, body.to_string()), (500, GATEWAY_500.to_owned()));
    assert!(
        took >= Duration::from_secs(6),
        "answered after {took:?}, before the template's 6 s timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_failing_its_init_answers_500() {
    let script = "#!/usr/bin/env bash\necho 'init failed on purpose' >&2\nexit 3\n";
    let binaries = Binaries::with("get-user", script);
    let api = Api::local_with(Backend::Lambda, None, binaries.options.clone()).await;
    let (status, body) = get_status(&api).await;
    assert_eq!((status, body.to_string()), (500, GATEWAY_500.to_owned()));
    assert!(api.functions().pools["get-user"].inits().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_instances_serve_one_request_at_a_time_and_scale_to_the_limit() {
    let api = Api::local_with(Backend::Lambda, None, lambda_options()).await;
    for _ in 0..3 {
        assert_eq!(get_status(&api).await.0, 404);
        until_idle(&api, "get-user", 1).await;
    }
    let pool = &api.functions().pools["get-user"];
    assert_eq!(
        pool.inits().len(),
        1,
        "sequential requests reuse the warm instance"
    );
    let statuses = join_all((0..12).map(|_| get_status(&api))).await;
    assert!(statuses.iter().all(|(status, _)| *status == 404));
    let instances = pool.inits().len();
    assert!(
        (1..=lambda_options().instances).contains(&instances),
        "{instances} instances for 12 concurrent requests"
    );
    println!("get-user cold starts through --lambda: {:?}", pool.inits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_api_serves_every_route_in_lambda_mode() {
    let api = Api::local_with(Backend::Lambda, None, lambda_options()).await;
    let user = api.created(&api.email("open"), "Ada").await;
    let path = format!("/users/{}", user["id"].as_str().expect("id"));
    assert_eq!(api.get_json(&path).await.0, 200);
    assert_eq!(api.get_json("/users").await.0, 200);
    let patched = api
        .request(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(&json!({"email": api.email("moved")}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 200);
    let deleted = api
        .request(Method::DELETE, &path)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 204, "{}", body_json(deleted).await);
    let started = Instant::now();
    loop {
        let (status, page) = api.get_json(&format!("{path}/events")).await;
        if page["items"]
            .as_array()
            .is_some_and(|items| items.len() == 3)
        {
            assert_eq!(page["items"][2]["type"], "deleted");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{status} {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_stream_record_is_retried_then_dead_lettered_and_the_shard_moves_on() {
    let api = Api::local_with(Backend::Lambda, None, lambda_options()).await;
    let client = local_api::dynamodb::table::local_client(&dynamodb_endpoint()).await;
    let poison = ulid::Ulid::new();
    client
        .put_item()
        .table_name(api.table())
        .item("pk", AttributeValue::S(format!("USER#{poison}")))
        .item("sk", AttributeValue::S("PROFILE".to_owned()))
        .send()
        .await
        .expect("a user item the worker cannot read");
    let dead_letters = &api.functions().dead_letters;
    let started = Instant::now();
    let letter = loop {
        if let Some(letter) = dead_letters.all().into_iter().next() {
            break letter;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no dead letter after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        letter["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(
        letter["requestContext"]["approximateInvokeCount"], 6,
        "the first delivery and MaximumRetryAttempts (5) retries: {letter}"
    );
    let batch = &letter["DDBStreamBatchInfo"];
    assert_eq!(batch["batchSize"], 1, "{letter}");
    assert_eq!(batch["startSequenceNumber"], batch["endSequenceNumber"]);
    assert!(
        batch["streamArn"]
            .as_str()
            .is_some_and(|a| a.contains("/stream/"))
    );
    assert!(
        !letter.to_string().contains(&poison.to_string()),
        "coordinates only, no data: {letter}"
    );

    let user = api.created(&api.email("after"), "Ada").await;
    let events = format!("/users/{}/events", user["id"].as_str().expect("id"));
    let started = Instant::now();
    while api.get_json(&events).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "history stalled behind the poison record"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_role_does_not_allow_gets_dynamodbs_access_denied() {
    let local = LocalResources {
        table: crate::support::fresh_table(),
        stream_arn: None,
    };
    let policy = Policy::parse(
        "GetOnly",
        &json!({"Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": local.table_arn()}]}),
    )
    .expect("policy");
    let principal = Principal {
        function: "get-user".to_owned(),
        session: "arn:aws:sts::000000000000:assumed-role/GetUserFunctionRole/get-user".to_owned(),
        policies: vec![policy],
    };
    let log = Arc::new(AccessLog::default());
    let proxy = IamProxy::start(
        &dynamodb_endpoint(),
        local_api::dynamodb::table::LOCAL_ACCESS_KEY,
        HashMap::from([("AKIAGETONLY".to_owned(), principal)]),
        KeySchema {
            table: "pk".to_owned(),
            indexes: Default::default(),
        },
        local.clone(),
        Arc::clone(&log),
    )
    .await
    .expect("proxy");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIAGETONLY",
            "secret",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let key = |k: &str| AttributeValue::S(k.to_owned());
    let refused = client
        .put_item()
        .table_name(&local.table)
        .item("pk", key("USER#1"))
        .item("sk", key("PROFILE"))
        .send()
        .await
        .expect_err("PutItem is not granted");
    assert_eq!(refused.code(), Some("AccessDeniedException"));
    let message = refused.message().unwrap_or_default();
    assert!(
        message.contains("is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/"),
        "{message}"
    );
    let passed = client
        .get_item()
        .table_name(&local.table)
        .key("pk", key("USER#1"))
        .key("sk", key("PROFILE"))
        .send()
        .await
        .expect_err("the table does not exist");
    assert_eq!(
        passed.code(),
        Some("ResourceNotFoundException"),
        "an allowed call reaches DynamoDB"
    );
    let decisions: Vec<(String, bool)> = log
        .records()
        .into_iter()
        .map(|r| (r.action, r.allowed))
        .collect();
    assert_eq!(
        decisions,
        [
            ("dynamodb:GetItem".to_owned(), true),
            ("dynamodb:PutItem".to_owned(), false)
        ]
    );
}

/// Metrics at every `LogLevel` the translation holds for (`INFO`, `WARN`,
/// `ERROR`; `TRACE` and `DEBUG` turn `ApplicationLogLevel` down with them,
/// a condition the committed translation resolved at `INFO`): each request
/// still writes its one EMF line and the worker its batch line, in what
/// Lambda keeps of the functions' output, while the functions' other INFO
/// lines go at `WARN` and above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_level_keeps_every_request_s_metrics() {
    for level in ["INFO", "WARN", "ERROR"] {
        let file = std::env::temp_dir().join(format!("function-logs-{}.jsonl", ulid::Ulid::new()));
        let options = LambdaOptions {
            log_file: Some(file.clone()),
            parameters: [("LogLevel".to_owned(), level.to_owned())].into(),
            ..lambda_options()
        };
        let api = Api::local_with(Backend::Lambda, None, options).await;
        let user = api.created(&api.email("levels"), "Ada").await;
        let path = format!("/users/{}", user["id"].as_str().expect("id"));
        assert_eq!(api.get_json(&path).await.0, 200);
        let started = Instant::now();
        let lines: Vec<Value> = loop {
            let lines: Vec<Value> = std::fs::read_to_string(&file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let requests = lines.iter().filter(|l| l["Requests"] == 1).count();
            let batches = lines
                .iter()
                .filter(|l| l["RecordsProcessed"].as_u64() >= Some(1))
                .count();
            if requests >= 2 && batches >= 1 {
                break lines;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{level}: {requests} request metrics and {batches} batch metrics after 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let emf = |route: &str| {
            lines
                .iter()
                .filter(|l| l["Route"] == route && l["_aws"]["CloudWatchMetrics"].is_array())
                .count()
        };
        assert_eq!(emf("POST /users"), 1, "{level}: {lines:?}");
        assert_eq!(emf("GET /users/{id}"), 1, "{level}: {lines:?}");
        let history_lines = lines
            .iter()
            .filter(|l| l["message"] == "history event")
            .count();
        assert_eq!(
            history_lines,
            usize::from(level == "INFO"),
            "{level}: the worker's INFO line kept only at INFO"
        );
        println!(
            "LogLevel {level}: {} lines kept, {} with metrics",
            lines.len(),
            lines.iter().filter(|l| l["_aws"].is_object()).count()
        );
        let _ = std::fs::remove_file(file);
    }
}
