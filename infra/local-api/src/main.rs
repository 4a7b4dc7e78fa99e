use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};
use local_api::gateway::auth::{AuthConfig, DevToken, JwksSource};
use local_api::lambda::{LambdaOptions, boot, replay};
use local_api::{LocalApi, StoreChoice, iam};

/// Serves the users API locally, with the routes of template.yaml.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints a bearer token signed by the local development key, for an
    /// API started with --dev-auth.
    DevToken(DevTokenArgs),
    /// Holds a record of IAM decisions (--iam-record) against the roles:
    /// fails on any refused call and on any grant no call used.
    IamReport(IamReportArgs),
    /// Writes the cases an IAM record stands for (each decision under its
    /// function's role), as JSON lines for iam-decide.
    IamCases(IamReportArgs),
    /// Decides each case of a file of JSON lines (policies and requests)
    /// with the local IAM evaluator: one answer per line.
    IamDecide(IamDecideArgs),
    /// Starts one function's binary (or any command, such as an emulator
    /// and a binary) under the local Runtime API with its Lambda
    /// environment, sends it one event and checks it answers.
    Boot(BootArgs),
    /// Replays the history worker's dead letters: reads each one's stream
    /// records back (while the stream retains them, 24 hours) and invokes
    /// the worker with them as Lambda would. Exits 1 if any is left.
    ReplayDeadLetters(ReplayArgs),
}

#[derive(Debug, ClapArgs)]
#[command(group = clap::ArgGroup::new("letters").required(true))]
struct ReplayArgs {
    /// The dead-letter queue's URL (the stack's HistoryDeadLetterQueueUrl):
    /// each message replayed is deleted.
    #[arg(long, group = "letters")]
    queue_url: Option<String>,
    /// A file of dead letters, as local-api --dead-letter-file writes it.
    #[arg(long, group = "letters")]
    dead_letter_file: Option<PathBuf>,
    /// The function to invoke (name or ARN); default: the one each letter
    /// names.
    #[arg(long)]
    function: Option<String>,
    /// Read the stream from this DynamoDB Local instead of AWS.
    #[arg(long, env = "DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,
    /// Invoke the worker of this local API (started with --lambda) instead
    /// of AWS's.
    #[arg(long)]
    lambda_endpoint: Option<String>,
    /// Where the translated templates are (the mapping's filters and batch
    /// size are read there).
    #[arg(long, default_value_os_t = local_api::stack::deployment::default_translation_dir())]
    translations: PathBuf,
}

#[derive(Debug, ClapArgs)]
struct IamReportArgs {
    /// The record written with --iam-record.
    record: PathBuf,
    /// Where the translated templates are.
    #[arg(long, default_value_os_t = local_api::stack::deployment::default_translation_dir())]
    translations: PathBuf,
}

#[derive(Debug, ClapArgs)]
struct IamDecideArgs {
    /// The cases, one JSON object a line.
    cases: PathBuf,
}

#[derive(Debug, ClapArgs)]
struct BootArgs {
    /// The function: its binary (create-user, ...) or logical id (CreateUserFunction, ...).
    #[arg(long)]
    function: String,
    /// DynamoDB Local's URL.
    #[arg(long, env = "DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: String,
    /// Seconds init and the invocation may each take (emulation is slow).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// The command that runs the function.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, ClapArgs)]
struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Use the DynamoDB at this URL (DynamoDB Local) instead of memory.
    #[arg(long, env = "DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,
    /// Table to use with --dynamodb-endpoint; created if missing.
    #[arg(long, env = "TABLE_NAME", default_value = "users-local")]
    table: String,
    /// The SAM template to read routes and the table definition from.
    #[arg(long, env = "TEMPLATE", default_value_os_t = local_api::default_template_path())]
    template: PathBuf,
    /// Require tokens signed by the local development key (see dev-token).
    #[arg(long, conflicts_with_all = ["auth_issuer", "auth_audience", "auth_jwks"])]
    dev_auth: bool,
    /// Require tokens from this issuer (exact `iss`).
    #[arg(long, env = "AUTH_ISSUER", requires_all = ["auth_audience", "auth_jwks"])]
    auth_issuer: Option<String>,
    /// The audience (`aud` or `client_id`) tokens must carry.
    #[arg(long, env = "AUTH_AUDIENCE", requires_all = ["auth_issuer", "auth_jwks"])]
    auth_audience: Option<String>,
    /// The issuer's keys: a JWKS file or URL.
    #[arg(long, env = "AUTH_JWKS", requires_all = ["auth_issuer", "auth_audience"])]
    auth_jwks: Option<String>,
    /// Run each function as its own binary under a local Lambda Runtime
    /// API, with its template environment and its IAM role enforced on its
    /// DynamoDB calls (needs --dynamodb-endpoint).
    #[arg(long, env = "LOCAL_API_LAMBDA")]
    lambda: bool,
    /// Where the functions' binaries are, with --lambda.
    #[arg(long, env = "LOCAL_API_LAMBDA_DIR", default_value_os_t = LambdaOptions::default_dir())]
    lambda_dir: PathBuf,
    /// Most instances of one function at once, with --lambda.
    #[arg(long, default_value_t = 4)]
    lambda_instances: usize,
    /// Append every IAM decision to this file (JSON lines), with --lambda.
    #[arg(long, env = "LOCAL_API_IAM_RECORD")]
    iam_record: Option<PathBuf>,
    /// Append the stream's dead letters to this file (JSON lines), with --lambda.
    #[arg(long, env = "LOCAL_API_DEAD_LETTERS")]
    dead_letter_file: Option<PathBuf>,
    /// Append the functions' log lines Lambda keeps to this file (JSON
    /// lines, as CloudWatch Logs holds them), with --lambda.
    #[arg(long, env = "LOCAL_API_LOG_FILE")]
    log_file: Option<PathBuf>,
    /// Append every span the functions export over OTLP to this file (one
    /// OTLP JSON line a span, with its resource), with --lambda.
    #[arg(long, env = "LOCAL_API_TRACES_FILE")]
    traces_file: Option<PathBuf>,
    /// A template parameter's value (NAME=VALUE, repeatable), with
    /// --lambda; refused if it changes a condition the translation resolved.
    #[arg(long = "parameter", value_parser = parameter, requires = "lambda")]
    parameters: Vec<(String, String)>,
    /// Put template.yaml's edge (Edge=cloudfront) in front: its rate-based
    /// rules, block response, response headers and origin check.
    #[arg(long, env = "LOCAL_API_EDGE")]
    edge: bool,
    /// With --edge, the port of the API behind the edge (0: any free one).
    #[arg(long, env = "LOCAL_API_EDGE_ORIGIN_PORT", default_value_t = 0)]
    edge_origin_port: u16,
}

