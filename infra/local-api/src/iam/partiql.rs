//! What a PartiQL statement asks IAM for. AWS authorises PartiQL for
//! DynamoDB by the statement's verb on the table or index it names
//! ("IAM security policies with PartiQL for DynamoDB": `SELECT` needs
//! `dynamodb:PartiQLSelect`, `INSERT` `PartiQLInsert`, `UPDATE`
//! `PartiQLUpdate`, `DELETE` `PartiQLDelete`), not by the API operation.
//!
//! Only as much of the statement is read as finds the verb and the table:
//! one statement, its verb first, the one table (or `table.index` for a
//! `SELECT`) where DynamoDB's PartiQL puts it. Comments, Ion literals,
//! `EXISTS(…)` and more than one `SELECT`/`FROM` are refused rather than
//! read (DynamoDB Local runs `--` and `/* */` comments; a reader that
//! skipped them differently could be shown another table).

/// A PartiQL statement that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PartiQL statement: {0}")]
pub struct StatementError(pub String);

/// What one statement does, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `PartiQLSelect`, `PartiQLInsert`, `PartiQLUpdate` or `PartiQLDelete`.
    pub action: &'static str,
    /// The table's name.
    pub table: String,
    /// The index a `SELECT` reads, if any.
    pub index: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An unquoted word (keyword or identifier).
    Word(String),
    /// A `"quoted"` identifier.
    Quoted(String),
    /// A `'string'` literal.
    Text,
    /// `.`
    Dot,
    /// Any other punctuation.
    Other(char),
}

fn tokenize(statement: &str) -> Result<Vec<Token>, StatementError> {
    let mut tokens = Vec::new();
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '"' | '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        // A doubled quote is the quote itself.
                        Some(q) if q == c && chars.next_if_eq(&c).is_some() => text.push(c),
                        Some(q) if q == c => break,
                        Some(other) => text.push(other),
                        None => return Err(StatementError("an unclosed quote".to_owned())),
                    }
                }
                if c == '"' {
                    Token::Quoted(text)
                } else {
                    Token::Text
                }
            }
            '.' => Token::Dot,
            '`' => return Err(StatementError("an Ion literal".to_owned())),
            ';' => return Err(StatementError("more than one statement".to_owned())),
            '-' if chars.peek() == Some(&'-') => {
                return Err(StatementError("a comment".to_owned()));
            }
            '/' if chars.peek() == Some(&'*') => {
                return Err(StatementError("a comment".to_owned()));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = c.to_string();
                while let Some(next) = chars.next_if(|n| n.is_ascii_alphanumeric() || *n == '_') {
                    word.push(next);
                }
                Token::Word(word)
            }
            other => Token::Other(other),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

fn is_keyword(token: Option<&Token>, keyword: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
}

fn identifier(token: Option<&Token>) -> Result<String, StatementError> {
    match token {
        Some(Token::Word(w) | Token::Quoted(w)) => Ok(w.clone()),
        other => Err(StatementError(format!(
            "a table name expected, {other:?} found"
        ))),
    }
}

