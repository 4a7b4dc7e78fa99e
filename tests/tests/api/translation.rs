//! Ties `template.yaml` to what SAM makes of it: the plain CloudFormation
//! in `infra/sam/translated/<mode>.json`, one file per `AuthMode`, written
//! by `infra/sam/translate.sh` (CI fails when they are older than the
//! template). The routes come from `template.yaml` itself; the rest of what
//! is checked is what SAM generates: the HTTP API's OpenAPI body and its
//! authorizer, the function roles with the managed policies SAM attaches,
//! the stream's event source mapping, the gradual deploys (each function
//! published as a version behind its `live` alias, which everything
//! invokes, and a CodeDeploy deployment group per function with its
//! rollback alarms), and the outputs. Last, that
//! `infra/deploy/deployer-policy.json` allows creating every resource type
//! the stack has.

use std::collections::{BTreeMap, BTreeSet};

use local_api::stack::template::{Route, Template};
use serde_json::{Value, json};

/// The `AuthMode` values, each translated into its own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cognito,
    Oidc,
    None,
}

impl Mode {
    const ALL: [Self; 3] = [Self::Cognito, Self::Oidc, Self::None];

    fn name(self) -> &'static str {
        match self {
            Self::Cognito => "cognito",
            Self::Oidc => "oidc",
            Self::None => "none",
        }
    }

    /// The translated template for this mode.
    fn translated(self) -> Value {
        let path = format!(
            "{}/../infra/sam/translated/{}.json",
            env!("CARGO_MANIFEST_DIR"),
            self.name()
        );
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path} is readable ({e}); run infra/sam/translate.sh"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is JSON: {e}"))
    }
}

/// Managed policies SAM attaches by itself: to every function role, and to
/// the role of a function with a DynamoDB stream event.
const BASIC_EXECUTION: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
const XRAY_WRITE: &str = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess";
const DYNAMODB_STREAM_EXECUTION: &str =
    "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole";

/// The stream event settings SAM must carry over to the event source
/// mapping as written.
const STREAM_SETTINGS: [&str; 8] = [
    "StartingPosition",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "FilterCriteria",
    "FunctionResponseTypes",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
];

/// The alias every function is published behind (`AutoPublishAlias` in
/// template.yaml's Globals), which API Gateway and the stream invoke.
const ALIAS: &str = "live";

/// The deployment type of the template's default (`DeploymentType`), as
/// CodeDeploy names it.
const DEFAULT_DEPLOYMENT_CONFIG: &str = "CodeDeployDefault.LambdaCanary10Percent10Minutes";

/// The alarms that roll back each function's deploy, by binary: an API
/// function's errors, its route's p99 latency and the API's 5xx rate; the
/// worker's errors. Throttles are left out on purpose (the account's
/// concurrency, not the new code), and so are the worker's dead-letter and
/// iterator-age alarms (they stay in ALARM until someone acts, and would
/// roll back the fix).
const ROLLBACK_ALARMS: [(&str, &[&str]); 7] = [
    (
        "create-user",
        &[
            "CreateUserErrorsAlarm",
            "CreateUserLatencyAlarm",
            "ApiServerErrorRateAlarm",
        ],
    ),
    (
        "get-user",
        &[
            "GetUserErrorsAlarm",
            "GetUserLatencyAlarm",
            "ApiServerErrorRateAlarm",
        ],
    ),
    (
        "list-users",
        &[
            "ListUsersErrorsAlarm",
            "ListUsersLatencyAlarm",
            "ApiServerErrorRateAlarm",
        ],
    ),
    (
        "update-user",
        &[
            "UpdateUserErrorsAlarm",
            "UpdateUserLatencyAlarm",
            "ApiServerErrorRateAlarm",
        ],
    ),
    (
        "delete-user",
        &[
            "DeleteUserErrorsAlarm",
            "DeleteUserLatencyAlarm",
            "ApiServerErrorRateAlarm",
        ],
    ),
    (
        "list-user-events",
        &[
            "ListUserEventsErrorsAlarm",
            "ListUserEventsLatencyAlarm",
            "ApiServerErrorRateAlarm",
        ],
    ),
    ("history-worker", &["HistoryWorkerErrorsAlarm"]),
];

/// How long after the metrics' period ends an alarm may take to see it:
/// Lambda's own metrics and those extracted from log lines arrive within a
/// minute or two.
const METRIC_DELAY_SECONDS: u64 = 120;

fn template() -> Template {
    Template::load(&local_api::default_template_path()).expect("template.yaml parses")
}

/// `template.yaml` as CloudFormation's long form: `!GetAtt A.B` becomes
/// `{"Fn::GetAtt": ["A", "B"]}`, `!Ref X` `{"Ref": "X"}`, `!Sub s`
/// `{"Fn::Sub": "s"}`, the way SAM writes them in its output.
fn source_template() -> Value {
    let text = std::fs::read_to_string(local_api::default_template_path())
        .expect("template.yaml is readable");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    long_form(yaml)
}

fn long_form(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Yaml;
    match value {
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = match (name, tagged.value) {
                ("GetAtt", Yaml::String(dotted)) => {
                    json!(dotted.splitn(2, '.').collect::<Vec<_>>())
                }
                (_, inner) => long_form(inner),
            };
            let key = if matches!(name, "Ref" | "Condition") {
                name.to_owned()
            } else {
                format!("Fn::{name}")
            };
            json!({ key: inner })
        }
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .map(|(k, v)| {
                    let key = k.as_str().expect("template keys are strings").to_owned();
                    (key, long_form(v))
                })
                .collect(),
        ),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        other => serde_json::to_value(other).expect("a YAML scalar is JSON"),
    }
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"]
        .as_object()
        .expect("the template has Resources")
}

/// Logical ids of the resources of one type.
fn of_type<'t>(template: &'t Value, kind: &str) -> BTreeMap<&'t str, &'t Value> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

/// Binary name -> logical id of its `AWS::Lambda::Function` (SAM keeps the
/// function's `Metadata`, where `BuildProperties.Binary` names the binary).
fn functions(template: &Value) -> BTreeMap<String, String> {
    of_type(template, "AWS::Lambda::Function")
        .into_iter()
        .map(|(id, function)| {
            let binary = function["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} keeps Metadata.BuildProperties.Binary"));
            (binary.to_owned(), id.to_owned())
        })
        .collect()
}

/// The OpenAPI operation SAM generated for a route.
fn operation<'t>(template: &'t Value, route: &Route) -> &'t Value {
    let body = &template["Resources"]["HttpApi"]["Properties"]["Body"];
    let operation = &body["paths"][&route.path][route.method.to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "the HTTP API's body has no operation for {}",
        route.key()
    );
    operation
}

/// Every operation (`GET /users`) in the HTTP API's OpenAPI body.
fn operations(template: &Value) -> BTreeMap<String, &Value> {
    let paths = template["Resources"]["HttpApi"]["Properties"]["Body"]["paths"]
        .as_object()
        .expect("the HTTP API has an OpenAPI body with paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item is an object");
            item.iter()
                .filter(|(method, _)| *method != "parameters")
                .map(move |(method, op)| (format!("{} {path}", method.to_ascii_uppercase()), op))
        })
        .collect()
}

/// Whether the named condition holds, from the template's `Conditions` and
/// the parameter values the file was translated with (its `Default`s).
fn holds(template: &Value, condition: &str) -> bool {
    let expression = &template["Conditions"][condition];
    assert!(!expression.is_null(), "no condition {condition}");
    truth(template, expression)
}

fn truth(template: &Value, expression: &Value) -> bool {
    let (function, args) = expression
        .as_object()
        .and_then(|o| o.iter().next())
        .unwrap_or_else(|| panic!("a condition function, not {expression}"));
    let all = || args.as_array().expect("a list of conditions").iter();
    match function.as_str() {
        "Fn::Equals" => parameter_value(template, &args[0]) == parameter_value(template, &args[1]),
        "Fn::Not" => !truth(template, &args[0]),
        "Fn::And" => all().all(|a| truth(template, a)),
        "Fn::Or" => all().any(|a| truth(template, a)),
        "Condition" => holds(template, args.as_str().expect("a condition name")),
        other => panic!("condition function {other} is not evaluated here"),
    }
}

