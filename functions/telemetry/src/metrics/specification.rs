//! The EMF specification as a check, for tests: what CloudWatch requires
//! of an Embedded Metric Format document.

use serde_json::Value;

use super::MAX_VALUES;

/// Checks an object against the EMF specification (the CloudWatch
/// "Specification: Embedded metric format" page): the `_aws` metadata, each
/// directive's namespace, dimension sets and metric definitions, and that
/// every name they use is a top-level member of the right type. Returns
/// every violation found.
pub fn emf_violations(document: &Value) -> Vec<String> {
    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let mut violations = Vec::new();
    let mut fail = |message: String| violations.push(message);
    let Some(root) = document.as_object() else {
        return vec!["the document is not a JSON object".to_owned()];
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["_aws must be an object".to_owned()];
    };
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        fail("_aws.Timestamp must be a non-negative integer (epoch milliseconds)".to_owned());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        fail("_aws.CloudWatchMetrics must be an array".to_owned());
        return violations;
    };
    for directive in directives {
        let namespace = directive.get("Namespace").and_then(Value::as_str);
        if !namespace.is_some_and(|n| !n.trim().is_empty() && n.len() <= 1024) {
            fail(format!(
                "Namespace must be 1 to 1024 characters: {namespace:?}"
            ));
        }
        match directive.get("Dimensions").and_then(Value::as_array) {
            None => fail("Dimensions must be an array of dimension sets".to_owned()),
            Some(sets) => {
                for set in sets {
                    let Some(names) = set.as_array() else {
                        fail(format!("a dimension set must be an array: {set}"));
                        continue;
                    };
                    if names.len() > 30 {
                        fail(format!("a dimension set has over 30 dimensions: {set}"));
                    }
                    for name in names {
                        let value = name.as_str().and_then(|n| root.get(n));
                        if !value
                            .and_then(Value::as_str)
                            .is_some_and(|v| !v.is_empty() && v.len() <= 1024)
                        {
                            fail(format!(
                                "dimension {name} must name a top-level string of 1 to 1024 characters"
                            ));
                        }
                    }
                }
            }
        }
        match directive.get("Metrics").and_then(Value::as_array) {
            None => fail("Metrics must be an array".to_owned()),
            Some(metrics) => {
                if metrics.len() > 100 {
                    fail("a directive has over 100 metrics".to_owned());
                }
                for metric in metrics {
                    let Some(name) = metric.get("Name").and_then(Value::as_str) else {
                        fail(format!("a metric needs a Name: {metric}"));
                        continue;
                    };
                    if let Some(unit) = metric.get("Unit")
                        && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
                    {
                        fail(format!("metric {name} has an unknown Unit {unit}"));
                    }
                    let valid = match root.get(name) {
                        Some(Value::Number(_)) => true,
                        Some(Value::Array(values)) => {
                            values.len() <= MAX_VALUES && values.iter().all(Value::is_number)
                        }
                        _ => false,
                    };
                    if !valid {
                        fail(format!(
                            "metric {name} must be a top-level number or an array of at most 100 numbers"
                        ));
                    }
                }
            }
        }
    }
    violations
}
