//! The reference model: the users API as docs/api.md and openapi.yaml
//! describe it, written from those documents and not from the code. Users
//! with canonical email addresses (each held by one live user), versions
//! that grow by one on every change, `Idempotency-Key`s private to their
//! caller, and each user's history.
//!
//! Email and name spellings come from tables that say, by hand, what
//! docs/api.md says each one is ("look-alike spellings of one address are one
//! address", "quoted local parts are refused", names "trimmed"), so the
//! model never runs the code's own canonicalisation.

use std::collections::BTreeMap;

/// Email spellings a client may send, and the canonical address
/// docs/api.md says each is (`None`: a 422 in a body, a 400 in a query; `spelling`
/// `None`: JSON `null`).
pub(crate) const EMAILS: [(Option<&str>, Option<&str>); 14] = [
    (Some("ada@example.org"), Some("ada@example.org")),
    (Some("ADA@Example.ORG"), Some("ada@example.org")),
    // Fullwidth letters map to halfwidth (RFC 8265 UsernameCaseMapped).
    (Some("ＡＤＡ@example.org"), Some("ada@example.org")),
    (Some("grace@example.org"), Some("grace@example.org")),
    (Some("Grace@EXAMPLE.org"), Some("grace@example.org")),
    // The domain as UTS #46 maps it, stored in ASCII.
    (Some("ada@bücher.de"), Some("ada@xn--bcher-kva.de")),
    (Some("ADA@BÜCHER.DE"), Some("ada@xn--bcher-kva.de")),
    (Some("ada@xn--bcher-kva.de"), Some("ada@xn--bcher-kva.de")),
    // Quoted local parts are refused (one mailbox, one spelling).
    (Some("\"ada\"@example.org"), None),
    (Some("\"a\\da\"@example.org"), None),
    (Some("\"\\ada\"@example.org"), None),
    (Some("ada@"), None),
    (Some("ada@localhost"), None),
    (None, None),
];

/// Name spellings, and the name docs/api.md says each is (trimmed; 2–100
/// characters).
pub(crate) const NAMES: [(Option<&str>, Option<&str>); 6] = [
    (Some("Ada"), Some("Ada")),
    (Some("Grace Hopper"), Some("Grace Hopper")),
    (Some("Same Name"), Some("Same Name")),
    (Some("  Same Name "), Some("Same Name")),
    (Some("A"), None),
    (None, None),
];

/// Which user a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The n-th user created in this sequence.
    User(usize),
    /// A well-formed id no user ever had.
    Never,
    /// An id that is not a ULID.
    Malformed,
}

/// A conditional header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tags {
    Star,
    /// Entity tags: (weak, version).
    List(Vec<(bool, u64)>),
}

impl Tags {
    /// The header as sent.
    pub(crate) fn header(&self) -> String {
        match self {
            Self::Star => "*".to_owned(),
            Self::List(tags) => tags
                .iter()
                .map(|(weak, v)| format!("{}\"{v}\"", if *weak { "W/" } else { "" }))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// RFC 9110 §8.8.3.2: strong comparison (`If-Match`) never matches a
    /// weak tag; weak comparison (`If-None-Match`) ignores weakness.
    fn names(&self, version: u64, weak_comparison: bool) -> bool {
        match self {
            Self::Star => true,
            Self::List(tags) => tags
                .iter()
                .any(|(weak, v)| *v == version && (weak_comparison || !weak)),
        }
    }
}

/// One request of a generated sequence.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `POST /users` by caller 0 or 1, with or without `Idempotency-Key`.
    Create {
        caller: usize,
        key: Option<usize>,
        email: usize,
        name: usize,
    },
    /// `GET /users/{id}`.
    Get {
        user: Target,
        if_none_match: Option<Tags>,
    },
    /// `GET /users?limit=` and every following page.
    List { limit: usize },
    /// `GET /users?email=`.
    Find { email: usize },
    /// `PATCH /users/{id}`: the fields present (indexes into the tables).
    Patch {
        user: Target,
        email: Option<usize>,
        name: Option<usize>,
        if_match: Option<Tags>,
        if_none_match: Option<Tags>,
    },
    /// `DELETE /users/{id}`.
    Delete {
        user: Target,
        if_match: Option<Tags>,
        if_none_match: Option<Tags>,
    },
    /// `GET /users/{id}/events`.
    Events { user: Target },
}

/// A user as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelUser {
    pub(crate) email: &'static str,
    pub(crate) name: &'static str,
    pub(crate) version: u64,
    pub(crate) alive: bool,
    /// Its history: (type, version, changed fields).
    pub(crate) history: Vec<(&'static str, u64, Vec<&'static str>)>,
}

/// What the API must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A user (200 or 201), `replayed` for an `Idempotency-Key` replay.
    User {
        status: u16,
        index: usize,
        replayed: bool,
    },
    /// 304 for the user's current version.
    NotModified { index: usize },
    /// 204.
    NoContent,
    /// Users, in creation order.
    Users(Vec<usize>),
    /// A prefix of this history (possibly empty: the worker is behind).
    History { index: usize },
    /// A problem with this status and type.
    Problem(u16, &'static str),
}

/// The model's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reference {
    pub(crate) users: Vec<ModelUser>,
    /// (caller, key) → (email spelling, name spelling) of the first use, and the user it created.
    keys: BTreeMap<(usize, usize), ((usize, usize), usize)>,
}

const VALIDATION: Answer = Answer::Problem(422, "/problems/validation-failed");
const NOT_FOUND: Answer = Answer::Problem(404, "/problems/not-found");
const BAD_REQUEST: Answer = Answer::Problem(400, "/problems/bad-request");
const PRECONDITION: Answer = Answer::Problem(412, "/problems/precondition-failed");
const TAKEN: Answer = Answer::Problem(409, "/problems/email-taken");