fn parameter_value<'t>(template: &'t Value, value: &'t Value) -> &'t Value {
    match value["Ref"].as_str() {
        Some(name) => &template["Parameters"][name]["Default"],
        None => value,
    }
}

/// Whether a resource or output exists in the stack: it has no `Condition`,
/// or its condition holds.
fn exists(template: &Value, entry: &Value) -> bool {
    entry["Condition"]
        .as_str()
        .is_none_or(|condition| holds(template, condition))
}

/// The logical ids a value refers to through `Ref`, `Fn::GetAtt` or
/// `Fn::Sub`, pseudo parameters left out.
fn references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("Ref", Value::String(id)) => {
                        found.insert(id.clone());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        found.extend(parts.first().and_then(Value::as_str).map(str::to_owned));
                    }
                    ("Fn::Sub", Value::String(text)) => substituted(text, found),
                    ("Fn::Sub", Value::Array(parts)) => {
                        if let Some(text) = parts.first().and_then(Value::as_str) {
                            substituted(text, found);
                        }
                        parts.iter().skip(1).for_each(|p| references(p, found));
                    }
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, found)),
        _ => {}
    }
}

/// The `${Name}` and `${Name.Attribute}` of an `Fn::Sub` string.
fn substituted(text: &str, found: &mut BTreeSet<String>) {
    for piece in text.split("${").skip(1) {
        if let Some((name, _)) = piece.split_once('}') {
            let id = name.split('.').next().unwrap_or(name);
            if !id.starts_with("AWS::") && !id.starts_with('!') {
                found.insert(id.to_owned());
            }
        }
    }
}

/// `create-user` -> `CreateUser`.
fn pascal_case(binary: &str) -> String {
    binary
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The end of the execute-api ARN that lets API Gateway invoke a route's
/// function: `/GET/users/*` for `GET /users/{id}`.
fn execute_api_suffix(route: &Route) -> String {
    let path: Vec<&str> = route
        .path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "*"
            } else {
                segment
            }
        })
        .collect();
    format!("/{}{}", route.method, path.join("/"))
}

/// The role a function runs as.
fn role_of<'t>(template: &'t Value, function_id: &str) -> (&'t str, &'t Value) {
    let role = &template["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"];
    assert_eq!(role[1], "Arn", "{function_id} takes its role by Fn::GetAtt");
    let id = role[0]
        .as_str()
        .unwrap_or_else(|| panic!("{function_id}'s role is a resource of the stack"));
    (id, &template["Resources"][id])
}

/// The logical id of the one `AWS::Lambda::Alias` of a function.
fn alias_of(template: &Value, function_id: &str) -> String {
    let aliases: Vec<&str> = of_type(template, "AWS::Lambda::Alias")
        .into_iter()
        .filter(|(_, alias)| alias["Properties"]["FunctionName"] == json!({ "Ref": function_id }))
        .map(|(id, _)| id)
        .collect();
    match aliases.as_slice() {
        [id] => (*id).to_owned(),
        other => panic!("{function_id} has one alias, not {other:?}"),
    }
}

/// The function a reference invokes: the function an alias belongs to, or
/// the function itself.
fn function_behind<'t>(template: &'t Value, id: &'t str) -> &'t str {
    let resource = &template["Resources"][id];
    match resource["Type"].as_str() {
        Some("AWS::Lambda::Function") => id,
        Some("AWS::Lambda::Alias") => resource["Properties"]["FunctionName"]["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names its function by Ref")),
        other => panic!("{id} is a {other:?}, no function or alias"),
    }
}

/// Logical ids of the functions a DynamoDB stream invokes.
fn stream_functions(template: &Value) -> BTreeSet<String> {
    of_type(template, "AWS::Lambda::EventSourceMapping")
        .values()
        .filter(|mapping| {
            let mut sources = BTreeSet::new();
            references(&mapping["Properties"]["EventSourceArn"], &mut sources);
            sources
                .iter()
                .any(|id| template["Resources"][id]["Type"] == "AWS::DynamoDB::Table")
        })
        .map(|mapping| {
            let invoked = mapping["Properties"]["FunctionName"]["Ref"]
                .as_str()
                .expect("a mapping names its function by Ref");
            function_behind(template, invoked).to_owned()
        })
        .collect()
}

#[test]
fn every_route_of_the_template_invokes_its_own_function_in_every_auth_mode() {
    let routes = template().routes;
    assert!(!routes.is_empty(), "template.yaml has routes");
    for mode in Mode::ALL {
        let translated = mode.translated();
        let functions = functions(&translated);
        let expected: BTreeSet<String> = routes.iter().map(Route::key).collect();
        let generated: BTreeSet<String> = operations(&translated).into_keys().collect();
        assert_eq!(generated, expected, "{mode:?}: the HTTP API's routes");
        for route in &routes {
            let function = &functions[&route.function];
            // The alias, so that CodeDeploy's weights decide which version
            // serves; the function's own ARN would run $LATEST.
            let alias = alias_of(&translated, function);
            let integration = &operation(&translated, route)["x-amazon-apigateway-integration"];
            assert_eq!(integration["type"], "aws_proxy", "{mode:?} {}", route.key());
            assert_eq!(integration["payloadFormatVersion"], "2.0");
            let uri = integration["uri"]["Fn::Sub"].as_str().unwrap_or_default();
            assert!(
                uri.ends_with(&format!("/functions/${{{alias}}}/invocations")),
                "{mode:?}: {} invokes {function}'s alias {alias}, not {uri:?}",
                route.key()
            );
            let permitted = of_type(&translated, "AWS::Lambda::Permission")
                .values()
                .any(|p| {
                    let p = &p["Properties"];
                    p["FunctionName"]["Ref"] == alias.as_str()
                        && p["Principal"] == "apigateway.amazonaws.com"
                        && p["SourceArn"]["Fn::Sub"][0]
                            .as_str()
                            .is_some_and(|arn| arn.ends_with(&execute_api_suffix(route)))
                });
            assert!(
                permitted,
                "{mode:?}: API Gateway may invoke {alias} for {}",
                route.key()
            );
        }
        // No permission is left on a function itself or on $LATEST.
        for (id, permission) in of_type(&translated, "AWS::Lambda::Permission") {
            let target = permission["Properties"]["FunctionName"]["Ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{mode:?}: {id} names its target by Ref"));
            assert_eq!(
                translated["Resources"][target]["Type"], "AWS::Lambda::Alias",
                "{mode:?}: {id} lets API Gateway invoke an alias, not {target}"
            );
        }
    }
}

#[test]
fn every_function_is_published_as_a_version_behind_its_live_alias() {
    for mode in Mode::ALL {
        let translated = mode.translated();
        let functions = functions(&translated);
        assert_eq!(
            functions
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            ROLLBACK_ALARMS
                .iter()
                .map(|(binary, _)| *binary)
                .collect::<BTreeSet<_>>(),
            "{mode:?}: every function has its rollback alarms listed here"
        );
        for (binary, function) in &functions {
            let versions: Vec<(&str, &Value)> = of_type(&translated, "AWS::Lambda::Version")
                .into_iter()
                .filter(|(_, v)| v["Properties"]["FunctionName"] == json!({ "Ref": function }))
                .collect();
            let [(version_id, version)] = versions.as_slice() else {
                panic!("{mode:?}: {binary} has one version, not {versions:?}");
            };
            // A retained version is what CodeDeploy rolls back to.
            assert_eq!(
                version["DeletionPolicy"], "Retain",
                "{mode:?}: {version_id}"
            );
            let alias_id = alias_of(&translated, function);
            let alias = &translated["Resources"][&alias_id]["Properties"];
            assert_eq!(alias["Name"], ALIAS, "{mode:?}: {alias_id}");
            assert_eq!(
                alias["FunctionVersion"],
                json!({ "Fn::GetAtt": [version_id, "Version"] }),
                "{mode:?}: {alias_id} points at {version_id}"
            );
        }
    }
}