#[derive(Debug, ClapArgs)]
struct DevTokenArgs {
    /// A scope to grant (repeatable); default: users/read and users/write.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    expires_in: i64,
    /// The caller's client id (and subject).
    #[arg(long, default_value = "local-developer")]
    client_id: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::DevToken(args)) => {
            let mut token = DevToken {
                expires_in: args.expires_in,
                client_id: args.client_id,
                ..DevToken::default()
            };
            if !args.scopes.is_empty() {
                token.scopes = args.scopes;
            }
            println!("{}", token.sign()?);
            return Ok(());
        }
        Some(Command::IamReport(args)) => {
            let findings = iam::coverage::report(&args.record, &args.translations)?;
            if findings.is_empty() {
                return Ok(());
            }
            std::process::exit(1);
        }
        Some(Command::IamCases(args)) => {
            let cases = iam::crosscheck::record_cases(&args.record, &args.translations)?;
            print_lines(&cases)?;
            return Ok(());
        }
        Some(Command::IamDecide(args)) => {
            let text = std::fs::read_to_string(&args.cases)?;
            let cases = iam::crosscheck::parse_cases(&text)?;
            let answers: Vec<_> = cases.iter().map(iam::crosscheck::answer).collect();
            print_lines(&answers)?;
            return Ok(());
        }
        Some(Command::Boot(args)) => {
            telemetry::log::init();
            let answer = boot::run(
                &args.function,
                &args.dynamodb_endpoint,
                args.command,
                std::time::Duration::from_secs(args.timeout),
                &local_api::default_template_path(),
            )
            .await?;
            println!("{answer}");
            return Ok(());
        }
        Some(Command::ReplayDeadLetters(args)) => {
            let endpoints = replay::Endpoints {
                dynamodb: args.dynamodb_endpoint,
                lambda: args.lambda_endpoint,
            };
            let replayer = replay::Replayer::connect(
                &endpoints,
                &args.translations,
                &local_api::default_template_path(),
                args.function,
            )
            .await?;
            let source = match (args.queue_url, args.dead_letter_file) {
                (Some(url), _) => replay::Source::Queue {
                    sqs: aws_sdk_sqs::Client::new(
                        &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
                    ),
                    url,
                },
                (None, Some(path)) => replay::Source::File(path),
                (None, None) => unreachable!("clap requires one"),
            };
            if replayer.run(&source).await? > 0 {
                std::process::exit(1);
            }
            return Ok(());
        }
        None => {}
    }
    telemetry::log::init();
    let args = cli.serve;
    let store = match args.dynamodb_endpoint {
        Some(endpoint) => StoreChoice::DynamoDb {
            endpoint,
            table: args.table,
        },
        None => StoreChoice::Memory,
    };
    let auth = match (
        args.dev_auth,
        args.auth_issuer,
        args.auth_audience,
        args.auth_jwks,
    ) {
        (true, ..) => Some(AuthConfig::dev()),
        (false, Some(issuer), Some(audience), Some(jwks)) => Some(AuthConfig {
            issuer,
            audience,
            jwks: JwksSource::parse(&jwks),
        }),
        _ => None,
    };
    if auth.is_none() {
        tracing::warn!(
            "AUTH IS OFF: every route is open to anyone who can reach this port. \
             Deployed stacks require JWTs by default; run with --dev-auth (and \
             `local-api dev-token`) or --auth-issuer/--auth-audience/--auth-jwks to check tokens."
        );
    }
    let lambda = args.lambda.then(|| LambdaOptions {
        dir: args.lambda_dir,
        instances: args.lambda_instances,
        iam_record: args.iam_record,
        dead_letter_file: args.dead_letter_file,
        log_file: args.log_file,
        traces_file: args.traces_file,
        parameters: args.parameters.into_iter().collect(),
        ..LambdaOptions::default()
    });
    let api = LocalApi::bind_with(
        SocketAddr::new(args.bind, args.port),
        &args.template,
        &store,
        auth,
        lambda,
    )
    .await?;
    let api = if args.edge {
        let origin = SocketAddr::new(args.bind, args.edge_origin_port);
        local_api::edge::put_in_front(api, &args.template, origin).await?
    } else {
        api
    };
    let address = api.local_addr()?;
    tracing::info!(url = %format!("http://{address}"), store = ?store, lambda = args.lambda, "local API listening");
    api.serve(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Writes `items` to stdout as JSON lines.
fn print_lines(items: &[impl serde::Serialize]) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for item in items {
        serde_json::to_writer(&mut out, item)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// A `NAME=VALUE` pair.
fn parameter(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text}: expected NAME=VALUE"))
}
