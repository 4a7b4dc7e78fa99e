//! Lambda's log-level filtering of a function's own output, as the twin
//! applies it to the lines it forwards. From the AWS Lambda Developer
//! Guide, "Log-level filtering": with the JSON log format, "your function
//! code must output log events to `stdout` or `stderr` as JSON formatted
//! objects that contain a key value pair with the key `"level"`"; "If the
//! `"level"` value field is invalid or missing, Lambda will assign the log
//! output the level INFO"; "If you don't supply a valid timestamp, Lambda
//! will assign the log the level INFO". Lines below the function's
//! `ApplicationLogLevel` (`AWS_LAMBDA_LOG_LEVEL`) are dropped.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Lambda's log levels, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "TRACE" => Self::Trace,
            "DEBUG" => Self::Debug,
            "INFO" => Self::Info,
            "WARN" => Self::Warn,
            "ERROR" => Self::Error,
            "FATAL" => Self::Fatal,
            _ => return None,
        })
    }

    /// The level Lambda gives `line`.
    fn of(line: &str) -> Self {
        let Ok(object) = serde_json::from_str::<Value>(line) else {
            return Self::Info;
        };
        let timestamp = object["timestamp"]
            .as_str()
            .is_some_and(|t| OffsetDateTime::parse(t, &Rfc3339).is_ok());
        object["level"]
            .as_str()
            .and_then(Self::parse)
            .filter(|_| timestamp)
            .unwrap_or(Self::Info)
    }
}

/// The lowest level Lambda keeps for a function with this environment:
/// `None` (keep everything) unless its log format is JSON with a level.
pub(crate) fn threshold(env: &[(String, String)]) -> Option<Level> {
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if var("AWS_LAMBDA_LOG_FORMAT") != Some("JSON") {
        return None;
    }
    var("AWS_LAMBDA_LOG_LEVEL").and_then(Level::parse)
}

/// Whether Lambda passes `line` on at `threshold`.
pub(crate) fn kept(line: &str, threshold: Option<Level>) -> bool {
    threshold.is_none_or(|lowest| Level::of(line) >= lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2026-12-02T06:00:00.000Z";

    #[test]
    fn lines_below_the_application_log_level_are_dropped_as_lambda_documents() {
        let warn = Some(Level::Warn);
        let line =
            |level: &str| format!(r#"{{"timestamp":"{AT}","level":"{level}","message":"m"}}"#);
        let cases = [
            (line("INFO"), false, "below the level"),
            (line("info"), false, "levels in any case"),
            (line("WARN"), true, "at the level"),
            (line("ERROR"), true, "above it"),
            (line("FATAL"), true, "fatal"),
            (line("NOTICE"), false, "an invalid level is INFO"),
            (
                r#"{"level":"ERROR","message":"m"}"#.to_owned(),
                false,
                "no timestamp: INFO",
            ),
            (
                r#"{"timestamp":"yesterday","level":"ERROR"}"#.to_owned(),
                false,
                "an invalid timestamp: INFO",
            ),
            ("plain text".to_owned(), false, "not JSON: INFO"),
        ];
        for (text, expected, why) in cases {
            assert_eq!(kept(&text, warn), expected, "{why}: {text}");
        }
        assert!(kept(&line("TRACE"), None), "no threshold keeps everything");
        assert!(kept("plain text", Some(Level::Info)), "INFO at INFO");
    }

    #[test]
    fn only_the_json_log_format_with_a_level_filters() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            threshold(&env(&[
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("AWS_LAMBDA_LOG_LEVEL", "WARN")
            ])),
            Some(Level::Warn)
        );
        assert_eq!(threshold(&env(&[("AWS_LAMBDA_LOG_FORMAT", "Text")])), None);
        assert_eq!(threshold(&env(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")])), None);
    }
}