/// The seconds a deployment type keeps the old version serving part of the
/// traffic, during which CodeDeploy watches the alarms: the canary's bake
/// (`Canary10Percent10Minutes`: 600), or a linear shift's steps until the
/// last (`Linear10PercentEvery1Minute`: 9 steps of 60). `AllAtOnce`: none.
fn watched_seconds(deployment_type: &str) -> u64 {
    let number = |text: &str| -> u64 {
        text.parse()
            .unwrap_or_else(|_| panic!("{deployment_type}: {text:?} is a number"))
    };
    if deployment_type == "AllAtOnce" {
        return 0;
    }
    if let Some(rest) = deployment_type.strip_prefix("Canary") {
        let (_, minutes) = rest.split_once("Percent").expect("CanaryNPercentMMinutes");
        return number(minutes.trim_end_matches("Minutes")) * 60;
    }
    if let Some(rest) = deployment_type.strip_prefix("Linear") {
        let (percent, every) = rest
            .split_once("PercentEvery")
            .expect("LinearNPercentEveryM");
        let minutes = number(every.trim_end_matches("Minutes").trim_end_matches("Minute"));
        return (100 / number(percent) - 1) * minutes * 60;
    }
    panic!("{deployment_type} is no deployment type of CodeDeploy's for Lambda")
}

/// The seconds an alarm needs from the first breaching minute to ALARM:
/// `DatapointsToAlarm` (else `EvaluationPeriods`) periods, plus the
/// metrics' delay.
fn seconds_to_alarm(alarm: &Value) -> u64 {
    let properties = &alarm["Properties"];
    let period = properties["Period"].as_u64().unwrap_or_else(|| {
        // A metric-math alarm: the period of its metrics.
        properties["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["MetricStat"]["Period"].as_u64())
            .max()
            .expect("an alarm has a Period or metrics with one")
    });
    let datapoints = properties["DatapointsToAlarm"]
        .as_u64()
        .or_else(|| properties["EvaluationPeriods"].as_u64())
        .expect("an alarm has EvaluationPeriods");
    period * datapoints + METRIC_DELAY_SECONDS
}

#[test]
fn each_function_deploys_through_codedeploy_rolled_back_by_its_own_alarms() {
    let source = source_template();
    let deployment_type = &source["Parameters"]["DeploymentType"];
    assert_eq!(
        format!(
            "CodeDeployDefault.Lambda{}",
            deployment_type["Default"].as_str().unwrap_or_default()
        ),
        DEFAULT_DEPLOYMENT_CONFIG
    );
    for mode in Mode::ALL {
        let translated = mode.translated();
        let applications = of_type(&translated, "AWS::CodeDeploy::Application");
        let [(application, app)] = applications.iter().collect::<Vec<_>>()[..] else {
            panic!("{mode:?}: one CodeDeploy application, not {applications:?}");
        };
        let application = *application;
        assert_eq!(app["Properties"]["ComputePlatform"], "Lambda");
        let functions = functions(&translated);
        let groups = of_type(&translated, "AWS::CodeDeploy::DeploymentGroup");
        assert_eq!(
            groups.len(),
            functions.len(),
            "{mode:?}: one deployment group per function"
        );
        for (binary, expected) in ROLLBACK_ALARMS {
            let function = &functions[binary];
            let alias_id = alias_of(&translated, function);
            let alias = &translated["Resources"][&alias_id];
            let update = &alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"];
            assert_eq!(update["ApplicationName"], json!({ "Ref": application }));
            let group_id = update["DeploymentGroupName"]["Ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{mode:?}: {alias_id} is moved by a deployment group"));
            let group = &groups[group_id]["Properties"];
            assert_eq!(group["ApplicationName"], json!({ "Ref": application }));
            assert_eq!(
                group["DeploymentConfigName"],
                json!({ "Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", { "ConfigName": deployment_type["Default"] }] }),
                "{mode:?}: {group_id}"
            );
            let rollback = &group["AutoRollbackConfiguration"];
            assert_eq!(rollback["Enabled"], true, "{mode:?}: {group_id}");
            assert!(
                rollback["Events"]
                    .as_array()
                    .is_some_and(|e| e.contains(&json!("DEPLOYMENT_STOP_ON_ALARM"))),
                "{mode:?}: {group_id} rolls back when an alarm stops it"
            );
            assert_eq!(
                group["AlarmConfiguration"]["Enabled"], true,
                "{mode:?}: {group_id}"
            );
            let alarms: Vec<&str> = group["AlarmConfiguration"]["Alarms"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    a["Name"]["Ref"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{a} is an alarm of the stack"))
                })
                .collect();
            assert_eq!(alarms, expected, "{mode:?}: {binary}'s rollback alarms");
            let service_role = &group["ServiceRoleArn"]["Fn::GetAtt"];
            assert_eq!(service_role[1], "Arn", "{mode:?}: {group_id}");
            let role = &translated["Resources"][service_role[0].as_str().unwrap_or_default()];
            assert_eq!(
                role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
                json!({ "Service": ["codedeploy.amazonaws.com"] }),
                "{mode:?}: {group_id} runs as a role CodeDeploy assumes"
            );
            assert_eq!(
                role["Properties"]["ManagedPolicyArns"],
                json!(["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"]),
                "{mode:?}: {group_id}'s role may shift aliases and read the alarms"
            );
            for alarm_id in alarms {
                let alarm = &translated["Resources"][alarm_id];
                assert_eq!(alarm["Type"], "AWS::CloudWatch::Alarm", "{alarm_id}");
                // The alarm watches this function (or the whole API), so
                // its metric sees the new version's calls.
                let mut watched = BTreeSet::new();
                references(&alarm["Properties"]["Dimensions"], &mut watched);
                references(&alarm["Properties"]["Metrics"], &mut watched);
                assert!(
                    watched.contains(function.as_str()) || watched.contains("HttpApi"),
                    "{mode:?}: {alarm_id} watches {function} or the API, not {watched:?}"
                );
                let allowed = deployment_type["AllowedValues"]
                    .as_array()
                    .expect("AllowedValues");
                for allowed in allowed
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "AllAtOnce")
                {
                    assert!(
                        seconds_to_alarm(alarm) <= watched_seconds(allowed),
                        "{alarm_id} needs {} s to fire, more than {allowed} watches ({} s)",
                        seconds_to_alarm(alarm),
                        watched_seconds(allowed)
                    );
                }
            }
        }
    }
}

#[test]
fn with_auth_each_route_requires_exactly_users_read_for_get_and_users_write_otherwise() {
    let routes = template().routes;
    for mode in [Mode::Cognito, Mode::Oidc] {
        let translated = mode.translated();
        for route in &routes {
            let scope = if route.method == "GET" {
                "users/read"
            } else {
                "users/write"
            };
            assert_eq!(route.scopes, [scope], "template.yaml: {}", route.key());
            assert_eq!(
                operation(&translated, route)["security"],
                json!([{ "JwtAuthorizer": [scope] }]),
                "{mode:?}: {}",
                route.key()
            );
        }
    }
}

