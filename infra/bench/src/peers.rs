//! The versions of the peers' main packages, read from their lockfiles
//! (infra/bench/peers/node/package-lock.json and
//! infra/bench/peers/python/requirements.txt), so the report names exactly
//! what it measured.

use std::path::Path;

use anyhow::Context as _;

/// The packages the report names: Node.js's, then Python's.
const NODE: &[&str] = &["express", "zod", "helmet", "@aws-sdk/client-dynamodb"];
const PYTHON: &[&str] = &[
    "fastapi",
    "pydantic",
    "uvicorn",
    "starlette",
    "boto3",
    "awslambdaric",
];

/// `name version` of each package the report names, as the lockfiles pin them.
pub(crate) fn versions(peers: &Path) -> anyhow::Result<Vec<String>> {
    let lock = peers.join("node/package-lock.json");
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lock).with_context(|| lock.display().to_string())?)?;
    let requirements = peers.join("python/requirements.txt");
    let requirements = std::fs::read_to_string(&requirements)
        .with_context(|| requirements.display().to_string())?;
    let mut named = Vec::new();
    for package in NODE {
        let version = lock["packages"][format!("node_modules/{package}")]["version"].as_str();
        let version = version.with_context(|| format!("{package} is not in package-lock.json"))?;
        named.push(format!("{package} {version}"));
    }
    for package in PYTHON {
        let version = requirements.lines().find_map(|line| {
            let (name, version) = line.split_once("==")?;
            name.trim()
                .eq_ignore_ascii_case(package)
                .then(|| version.trim())
        });
        let version = version.with_context(|| format!("{package} is not in requirements.txt"))?;
        named.push(format!("{package} {version}"));
    }
    Ok(named)
}
