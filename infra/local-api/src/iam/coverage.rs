//! Least privilege, checked from behaviour: every authorization the local
//! IAM proxy decided is recorded, and after a test run the record is held
//! against the roles. A call that was refused means a role lacks a grant;
//! a grant that no call used means a role has one too many. Grants of AWS
//! managed policies are left out of the second check: they are AWS's to
//! shape, not ours.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{Authorization, Decision};
use crate::json_lines::JsonLines;
use crate::stack::deployment::{Deployment, LocalResources};

/// The table name records use in place of the local table's.
const TABLE: &str = "TABLE";
/// The stream ARN records use in place of the local stream's.
const STREAM: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/TABLE/stream/STREAM";

/// One decision: who asked for what, and whether it was allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The function (its binary name).
    pub function: String,
    /// The action.
    pub action: String,
    /// The resource, with the local table's name and stream replaced by
    /// `TABLE` and `STREAM` so records of different tables compare.
    pub resource: String,
    /// Whether it was allowed.
    pub allowed: bool,
    /// The request's multi-valued context keys (`dynamodb:LeadingKeys`),
    /// so that the decision can be evaluated again (by a second evaluator,
    /// see `tests/iam-crosscheck`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, Vec<String>>,
    /// Why the proxy refused the request before any policy could decide
    /// (a body it cannot read as DynamoDB does, an unknown operation, a
    /// key condition outside the grammar); none for a policy's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AccessRecord {
    /// The record without its context: who asked for what, and the answer.
    fn grant(&self) -> (&str, &str, &str, bool) {
        (&self.function, &self.action, &self.resource, self.allowed)
    }
}

/// Where decisions are recorded: in memory, and appended to a file of JSON
/// lines when one is given (so several local APIs can share one record).
#[derive(Debug, Default)]
pub struct AccessLog {
    seen: Mutex<BTreeSet<AccessRecord>>,
    file: JsonLines,
}

impl AccessLog {
    /// A log that also appends to `path`, if given.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        Ok(Self {
            seen: Mutex::default(),
            file: JsonLines::open(path)?,
        })
    }

    /// Records one decision of `function` under `local`.
    pub fn record(
        &self,
        function: &str,
        request: &Authorization,
        decision: &Decision,
        local: &LocalResources,
    ) {
        let record = AccessRecord {
            function: function.to_owned(),
            action: request.action.clone(),
            resource: canonical(&request.resource, local),
            allowed: decision.allowed(),
            context: request.context.clone(),
            reason: None,
        };
        self.insert(record);
    }

    /// Records a request of `function` the proxy refused unread: `action`
    /// (`dynamodb:<operation>`, or the target as sent) on `resource` (`*`
    /// when none could be read), and why.
    pub fn refuse(
        &self,
        function: &str,
        action: &str,
        resource: &str,
        reason: &str,
        local: &LocalResources,
    ) {
        self.insert(AccessRecord {
            function: function.to_owned(),
            action: action.to_owned(),
            resource: canonical(resource, local),
            allowed: false,
            context: BTreeMap::new(),
            reason: Some(reason.to_owned()),
        });
    }

    fn insert(&self, record: AccessRecord) {
        let new = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(record.clone());
        if new {
            self.file.append(&record);
        }
    }

    /// Every distinct decision so far.
    pub fn records(&self) -> Vec<AccessRecord> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

fn canonical(resource: &str, local: &LocalResources) -> String {
    let mut resource = resource.to_owned();
    if let Some(stream) = &local.stream_arn {
        resource = resource.replace(stream, STREAM);
    }
    let canonical_table = LocalResources {
        table: TABLE.to_owned(),
        stream_arn: None,
    };
    resource.replace(&local.table_arn(), &canonical_table.table_arn())
}

/// What the record shows to be wrong with the roles.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    /// A call was refused: the role lacks a grant.
    Refused(AccessRecord),
    /// A grant no call used: `function` may do `action` on `resource`
    /// (as the template writes it) and never did.
    Unused {
        /// The function.
        function: String,
        /// The action granted.
        action: String,
        /// The resource pattern granted.
        resource: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Refused(r) => match &r.reason {
                Some(reason) => write!(
                    f,
                    "{} was refused {} on {} by the IAM proxy: {reason}",
                    r.function, r.action, r.resource
                ),
                None => write!(
                    f,
                    "{} was refused {} on {}: its role lacks that grant",
                    r.function, r.action, r.resource
                ),
            },
            Finding::Unused {
                function,
                action,
                resource,
            } => write!(
                f,
                "{function} is granted {action} on {resource}, which no test used: remove the grant or add the test that needs it"
            ),
        }
    }
}