/// The JWT authorizer of the translated HTTP API, after checking the parts
/// every mode with auth shares.
fn jwt_authorizer(translated: &Value) -> &Value {
    let body = &translated["Resources"]["HttpApi"]["Properties"]["Body"];
    let schemes = body["components"]["securitySchemes"]
        .as_object()
        .expect("the API has security schemes");
    assert_eq!(
        schemes.keys().collect::<Vec<_>>(),
        ["JwtAuthorizer"],
        "one authorizer"
    );
    let authorizer = &schemes["JwtAuthorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["type"], "jwt");
    assert_eq!(
        authorizer["identitySource"],
        "$request.header.Authorization"
    );
    &authorizer["jwtConfiguration"]
}

#[test]
fn cognito_mode_trusts_tokens_of_the_stacks_user_pool_for_its_app_client() {
    let translated = Mode::Cognito.translated();
    let jwt = jwt_authorizer(&translated);
    assert_eq!(
        jwt["issuer"],
        json!({ "Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}" })
    );
    assert_eq!(jwt["audience"], json!([{ "Ref": "UserPoolClient" }]));
}

#[test]
fn oidc_mode_trusts_the_issuer_and_audience_parameters() {
    let translated = Mode::Oidc.translated();
    let jwt = jwt_authorizer(&translated);
    assert_eq!(jwt["issuer"], json!({ "Ref": "OidcIssuer" }));
    assert_eq!(jwt["audience"], json!([{ "Ref": "OidcAudience" }]));
    let parameters = &translated["Parameters"];
    assert!(
        parameters["OidcIssuer"]["Default"]
            .as_str()
            .is_some_and(|issuer| issuer.starts_with("https://")),
        "translated with an https issuer"
    );
    assert_ne!(parameters["OidcAudience"]["Default"], "");
}

#[test]
fn none_mode_has_no_authorizer_and_no_security_on_any_route() {
    let translated = Mode::None.translated();
    let body = &translated["Resources"]["HttpApi"]["Properties"]["Body"];
    assert!(
        body["components"]["securitySchemes"].is_null(),
        "no authorizer: {}",
        body["components"]
    );
    assert!(body["security"].is_null(), "no API-wide security");
    for (route, operation) in operations(&translated) {
        assert!(
            operation["security"].is_null(),
            "{route} has no security: {}",
            operation["security"]
        );
    }
}

#[test]
fn every_function_gets_the_globals_runtime_memory_timeout_tracing_and_environment() {
    let source = source_template();
    let globals = &source["Globals"]["Function"];
    for mode in Mode::ALL {
        let translated = mode.translated();
        for function in functions(&translated).values() {
            let properties = &translated["Resources"][function]["Properties"];
            // A function's own setting (the history worker's Timeout) wins.
            let own = &source["Resources"][function]["Properties"];
            for setting in [
                "Runtime",
                "Architectures",
                "Handler",
                "MemorySize",
                "Timeout",
                "Environment",
            ] {
                let mut expected = if own[setting].is_null() {
                    globals[setting].clone()
                } else {
                    own[setting].clone()
                };
                // These modes have the edge off: its origin secret resolves
                // to empty (the edge's translation: edge_translation.rs).
                if setting == "Environment" {
                    expected["Variables"]["EDGE_ORIGIN_SECRET"] = json!("");
                    // Likewise the OTLP headers' secret, without OtlpEndpoint.
                    expected["Variables"]["OTEL_EXPORTER_OTLP_HEADERS"] = json!("");
                }
                assert_eq!(
                    &properties[setting], &expected,
                    "{mode:?}: {function} {setting}"
                );
            }
            assert_eq!(
                properties["TracingConfig"],
                json!({ "Mode": globals["Tracing"] }),
                "{mode:?}: {function}"
            );
        }
    }
}

#[test]
fn each_function_runs_as_a_role_of_its_own_that_only_lambda_assumes() {
    for mode in Mode::ALL {
        let translated = mode.translated();
        let mut roles = BTreeSet::new();
        for function in functions(&translated).values() {
            let (id, role) = role_of(&translated, function);
            assert_eq!(role["Type"], "AWS::IAM::Role", "{mode:?}: {function}");
            assert!(roles.insert(id), "{mode:?}: {id} is shared by functions");
            assert_eq!(
                role["Properties"]["AssumeRolePolicyDocument"]["Statement"],
                json!([{
                    "Action": ["sts:AssumeRole"],
                    "Effect": "Allow",
                    "Principal": { "Service": ["lambda.amazonaws.com"] }
                }]),
                "{mode:?}: {id}"
            );
        }
    }
}

/// A policy document's statements, after checking each allows and names
/// its actions (`service:Action`, no wildcard).
fn allow_statements<'t>(document: &'t Value, what: &str) -> &'t [Value] {
    let statements = document["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{what} has statements"));
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow", "{what}: {statement}");
        let actions = match &statement["Action"] {
            Value::Array(actions) => actions.iter().collect(),
            one => vec![one],
        };
        for action in actions {
            let action = action.as_str().unwrap_or_default();
            let (service, name) = action.split_once(':').unwrap_or_default();
            assert!(
                !service.is_empty() && !name.is_empty() && !name.contains('*'),
                "{what}: {action:?} is a named action"
            );
        }
    }
    statements
}

/// Whether a managed policy ARN is one of AWS's own (which SAM attaches by
/// itself), not one the stack defines.
fn is_aws_managed(arn: &Value) -> bool {
    arn.as_str()
        .is_some_and(|arn| arn.starts_with("arn:aws:iam::aws:policy/"))
}

#[test]
fn each_role_allows_named_actions_inline_only_on_the_stacks_own_table_and_queue() {
    for mode in Mode::ALL {
        let translated = mode.translated();
        let allowed_targets: BTreeSet<String> = ["AWS::DynamoDB::Table", "AWS::SQS::Queue"]
            .iter()
            .flat_map(|kind| of_type(&translated, kind).into_keys())
            .map(str::to_owned)
            .collect();
        for (binary, function) in functions(&translated) {
            let (id, role) = role_of(&translated, &function);
            let policies = role["Properties"]["Policies"]
                .as_array()
                .unwrap_or_else(|| panic!("{id} has inline policies"));
            // SAM names the statements of a function's Policies entry N
            // `<Role>PolicyN`.
            let own = format!("{id}Policy");
            assert!(
                policies.iter().any(|p| p["PolicyName"]
                    .as_str()
                    .and_then(|name| name.strip_prefix(&own))
                    .is_some_and(|n| n.parse::<usize>().is_ok())),
                "{mode:?}: {binary}'s own statements from template.yaml are on {id}"
            );
            for policy in policies {
                let what = format!("{mode:?} {binary}: {}", policy["PolicyName"]);
                for statement in allow_statements(&policy["PolicyDocument"], &what) {
                    let mut targets = BTreeSet::new();
                    references(&statement["Resource"], &mut targets);
                    assert!(
                        !targets.is_empty() && targets.is_subset(&allowed_targets),
                        "{what}: {statement} targets only {allowed_targets:?}"
                    );
                }
            }
            // The stack's own managed policies: for actions that name no
            // resource (DynamoDB's DescribeEndpoints), shared by functions.
            for arn in role["Properties"]["ManagedPolicyArns"]
                .as_array()
                .unwrap_or_else(|| panic!("{id} has managed policies"))
                .iter()
                .filter(|arn| !is_aws_managed(arn))
            {
                let policy_id = arn["Ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id}: {arn} is an AWS policy or the stack's own"));
                let policy = &translated["Resources"][policy_id];
                assert_eq!(policy["Type"], "AWS::IAM::ManagedPolicy", "{policy_id}");
                let what = format!("{mode:?} {binary}: {policy_id}");
                allow_statements(&policy["Properties"]["PolicyDocument"], &what);
            }
        }
    }
}

#[test]
fn sam_attaches_basic_execution_and_xray_to_every_role_and_the_stream_policy_to_stream_workers() {
    for mode in Mode::ALL {
        let translated = mode.translated();
        let stream_functions = stream_functions(&translated);
        assert!(
            !stream_functions.is_empty(),
            "the table stream has a worker"
        );
        for function in functions(&translated).values() {
            let (id, role) = role_of(&translated, function);
            let mut expected = vec![BASIC_EXECUTION, XRAY_WRITE];
            if stream_functions.contains(function) {
                expected.push(DYNAMODB_STREAM_EXECUTION);
            }
            let attached: Vec<&Value> = role["Properties"]["ManagedPolicyArns"]
                .as_array()
                .unwrap_or_else(|| panic!("{id} has managed policies"))
                .iter()
                .filter(|arn| is_aws_managed(arn))
                .collect();
            assert_eq!(json!(attached), json!(expected), "{mode:?}: {id}");
        }
    }
}

