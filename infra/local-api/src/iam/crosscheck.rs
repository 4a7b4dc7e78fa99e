//! Our evaluator's answers for a list of cases, so that a second,
//! independent IAM evaluator (`tests/iam-crosscheck`, run by
//! `infra/test.sh`) can be held against it; and the cases a suite's IAM
//! record stands for: each recorded request under the real role of its
//! function, from the translated template.
//!
//! A case is a role's policy documents and one or more requests (a
//! transaction's items, each authorised on its own); the answer is one
//! decision per request, or the reason the policies do not load (the
//! evaluator refuses what it does not implement).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::coverage::{ReportError, record_and_roles};
use super::{Authorization, Decision, Policy, decide};

/// One case: a role's policies and what is asked of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Names the case in a report.
    pub id: String,
    /// The role's policies.
    pub policies: Vec<CasePolicy>,
    /// The requests, decided one by one.
    pub requests: Vec<CaseRequest>,
    /// For a case from an IAM record: whether the request was allowed then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<bool>,
}

/// One policy of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasePolicy {
    /// Its name.
    pub name: String,
    /// Its document, as IAM takes it.
    pub document: Value,
}

/// One request of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRequest {
    /// The action, such as `dynamodb:GetItem`.
    pub action: String,
    /// The resource's ARN (or `*`).
    pub resource: String,
    /// Multi-valued context keys, such as `dynamodb:LeadingKeys`.
    #[serde(default)]
    pub context: BTreeMap<String, Vec<String>>,
}

/// Our evaluator's answer to one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// The case's id.
    pub id: String,
    /// One decision per request (`Allowed`, `ImplicitDeny`, `ExplicitDeny`),
    /// absent when the policies do not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decisions: Option<Vec<&'static str>>,
    /// Why the policies do not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
}

/// Decides every request of `case`.
pub fn answer(case: &Case) -> Answer {
    let policies: Result<Vec<Policy>, _> = case
        .policies
        .iter()
        .map(|p| Policy::parse(&p.name, &p.document))
        .collect();
    let policies = match policies {
        Ok(policies) => policies,
        Err(error) => {
            return Answer {
                id: case.id.clone(),
                decisions: None,
                load_error: Some(error.to_string()),
            };
        }
    };
    let decisions = case
        .requests
        .iter()
        .map(|request| {
            let request = Authorization {
                action: request.action.clone(),
                resource: request.resource.clone(),
                context: request.context.clone(),
            };
            match decide(&policies, &request) {
                Decision::Allowed { .. } => "Allowed",
                Decision::ImplicitDeny => "ImplicitDeny",
                Decision::ExplicitDeny => "ExplicitDeny",
            }
        })
        .collect();
    Answer {
        id: case.id.clone(),
        decisions: Some(decisions),
        load_error: None,
    }
}

/// A line of a cases file that is not a case.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct CaseError {
    line: usize,
    source: serde_json::Error,
}

/// Reads cases from JSON lines.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, CaseError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| CaseError {
                line: index + 1,
                source,
            })
        })
        .collect()
}

