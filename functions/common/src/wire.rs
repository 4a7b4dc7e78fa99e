//! Wire types: what the API reads from request bodies and writes in
//! response bodies, and their conversions to and from domain types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::{
    Email, HistoryEvent, InvalidValue, Page, User, UserChanges, UserField, UserName,
};
use crate::error::{ApiError, FieldError};

/// A user as returned by the API. The table stores the same attributes
/// (its user item flattens this, adding its keys and `changedBy`), so a
/// field is listed once for both.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    /// The user's id.
    pub id: String,
    /// The email address.
    pub email: String,
    /// The name.
    pub name: String,
    /// When the user was created (RFC 3339).
    pub created_at: String,
    /// When the user last changed (RFC 3339).
    pub updated_at: String,
    /// The user's version (also its entity tag).
    pub version: u64,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        // Destructured without `..`: a new field of `User` is a compile
        // error here until the body (and so the stored item) carries it.
        let User {
            id,
            email,
            name,
            created_at,
            updated_at,
            version,
            changed_by: _,
        } = user;
        Self {
            id: id.to_string(),
            email: email.as_str().to_owned(),
            name: name.as_str().to_owned(),
            created_at: created_at.to_string(),
            updated_at: updated_at.to_string(),
            version: version.get(),
        }
    }
}

/// A history event as returned by the API.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEventBody {
    user_id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    version: u64,
    changed_fields: Vec<String>,
    occurred_at: String,
    actor: Option<String>,
}

impl From<&HistoryEvent> for HistoryEventBody {
    fn from(event: &HistoryEvent) -> Self {
        Self {
            user_id: event.user_id.to_string(),
            kind: event.kind.as_str(),
            version: event.version.get(),
            changed_fields: event.changed_fields.clone(),
            occurred_at: event.occurred_at.to_string(),
            actor: event.actor.clone(),
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageBody<T> {
    /// The page's items, oldest first.
    pub items: Vec<T>,
    /// The cursor of the next page, or `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> PageBody<T> {
    /// The body of `page`: each item converted by `item`, and the cursor
    /// `cursor` makes of the last item when more items follow.
    pub fn of<I>(
        page: &Page<I>,
        item: impl Fn(&I) -> T,
        cursor: impl FnOnce(&I) -> String,
    ) -> Self {
        Self {
            items: page.items.iter().map(item).collect(),
            next_cursor: page.items.last().filter(|_| page.more).map(cursor),
        }
    }
}

/// The fields of `POST /users`.
#[derive(Debug)]
pub struct NewUserFields {
    /// The new user's email address.
    pub email: Email,
    /// The new user's name.
    pub name: UserName,
}

impl TryFrom<Map<String, Value>> for NewUserFields {
    type Error = ApiError;

    /// Collects every field error before failing.
    fn try_from(body: Map<String, Value>) -> Result<Self, ApiError> {
        let mut fields = Fields::new(&body);
        let (mut email, mut name) = (None, None);
        // One arm a field, no catch-all: a new field does not compile here
        // until a create reads it.
        for &field in UserField::ALL {
            match field {
                UserField::Email => email = fields.required(field, Email::parse),
                UserField::Name => name = fields.required(field, UserName::parse),
            }
        }
        match (email, name) {
            (Some(email), Some(name)) if fields.errors.is_empty() => Ok(Self { email, name }),
            _ => Err(ApiError::Validation(fields.errors)),
        }
    }
}

impl TryFrom<Map<String, Value>> for UserChanges {
    type Error = ApiError;

    /// A JSON Merge Patch of a user: `email` and/or `name`, at least one.
    fn try_from(body: Map<String, Value>) -> Result<Self, ApiError> {
        let mut fields = Fields::new(&body);
        let (mut email, mut name) = (None, None);
        // One arm a field, no catch-all: a new field does not compile here
        // until a patch reads it.
        for &field in UserField::ALL {
            match field {
                UserField::Email => email = fields.optional(field, Email::parse),
                UserField::Name => name = fields.optional(field, UserName::parse),
            }
        }
        if body.is_empty() {
            let names: Vec<&str> = UserField::ALL.iter().map(|f| f.name()).collect();
            let message = format!("must contain at least one of {}", names.join(", "));
            fields.errors.push(FieldError::new("body", message));
        }
        if fields.errors.is_empty() {
            Ok(Self { email, name })
        } else {
            Err(ApiError::Validation(fields.errors))
        }
    }
}

/// Parses a field's raw text into its domain type.
type Parse<T> = fn(&str) -> Result<T, InvalidValue>;

/// Reads string fields from a JSON object, collecting every error.
struct Fields<'a> {
    body: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Starts with an error for every field that is not a [`UserField`].
    fn new(body: &'a Map<String, Value>) -> Self {
        let errors = body
            .keys()
            .filter(|key| {
                !UserField::ALL
                    .iter()
                    .any(|field| field.name() == key.as_str())
            })
            .map(|key| FieldError::new(key.as_str(), "is not a known field"))
            .collect();
        Self { body, errors }
    }

    fn required<T>(&mut self, field: UserField, parse: Parse<T>) -> Option<T> {
        if self.body.contains_key(field.name()) {
            self.optional(field, parse)
        } else {
            self.errors
                .push(FieldError::new(field.name(), "is required"));
            None
        }
    }

    fn optional<T>(&mut self, field: UserField, parse: Parse<T>) -> Option<T> {
        let name = field.name();
        let result = match self.body.get(name)? {
            Value::String(raw) => parse(raw).map_err(|invalid| invalid.0),
            Value::Null => Err("must be a string, not null (it cannot be removed)"),
            _ => Err("must be a string"),
        };
        result
            .map_err(|message| self.errors.push(FieldError::new(name, message)))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn field_errors(result: Result<impl std::fmt::Debug, ApiError>) -> Vec<(String, String)> {
        match result {
            Err(ApiError::Validation(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn new_user_reports_every_invalid_field_together() {
        let errors = field_errors(NewUserFields::try_from(object(
            json!({"email": "nope", "name": 7, "role": "admin"}),
        )));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["role", "email", "name"], "{errors:?}");
    }

    #[test]
    fn new_user_requires_both_fields() {
        let errors = field_errors(NewUserFields::try_from(object(json!({}))));
        assert_eq!(
            errors,
            [
                ("email".into(), "is required".into()),
                ("name".into(), "is required".into())
            ]
        );
    }

    #[test]
    fn changes_need_at_least_one_field_and_reject_null() {
        let errors = field_errors(UserChanges::try_from(object(json!({}))));
        assert_eq!(errors[0].0, "body");
        let errors = field_errors(UserChanges::try_from(object(json!({"name": null}))));
        assert_eq!(errors[0].0, "name");
    }

    #[test]
    fn changes_accept_a_single_valid_field() {
        let changes = UserChanges::try_from(object(json!({"name": " Ada "}))).expect("valid");
        assert_eq!(
            changes.name.map(|n| n.as_str().to_owned()),
            Some("Ada".to_owned())
        );
        assert_eq!(changes.email, None);
    }
}
