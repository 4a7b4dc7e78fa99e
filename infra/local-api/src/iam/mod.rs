//! IAM as it applies to a function's calls, evaluated locally: the
//! identity-based policies of the function's role against each request's
//! action, resource and condition keys. Explicit deny wins, then any allow;
//! anything else is the implicit deny.
//!
//! Only what the stack's policies use is implemented (`Action`, `Resource`
//! with `*`/`?` wildcards, and the `dynamodb:LeadingKeys` condition key with
//! the `ForAllValues:`/`ForAnyValue:` `StringEquals`/`StringLike`
//! operators, without policy variables). A policy using anything else
//! fails to load rather than being evaluated wrongly. An independent
//! evaluator is held against this one in `tests/iam-crosscheck`.

pub mod body;
pub mod coverage;
pub mod crosscheck;
pub mod dynamodb;
pub mod key_condition;
pub mod partiql;
pub mod proxy;

use std::collections::BTreeMap;

use serde_json::Value;

/// A policy the local evaluator cannot evaluate faithfully.
#[derive(Debug, thiserror::Error)]
#[error("policy {policy}: {what} is not supported by the local IAM evaluator")]
pub struct PolicyError {
    policy: String,
    what: String,
}

/// One policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name (inline policy name or managed policy ARN).
    pub name: String,
    /// Its statements.
    pub statements: Vec<Statement>,
}

/// One statement of a policy.
#[derive(Debug, Clone)]
pub struct Statement {
    /// `Allow` (true) or `Deny`.
    pub allow: bool,
    /// `Action`: patterns such as `dynamodb:GetItem` or `logs:*`.
    pub actions: Vec<String>,
    /// `Resource`: ARN patterns.
    pub resources: Vec<String>,
    /// `Condition`: all must hold.
    pub conditions: Vec<Condition>,
}

/// One condition: an operator applied to a context key.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Whether every request value must match (`ForAllValues`) or one
    /// (`ForAnyValue`).
    pub for_all: bool,
    /// `StringLike` (wildcards) rather than `StringEquals`.
    pub like: bool,
    /// The context key, such as `dynamodb:LeadingKeys`.
    pub key: String,
    /// The values it is compared with (any may match).
    pub values: Vec<String>,
}

/// The context keys the evaluator knows.
const CONDITION_KEYS: &[&str] = &["dynamodb:LeadingKeys"];

/// What one request asks to do, as IAM sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Authorization {
    /// `dynamodb:PutItem` and the like.
    pub action: String,
    /// The resource's ARN.
    pub resource: String,
    /// Multi-valued context keys and their values for this request.
    pub context: BTreeMap<String, Vec<String>>,
}

/// The outcome of evaluating one authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this policy's statement.
    Allowed {
        /// The policy.
        policy: String,
    },
    /// No statement allows it.
    ImplicitDeny,
    /// A statement denies it.
    ExplicitDeny,
}

