//! A parser of DynamoDB's key condition expressions, for the partition key
//! value a `Query` reads (its `dynamodb:LeadingKeys`).
//!
//! The grammar, from DynamoDB's "Key condition expressions for query":
//!
//! ```text
//! condition  := term ( AND term )*
//! term       := "(" condition ")"
//!             | operand comparator operand
//!             | operand BETWEEN operand AND operand
//!             | begins_with "(" operand "," operand ")"
//! comparator := "=" | "<" | "<=" | ">" | ">="
//! operand    := name | "#"name | ":"name
//! ```
//!
//! Keywords (`AND`, `BETWEEN`) are case-insensitive, spaces, tabs and line
//! breaks separate tokens, `#name` resolves through `ExpressionAttributeNames`
//! and `:name` through `ExpressionAttributeValues`. Anything outside this
//! grammar (`OR`, `NOT`, `<>`, other functions, document paths, an unknown
//! placeholder) is an error: the proxy refuses what it cannot read rather
//! than guess. No maintained crate parses DynamoDB expressions, hence the
//! small recursive-descent parser.

use serde_json::{Map, Value};

/// A key condition that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("KeyConditionExpression: {0}")]
pub struct ConditionError(pub String);

/// One operand, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// An attribute, by its name.
    Attribute(String),
    /// A value, as `ExpressionAttributeValues` holds it (`{"S": "…"}`).
    Value(Value),
}

/// The comparison of one term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    /// `=`
    Equal,
    /// `<`, `<=`, `>`, `>=`
    Order,
    /// `BETWEEN … AND …`
    Between,
    /// `begins_with(…, …)`
    BeginsWith,
}

/// One term of the condition: a comparator and its operands in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// What it compares.
    pub comparator: Comparator,
    /// Its operands.
    pub operands: Vec<Operand>,
}

/// Parses `expression` into its terms (all joined by AND), resolving
/// placeholders through `names` and `values`.
pub fn parse(
    expression: &str,
    names: Option<&Map<String, Value>>,
    values: Option<&Map<String, Value>>,
) -> Result<Vec<Term>, ConditionError> {
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        names,
        values,
    };
    let mut terms = Vec::new();
    parser.condition(&mut terms)?;
    if let Some(token) = parser.tokens.get(parser.at) {
        return Err(ConditionError(format!("unexpected {token:?}")));
    }
    Ok(terms)
}