/// Transaction Search, as AWS's "Using Transaction Search with AWS
/// CloudFormation" (CloudWatch User Guide) sets it up: "To enable
/// Transaction Search using CloudFormation, you need to create the following
/// two resources. AWS::Logs::ResourcePolicy, AWS::XRay::TransactionSearchConfig",
/// the policy letting `xray.amazonaws.com` `logs:PutLogEvents` to the
/// `aws/spans` and `/aws/application-signals/data` log groups of this
/// account. And each function may send X-Ray spans: its role has
/// AWSXrayWriteOnlyAccess, which allows `xray:PutTraceSegments`, the
/// permission X-Ray's OTLP endpoint checks.
#[test]
fn transaction_search_is_on_as_aws_documents_it_and_every_function_may_send_spans() {
    let managed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/sam/aws-managed-policies.json"
        ))
        .expect("aws-managed-policies.json is readable"),
    )
    .expect("JSON");
    let xray_actions = managed[XRAY_WRITE]["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(actions)
        .collect::<Vec<_>>();
    assert!(
        xray_actions.contains(&"xray:PutTraceSegments"),
        "{XRAY_WRITE}: {xray_actions:?}"
    );
    for (mode, translated) in all_translations() {
        let configs = of_type(&translated, "AWS::XRay::TransactionSearchConfig");
        let policies = of_type(&translated, "AWS::Logs::ResourcePolicy");
        assert_eq!(configs.len(), 1, "{mode}: one TransactionSearchConfig");
        assert_eq!(policies.len(), 1, "{mode}: one Logs resource policy");
        let (config_id, config) = configs.into_iter().next().expect("one");
        let (policy_id, policy) = policies.into_iter().next().expect("one");
        assert_eq!(config["Condition"], "EnableTransactionSearch", "{mode}");
        assert_eq!(policy["Condition"], "EnableTransactionSearch", "{mode}");
        assert!(
            holds(&translated, "EnableTransactionSearch"),
            "{mode}: on by default"
        );
        assert_eq!(config["DependsOn"], json!(policy_id), "{mode}: {config_id}");
        assert_eq!(config["Properties"]["IndexingPercentage"], 1, "{mode}");
        let text = policy["Properties"]["PolicyDocument"]["Fn::Sub"]
            .as_str()
            .unwrap_or_else(|| panic!("{mode}: {policy_id}'s document is a Sub"));
        let document: Value = serde_json::from_str(text).expect("the policy is JSON");
        let statements = allow_statements(&document, policy_id);
        assert_eq!(statements.len(), 1, "{mode}");
        let statement = &statements[0];
        assert_eq!(statement["Principal"]["Service"], "xray.amazonaws.com");
        assert_eq!(actions(statement), ["logs:PutLogEvents"]);
        let resources: Vec<&str> = statement["Resource"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            resources,
            [
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:aws/spans:*",
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/application-signals/data:*",
            ],
            "{mode}"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:SourceAccount"],
            "${AWS::AccountId}"
        );
        for function in functions(&translated).values() {
            let properties = &translated["Resources"][function]["Properties"];
            assert_eq!(
                properties["TracingConfig"]["Mode"], "Active",
                "{mode}: {function}"
            );
            assert_eq!(
                properties["Environment"]["Variables"]["OTEL_EXPORTER_OTLP_ENDPOINT"],
                json!({ "Ref": "OtlpEndpoint" }),
                "{mode}: {function}"
            );
        }
    }
}

#[test]
fn sam_grants_a_stream_worker_sqs_send_message_on_its_on_failure_queue() {
    for mode in Mode::ALL {
        let translated = mode.translated();
        for (id, mapping) in of_type(&translated, "AWS::Lambda::EventSourceMapping") {
            let destination =
                &mapping["Properties"]["DestinationConfig"]["OnFailure"]["Destination"];
            if destination.is_null() {
                continue;
            }
            let invoked = mapping["Properties"]["FunctionName"]["Ref"]
                .as_str()
                .expect("a mapping names its function by Ref");
            let (role_id, role) = role_of(&translated, function_behind(&translated, invoked));
            let policy = role["Properties"]["Policies"]
                .as_array()
                .and_then(|ps| {
                    ps.iter()
                        .find(|p| p["PolicyName"] == format!("{id}SQSPolicy"))
                })
                .unwrap_or_else(|| panic!("{mode:?}: SAM adds {id}SQSPolicy to {role_id}"));
            assert_eq!(
                policy["PolicyDocument"]["Statement"],
                json!([{ "Action": "sqs:SendMessage", "Effect": "Allow", "Resource": destination }]),
                "{mode:?}: {role_id}"
            );
        }
    }
}

#[test]
fn each_stream_event_becomes_a_mapping_with_the_templates_settings() {
    let source = source_template();
    let mut events = 0;
    for mode in Mode::ALL {
        let translated = mode.translated();
        for (function, resource) in source["Resources"].as_object().expect("Resources") {
            let Some(function_events) = resource["Properties"]["Events"].as_object() else {
                continue;
            };
            for (name, event) in function_events {
                if event["Type"] != "DynamoDB" {
                    continue;
                }
                events += 1;
                let written = &event["Properties"];
                let mapping = &translated["Resources"][format!("{function}{name}")];
                assert_eq!(
                    mapping["Type"], "AWS::Lambda::EventSourceMapping",
                    "{mode:?}: {function}.{name}"
                );
                let mapped = &mapping["Properties"];
                // The alias: the stream's batches go to the versions
                // CodeDeploy weighs, not to $LATEST.
                let alias = alias_of(&translated, function);
                assert_eq!(
                    mapped["FunctionName"],
                    json!({ "Ref": alias }),
                    "{mode:?}: {function}.{name} invokes {alias}"
                );
                assert_eq!(mapped["EventSourceArn"], written["Stream"]);
                for setting in STREAM_SETTINGS {
                    assert_eq!(
                        mapped[setting], written[setting],
                        "{mode:?}: {function}.{name} {setting}"
                    );
                }
                // SAM reads the destination's Type (to grant the function
                // the right send action) and leaves it out of the mapping.
                let on_failure = &written["DestinationConfig"]["OnFailure"];
                assert_eq!(on_failure["Type"], "SQS");
                assert_eq!(
                    mapped["DestinationConfig"],
                    json!({ "OnFailure": { "Destination": on_failure["Destination"] } }),
                    "{mode:?}: {function}.{name} DestinationConfig"
                );
            }
        }
    }
    assert!(events > 0, "template.yaml has a DynamoDB stream event");
}