/// One case per distinct decision in the IAM record at `record`: the
/// request under the role of its function, as the translation in
/// `translations` defines it (with the canonical table and stream names
/// the record uses).
pub fn record_cases(record: &Path, translations: &Path) -> Result<Vec<Case>, ReportError> {
    let (mut records, deployment) = record_and_roles(record, translations)?;
    // A request the proxy refused unread was never put to the policies.
    records.retain(|record| record.reason.is_none());
    let mut roles = BTreeMap::new();
    for function in deployment.functions()? {
        let policies = deployment
            .role_documents(&function.role)?
            .into_iter()
            .map(|attached| CasePolicy {
                name: attached.name,
                document: attached.document,
            })
            .collect::<Vec<_>>();
        roles.insert(function.binary, policies);
    }
    let mut cases = Vec::with_capacity(records.len());
    for (index, record) in records.into_iter().enumerate() {
        let policies = roles.get(&record.function).cloned().ok_or_else(|| {
            crate::stack::deployment::DeploymentError::Content(format!(
                "the IAM record names {}, which the template has no function for",
                record.function
            ))
        })?;
        cases.push(Case {
            id: format!("record-{index} {} {}", record.function, record.action),
            policies,
            requests: vec![CaseRequest {
                action: record.action,
                resource: record.resource,
                context: record.context,
            }],
            recorded: Some(record.allowed),
        });
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::iam::coverage::canonical_resources;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/TABLE";

    fn case(document: Value, requests: Vec<CaseRequest>) -> Case {
        Case {
            id: "c".to_owned(),
            policies: vec![CasePolicy {
                name: "p".to_owned(),
                document,
            }],
            requests,
            recorded: None,
        }
    }

    fn request(action: &str, keys: &[&str]) -> CaseRequest {
        CaseRequest {
            action: action.to_owned(),
            resource: TABLE.to_owned(),
            context: BTreeMap::from([(
                "dynamodb:LeadingKeys".to_owned(),
                keys.iter().map(|k| (*k).to_owned()).collect(),
            )]),
        }
    }

    #[test]
    fn each_request_of_a_case_is_decided_on_its_own() {
        let document = json!({"Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem"], "Resource": TABLE,
             "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["USER#*"]}}},
            {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"}
        ]});
        let transaction = vec![
            request("dynamodb:PutItem", &["USER#1"]),
            request("dynamodb:PutItem", &["EMAIL#a"]),
            request("dynamodb:DeleteItem", &["USER#1"]),
        ];
        let answer = answer(&case(document, transaction));
        assert_eq!(
            answer.decisions,
            Some(vec!["Allowed", "ImplicitDeny", "ExplicitDeny"])
        );
        assert_eq!(answer.load_error, None);
    }

    #[test]
    fn a_policy_the_evaluator_refuses_is_answered_with_its_load_error() {
        let document =
            json!({"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]});
        let answer = answer(&case(document, vec![request("dynamodb:GetItem", &[])]));
        assert_eq!(answer.decisions, None);
        assert!(
            answer
                .load_error
                .is_some_and(|e| e.contains("statement element NotAction")),
            "the error names what is not supported"
        );
    }

    #[test]
    fn cases_read_from_json_lines_and_a_bad_line_is_named() {
        let line = serde_json::to_string(&case(json!({"Statement": []}), vec![]))
            .unwrap_or_else(|e| panic!("{e}"));
        let cases = parse_cases(&format!("{line}\n\n{line}\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cases.len(), 2);
        let error = parse_cases(&format!("{line}\n{{\"id\": 1}}\n")).err();
        assert!(
            error.is_some_and(|e| e.to_string().starts_with("line 2:")),
            "the bad line is named"
        );
    }

    #[test]
    fn a_record_becomes_one_case_per_decision_under_the_functions_real_role() {
        let dir = std::env::temp_dir().join(format!("iam-record-cases-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let record = dir.join("record.jsonl");
        let line = |key: &str, allowed: bool| {
            json!({"function": "get-user", "action": "dynamodb:GetItem",
                   "resource": canonical_resources().table_arn(), "allowed": allowed,
                   "context": {"dynamodb:LeadingKeys": [key]}})
            .to_string()
        };
        std::fs::write(
            &record,
            [
                line("USER#1", true),
                line("USER#1", true),
                line("EMAIL#a", false),
            ]
            .join("\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cases = record_cases(
            &record,
            &crate::stack::deployment::default_translation_dir(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(cases.len(), 2, "a repeated decision is one case");
        let answers: Vec<_> = cases.iter().map(answer).collect();
        for (case, answer) in cases.iter().zip(&answers) {
            let allowed = answer.decisions.as_ref().is_some_and(|d| d == &["Allowed"]);
            assert_eq!(Some(allowed), case.recorded, "{case:?}");
            assert!(
                case.policies
                    .iter()
                    .any(|p| p.name.ends_with("AWSLambdaBasicExecutionRole")),
                "the AWS managed policies are part of the role"
            );
        }
    }
}