impl Reference {
    fn holder(&self, email: &str) -> Option<usize> {
        self.users.iter().position(|u| u.alive && u.email == email)
    }

    /// The live user a request names, or the problem it gets.
    fn live(&self, target: Target) -> Result<usize, Answer> {
        match target {
            Target::Malformed => Err(BAD_REQUEST),
            Target::Never => Err(NOT_FOUND),
            Target::User(i) if self.users.get(i).is_some_and(|u| u.alive) => Ok(i),
            Target::User(_) => Err(NOT_FOUND),
        }
    }

    /// RFC 9110 §13.1.1–2 on a state-changing request.
    fn admits(if_match: Option<&Tags>, if_none_match: Option<&Tags>, version: u64) -> bool {
        if_match.is_none_or(|tags| tags.names(version, false))
            && !if_none_match.is_some_and(|tags| tags.names(version, true))
    }

    /// Applies `op` and says what the API must answer.
    pub(crate) fn step(&mut self, op: &Op) -> Answer {
        match op {
            Op::Create {
                caller,
                key,
                email,
                name,
            } => self.create(*caller, *key, *email, *name),
            Op::Get {
                user,
                if_none_match,
            } => match self.live(*user) {
                Err(problem) => problem,
                Ok(index) => {
                    let version = self.users[index].version;
                    if if_none_match
                        .as_ref()
                        .is_some_and(|tags| tags.names(version, true))
                    {
                        Answer::NotModified { index }
                    } else {
                        Answer::User {
                            status: 200,
                            index,
                            replayed: false,
                        }
                    }
                }
            },
            Op::List { .. } => Answer::Users(
                (0..self.users.len())
                    .filter(|&i| self.users[i].alive)
                    .collect(),
            ),
            Op::Find { email } => match EMAILS[*email].1 {
                None => BAD_REQUEST,
                Some(canonical) => Answer::Users(self.holder(canonical).into_iter().collect()),
            },
            Op::Patch {
                user,
                email,
                name,
                if_match,
                if_none_match,
            } => self.patch(
                *user,
                *email,
                *name,
                if_match.as_ref(),
                if_none_match.as_ref(),
            ),
            Op::Delete {
                user,
                if_match,
                if_none_match,
            } => {
                let index = match self.live(*user) {
                    Ok(index) => index,
                    Err(problem) => return problem,
                };
                let user = &mut self.users[index];
                if !Self::admits(if_match.as_ref(), if_none_match.as_ref(), user.version) {
                    return PRECONDITION;
                }
                user.alive = false;
                user.version += 1;
                user.history.push(("deleted", user.version, Vec::new()));
                Answer::NoContent
            }
            Op::Events { user } => match user {
                Target::Malformed => BAD_REQUEST,
                Target::Never => NOT_FOUND,
                // A deleted user's history stays.
                Target::User(index) => Answer::History { index: *index },
            },
        }
    }

    fn create(&mut self, caller: usize, key: Option<usize>, email: usize, name: usize) -> Answer {
        let (Some(canonical), Some(display)) = (EMAILS[email].1, NAMES[name].1) else {
            return VALIDATION;
        };
        if let Some(key) = key
            && let Some((body, index)) = self.keys.get(&(caller, key))
        {
            // The fingerprint is of the body as sent: another spelling of
            // the same address is another request.
            if *body != (email, name) {
                return Answer::Problem(422, "/problems/idempotency-key-reused");
            }
            return if self.users[*index].alive {
                Answer::User {
                    status: 201,
                    index: *index,
                    replayed: true,
                }
            } else {
                Answer::Problem(410, "/problems/created-user-deleted")
            };
        }
        if self.holder(canonical).is_some() {
            return TAKEN;
        }
        let index = self.users.len();
        self.users.push(ModelUser {
            email: canonical,
            name: display,
            version: 1,
            alive: true,
            history: vec![("created", 1, vec!["email", "name"])],
        });
        if let Some(key) = key {
            self.keys.insert((caller, key), ((email, name), index));
        }
        Answer::User {
            status: 201,
            index,
            replayed: false,
        }
    }

    fn patch(
        &mut self,
        target: Target,
        email: Option<usize>,
        name: Option<usize>,
        if_match: Option<&Tags>,
        if_none_match: Option<&Tags>,
    ) -> Answer {
        if target == Target::Malformed {
            return BAD_REQUEST;
        }
        // The body is read before the user: an invalid patch is a 422
        // whether or not the user exists.
        let new_email = email.map(|i| EMAILS[i].1);
        let new_name = name.map(|i| NAMES[i].1);
        if (email.is_none() && name.is_none()) || new_email == Some(None) || new_name == Some(None)
        {
            return VALIDATION;
        }
        let index = match self.live(target) {
            Ok(index) => index,
            Err(problem) => return problem,
        };
        if !Self::admits(if_match, if_none_match, self.users[index].version) {
            return PRECONDITION;
        }
        let user = &self.users[index];
        let mut changed = Vec::new();
        if let Some(Some(email)) = new_email
            && email != user.email
        {
            if self.holder(email).is_some() {
                return TAKEN;
            }
            changed.push("email");
        }
        if let Some(Some(name)) = new_name
            && name != user.name
        {
            changed.push("name");
        }
        let user = &mut self.users[index];
        if !changed.is_empty() {
            if let Some(Some(email)) = new_email {
                user.email = email;
            }
            if let Some(Some(name)) = new_name {
                user.name = name;
            }
            user.version += 1;
            user.history.push(("updated", user.version, changed));
        }
        Answer::User {
            status: 200,
            index,
            replayed: false,
        }
    }
}