#[test]
fn outputs_name_the_api_and_every_function_and_cognito_only_in_cognito_mode() {
    for mode in Mode::ALL {
        let translated = mode.translated();
        let outputs = translated["Outputs"].as_object().expect("Outputs");
        let api_url = &outputs["ApiUrl"];
        assert!(exists(&translated, api_url), "{mode:?}: ApiUrl");
        let mut api = BTreeSet::new();
        references(&api_url["Value"], &mut api);
        assert_eq!(api, ["HttpApi".to_owned()].into(), "{mode:?}: ApiUrl");
        for (binary, function) in functions(&translated) {
            let key = format!("{}FunctionName", pascal_case(&binary));
            let output = outputs
                .get(&key)
                .unwrap_or_else(|| panic!("{mode:?}: output {key} for {binary}"));
            assert!(exists(&translated, output), "{mode:?}: {key}");
            assert_eq!(
                output["Value"],
                json!({ "Ref": function }),
                "{mode:?}: {key}"
            );
        }
        let cognito: BTreeSet<&str> = resources(&translated)
            .iter()
            .filter(|(_, r)| {
                r["Type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("AWS::Cognito::"))
            })
            .map(|(id, _)| id.as_str())
            .collect();
        assert!(
            !cognito.is_empty(),
            "{mode:?}: the template defines Cognito"
        );
        let mut cognito_outputs = 0;
        for (key, output) in outputs {
            let mut refers_to = BTreeSet::new();
            references(&output["Value"], &mut refers_to);
            if refers_to.iter().any(|id| cognito.contains(id.as_str())) {
                cognito_outputs += 1;
                assert_eq!(
                    exists(&translated, output),
                    mode == Mode::Cognito,
                    "{mode:?}: output {key} exists only in cognito mode"
                );
            }
        }
        assert!(
            cognito_outputs > 0,
            "{mode:?}: outputs name the Cognito resources"
        );
        for id in &cognito {
            assert_eq!(
                exists(&translated, &translated["Resources"][id]),
                mode == Mode::Cognito,
                "{mode:?}: {id} exists only in cognito mode"
            );
        }
    }
}

/// The action CloudFormation creates each resource type with, on the
/// deployer's credentials.
const CREATE_ACTIONS: [(&str, &str); 30] = [
    ("AWS::ApiGatewayV2::Api", "apigateway:POST"),
    ("AWS::ApiGatewayV2::Stage", "apigateway:POST"),
    (
        "AWS::CloudFront::Distribution",
        "cloudfront:CreateDistribution",
    ),
    (
        "AWS::CloudFront::ResponseHeadersPolicy",
        "cloudfront:CreateResponseHeadersPolicy",
    ),
    ("AWS::CloudWatch::Alarm", "cloudwatch:PutMetricAlarm"),
    ("AWS::CloudWatch::Dashboard", "cloudwatch:PutDashboard"),
    (
        "AWS::CodeDeploy::Application",
        "codedeploy:CreateApplication",
    ),
    (
        "AWS::CodeDeploy::DeploymentGroup",
        "codedeploy:CreateDeploymentGroup",
    ),
    ("AWS::Cognito::UserPool", "cognito-idp:CreateUserPool"),
    (
        "AWS::Cognito::UserPoolClient",
        "cognito-idp:CreateUserPoolClient",
    ),
    (
        "AWS::Cognito::UserPoolDomain",
        "cognito-idp:CreateUserPoolDomain",
    ),
    (
        "AWS::Cognito::UserPoolResourceServer",
        "cognito-idp:CreateResourceServer",
    ),
    ("AWS::DynamoDB::Table", "dynamodb:CreateTable"),
    ("AWS::IAM::ManagedPolicy", "iam:CreatePolicy"),
    ("AWS::IAM::Role", "iam:CreateRole"),
    (
        "AWS::Lambda::EventSourceMapping",
        "lambda:CreateEventSourceMapping",
    ),
    ("AWS::Lambda::Alias", "lambda:CreateAlias"),
    ("AWS::Lambda::Function", "lambda:CreateFunction"),
    ("AWS::Lambda::Permission", "lambda:AddPermission"),
    ("AWS::Lambda::Version", "lambda:PublishVersion"),
    ("AWS::Logs::LogGroup", "logs:CreateLogGroup"),
    ("AWS::Logs::ResourcePolicy", "logs:PutResourcePolicy"),
    ("AWS::S3::Bucket", "s3:CreateBucket"),
    ("AWS::SecretsManager::Secret", "secretsmanager:CreateSecret"),
    ("AWS::SNS::Subscription", "sns:Subscribe"),
    ("AWS::SNS::Topic", "sns:CreateTopic"),
    ("AWS::SQS::Queue", "sqs:CreateQueue"),
    (
        "AWS::WAFv2::LoggingConfiguration",
        "wafv2:PutLoggingConfiguration",
    ),
    ("AWS::WAFv2::WebACL", "wafv2:CreateWebACL"),
    (
        "AWS::XRay::TransactionSearchConfig",
        "xray:UpdateTraceSegmentDestination",
    ),
];

const DEPLOYER_POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../infra/deploy/deployer-policy.json"
);

fn deployer_policy() -> Value {
    let text = std::fs::read_to_string(DEPLOYER_POLICY).expect("deployer-policy.json is readable");
    serde_json::from_str(&text).expect("deployer-policy.json is JSON")
}

/// A statement's actions, one or a list.
fn actions(statement: &Value) -> Vec<&str> {
    match &statement["Action"] {
        Value::Array(actions) => actions.iter().filter_map(Value::as_str).collect(),
        one => one.as_str().into_iter().collect(),
    }
}

/// What CloudFormation does on the deployer's credentials beyond creating
/// resources, once the aliases are moved by CodeDeploy
/// (`UpdatePolicy.CodeDeployLambdaAliasUpdate`): start and follow a
/// deployment, read its configuration, and move the alias.
const GRADUAL_DEPLOY_ACTIONS: [&str; 6] = [
    "codedeploy:CreateDeployment",
    "codedeploy:GetDeployment",
    "codedeploy:GetDeploymentConfig",
    "lambda:GetAlias",
    "lambda:UpdateAlias",
    "lambda:PublishVersion",
];

#[test]
fn the_deployer_policy_passes_each_role_only_to_its_service_and_attaches_its_aws_policies() {
    let policy = deployer_policy();
    let statements = allow_statements(&policy, "deployer-policy.json");
    let granted: BTreeSet<&str> = statements.iter().flat_map(actions).collect();
    for action in GRADUAL_DEPLOY_ACTIONS {
        assert!(
            granted.contains(action),
            "{DEPLOYER_POLICY} allows {action}"
        );
    }
    let passed_to: BTreeSet<&str> = statements
        .iter()
        .filter(|s| actions(s).contains(&"iam:PassRole"))
        .map(|s| {
            s["Condition"]["StringEquals"]["iam:PassedToService"]
                .as_str()
                .unwrap_or_else(|| panic!("PassRole names the one service it passes to: {s}"))
        })
        .collect();
    let attachable: BTreeSet<&str> = statements
        .iter()
        .filter(|s| actions(s).contains(&"iam:AttachRolePolicy"))
        .flat_map(|s| {
            s["Condition"]["ArnLike"]["iam:PolicyARN"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
        })
        .collect();
    let mut services = BTreeSet::new();
    for (mode, translated) in all_translations() {
        // Every role of the stack, the function roles and the CodeDeploy
        // service role SAM adds with the deployment groups.
        for (id, role) in of_type(&translated, "AWS::IAM::Role") {
            let properties = &role["Properties"];
            for statement in properties["AssumeRolePolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for service in statement["Principal"]["Service"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    services.insert(service.to_owned());
                    assert!(
                        passed_to.contains(service),
                        "{mode}: {id} is assumed by {service}: {DEPLOYER_POLICY} must pass it there"
                    );
                }
            }
            for arn in properties["ManagedPolicyArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|arn| is_aws_managed(arn))
                .filter_map(Value::as_str)
            {
                assert!(
                    attachable.contains(arn),
                    "{mode}: {id} has {arn}: {DEPLOYER_POLICY} must let the deployer attach it"
                );
            }
        }
    }
    assert!(
        services.contains("codedeploy.amazonaws.com"),
        "the stack has the CodeDeploy service role"
    );
    assert_eq!(
        passed_to,
        services.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "{DEPLOYER_POLICY} passes roles to no other service"
    );
}

#[test]
fn the_deployer_policy_allows_creating_every_resource_type_of_the_stack() {
    let path = DEPLOYER_POLICY;
    let text = std::fs::read_to_string(path).expect("deployer-policy.json is readable");
    let policy = deployer_policy();
    assert_eq!(policy["Version"], "2012-10-17");
    let allowed: BTreeSet<&str> = allow_statements(&policy, "deployer-policy.json")
        .iter()
        .flat_map(|statement| {
            assert!(!statement["Resource"].is_null(), "{statement}");
            match &statement["Action"] {
                Value::Array(actions) => actions.iter().filter_map(Value::as_str).collect(),
                one => one.as_str().into_iter().collect::<Vec<_>>(),
            }
        })
        .collect();
    for transform in ["LanguageExtensions", "Serverless-2016-10-31"] {
        assert!(
            text.contains(&format!(":aws:transform/{transform}\"")),
            "the deployer may use the {transform} transform"
        );
    }
    for (mode, translated) in all_translations() {
        for resource in resources(&translated).values() {
            let kind = resource["Type"].as_str().expect("a resource has a Type");
            let (_, action) = CREATE_ACTIONS
                .iter()
                .find(|(known, _)| *known == kind)
                .unwrap_or_else(|| {
                    panic!("{kind} is new: add what deploying it needs to {path}, and its create action here")
                });
            assert!(
                allowed.contains(action),
                "{mode}: {path} does not allow {action}, which creates {kind}"
            );
        }
    }
}

/// Every translated file, with the name it is reported by.
fn all_translations() -> Vec<(String, Value)> {
    Mode::ALL
        .iter()
        .map(|mode| (format!("{mode:?}"), mode.translated()))
        .chain([("edge".to_owned(), edge_translated())])
        .collect()
}

/// The translation with `Edge` cloudfront (and the default `AuthMode`, in
/// us-east-1, where the stack makes its own web ACL).
fn edge_translated() -> Value {
    let path = format!(
        "{}/../infra/sam/translated/edge.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path} is readable ({e}); run infra/sam/translate.sh"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is JSON: {e}"))
}

/// The edge's resources in template.yaml.
const EDGE_RESOURCES: [&str; 7] = [
    "EdgeOriginSecret",
    "EdgeWebAcl",
    "EdgeWafLogGroup",
    "EdgeWafLogging",
    "EdgeResponseHeadersPolicy",
    "EdgeLogBucket",
    "EdgeDistribution",
];

/// CloudFront's managed cache policy `CachingDisabled`.
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
/// CloudFront's managed origin request policy `AllViewerExceptHostHeader`.
const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

#[test]
fn the_edge_exists_only_with_edge_cloudfront_and_then_is_the_public_url() {
    for mode in Mode::ALL {
        let translated = mode.translated();
        for id in EDGE_RESOURCES {
            let resource = &translated["Resources"][id];
            assert!(resource.is_object(), "{mode:?}: {id} is in the template");
            assert!(
                !exists(&translated, resource),
                "{mode:?}: no {id} with the edge off"
            );
        }
        let mut refers_to = BTreeSet::new();
        references(&translated["Outputs"]["ApiUrl"]["Value"], &mut refers_to);
        assert_eq!(
            refers_to,
            BTreeSet::from(["HttpApi".to_owned()]),
            "{mode:?}: ApiUrl is the HTTP API's own"
        );
    }
    let edge = edge_translated();
    for id in EDGE_RESOURCES {
        assert!(
            exists(&edge, &edge["Resources"][id]),
            "edge: {id} exists with Edge cloudfront in us-east-1"
        );
    }
    let mut refers_to = BTreeSet::new();
    references(&edge["Outputs"]["ApiUrl"]["Value"], &mut refers_to);
    assert_eq!(
        refers_to,
        BTreeSet::from(["EdgeDistribution".to_owned()]),
        "edge: ApiUrl is the distribution's"
    );
    assert!(
        exists(&edge, &edge["Outputs"]["OriginUrl"]),
        "edge: the execute-api URL is an output, for the smoke test's bypass check"
    );
}

#[test]
fn a_stack_outside_us_east_1_must_be_given_a_web_acl_made_there() {
    let source = source_template();
    let rule = &source["Rules"]["EdgeOutsideUsEast1NeedsWebAclArn"];
    assert_eq!(
        rule["RuleCondition"],
        json!({"Fn::And": [
            {"Fn::Equals": [{"Ref": "Edge"}, "cloudfront"]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}]}
        ]})
    );
    assert_eq!(
        rule["Assertions"][0]["Assert"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "WebAclArn"}, ""]}]})
    );
    let edge = edge_translated();
    let distribution = &source["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"];
    assert_eq!(
        distribution["WebACLId"],
        json!({"Fn::If": ["CreateWebAcl", {"Fn::GetAtt": ["EdgeWebAcl", "Arn"]}, {"Ref": "WebAclArn"}]}),
        "the distribution uses the stack's web ACL, or the one it is given"
    );
    assert_eq!(
        edge["Resources"]["EdgeWebAcl"]["Properties"]["Scope"], "CLOUDFRONT",
        "a web ACL for CloudFront"
    );
}

