//! The levers: create-user built once per lever undone (by `levers.sh`),
//! each build sized, then cold-started interleaved with the reference build
//! (reference, lever, reference, lever, ...) so both see the same load.
//!
//! The manifest (tab-separated) has one build per line: lever, build,
//! binary, note. The line whose lever is `(reference)` is the reference.

use std::path::Path;

use anyhow::Context as _;

use crate::calls::create_event;
use crate::ddb::DynamoDbLocal;
use crate::lambda::{self, Expect, Subject};
use crate::report::{LeverResult, Size};
use crate::scenarios::{Context, TABLE};
use crate::{say, settle};

const REFERENCE: &str = "(reference)";

/// One line of the manifest.
#[derive(Debug)]
struct Build<'a> {
    lever: &'a str,
    variant: &'a str,
    binary: &'a Path,
    note: &'a str,
}

fn parse(line: &str) -> anyhow::Result<Build<'_>> {
    let fields: Vec<&str> = line.split('\t').collect();
    let &[lever, variant, binary, note] = fields.as_slice() else {
        anyhow::bail!("bad manifest line: {line:?}");
    };
    let binary = Path::new(binary);
    Ok(Build {
        lever,
        variant,
        binary,
        note,
    })
}

/// Measures every build in `manifest` against the reference, on the
/// DynamoDB Local the functions' own cold starts ran on.
pub(crate) async fn run(
    cx: &Context,
    dynamo: &DynamoDbLocal,
    manifest: &Path,
) -> anyhow::Result<Vec<LeverResult>> {
    let text = std::fs::read_to_string(manifest).with_context(|| manifest.display().to_string())?;
    let lines = text.lines().filter(|l| !l.trim().is_empty());
    let builds = lines.map(parse).collect::<anyhow::Result<Vec<_>>>()?;
    let reference = builds.iter().find(|b| b.lever == REFERENCE);
    let reference =
        reference.with_context(|| format!("{}: no {REFERENCE} line", manifest.display()))?;
    let mut results = Vec::new();
    for (i, build) in builds.iter().enumerate() {
        results.push(measure(cx, dynamo, reference, build, i).await?);
        settle().await;
    }
    Ok(results)
}

async fn measure(
    cx: &Context,
    dynamo: &DynamoDbLocal,
    reference: &Build<'_>,
    build: &Build<'_>,
    i: usize,
) -> anyhow::Result<LeverResult> {
    say(&format!("lever {}: {}", build.lever, build.variant));
    let size = Size::of(build.variant, build.binary)?;
    let tag = format!("lever{i}-{}", ulid::Ulid::new().to_string().to_lowercase());
    let subject = |name: String, b: &Build<'_>, tag: String| {
        let binary = [b.binary.display().to_string()];
        let launch = lambda::launch(
            &name,
            &binary,
            cx.root.clone(),
            &dynamo.env(TABLE),
            &cx.logs,
        );
        Subject::new(launch, Expect::Status(201), move |n| {
            create_event(&cx.template, &tag, n)
        })
    };
    let mut subjects = vec![subject(
        format!("lever{i}-reference"),
        reference,
        format!("{tag}-ref"),
    )];
    if build.lever != REFERENCE {
        subjects.push(subject(format!("lever{i}-build"), build, tag));
    }
    let runs = lambda::measure(&subjects, cx.plan.cold_starts, cx.plan.warm, &dynamo.proxy);
    let (runs, note) = match runs.await {
        Ok(runs) => (runs, build.note.to_owned()),
        Err(error) => (Vec::new(), format!("{} (failed: {error:#})", build.note)),
    };
    Ok(LeverResult {
        lever: build.lever.to_owned(),
        variant: build.variant.to_owned(),
        size,
        // The reference line is its own reference.
        reference: runs.first().cloned(),
        run: runs.last().cloned(),
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_have_four_columns() {
        let build = parse("tls\tring\t/b/ring\tnote").ok();
        assert_eq!(
            build.map(|b| (b.lever, b.binary)),
            Some(("tls", Path::new("/b/ring")))
        );
        assert!(parse("too\tfew").is_err());
        assert!(parse("a\tb\tc\td\te").is_err());
    }
}