/// Holds `records` against the roles of `deployment` (resolved with the
/// canonical `TABLE` and `STREAM`, see [`canonical_resources`]).
pub fn check(
    records: &[AccessRecord],
    deployment: &Deployment,
) -> Result<Vec<Finding>, crate::stack::deployment::DeploymentError> {
    // One refusal per function, action and resource, whatever its keys.
    let mut refused = BTreeSet::new();
    let mut findings: BTreeSet<Finding> = records
        .iter()
        .filter(|r| !r.allowed && refused.insert(r.grant()))
        .cloned()
        .map(Finding::Refused)
        .collect();
    for function in deployment.functions()? {
        let role = deployment.role(&function.role)?;
        let used: Vec<&AccessRecord> = records
            .iter()
            .filter(|r| r.allowed && r.function == function.binary)
            .collect();
        for statement in role.own.iter().flat_map(|p| &p.statements) {
            if !statement.allow {
                continue;
            }
            for action in &statement.actions {
                for resource in &statement.resources {
                    let single = super::Statement {
                        allow: true,
                        actions: vec![action.clone()],
                        resources: vec![resource.clone()],
                        conditions: Vec::new(),
                    };
                    if !used.iter().any(|r| single.covers(&r.action, &r.resource)) {
                        findings.insert(Finding::Unused {
                            function: function.binary.clone(),
                            action: action.clone(),
                            resource: resource.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(findings.into_iter().collect())
}

/// The local resources a record's canonical names stand for.
pub fn canonical_resources() -> LocalResources {
    LocalResources {
        table: TABLE.to_owned(),
        stream_arn: Some(STREAM.to_owned()),
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The record could not be read.
    #[error("cannot read the IAM record {path}: {source}")]
    Record {
        /// Its path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The roles could not be read.
    #[error(transparent)]
    Deployment(#[from] crate::stack::deployment::DeploymentError),
}

/// The distinct decisions of the IAM record at `record`, and the
/// deployment of the translation in `translations` whose roles they are
/// held against (with the canonical `TABLE` and `STREAM` they name).
pub(crate) fn record_and_roles(
    record: &Path,
    translations: &Path,
) -> Result<(BTreeSet<AccessRecord>, Deployment), ReportError> {
    let records = read_records(record)
        .map_err(|source| ReportError::Record {
            path: record.display().to_string(),
            source,
        })?
        .into_iter()
        .collect();
    let deployment = Deployment::load(
        translations,
        &crate::default_template_path(),
        "cognito",
        canonical_resources(),
    )?;
    Ok((records, deployment))
}

/// Checks the record at `record` against the roles of the translation in
/// `translations`, printing what it finds; returns the findings.
pub fn report(record: &Path, translations: &Path) -> Result<Vec<Finding>, ReportError> {
    let (records, deployment) = record_and_roles(record, translations)?;
    let records: Vec<AccessRecord> = records.into_iter().collect();
    let findings = check(&records, &deployment)?;
    let functions: BTreeSet<&str> = records.iter().map(|r| r.function.as_str()).collect();
    let grants: BTreeSet<_> = records.iter().map(AccessRecord::grant).collect();
    println!(
        "IAM record: {} distinct decisions by {} functions ({} allowed), {} without their keys",
        records.len(),
        functions.len(),
        records.iter().filter(|r| r.allowed).count(),
        grants.len()
    );
    for (function, action, resource, _) in grants.iter().filter(|g| g.3) {
        println!("  allowed  {function:<17} {action:<28} {resource}");
    }
    if findings.is_empty() {
        println!("every call was allowed and every grant was used");
    }
    for finding in &findings {
        println!("error: {finding}");
    }
    Ok(findings)
}

/// Reads a record file of JSON lines.
pub fn read_records(path: &Path) -> std::io::Result<Vec<AccessRecord>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Deployment {
        let document = json!({"Resources": {
            "UsersTable": {"Type": "AWS::DynamoDB::Table"},
            "GetUserFunction": {"Type": "AWS::Lambda::Function",
                "Metadata": {"BuildProperties": {"Binary": "get-user"}},
                "Properties": {"Role": {"Fn::GetAtt": ["GetUserFunctionRole", "Arn"]}}},
            "GetUserFunctionRole": {"Type": "AWS::IAM::Role", "Properties": {
                "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
                "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
                    {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                     "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}}]}}]}}
        }});
        Deployment::from_document(&document, canonical_resources())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn record(action: &str, allowed: bool) -> AccessRecord {
        AccessRecord {
            function: "get-user".to_owned(),
            action: action.to_owned(),
            resource: canonical_resources().table_arn(),
            allowed,
            context: BTreeMap::new(),
            reason: None,
        }
    }

    #[test]
    fn a_grant_no_call_used_is_reported_and_managed_policies_are_not() {
        let findings = check(&[record("dynamodb:GetItem", true)], &deployment())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(matches!(
            &findings[0],
            Finding::Unused { function, action, .. } if function == "get-user" && action == "dynamodb:Query"
        ));
    }

    #[test]
    fn a_refused_call_is_reported() {
        let records = [
            record("dynamodb:GetItem", true),
            record("dynamodb:Query", true),
            record("dynamodb:PutItem", false),
        ];
        let findings = check(&records, &deployment()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            findings,
            [Finding::Refused(record("dynamodb:PutItem", false))]
        );
        assert!(
            findings[0]
                .to_string()
                .contains("get-user was refused dynamodb:PutItem")
        );
    }

    #[test]
    fn a_call_refused_with_several_keys_is_reported_once_and_its_keys_are_recorded() {
        let with_key = |key: &str| AccessRecord {
            context: BTreeMap::from([("dynamodb:LeadingKeys".to_owned(), vec![key.to_owned()])]),
            ..record("dynamodb:PutItem", false)
        };
        let records = [
            record("dynamodb:GetItem", true),
            record("dynamodb:Query", true),
            with_key("USER#1"),
            with_key("USER#2"),
        ];
        let findings = check(&records, &deployment()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(findings.len(), 1, "{findings:?}");
        let line = serde_json::to_string(&records[2]).unwrap_or_default();
        assert!(
            line.contains(r#""context":{"dynamodb:LeadingKeys":["USER#1"]}"#),
            "{line}"
        );
        let back: AccessRecord = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, records[2], "a record reads back as written");
    }

    #[test]
    fn a_request_refused_unread_is_recorded_with_its_reason_and_reported() {
        let log = AccessLog::default();
        let local = canonical_resources();
        log.refuse(
            "get-user",
            "dynamodb:TransactWriteItems",
            "*",
            "bytes after the JSON value",
            &local,
        );
        let records = log.records();
        assert_eq!(records.len(), 1);
        assert!(!records[0].allowed);
        assert_eq!(
            records[0].reason.as_deref(),
            Some("bytes after the JSON value")
        );
        let line = serde_json::to_string(&records[0]).unwrap_or_default();
        assert!(line.contains("\"reason\""), "{line}");
        let findings = check(&records, &deployment()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            findings.iter().any(|f| f.to_string()
                == "get-user was refused dynamodb:TransactWriteItems on * by the IAM proxy: bytes after the JSON value"),
            "{findings:?}"
        );
        let decided = serde_json::to_string(&record("dynamodb:GetItem", true)).unwrap_or_default();
        assert!(
            !decided.contains("reason"),
            "a policy's decision has no reason: {decided}"
        );
    }

    #[test]
    fn records_name_the_table_canonically() {
        let local = LocalResources {
            table: "users-test-1".to_owned(),
            stream_arn: Some(
                "arn:aws:dynamodb:ddblocal:000000000000:table/users-test-1/stream/2026".to_owned(),
            ),
        };
        assert_eq!(
            canonical(&format!("{}/index/byEmail", local.table_arn()), &local),
            format!("{}/index/byEmail", canonical_resources().table_arn())
        );
        assert_eq!(
            canonical(local.stream_arn.as_deref().unwrap_or_default(), &local),
            STREAM
        );
    }
}