impl Decision {
    /// Whether the request may go ahead.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(one) => Some(vec![one.clone()]),
        Value::Array(many) => many.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// Whether `text` holds a policy variable (`${aws:username}`), which IAM
/// substitutes and the local evaluator would compare literally.
fn has_variable(text: &str) -> bool {
    text.contains("${")
}

impl Policy {
    /// Parses a policy document whose intrinsics are already resolved.
    pub fn parse(name: &str, document: &Value) -> Result<Self, PolicyError> {
        let unsupported = |what: String| PolicyError {
            policy: name.to_owned(),
            what,
        };
        let statements = match &document["Statement"] {
            Value::Array(many) => many.clone(),
            one @ Value::Object(_) => vec![one.clone()],
            other => return Err(unsupported(format!("Statement {other}"))),
        };
        let mut parsed = Vec::new();
        for statement in &statements {
            let Some(fields) = statement.as_object() else {
                return Err(unsupported(format!("statement {statement}")));
            };
            for key in fields.keys() {
                if !matches!(
                    key.as_str(),
                    "Sid" | "Effect" | "Action" | "Resource" | "Condition"
                ) {
                    return Err(unsupported(format!("statement element {key}")));
                }
            }
            let allow = match statement["Effect"].as_str() {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err(unsupported(format!("Effect in {statement}"))),
            };
            let actions = strings(&statement["Action"])
                .ok_or_else(|| unsupported(format!("Action in {statement}")))?;
            let resources = strings(&statement["Resource"])
                .ok_or_else(|| unsupported(format!("Resource in {statement}")))?;
            if let Some(variable) = resources.iter().find(|r| has_variable(r)) {
                return Err(unsupported(format!("the policy variable in {variable}")));
            }
            let mut conditions = Vec::new();
            if let Some(operators) = statement["Condition"].as_object() {
                for (operator, tests) in operators {
                    let (for_all, like) = match operator.as_str() {
                        "ForAllValues:StringEquals" => (true, false),
                        "ForAllValues:StringLike" => (true, true),
                        "ForAnyValue:StringEquals" => (false, false),
                        "ForAnyValue:StringLike" => (false, true),
                        other => return Err(unsupported(format!("condition operator {other}"))),
                    };
                    let Some(tests) = tests.as_object() else {
                        return Err(unsupported(format!("condition {tests}")));
                    };
                    for (key, values) in tests {
                        if !CONDITION_KEYS.contains(&key.as_str()) {
                            return Err(unsupported(format!("condition key {key}")));
                        }
                        let values = strings(values)
                            .ok_or_else(|| unsupported(format!("condition values {values}")))?;
                        if let Some(variable) = values.iter().find(|v| has_variable(v)) {
                            return Err(unsupported(format!("the policy variable in {variable}")));
                        }
                        conditions.push(Condition {
                            for_all,
                            like,
                            key: key.clone(),
                            values,
                        });
                    }
                }
            } else if !statement["Condition"].is_null() {
                return Err(unsupported("Condition that is not an object".to_owned()));
            }
            parsed.push(Statement {
                allow,
                actions,
                resources,
                conditions,
            });
        }
        Ok(Self {
            name: name.to_owned(),
            statements: parsed,
        })
    }
}

impl Statement {
    /// Whether the statement's action and resource cover the request
    /// (conditions aside).
    pub fn covers(&self, action: &str, resource: &str) -> bool {
        self.actions
            .iter()
            .any(|a| matches(a, action, Glob::Action))
            && self
                .resources
                .iter()
                .any(|r| matches(r, resource, Glob::Resource))
    }

    fn applies(&self, request: &Authorization) -> bool {
        self.covers(&request.action, &request.resource)
            && self.conditions.iter().all(|c| c.holds(&request.context))
    }
}

impl Condition {
    fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> bool {
        let values = context
            .get(&self.key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let matches_one = |value: &String| {
            self.values.iter().any(|pattern| {
                if self.like {
                    matches(pattern, value, Glob::Value)
                } else {
                    pattern == value
                }
            })
        };
        if self.for_all {
            // IAM's rule: true for every value, so also for none at all.
            values.iter().all(matches_one)
        } else {
            values.iter().any(matches_one)
        }
    }
}

/// Evaluates `request` against `policies` as IAM does for one identity.
pub fn decide<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    request: &Authorization,
) -> Decision {
    let mut allowed = None;
    for policy in policies {
        for statement in policy.statements.iter().filter(|s| s.applies(request)) {
            if !statement.allow {
                return Decision::ExplicitDeny;
            }
            allowed.get_or_insert_with(|| policy.name.clone());
        }
    }
    match allowed {
        Some(policy) => Decision::Allowed { policy },
        None => Decision::ImplicitDeny,
    }
}

/// What a wildcard pattern is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glob {
    /// An action: case-insensitive.
    Action,
    /// A resource ARN: case-sensitive, and wildcards stay within the
    /// ARN's colon-separated segments, except a `*` that ends its segment,
    /// which "can expand to match beyond the colon boundaries" (IAM User
    /// Guide, "IAM JSON policy elements: Resource", "Using wildcards in
    /// resource ARNs").
    Resource,
    /// A condition value (`StringLike`): case-sensitive, no segments.
    Value,
}

/// Whether a statement of `policies` that covers `request`'s action and
/// resource has a condition: one the proxy cannot evaluate when it could
/// not read the request's context keys (a PartiQL statement's partition
/// keys).
pub fn conditioned<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    request: &Authorization,
) -> bool {
    policies.into_iter().any(|policy| {
        policy
            .statements
            .iter()
            .any(|s| !s.conditions.is_empty() && s.covers(&request.action, &request.resource))
    })
}