#[test]
fn the_distribution_sends_every_request_uncached_over_https_with_the_headers_the_api_needs() {
    let edge = edge_translated();
    let config = &edge["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"];
    let origins = config["Origins"].as_array().expect("Origins");
    assert_eq!(origins.len(), 1, "one origin, the HTTP API");
    let origin = &origins[0];
    let mut refers_to = BTreeSet::new();
    references(&origin["DomainName"], &mut refers_to);
    assert_eq!(refers_to, BTreeSet::from(["HttpApi".to_owned()]));
    assert_eq!(
        origin["CustomOriginConfig"]["OriginProtocolPolicy"],
        "https-only"
    );
    assert_eq!(
        origin["CustomOriginConfig"]["OriginSSLProtocols"],
        json!(["TLSv1.2"])
    );

    let behavior = &config["DefaultCacheBehavior"];
    assert_eq!(behavior["TargetOriginId"], origin["Id"]);
    assert_eq!(
        behavior["ViewerProtocolPolicy"], "https-only",
        "no plain HTTP"
    );
    let allowed: BTreeSet<&str> = behavior["AllowedMethods"]
        .as_array()
        .expect("AllowedMethods")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for route in template().routes {
        assert!(
            allowed.contains(route.method.as_str()),
            "the edge lets {} through",
            route.key()
        );
    }
    assert!(allowed.contains("OPTIONS"), "CORS preflights reach the API");
    // Responses are private to their caller: nothing is cached.
    assert_eq!(behavior["CachePolicyId"], CACHING_DISABLED);
    // CloudFront's docs ("How do I configure CloudFront to forward the
    // Authorization header to the origin?", AWS re:Post knowledge center):
    // "You can't use an origin request policy to forward the Authorization
    // header. [...] CloudFront returns an HTTP 400 error if you create an
    // origin request policy that forwards the Authorization header", and
    // "if caching is disabled, you can use the AllViewer and
    // AllViewerExceptHostHeader origin request policies to forward an
    // authorization header". And ("Use managed origin request policies"):
    // AllViewerExceptHostHeader includes every viewer header but Host, the
    // query strings and cookies; Host must stay the execute-api name, or API
    // Gateway answers 403 ("If you create a custom policy for API Gateway
    // origins without custom domain, then don't forward the HOST header").
    assert_eq!(
        behavior["OriginRequestPolicyId"], ALL_VIEWER_EXCEPT_HOST_HEADER,
        "every viewer header but Host reaches the API, Authorization included"
    );
    // So the headers the API reads reach it: every one its CORS
    // configuration allows (authorization, if-match, if-none-match,
    // idempotency-key, content-type), none of them Host.
    let source = source_template();
    let cors = &source["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    let needed: Vec<&str> = cors["AllowHeaders"]
        .as_array()
        .expect("the HTTP API's CORS AllowHeaders")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for header in [
        "authorization",
        "if-match",
        "if-none-match",
        "idempotency-key",
    ] {
        assert!(needed.contains(&header), "the API reads {header}");
    }
    assert!(!needed.contains(&"host"));

    assert!(
        config["Logging"]["Bucket"]["Fn::GetAtt"][0] == "EdgeLogBucket",
        "access logs go to the stack's bucket: {}",
        config["Logging"]
    );
    assert_eq!(
        edge["Resources"]["EdgeLogBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"],
        json!({"Ref": "LogRetentionInDays"}),
        "kept as long as the API's access logs"
    );
    assert_eq!(
        source["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]["ViewerCertificate"]
            ["Fn::If"][1]["MinimumProtocolVersion"],
        "TLSv1.2_2021",
        "with a domain of yours, viewers need TLS 1.2+"
    );
}

#[test]
fn the_response_headers_policy_puts_the_functions_security_headers_on_every_response() {
    let edge = edge_translated();
    let behavior = &edge["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"];
    assert_eq!(
        behavior["ResponseHeadersPolicyId"],
        json!({"Ref": "EdgeResponseHeadersPolicy"})
    );
    let config = &edge["Resources"]["EdgeResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"];
    let security = &config["SecurityHeadersConfig"];
    let hsts = &security["StrictTransportSecurity"];
    let hsts_value = format!(
        "max-age={}{}",
        hsts["AccessControlMaxAgeSec"],
        if hsts["IncludeSubdomains"] == true {
            "; includeSubDomains"
        } else {
            ""
        }
    );
    let mut sent = BTreeMap::from([
        ("strict-transport-security", hsts_value),
        ("x-content-type-options", "nosniff".to_owned()),
        (
            "x-frame-options",
            security["FrameOptions"]["FrameOption"]
                .as_str()
                .expect("FrameOption")
                .to_owned(),
        ),
        (
            "referrer-policy",
            security["ReferrerPolicy"]["ReferrerPolicy"]
                .as_str()
                .expect("ReferrerPolicy")
                .to_owned(),
        ),
        (
            "content-security-policy",
            security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
                .as_str()
                .expect("ContentSecurityPolicy")
                .to_owned(),
        ),
    ]);
    for (name, header) in security.as_object().expect("SecurityHeadersConfig") {
        assert_eq!(header["Override"], true, "{name} overrides the origin's");
    }
    for item in config["CustomHeadersConfig"]["Items"]
        .as_array()
        .expect("custom headers")
    {
        assert_eq!(item["Override"], true, "{item} overrides the origin's");
        sent.insert(
            item["Header"].as_str().expect("Header"),
            item["Value"].as_str().expect("Value").to_owned(),
        );
    }
    let functions: BTreeMap<&str, String> = common::http::SECURITY_HEADERS
        .iter()
        .map(|(name, value)| (*name, (*value).to_owned()))
        .collect();
    assert_eq!(sent, functions, "the edge sends what the functions send");
}

/// A rule of the edge's web ACL, by name.
fn web_acl_rule<'t>(acl: &'t Value, name: &str) -> &'t Value {
    acl["Rules"]
        .as_array()
        .expect("Rules")
        .iter()
        .find(|rule| rule["Name"] == name)
        .unwrap_or_else(|| panic!("the web ACL has a rule {name}"))
}

