//! The levers: create-user built once per lever undone (by `levers.sh`),
//! each build sized and cold-started like the deployed one, in one session
//! so they share the same load.

use std::path::Path;

use local_api::template::Template;

use crate::ddb::DynamoDbLocal;
use crate::events;
use crate::lambda::{self, Launch, Workload};
use crate::proxy::DynamoProxy;
use crate::report::{LeverResult, Size};
use crate::scenarios::Context;
use crate::{Error, say, settle};
use local_api::runtime_api::Outcome;

const TABLE: &str = "users-levers";

/// Measures every build in `manifest` (lever, build, binary, note per line).
pub(crate) async fn run(cx: &Context, manifest: &Path) -> Result<Vec<LeverResult>, Error> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| Error::msg(format!("{}: {e}", manifest.display())))?;
    let builds: Vec<Vec<&str>> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split('\t').collect())
        .collect();
    let template = Template::load(&cx.root.join("template.yaml"))
        .map_err(|e| Error::msg(format!("template.yaml: {e}")))?;
    let dynamodb =
        DynamoDbLocal::start(&cx.root, &cx.logs.join("dynamodb-local-levers.log")).await?;
    let result = measure_all(cx, &builds, &template, &dynamodb).await;
    dynamodb.stop().await;
    result
}

async fn measure_all(
    cx: &Context,
    builds: &[Vec<&str>],
    template: &Template,
    dynamodb: &DynamoDbLocal,
) -> Result<Vec<LeverResult>, Error> {
    dynamodb.create_table(template, TABLE).await?;
    let proxy = DynamoProxy::start(&dynamodb.endpoint).await?;
    let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let bundle = cx.work_dir.join("ca-bundle-levers.pem");
    std::fs::write(&bundle, format!("{system}\n{}", proxy.ca_pem()))?;
    let ca_only = cx.work_dir.join("ca-levers.pem");
    std::fs::write(&ca_only, proxy.ca_pem())?;
    let mut builds: Vec<(Vec<&str>, Option<&Path>)> =
        builds.iter().map(|build| (build.clone(), None)).collect();
    // Same binary, another environment: the cost of loading the system's
    // root certificates at init (rustls-native-certs reads SSL_CERT_FILE).
    if let Some(deployed) = builds
        .iter()
        .find(|(b, _)| b.first() == Some(&"(reference)"))
    {
        let mut variant = deployed.0.clone();
        variant[0] = "root certificates";
        variant[1] = "SSL_CERT_FILE with 1 root instead of the system's";
        variant[3] = "same binary as the reference; measures loading the roots";
        builds.push((variant, Some(ca_only.as_path())));
    }
    let mut results = Vec::new();
    for (i, (build, roots)) in builds.iter().enumerate() {
        let [lever, variant, binary, note] = build.as_slice() else {
            return Err(Error::msg(format!("bad manifest line: {build:?}")));
        };
        let binary = Path::new(binary);
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        say(&format!("lever {lever}: {variant}"));
        let dir = binary.parent().unwrap_or(Path::new("."));
        let size = Size::of(&name, dir, &cx.work_dir.join("levers"))?;
        let launch = Launch {
            name: format!("lever-{name}-{i}"),
            command: vec![binary.display().to_string()],
            dir: cx.root.clone(),
            env: vec![
                ("TABLE_NAME".to_owned(), TABLE.to_owned()),
                ("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), proxy.endpoint()),
                (
                    "SSL_CERT_FILE".to_owned(),
                    roots.unwrap_or(&bundle).display().to_string(),
                ),
            ],
        };
        let tag = format!("lever{i}-{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut workload = Workload {
            sent: 0,
            event: Box::new(|n| events::create(&tag, n).to_json()),
            expect: Box::new(|o: &Outcome| !o.failed && events::status(&o.body) == Some(201)),
        };
        if i == 0 {
            crate::scenarios::warm_up(cx, &launch, &mut workload, Some(&proxy)).await?;
        }
        let run = lambda::measure(
            &launch,
            &mut workload,
            cx.plan.cold_starts,
            cx.plan.warm,
            Some(&proxy),
            &cx.logs,
        )
        .await;
        let (run, note) = match run {
            Ok(mut run) => {
                run.load = crate::load_average();
                (Some(run), (*note).to_owned())
            }
            Err(error) => (None, format!("{note} (failed: {error})")),
        };
        results.push(LeverResult {
            lever: (*lever).to_owned(),
            variant: (*variant).to_owned(),
            binary_bytes: size.binary_bytes,
            zip_bytes: size.zip_bytes,
            run,
            note,
        });
        settle().await;
    }
    Ok(results)
}