/// Reads the verb and the table of `statement`.
pub fn target(statement: &str) -> Result<Target, StatementError> {
    let tokens = tokenize(statement)?;
    let count = |keyword: &str| {
        tokens
            .iter()
            .filter(|t| is_keyword(Some(t), keyword))
            .count()
    };
    if count("SELECT") > 1 || count("FROM") > 1 || count("EXISTS") > 0 {
        return Err(StatementError(
            "a nested statement or a second FROM".to_owned(),
        ));
    }
    let at = |i: usize| tokens.get(i);
    let only = |action: &'static str, table: usize, next: &[&str]| {
        if !next.iter().any(|k| is_keyword(at(table + 1), k)) {
            return Err(StatementError(format!(
                "{} expected after the table",
                next.join(" or ")
            )));
        }
        Ok(Target {
            action,
            table: identifier(at(table))?,
            index: None,
        })
    };
    if is_keyword(at(0), "SELECT") {
        let from = tokens
            .iter()
            .position(|t| is_keyword(Some(t), "FROM"))
            .ok_or_else(|| StatementError("SELECT without FROM".to_owned()))?;
        let table = identifier(at(from + 1))?;
        let (index, rest) = if at(from + 2) == Some(&Token::Dot) {
            (Some(identifier(at(from + 3))?), from + 4)
        } else {
            (None, from + 2)
        };
        if at(rest).is_some() && !is_keyword(at(rest), "WHERE") && !is_keyword(at(rest), "ORDER") {
            return Err(StatementError(format!(
                "{:?} after the table of a SELECT",
                at(rest)
            )));
        }
        Ok(Target {
            action: "PartiQLSelect",
            table,
            index,
        })
    } else if is_keyword(at(0), "INSERT") && is_keyword(at(1), "INTO") {
        only("PartiQLInsert", 2, &["VALUE"])
    } else if is_keyword(at(0), "UPDATE") {
        only("PartiQLUpdate", 1, &["SET", "REMOVE"])
    } else if is_keyword(at(0), "DELETE") && is_keyword(at(1), "FROM") {
        only("PartiQLDelete", 2, &["WHERE"])
    } else {
        Err(StatementError(
            "not a SELECT, INSERT, UPDATE or DELETE".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(statement: &str) -> (&'static str, String, Option<String>) {
        let target = target(statement).unwrap_or_else(|e| panic!("{statement:?}: {e}"));
        (target.action, target.table, target.index)
    }

    #[test]
    fn each_verb_is_authorised_as_its_partiql_action_on_its_table() {
        let cases = [
            ("SELECT * FROM users WHERE pk = ?", "PartiQLSelect", None),
            (
                "  select pk, \"from\" from \"users\" where pk = 'a FROM b'",
                "PartiQLSelect",
                None,
            ),
            (
                "SELECT * FROM \"users\".\"byEmail\" WHERE email = ?",
                "PartiQLSelect",
                Some("byEmail"),
            ),
            ("SELECT * FROM users", "PartiQLSelect", None),
            (
                "INSERT INTO users VALUE {'pk': ?, 'sk': ?}",
                "PartiQLInsert",
                None,
            ),
            (
                "insert\tinto\n\"users\" value {'pk': 'x'}",
                "PartiQLInsert",
                None,
            ),
            ("UPDATE users SET a = 1 WHERE pk = ?", "PartiQLUpdate", None),
            (
                "update \"users\" remove a where pk = ?",
                "PartiQLUpdate",
                None,
            ),
            (
                "DELETE FROM users WHERE pk = ? AND sk = ?",
                "PartiQLDelete",
                None,
            ),
        ];
        for (statement, action, index) in cases {
            assert_eq!(
                read(statement),
                (action, "users".to_owned(), index.map(str::to_owned)),
                "{statement:?}"
            );
        }
    }

    #[test]
    fn a_quoted_table_name_keeps_its_case_and_its_doubled_quotes() {
        assert_eq!(read("SELECT * FROM \"Us\"\"ers\"").1, "Us\"ers");
        assert_eq!(read("SELECT * FROM USERS").1, "USERS");
    }

    #[test]
    fn statements_it_cannot_read_are_errors() {
        let cases = [
            ("", "empty"),
            (
                "SELECT * FROM users; DELETE FROM users WHERE pk = ?",
                "two statements",
            ),
            ("SELECT * FROM users -- WHERE pk = ?", "a line comment"),
            ("SELECT * /* x */ FROM users", "a block comment"),
            ("SELECT * FROM users, other", "two tables"),
            ("SELECT * FROM users AS u", "an alias"),
            ("SELECT * FROM (SELECT * FROM users)", "a nested SELECT"),
            ("EXISTS(SELECT * FROM users WHERE pk = ?)", "EXISTS"),
            ("INSERT INTO users `{pk: 1}`", "an Ion literal"),
            ("INSERT users VALUE {'pk': ?}", "INSERT without INTO"),
            ("DELETE users WHERE pk = ?", "DELETE without FROM"),
            ("UPDATE users WHERE pk = ?", "UPDATE without SET"),
            ("SELECT * FROM 'users'", "a string as the table"),
            ("SELECT * FROM \"users", "an unclosed quote"),
            ("UPSERT INTO users VALUE {}", "another verb"),
        ];
        for (statement, what) in cases {
            assert!(target(statement).is_err(), "{what}: {statement:?}");
        }
    }
}
