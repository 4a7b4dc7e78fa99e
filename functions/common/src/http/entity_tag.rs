//! Entity tags: the `ETag` of a version, and the conditional headers
//! `If-Match` and `If-None-Match` that name versions.

use lambda_http::Request;
use lambda_http::http::header::{HeaderName, HeaderValue, IF_MATCH, IF_NONE_MATCH};

use super::request::path_id;
use super::serve::actor;
use crate::domain::{Precondition, Version, WriteContext};
use crate::error::ApiError;

/// Most entity tags accepted in one `If-Match` or `If-None-Match` header.
pub const MAX_ENTITY_TAGS: usize = 20;

/// The strong entity tag of a version: `"3"`.
#[allow(
    clippy::expect_used,
    reason = "digits between quotes are always a valid header value"
)]
pub fn etag(version: Version) -> HeaderValue {
    HeaderValue::try_from(format!("\"{}\"", version.get())).expect("valid entity tag")
}

/// Entity tags from a conditional header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTags {
    /// `*`: any current representation.
    Any,
    /// A list of tags; `weak` marks `W/` tags.
    List(Vec<(bool, Option<Version>)>),
}

fn entity_tags(request: &Request, header: HeaderName) -> Result<Option<EntityTags>, ApiError> {
    let Some(value) = request.headers().get(&header) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(format!(
            "{header} must be * or a list of at most {MAX_ENTITY_TAGS} entity tags such as \"3\"."
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text == "*" {
        return Ok(Some(EntityTags::Any));
    }
    let mut tags = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (weak, quoted) = match part.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, part),
        };
        let opaque = quoted
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|inner| !inner.contains('"'))
            .ok_or_else(invalid)?;
        // Tags compare as text, so only a version's own spelling names it ("01" is
        // not "1"); any other tag is well formed but names no version of ours.
        let version = opaque
            .parse::<u64>()
            .ok()
            .filter(|number| number.to_string() == opaque)
            .map(Version::new);
        tags.push((weak, version));
    }
    if tags.len() > MAX_ENTITY_TAGS {
        return Err(invalid());
    }
    Ok(Some(EntityTags::List(tags)))
}

/// The write precondition from `If-Match` (strong comparison: weak tags
/// never match). Absent or `*` requires nothing beyond existence.
pub fn if_match(request: &Request) -> Result<Precondition, ApiError> {
    Ok(match entity_tags(request, IF_MATCH)? {
        None | Some(EntityTags::Any) => Precondition::None,
        Some(EntityTags::List(tags)) => Precondition::OneOf(
            tags.into_iter()
                .filter_map(|(weak, version)| if weak { None } else { version })
                .collect(),
        ),
    })
}

/// The context of a conditional change of the user in the path: the
/// precondition from `If-Match`, now, and the caller (see
/// [`crate::http::actor`]).
pub fn write_context(request: &Request) -> Result<WriteContext, ApiError> {
    let id = path_id(request)?;
    Ok(WriteContext::new(id, if_match(request)?, actor(request)))
}

/// The request's `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfNoneMatch(Option<EntityTags>);

impl IfNoneMatch {
    /// Whether the header names `version` (weak comparison), so a GET can
    /// answer 304.
    pub fn matches(&self, version: Version) -> bool {
        match &self.0 {
            None => false,
            Some(EntityTags::Any) => true,
            Some(EntityTags::List(tags)) => tags.iter().any(|(_, tag)| *tag == Some(version)),
        }
    }
}

/// Reads `If-None-Match`; a malformed one is a 400.
pub fn if_none_match(request: &Request) -> Result<IfNoneMatch, ApiError> {
    entity_tags(request, IF_NONE_MATCH).map(IfNoneMatch)
}

#[cfg(test)]
mod tests {
    use lambda_http::Body;

    use super::*;

    fn with_header(name: HeaderName, value: &str) -> Request {
        lambda_http::http::Request::builder()
            .header(name, value)
            .body(Body::Empty)
            .expect("request")
    }

    #[test]
    fn if_match_names_a_version_only_by_its_exact_entity_tag() {
        let cases = [
            ("\"1\"", vec![Version::new(1)], "the ETag itself"),
            ("\"01\"", vec![], "a leading zero"),
            ("\"+1\"", vec![], "a sign"),
            (
                "\"001\", \"2\"",
                vec![Version::new(2)],
                "only the exact tag of a list",
            ),
            ("W/\"1\"", vec![], "a weak tag"),
        ];
        for (header, versions, why) in cases {
            assert_eq!(
                if_match(&with_header(IF_MATCH, header)).ok(),
                Some(Precondition::OneOf(versions)),
                "{why}: {header}"
            );
        }
    }

    #[test]
    fn if_none_match_matches_only_the_exact_entity_tag() {
        let cases = [
            ("\"1\"", true, "the ETag itself"),
            ("W/\"1\"", true, "weak comparison"),
            ("\"01\"", false, "a leading zero"),
            ("W/\"001\"", false, "a weak tag with leading zeros"),
        ];
        for (header, matches, why) in cases {
            let condition =
                if_none_match(&with_header(IF_NONE_MATCH, header)).expect("well formed");
            assert_eq!(
                condition.matches(Version::new(1)),
                matches,
                "{why}: {header}"
            );
        }
    }
}
