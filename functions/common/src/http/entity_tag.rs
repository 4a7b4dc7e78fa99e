//! Entity tags: the `ETag` of a version, and the conditional headers
//! `If-Match` and `If-None-Match` that name versions.

use lambda_http::Request;
use lambda_http::http::header::{HeaderName, HeaderValue, IF_MATCH, IF_NONE_MATCH};

use super::request::path_id;
use super::serve::actor;
use crate::domain::{Precondition, Version, Versions, WriteContext};
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

impl EntityTags {
    /// The versions these tags name; `weak` tags count only under weak
    /// comparison (RFC 9110 §8.8.3.2).
    fn versions(self, weak_comparison: bool) -> Versions {
        match self {
            Self::Any => Versions::Any,
            Self::List(tags) => Versions::OneOf(
                tags.into_iter()
                    .filter_map(|(weak, version)| version.filter(|_| weak_comparison || !weak))
                    .collect(),
            ),
        }
    }
}

/// The write precondition from `If-Match` (strong comparison: weak tags
/// never match; absent or `*` requires nothing beyond existence) and
/// `If-None-Match` (weak comparison: a state-changing request whose
/// `If-None-Match` names the stored version, or is `*`, fails; RFC 9110
/// §13.1.2).
pub fn precondition(request: &Request) -> Result<Precondition, ApiError> {
    Ok(Precondition {
        if_match: entity_tags(request, IF_MATCH)?
            .map(|tags| tags.versions(false))
            .filter(|versions| *versions != Versions::Any),
        if_none_match: entity_tags(request, IF_NONE_MATCH)?.map(|tags| tags.versions(true)),
    })
}

/// The context of a conditional change of the user in the path: the
/// precondition from `If-Match` and `If-None-Match`, now, and the caller
/// (see [`crate::http::actor`]).
pub fn write_context(request: &Request) -> Result<WriteContext, ApiError> {
    let id = path_id(request)?;
    Ok(WriteContext::new(
        id,
        precondition(request)?,
        actor(request),
    ))
}

/// The request's `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfNoneMatch(Option<Versions>);

impl IfNoneMatch {
    /// Whether the header names `version` (weak comparison), so a GET can
    /// answer 304.
    pub fn matches(&self, version: Version) -> bool {
        self.0
            .as_ref()
            .is_some_and(|versions| versions.contains(version))
    }
}

/// Reads `If-None-Match`; a malformed one is a 400.
pub fn if_none_match(request: &Request) -> Result<IfNoneMatch, ApiError> {
    Ok(IfNoneMatch(
        entity_tags(request, IF_NONE_MATCH)?.map(|tags| tags.versions(true)),
    ))
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
    fn if_match_names_a_version_only_by_its_exact_entity_tag_and_star_requires_nothing() {
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
        assert_eq!(
            precondition(&with_header(IF_MATCH, "*")).ok(),
            Some(Precondition::NONE),
            "If-Match: *"
        );
        for (header, versions, why) in cases {
            assert_eq!(
                precondition(&with_header(IF_MATCH, header)).ok(),
                Some(Precondition::one_of(versions)),
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

    #[test]
    fn if_none_match_on_a_write_excludes_the_versions_it_names_weakly() {
        let cases = [
            ("*", Versions::Any, "any stored version"),
            (
                "\"3\"",
                Versions::OneOf(vec![Version::new(3)]),
                "the ETag itself",
            ),
            (
                "W/\"3\"",
                Versions::OneOf(vec![Version::new(3)]),
                "weak comparison",
            ),
            (
                "\"03\"",
                Versions::OneOf(vec![]),
                "not a version's spelling",
            ),
        ];
        for (header, excluded, why) in cases {
            let precondition =
                precondition(&with_header(IF_NONE_MATCH, header)).expect("well formed");
            assert_eq!(
                precondition.if_none_match,
                Some(excluded),
                "{why}: {header}"
            );
            assert_eq!(precondition.if_match, None, "{why}: {header}");
        }
    }
}
