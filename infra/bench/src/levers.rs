//! The levers: create-user built once per lever undone (by `levers.sh`),
//! each build sized, then cold-started interleaved with the reference build
//! (reference, lever, reference, lever, ...) so both see the same load.
//!
//! The manifest has one build per line: lever, build, binary, note and an
//! optional fifth column of `KEY=VALUE` pairs (space-separated) added to
//! that build's environment. The line whose lever is `(reference)` is the
//! reference.

use std::path::Path;

use anyhow::Context as _;

use crate::calls::create_event;
use crate::ddb::DynamoDbLocal;
use crate::lambda::{self, Expect, Subject};
use crate::report::{LeverResult, Size};
use crate::scenarios::Context;
use crate::{say, settle};

const TABLE: &str = "users-levers";
const REFERENCE: &str = "(reference)";

/// One line of the manifest.
#[derive(Debug)]
struct Build<'a> {
    lever: &'a str,
    variant: &'a str,
    binary: &'a Path,
    note: &'a str,
    env: Vec<(String, String)>,
}

fn parse(line: &str) -> anyhow::Result<Build<'_>> {
    let fields: Vec<&str> = line.split('\t').collect();
    let (lever, variant, binary, note, env) = match fields.as_slice() {
        [l, v, b, n] => (*l, *v, *b, *n, ""),
        [l, v, b, n, e] => (*l, *v, *b, *n, *e),
        _ => anyhow::bail!("bad manifest line: {line:?}"),
    };
    let env = env.split_whitespace().map(|pair| {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("bad env {pair:?} in {line:?}"))?;
        Ok((key.to_owned(), value.to_owned()))
    });
    Ok(Build {
        lever,
        variant,
        binary: Path::new(binary),
        note,
        env: env.collect::<anyhow::Result<_>>()?,
    })
}

/// Measures every build in `manifest` against the reference.
pub(crate) async fn run(cx: &Context, manifest: &Path) -> anyhow::Result<Vec<LeverResult>> {
    let text = std::fs::read_to_string(manifest).with_context(|| manifest.display().to_string())?;
    let builds = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    let reference = builds.iter().find(|b| b.lever == REFERENCE);
    let reference =
        reference.with_context(|| format!("{}: no {REFERENCE} line", manifest.display()))?;
    let dynamo = DynamoDbLocal::start(cx, TABLE).await?;
    let mut results = Vec::new();
    for (i, build) in builds.iter().enumerate() {
        let result = measure(cx, &dynamo, reference, build, i).await;
        results.push(result);
        settle().await;
    }
    dynamo.stop().await;
    results.into_iter().collect()
}

async fn measure(
    cx: &Context,
    dynamo: &DynamoDbLocal,
    reference: &Build<'_>,
    build: &Build<'_>,
    i: usize,
) -> anyhow::Result<LeverResult> {
    say(&format!("lever {}: {}", build.lever, build.variant));
    let size = Size::of(
        build.variant,
        build.binary,
        &cx.work_dir.join(format!("levers/{i}")),
    )?;
    let tag = format!("lever{i}-{}", ulid::Ulid::new().to_string().to_lowercase());
    let subject = |name: &str, b: &Build<'_>, tag: String| {
        let mut env = dynamo.env(TABLE);
        env.extend(b.env.iter().cloned());
        let binary = [b.binary.display().to_string()];
        let launch = lambda::launch(name, &binary, cx.root.clone(), &env, &cx.logs);
        Subject::new(launch, Expect::Status(201), move |n| {
            create_event(&cx.template, &tag, n)
        })
    };
    let mut subjects = vec![subject(
        &format!("lever{i}-reference"),
        reference,
        format!("{tag}-ref"),
    )];
    if build.lever != REFERENCE {
        subjects.push(subject(&format!("lever{i}-build"), build, tag));
    }
    let runs = lambda::measure(
        &subjects,
        cx.plan.cold_starts,
        cx.plan.warm,
        Some(&dynamo.proxy),
    )
    .await;
    let (reference, run, note) = match runs {
        Ok(mut runs) => {
            let run = runs.pop();
            (
                runs.pop().or_else(|| run.clone()),
                run,
                build.note.to_owned(),
            )
        }
        Err(error) => (None, None, format!("{} (failed: {error})", build.note)),
    };
    Ok(LeverResult {
        lever: build.lever.to_owned(),
        variant: build.variant.to_owned(),
        binary_bytes: size.binary_bytes,
        zip_bytes: size.zip_bytes,
        run,
        reference,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_take_an_optional_environment_column() {
        let Ok(build) = parse("tls\tring\t/b/ring\tnote\tSSL_CERT_FILE=/x.pem A=1") else {
            panic!("five columns parse");
        };
        assert_eq!(
            build.env,
            [
                ("SSL_CERT_FILE".to_owned(), "/x.pem".to_owned()),
                ("A".to_owned(), "1".to_owned())
            ]
        );
        assert!(parse("(reference)\tdeployed\t/b/ref\tnote").is_ok_and(|b| b.env.is_empty()));
        assert!(parse("too\tfew").is_err(), "four or five columns");
    }
}