#[test]
fn the_web_acl_limits_each_token_and_each_address_and_answers_429_with_retry_after() {
    let edge = edge_translated();
    let acl = &edge["Resources"]["EdgeWebAcl"]["Properties"];
    assert!(acl["DefaultAction"]["Allow"].is_object());
    let parameters = &edge["Parameters"];
    for (rule, limit, key) in [
        ("per-client-rate", "EdgeClientRateLimit", "CUSTOM_KEYS"),
        ("per-ip-rate", "EdgeIpRateLimit", "IP"),
    ] {
        let rule = web_acl_rule(acl, rule);
        let statement = &rule["Statement"]["RateBasedStatement"];
        assert_eq!(statement["Limit"], json!({"Ref": limit}));
        assert_eq!(
            statement["EvaluationWindowSec"],
            json!({"Ref": "EdgeRateWindowSeconds"})
        );
        assert_eq!(statement["AggregateKeyType"], key);
        // WAF's floor ("The lowest limit setting allowed is 10") and its
        // windows ("Valid settings are 60, 120, 300 and 600").
        assert_eq!(parameters[limit]["MinValue"], 10, "{limit}");
        let response = &rule["Action"]["Block"]["CustomResponse"];
        assert_eq!(response["ResponseCode"], 429);
        // Sent as named: WAF prefixes x-amzn-waf- only "for custom request
        // header insertion" (AWS::WAFv2::WebACL CustomHTTPHeader, Name).
        assert_eq!(
            response["ResponseHeaders"],
            json!([{"Name": "retry-after", "Value": {"Ref": "EdgeRateWindowSeconds"}}]),
            "Retry-After: at most one window"
        );
        let body = &acl["CustomResponseBodies"][response["CustomResponseBodyKey"]
            .as_str()
            .expect("a body key")];
        assert_eq!(body["ContentType"], "APPLICATION_JSON");
        let problem: Value = serde_json::from_str(body["Content"].as_str().expect("Content"))
            .expect("the 429 body is JSON");
        assert_eq!(problem["status"], 429);
        assert_eq!(problem["title"], "Too Many Requests");
    }
    assert_eq!(
        parameters["EdgeRateWindowSeconds"]["AllowedValues"],
        json!([60, 120, 300, 600])
    );
    let custom_keys =
        &web_acl_rule(acl, "per-client-rate")["Statement"]["RateBasedStatement"]["CustomKeys"];
    assert_eq!(
        custom_keys,
        &json!([{"Header": {"Name": "authorization", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}]),
        "one budget per Authorization header value"
    );
    let default = |name: &str| -> u64 {
        parameters[name]["Default"]
            .as_u64()
            .or_else(|| {
                parameters[name]["Default"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
            })
            .unwrap_or_else(|| panic!("{name} has a numeric default"))
    };
    assert!(
        default("EdgeIpRateLimit") > default("EdgeClientRateLimit"),
        "an address, which many clients may share, gets more than one token"
    );
    let priority = |name: &str| {
        web_acl_rule(acl, name)["Priority"]
            .as_u64()
            .expect("Priority")
    };
    assert!(
        priority("per-client-rate") < priority("aws-common"),
        "a flood is answered 429 before any managed rule looks at it"
    );
}

#[test]
fn the_web_acl_runs_the_managed_rule_groups_and_counts_only_what_conflicts_with_the_api() {
    let edge = edge_translated();
    let acl = &edge["Resources"]["EdgeWebAcl"]["Properties"];
    let groups: BTreeMap<&str, &Value> = acl["Rules"]
        .as_array()
        .expect("Rules")
        .iter()
        .filter_map(|rule| {
            let group = &rule["Statement"]["ManagedRuleGroupStatement"];
            assert!(
                group.is_null() || rule["OverrideAction"]["None"].is_object(),
                "{}: a managed group's own actions apply",
                rule["Name"]
            );
            group["Name"].as_str().map(|name| (name, group))
        })
        .collect();
    assert_eq!(
        groups.keys().copied().collect::<Vec<_>>(),
        [
            "AWSManagedRulesAmazonIpReputationList",
            "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesKnownBadInputsRuleSet"
        ]
    );
    for (name, group) in &groups {
        assert_eq!(group["VendorName"], "AWS", "{name}");
    }
    // SizeRestrictions_BODY blocks bodies over 8 KB (8,192 bytes; AWS WAF's
    // "Baseline rule groups" and its knowledge center: "Request bodies larger
    // than 8 KB are blocked"); the API takes up to MAX_BODY_BYTES.
    const { assert!(common::http::MAX_BODY_BYTES > 8 * 1024) };
    let counted: BTreeMap<&str, &Value> =
        groups["AWSManagedRulesCommonRuleSet"]["RuleActionOverrides"]
            .as_array()
            .expect("the common rule set's overrides")
            .iter()
            .map(|o| (o["Name"].as_str().expect("Name"), &o["ActionToUse"]))
            .collect();
    assert_eq!(
        counted.keys().copied().collect::<Vec<_>>(),
        ["NoUserAgent_HEADER", "SizeRestrictions_BODY"],
        "only the rules that conflict with the API's contract are overridden"
    );
    for (name, action) in counted {
        assert_eq!(action, &json!({"Count": {}}), "{name} only counts");
    }
    for name in [
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesKnownBadInputsRuleSet",
    ] {
        assert!(
            groups[name]["RuleActionOverrides"].is_null(),
            "{name} blocks as AWS wrote it"
        );
    }
    let logging = &edge["Resources"]["EdgeWafLogging"]["Properties"];
    assert_eq!(
        logging["ResourceArn"],
        json!({"Fn::GetAtt": ["EdgeWebAcl", "Arn"]})
    );
    assert_eq!(
        logging["RedactedFields"],
        json!([{"SingleHeader": {"Name": "authorization"}}]),
        "WAF's log holds no token"
    );
}

#[test]
fn every_function_refuses_what_did_not_come_through_the_edge() {
    let edge = edge_translated();
    let secret = json!({"Fn::Sub": "{{resolve:secretsmanager:${EdgeOriginSecret}:SecretString}}"});
    let origin =
        &edge["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]["Origins"][0];
    assert_eq!(
        origin["OriginCustomHeaders"],
        json!([{"HeaderName": common::http::ORIGIN_HEADER, "HeaderValue": secret}]),
        "CloudFront sends the secret in the header the functions check"
    );
    for (binary, id) in functions(&edge) {
        if binary == "history-worker" {
            continue;
        }
        assert_eq!(
            edge["Resources"][&id]["Properties"]["Environment"]["Variables"]
                [common::http::ORIGIN_SECRET_VARIABLE],
            secret,
            "{binary} is given the same secret"
        );
    }
    let generated = &edge["Resources"]["EdgeOriginSecret"]["Properties"]["GenerateSecretString"];
    assert!(generated["PasswordLength"].as_u64().expect("a length") >= 32);
    for mode in Mode::ALL {
        let translated = mode.translated();
        for id in functions(&translated).values() {
            assert_eq!(
                translated["Resources"][id]["Properties"]["Environment"]["Variables"]
                    [common::http::ORIGIN_SECRET_VARIABLE],
                "",
                "{mode:?}: {id} checks nothing with the edge off"
            );
        }
    }
}