/// IAM's wildcard match: `*` any run of characters, `?` one character.
fn matches(pattern: &str, text: &str, glob: Glob) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if glob == Glob::Action {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (pattern, text) = (fold(pattern), fold(text));
    let segmented = glob == Glob::Resource;
    // matched[j]: the pattern so far matches the first j characters of the
    // text (dynamic programming, one pattern character a row: patterns
    // and ARNs are short, and a `*` that cannot cross a colon rules out
    // the usual greedy backtracking).
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for (i, &p) in pattern.iter().enumerate() {
        let mut next = vec![false; text.len() + 1];
        match p {
            '*' => {
                let crosses_colons = !segmented || matches!(pattern.get(i + 1), None | Some(':'));
                next[0] = matched[0];
                for j in 1..=text.len() {
                    next[j] = matched[j] || (next[j - 1] && (crosses_colons || text[j - 1] != ':'));
                }
            }
            '?' => {
                for j in 1..=text.len() {
                    next[j] = matched[j - 1] && !(segmented && text[j - 1] == ':');
                }
            }
            c => {
                for j in 1..=text.len() {
                    next[j] = matched[j - 1] && text[j - 1] == c;
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/users";

    fn policy(document: Value) -> Policy {
        Policy::parse("test", &document).unwrap_or_else(|e| panic!("{e}"))
    }

    fn request(action: &str, resource: &str, leading: &[&str]) -> Authorization {
        let mut context = BTreeMap::new();
        if !leading.is_empty() {
            context.insert(
                "dynamodb:LeadingKeys".to_owned(),
                leading.iter().map(|k| (*k).to_owned()).collect(),
            );
        }
        Authorization {
            action: action.to_owned(),
            resource: resource.to_owned(),
            context,
        }
    }

    fn allow(actions: &[&str], resource: &str) -> Value {
        json!({"Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})
    }

    #[test]
    fn a_granted_action_on_its_resource_is_allowed() {
        let p = policy(allow(&["dynamodb:GetItem", "dynamodb:PutItem"], TABLE));
        assert!(decide([&p], &request("dynamodb:PutItem", TABLE, &[])).allowed());
        assert!(
            decide([&p], &request("DynamoDB:getitem", TABLE, &[])).allowed(),
            "actions compare case-insensitively"
        );
    }

    #[test]
    fn an_action_no_statement_grants_is_denied() {
        let p = policy(allow(&["dynamodb:GetItem"], TABLE));
        assert_eq!(
            decide([&p], &request("dynamodb:DeleteItem", TABLE, &[])),
            Decision::ImplicitDeny
        );
        assert_eq!(
            decide([], &request("dynamodb:GetItem", TABLE, &[])),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn a_grant_on_another_resource_does_not_apply() {
        let p = policy(allow(&["dynamodb:GetItem"], TABLE));
        let other = "arn:aws:dynamodb:us-east-1:000000000000:table/other";
        assert!(!decide([&p], &request("dynamodb:GetItem", other, &[])).allowed());
        let prefix = "arn:aws:dynamodb:us-east-1:000000000000:table/users2";
        assert!(
            !decide([&p], &request("dynamodb:GetItem", prefix, &[])).allowed(),
            "a table ARN is no prefix match"
        );
    }

    #[test]
    fn a_table_grant_does_not_cover_its_indexes_and_an_index_grant_not_the_table() {
        let index = format!("{TABLE}/index/byEmail");
        let on_table = policy(allow(&["dynamodb:Query"], TABLE));
        assert!(!decide([&on_table], &request("dynamodb:Query", &index, &[])).allowed());
        let on_index = policy(allow(&["dynamodb:Query"], &index));
        assert!(decide([&on_index], &request("dynamodb:Query", &index, &[])).allowed());
        assert!(!decide([&on_index], &request("dynamodb:Query", TABLE, &[])).allowed());
        let any_index = policy(allow(&["dynamodb:Query"], &format!("{TABLE}/index/*")));
        assert!(decide([&any_index], &request("dynamodb:Query", &index, &[])).allowed());
        assert!(!decide([&any_index], &request("dynamodb:Query", TABLE, &[])).allowed());
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        let cases = [
            ("logs:*", "logs:PutLogEvents", true),
            ("dynamodb:Get*", "dynamodb:GetRecords", true),
            ("dynamodb:Get*", "dynamodb:PutItem", false),
            ("dynamodb:?etItem", "dynamodb:GetItem", true),
            ("*", "anything:AtAll", true),
        ];
        for (pattern, action, expected) in cases {
            let p = policy(allow(&[pattern], "*"));
            assert_eq!(
                decide([&p], &request(action, TABLE, &[])).allowed(),
                expected,
                "{pattern} vs {action}"
            );
        }
    }

    #[test]
    fn resource_wildcards_stay_in_their_arn_segment_unless_they_end_it() {
        let cases = [
            ("arn:aws:dynamodb:*:*:table/users", true),
            ("arn:aws:dynamodb:*:table/users", true),
            ("arn:aws:dynamodb:us-*1:000000000000:table/users", true),
            ("arn:aws:dynamodb:us-*0:table/users", false),
            ("arn:aws:dynamodb:us-east-1?000000000000:table/users", false),
            ("arn:aws:dynamodb:us-east-?:000000000000:table/users", true),
            ("arn:aws:dynamodb:us-east-1:000000000000:*/users", true),
            ("arn:aws:dynamodb:us-east-1:000000000000:table/u*s", true),
            ("arn:aws:dynamodb:*", true),
        ];
        for (pattern, expected) in cases {
            let p = policy(allow(&["dynamodb:GetItem"], pattern));
            assert_eq!(
                decide([&p], &request("dynamodb:GetItem", TABLE, &[])).allowed(),
                expected,
                "{pattern}"
            );
        }
        let stream = format!("{TABLE}/stream/2026-12-02T10:11:12.131");
        let p = policy(allow(
            &["dynamodb:GetRecords"],
            &format!("{TABLE}/stream/*"),
        ));
        assert!(
            decide([&p], &request("dynamodb:GetRecords", &stream, &[])).allowed(),
            "a final * matches the colons of a stream label"
        );
    }

    #[test]
    fn an_explicit_deny_wins_over_any_allow() {
        let allow_all = policy(allow(&["dynamodb:*"], "*"));
        let deny = policy(json!({"Statement": [
            {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE}
        ]}));
        assert_eq!(
            decide(
                [&allow_all, &deny],
                &request("dynamodb:DeleteItem", TABLE, &[])
            ),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn leading_keys_conditions_hold_only_for_matching_partition_keys() {
        let p = policy(json!({"Statement": [{
            "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["USER#*", "EMAIL#*"]}}
        }]}));
        let put = |keys: &[&str]| decide([&p], &request("dynamodb:PutItem", TABLE, keys)).allowed();
        assert!(put(&["USER#01J"]));
        assert!(put(&["USER#01J", "EMAIL#ada@example.com"]));
        assert!(!put(&["IDEMPOTENCY#k"]), "a key outside the patterns");
        assert!(
            !put(&["USER#01J", "IDEMPOTENCY#k"]),
            "one key outside is enough"
        );
        let any = policy(json!({"Statement": [{
            "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE,
            "Condition": {"ForAnyValue:StringEquals": {"dynamodb:LeadingKeys": ["USER#1"]}}
        }]}));
        assert!(decide([&any], &request("dynamodb:GetItem", TABLE, &["USER#1"])).allowed());
        assert!(
            !decide([&any], &request("dynamodb:GetItem", TABLE, &[])).allowed(),
            "ForAnyValue needs a value"
        );
    }

    #[test]
    fn a_statement_with_a_condition_on_the_request_is_found() {
        let p = policy(json!({"Statement": [
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE},
            {"Effect": "Allow", "Action": "dynamodb:PartiQLSelect", "Resource": TABLE,
             "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["USER#*"]}}}
        ]}));
        assert!(conditioned(
            [&p],
            &request("dynamodb:PartiQLSelect", TABLE, &[])
        ));
        assert!(!conditioned([&p], &request("dynamodb:GetItem", TABLE, &[])));
    }

    #[test]
    fn a_policy_the_evaluator_cannot_evaluate_fails_to_load() {
        for document in [
            json!({"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceIp": "1.2.3.4"}}}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*",
                "Condition": {"ForAllValues:StringLike": {"dynamodb:Attributes": ["x"]}}}]}),
            json!({"Statement": [{"Effect": "Maybe", "Action": "a:b", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "arn:x:${aws:username}"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "a:b", "Resource": "*",
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["USER#${aws:userid}"]}}}]}),
        ] {
            assert!(Policy::parse("p", &document).is_err(), "{document}");
        }
    }
}