/// The value `terms` fix the attribute `key` to: the one `key = :value`
/// term. Any other term on `key` (or none, or two) is an error.
pub fn equality_on<'a>(terms: &'a [Term], key: &str) -> Result<&'a Value, ConditionError> {
    let on_key: Vec<&Term> = terms
        .iter()
        .filter(|t| {
            t.operands
                .iter()
                .any(|o| matches!(o, Operand::Attribute(a) if a == key))
        })
        .collect();
    match on_key.as_slice() {
        [
            Term {
                comparator: Comparator::Equal,
                operands,
            },
        ] => match operands.as_slice() {
            [Operand::Attribute(_), Operand::Value(v)]
            | [Operand::Value(v), Operand::Attribute(_)] => Ok(v),
            _ => Err(ConditionError(format!(
                "the partition key {key} is not compared with a value"
            ))),
        },
        [] => Err(ConditionError(format!(
            "no condition on the partition key {key}"
        ))),
        [_] => Err(ConditionError(format!(
            "the partition key {key} is not tested with ="
        ))),
        _ => Err(ConditionError(format!(
            "more than one condition on the partition key {key}"
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A bare word: an attribute name, a keyword or a function name.
    Word(String),
    /// `#name`
    Name(String),
    /// `:name`
    Value(String),
    Open,
    Close,
    Comma,
    Equal,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn tokenize(expression: &str) -> Result<Vec<Token>, ConditionError> {
    let mut tokens = Vec::new();
    let mut chars = expression.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let token = match c {
            // DynamoDB Local takes these four and no other (not a form
            // feed, a vertical tab or a no-break space).
            ' ' | '\t' | '\n' | '\r' => continue,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '=' => Token::Equal,
            '<' | '>' => {
                let equal = chars.next_if(|&(_, next)| next == '=').is_some();
                if chars.peek().is_some_and(|&(_, next)| next == '>') {
                    return Err(ConditionError("<> is not a key condition".to_owned()));
                }
                match (c, equal) {
                    ('<', false) => Token::Less,
                    ('<', true) => Token::LessEqual,
                    (_, false) => Token::Greater,
                    (_, true) => Token::GreaterEqual,
                }
            }
            '#' | ':' => {
                let mut name = String::new();
                while let Some((_, next)) = chars.next_if(|&(_, next)| is_word_char(next)) {
                    name.push(next);
                }
                if name.is_empty() {
                    return Err(ConditionError(format!("an empty placeholder at {at}")));
                }
                if c == '#' {
                    Token::Name(format!("#{name}"))
                } else {
                    Token::Value(format!(":{name}"))
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = c.to_string();
                while let Some((_, next)) = chars.next_if(|&(_, next)| is_word_char(next)) {
                    word.push(next);
                }
                Token::Word(word)
            }
            other => {
                return Err(ConditionError(format!(
                    "{other:?} at {at} is not part of a key condition"
                )));
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    names: Option<&'a Map<String, Value>>,
    values: Option<&'a Map<String, Value>>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Token, ConditionError> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| ConditionError("ends too early".to_owned()))?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, wanted: &Token) -> Result<(), ConditionError> {
        let token = self.next()?;
        if &token == wanted {
            Ok(())
        } else {
            Err(ConditionError(format!(
                "{wanted:?} expected, {token:?} found"
            )))
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn condition(&mut self, terms: &mut Vec<Term>) -> Result<(), ConditionError> {
        self.term(terms)?;
        while self.keyword("AND") {
            self.at += 1;
            self.term(terms)?;
        }
        Ok(())
    }

    fn term(&mut self, terms: &mut Vec<Term>) -> Result<(), ConditionError> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            self.condition(terms)?;
            return self.expect(&Token::Close);
        }
        // DynamoDB's function names are case-sensitive.
        if matches!(self.peek(), Some(Token::Word(w)) if w == "begins_with")
            && self.tokens.get(self.at + 1) == Some(&Token::Open)
        {
            self.at += 2;
            let attribute = self.operand()?;
            self.expect(&Token::Comma)?;
            let prefix = self.operand()?;
            self.expect(&Token::Close)?;
            terms.push(Term {
                comparator: Comparator::BeginsWith,
                operands: vec![attribute, prefix],
            });
            return Ok(());
        }
        let left = self.operand()?;
        if self.keyword("BETWEEN") {
            self.at += 1;
            let low = self.operand()?;
            if !self.keyword("AND") {
                return Err(ConditionError("BETWEEN without its AND".to_owned()));
            }
            self.at += 1;
            let high = self.operand()?;
            terms.push(Term {
                comparator: Comparator::Between,
                operands: vec![left, low, high],
            });
            return Ok(());
        }
        let comparator = match self.next()? {
            Token::Equal => Comparator::Equal,
            Token::Less | Token::LessEqual | Token::Greater | Token::GreaterEqual => {
                Comparator::Order
            }
            other => {
                return Err(ConditionError(format!(
                    "a comparator expected, {other:?} found"
                )));
            }
        };
        let right = self.operand()?;
        terms.push(Term {
            comparator,
            operands: vec![left, right],
        });
        Ok(())
    }

    fn operand(&mut self) -> Result<Operand, ConditionError> {
        match self.next()? {
            Token::Word(word) => {
                // A keyword where an operand belongs is DynamoDB's syntax
                // error too (reserved words need a #name).
                if ["AND", "OR", "NOT", "BETWEEN", "IN", "SIZE"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    return Err(ConditionError(format!("{word} where an operand belongs")));
                }
                Ok(Operand::Attribute(word))
            }
            Token::Name(placeholder) => self
                .names
                .and_then(|names| names.get(&placeholder))
                .and_then(Value::as_str)
                .map(|name| Operand::Attribute(name.to_owned()))
                .ok_or_else(|| {
                    ConditionError(format!(
                        "{placeholder} is not a name in ExpressionAttributeNames"
                    ))
                }),
            Token::Value(placeholder) => self
                .values
                .and_then(|values| values.get(&placeholder))
                .map(|value| Operand::Value(value.clone()))
                .ok_or_else(|| {
                    ConditionError(format!(
                        "{placeholder} is not a value in ExpressionAttributeValues"
                    ))
                }),
            other => Err(ConditionError(format!(
                "an operand expected, {other:?} found"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The value `expression` fixes `pk` to, with `#p` → `pk`, `#s` → `sk`,
    /// `:p` = USER#1, `:a`/`:b` other values.
    fn partition(expression: &str) -> Result<Value, ConditionError> {
        let names = map(json!({"#p": "pk", "#s": "sk", "#e": "email"}));
        let values = map(json!({
            ":p": {"S": "USER#1"}, ":a": {"S": "A"}, ":b": {"S": "B"}, ":q": {"S": "EMAIL#x"}
        }));
        let terms = parse(expression, Some(&names), Some(&values))?;
        equality_on(&terms, "pk").cloned()
    }

    #[test]
    fn the_partition_key_is_found_however_the_expression_is_spaced_or_parenthesised() {
        let cases = [
            "pk = :p",
            "pk=:p",
            "#p = :p",
            ":p = pk",
            "pk = :p AND sk = :a",
            "pk = :p\tAND\tsk > :a",
            "pk = :p\nAND\r\nsk <= :a",
            "pk = :p and sk >= :a",
            "pk = :p AnD begins_with(sk, :a)",
            "(pk = :p) AND (sk < :a)",
            "((pk = :p)) AND ((#s BETWEEN :a AND :b))",
            "sk BETWEEN :a and :b AND pk = :p",
            "begins_with ( #s , :a ) AND #p=:p",
        ];
        for expression in cases {
            assert_eq!(
                partition(expression),
                Ok(json!({"S": "USER#1"})),
                "{expression:?}"
            );
        }
    }

    #[test]
    fn the_terms_carry_their_comparators_and_resolved_operands() {
        let names = map(json!({"#s": "sk"}));
        let values = map(json!({":p": {"S": "P"}, ":a": {"S": "A"}, ":b": {"S": "B"}}));
        let terms = parse(
            "pk = :p AND #s BETWEEN :a AND :b",
            Some(&names),
            Some(&values),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            terms,
            [
                Term {
                    comparator: Comparator::Equal,
                    operands: vec![
                        Operand::Attribute("pk".to_owned()),
                        Operand::Value(json!({"S": "P"}))
                    ]
                },
                Term {
                    comparator: Comparator::Between,
                    operands: vec![
                        Operand::Attribute("sk".to_owned()),
                        Operand::Value(json!({"S": "A"})),
                        Operand::Value(json!({"S": "B"}))
                    ]
                }
            ]
        );
    }

    #[test]
    fn expressions_outside_the_grammar_are_errors() {
        let cases = [
            ("", "empty"),
            ("pk = :p OR pk = :q", "OR"),
            ("NOT pk = :p", "NOT"),
            ("pk <> :p", "not-equal"),
            ("pk = :p AND", "a dangling AND"),
            ("pk = :p sk = :a", "two terms without AND"),
            ("(pk = :p", "an unclosed parenthesis"),
            ("pk = :p)", "an unopened parenthesis"),
            ("pk = :nope", "an unknown value placeholder"),
            ("#nope = :p", "an unknown name placeholder"),
            (
                "pk = :p AND BEGINS_WITH(sk, :a)",
                "a function name in capitals",
            ),
            ("pk = :p AND contains(sk, :a)", "another function"),
            ("pk.x = :p", "a document path"),
            ("pk[0] = :p", "a list index"),
            ("pk = :p AND sk BETWEEN :a", "BETWEEN without AND"),
            ("pk IN (:p, :q)", "IN"),
            ("pk = # ", "an empty name placeholder"),
            ("pk\u{a0}=\u{a0}:p", "a no-break space"),
            ("pk = :p\u{b}AND sk = :a", "a vertical tab"),
        ];
        for (expression, what) in cases {
            assert!(partition(expression).is_err(), "{what}: {expression:?}");
        }
    }

    #[test]
    fn a_partition_key_not_fixed_by_one_equality_is_an_error() {
        let cases = [
            ("sk = :a", "no term on pk"),
            ("pk > :p", "an order comparison"),
            ("begins_with(pk, :p)", "a prefix"),
            ("pk BETWEEN :a AND :b", "a range"),
            ("pk = :p AND pk = :q", "two terms on pk"),
            ("pk = sk", "no value"),
            ("#e = :q", "another attribute"),
        ];
        for (expression, what) in cases {
            assert!(partition(expression).is_err(), "{what}: {expression:?}");
        }
    }
}
