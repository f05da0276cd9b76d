//! A small S1QL 1.0 subset: hand-written tokenizer, recursive-descent parser and an
//! evaluator over JSON documents (the Deep Visibility view of an event).
//!
//! Grammar (keywords and field names are case-insensitive):
//! ```text
//! expr      := and_expr ( OR and_expr )*
//! and_expr  := unary ( AND unary )*
//! unary     := NOT unary | '(' expr ')' | predicate
//! predicate := field ( cmp literal
//!                    | [NOT] IN '(' literal (',' literal)* ')'
//!                    | strop ( literal | '(' literal (',' literal)* ')' )
//!                    | EXISTS | IS [NOT] EMPTY )
//! cmp       := = | != | < | <= | > | >=
//! strop     := ContainsCIS | StartsWithCIS | EndsWithCIS | Contains | StartsWith | EndsWith
//! literal   := "string" | number | true | false
//! ```
//! Semantics: a predicate on an absent (or null) field is false (also for `!=` and `NOT IN`);
//! numbers compare numerically, booleans as booleans, strings exactly (ordering is
//! lexicographic, which suits ISO timestamps); mixed types never match; a field holding an
//! array matches when any element does.

use serde_json::Value;
use std::fmt;

/// A literal value in a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// Comparison and string operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    ContainsCis,
    StartsWithCis,
    EndsWithCis,
    Contains,
    StartsWith,
    EndsWith,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `field op value`; string operators may carry several values (any matches).
    Cmp {
        field: String,
        op: Op,
        values: Vec<Literal>,
    },
    In {
        field: String,
        values: Vec<Literal>,
        negated: bool,
    },
    Exists(String),
    /// `IS EMPTY` (`negated: false`) or `IS NOT EMPTY` (`negated: true`).
    Empty {
        field: String,
        negated: bool,
    },
}

/// Why a query did not parse; `pos` is a character offset into the query.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("S1QL syntax error at position {pos}: {message}")]
pub struct ParseError {
    pub pos: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    Comma,
    Cmp(Op),
}

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        pos,
        message: message.into(),
    })
}

fn tokenize(src: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((start, Tok::LParen));
                i += 1
            }
            ')' => {
                out.push((start, Tok::RParen));
                i += 1
            }
            ',' => {
                out.push((start, Tok::Comma));
                i += 1
            }
            '=' => {
                // Accept `==` as a synonym; S1QL users type both.
                i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                out.push((start, Tok::Cmp(Op::Eq)));
            }
            '!' => {
                if chars.get(i + 1) == Some(&'=') {
                    out.push((start, Tok::Cmp(Op::Ne)));
                    i += 2;
                } else {
                    return err(start, "expected `!=`");
                }
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                };
                out.push((start, Tok::Cmp(op)));
                i += if eq { 2 } else { 1 };
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return err(start, "unterminated string literal"),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(&e) => s.push(e),
                                None => return err(i, "dangling escape in string literal"),
                            }
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((start, Tok::Str(s)));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match text.parse::<f64>() {
                    Ok(n) => out.push((start, Tok::Num(n))),
                    Err(_) => return err(start, format!("bad number `{text}`")),
                }
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '$'))
                {
                    i += 1;
                }
                out.push((start, Tok::Ident(chars[start..i].iter().collect())));
            }
            other => return err(start, format!("unexpected character `{other}`")),
        }
    }
    Ok(out)
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "exists",
    "is",
    "empty",
    "true",
    "false",
    "containscis",
    "startswithcis",
    "endswithcis",
    "contains",
    "startswith",
    "endswith",
    "regexp",
];

struct Parser {
    toks: Vec<(usize, Tok)>,
    i: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(_, t)| t)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.i).map(|(p, _)| *p).unwrap_or(self.end)
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(&tok) {
            self.i += 1;
            Ok(())
        } else {
            err(self.pos(), format!("expected {what}"))
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and_expr()?;
        while self.eat_kw("or") {
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while self.eat_kw("and") {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.i += 1;
            let e = self.expr()?;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(e);
        }
        self.predicate()
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let pos = self.pos();
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Literal::Str(s.clone()),
            Some(Tok::Num(n)) => Literal::Num(*n),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => {
                return err(
                    pos,
                    "expected a literal (\"string\", number, true or false)",
                )
            }
        };
        self.i += 1;
        Ok(lit)
    }

    fn literal_list(&mut self) -> Result<Vec<Literal>, ParseError> {
        self.expect(Tok::LParen, "`(`")?;
        let mut values = vec![self.literal()?];
        while self.peek() == Some(&Tok::Comma) {
            self.i += 1;
            values.push(self.literal()?);
        }
        self.expect(Tok::RParen, "`)`")?;
        Ok(values)
    }

    fn predicate(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        let field = match self.peek() {
            Some(Tok::Ident(s)) if !KEYWORDS.contains(&s.to_ascii_lowercase().as_str()) => {
                s.clone()
            }
            None => return err(pos, "unexpected end of query, expected a field name"),
            _ => return err(pos, "expected a field name"),
        };
        self.i += 1;
        let op_pos = self.pos();
        match self.peek().cloned() {
            Some(Tok::Cmp(op)) => {
                self.i += 1;
                let value = self.literal()?;
                Ok(Expr::Cmp {
                    field,
                    op,
                    values: vec![value],
                })
            }
            Some(Tok::Ident(word)) => {
                self.i += 1;
                let lower = word.to_ascii_lowercase();
                let string_op = match lower.as_str() {
                    "containscis" => Some(Op::ContainsCis),
                    "startswithcis" => Some(Op::StartsWithCis),
                    "endswithcis" => Some(Op::EndsWithCis),
                    "contains" => Some(Op::Contains),
                    "startswith" => Some(Op::StartsWith),
                    "endswith" => Some(Op::EndsWith),
                    _ => None,
                };
                if let Some(op) = string_op {
                    let values = if self.peek() == Some(&Tok::LParen) {
                        self.literal_list()?
                    } else {
                        vec![self.literal()?]
                    };
                    if values.iter().any(|v| !matches!(v, Literal::Str(_))) {
                        return err(op_pos, format!("`{word}` needs string literals"));
                    }
                    return Ok(Expr::Cmp { field, op, values });
                }
                match lower.as_str() {
                    "in" => Ok(Expr::In {
                        field,
                        values: self.literal_list()?,
                        negated: false,
                    }),
                    "not" if self.eat_kw("in") => Ok(Expr::In {
                        field,
                        values: self.literal_list()?,
                        negated: true,
                    }),
                    "exists" => Ok(Expr::Exists(field)),
                    "is" => {
                        let negated = self.eat_kw("not");
                        if self.eat_kw("empty") {
                            Ok(Expr::Empty { field, negated })
                        } else {
                            err(self.pos(), "expected `EMPTY` after `IS`")
                        }
                    }
                    "regexp" => err(op_pos, "`RegExp` is not supported by the emulator"),
                    _ => err(op_pos, format!("unknown operator `{word}`")),
                }
            }
            None => err(op_pos, format!("expected an operator after `{field}`")),
            _ => err(op_pos, format!("expected an operator after `{field}`")),
        }
    }
}

/// Parses a query.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return err(0, "empty query");
    }
    let mut p = Parser {
        toks,
        i: 0,
        end: src.chars().count(),
    };
    let e = p.expr()?;
    if p.i < p.toks.len() {
        return err(p.pos(), "unexpected input after the end of the expression");
    }
    Ok(e)
}

/// Looks a (possibly dotted) field up in a JSON document, matching each segment exactly
/// first and then case-insensitively. Null counts as absent.
pub fn lookup<'a>(doc: &'a Value, field: &str) -> Option<&'a Value> {
    let mut cur = doc;
    let mut rest = field;
    // Try the longest key first so custom keys containing dots still resolve.
    'outer: while !rest.is_empty() {
        let obj = cur.as_object()?;
        let mut cut = rest.len();
        loop {
            let seg = &rest[..cut];
            let hit = obj.get(seg).or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                    .map(|(_, v)| v)
            });
            if let Some(v) = hit {
                cur = v;
                rest = rest[cut..].strip_prefix('.').unwrap_or("");
                continue 'outer;
            }
            match rest[..cut].rfind('.') {
                Some(dot) => cut = dot,
                None => return None,
            }
        }
    }
    (!cur.is_null()).then_some(cur)
}

fn eq(v: &Value, lit: &Literal) -> bool {
    match (v, lit) {
        (Value::String(s), Literal::Str(l)) => s == l,
        (Value::Number(n), Literal::Num(l)) => n.as_f64() == Some(*l),
        (Value::Bool(b), Literal::Bool(l)) => b == l,
        _ => false,
    }
}

fn cmp_scalar(v: &Value, op: Op, lit: &Literal) -> bool {
    use std::cmp::Ordering::*;
    let ord = match (v, lit) {
        (Value::Number(n), Literal::Num(l)) => n.as_f64().and_then(|n| n.partial_cmp(l)),
        (Value::String(s), Literal::Str(l)) => Some(s.as_str().cmp(l.as_str())),
        _ => None,
    };
    let text = |f: fn(&str, &str) -> bool, fold: bool| match (v, lit) {
        (Value::String(s), Literal::Str(l)) if fold => f(&s.to_lowercase(), &l.to_lowercase()),
        (Value::String(s), Literal::Str(l)) => f(s, l),
        _ => false,
    };
    match op {
        Op::Eq => eq(v, lit),
        Op::Ne => !eq(v, lit),
        Op::Lt => ord == Some(Less),
        Op::Le => matches!(ord, Some(Less | Equal)),
        Op::Gt => ord == Some(Greater),
        Op::Ge => matches!(ord, Some(Greater | Equal)),
        Op::ContainsCis => text(|a, b| a.contains(b), true),
        Op::StartsWithCis => text(|a, b| a.starts_with(b), true),
        Op::EndsWithCis => text(|a, b| a.ends_with(b), true),
        Op::Contains => text(|a, b| a.contains(b), false),
        Op::StartsWith => text(|a, b| a.starts_with(b), false),
        Op::EndsWith => text(|a, b| a.ends_with(b), false),
    }
}

fn any_element(v: &Value, f: impl Fn(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(f),
        other => f(other),
    }
}

impl Expr {
    /// Evaluates the query against one document.
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.matches(doc) && b.matches(doc),
            Expr::Or(a, b) => a.matches(doc) || b.matches(doc),
            Expr::Not(e) => !e.matches(doc),
            Expr::Cmp { field, op, values } => match lookup(doc, field) {
                None => false,
                // `!=` on an array means no element equals the value.
                Some(v) if *op == Op::Ne => !any_element(v, |x| eq(x, &values[0])),
                Some(v) => values
                    .iter()
                    .any(|lit| any_element(v, |x| cmp_scalar(x, *op, lit))),
            },
            Expr::In {
                field,
                values,
                negated,
            } => match lookup(doc, field) {
                None => false,
                Some(v) => {
                    let hit = any_element(v, |x| values.iter().any(|l| eq(x, l)));
                    hit != *negated
                }
            },
            Expr::Exists(field) => lookup(doc, field).is_some(),
            Expr::Empty { field, negated } => {
                let empty = match lookup(doc, field) {
                    None => true,
                    Some(Value::String(s)) => s.is_empty(),
                    Some(Value::Array(a)) => a.is_empty(),
                    Some(Value::Object(o)) => o.is_empty(),
                    Some(_) => false,
                };
                empty != *negated
            }
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write!(f, "{s:?}"),
            Literal::Num(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The spec's "Deep Visibility Queries" (comments removed) and its detection rule query.
    pub const SPEC_QUERIES: [&str; 7] = [
        r#"EventType = "Custom" AND EventSource = "DBaudit""#,
        r#"EventType = "Custom" AND EventSource = "DBaudit" AND CustomFields.severity = "critical""#,
        "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.action_type = \"SELECT\"\nAND CustomFields.rows_affected > 10000",
        "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.actor_user = \"app_user\"",
        "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.event_type = \"auth_failure\"",
        "EventType = \"Custom\" AND EventSource = \"DBaudit\"\nAND CustomFields.contains_pii = true",
        "EventType IN (\"Custom\", \"Process\")\nAND (\n(EventSource = \"DBaudit\" AND CustomFields.client_ip = \"10.0.1.50\")\nOR (SourceIP = \"10.0.1.50\")\n)",
    ];
    const RULE_QUERY: &str = "EventType = \"Custom\"\nAND EventSource = \"DBaudit\"\nAND CustomFields.action_type = \"SELECT\"\nAND CustomFields.rows_affected > 10000\nAND CustomFields.contains_pii = true";

    fn ev(cf: Value) -> Value {
        json!({"eventType": "Custom", "eventSource": "DBaudit", "eventTime": "2024-01-15T10:30:45.123Z", "customFields": cf})
    }

    fn spec_event() -> Value {
        ev(
            json!({"event_type": "audit_event", "severity": "warning", "actor_user": "app_user",
            "client_ip": "10.0.1.50", "action_type": "SELECT", "rows_affected": 1500,
            "contains_pii": true, "data_types": ["email", "phone"]}),
        )
    }

    #[test]
    fn all_spec_queries_parse() {
        for q in SPEC_QUERIES.iter().chain([RULE_QUERY].iter()) {
            parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn spec_queries_on_the_spec_event() {
        let e = spec_event();
        let got: Vec<bool> = SPEC_QUERIES
            .iter()
            .map(|q| parse(q).unwrap().matches(&e))
            .collect();
        assert_eq!(got, [true, false, false, true, false, true, true]);
        assert!(!parse(RULE_QUERY).unwrap().matches(&e));
    }

    #[test]
    fn rule_query_matches_large_pii_select() {
        let e = ev(json!({"action_type": "SELECT", "rows_affected": 15000, "contains_pii": true}));
        assert!(parse(RULE_QUERY).unwrap().matches(&e));
        let e = ev(json!({"action_type": "SELECT", "rows_affected": 15000, "contains_pii": false}));
        assert!(!parse(RULE_QUERY).unwrap().matches(&e));
        // A string "15000" is not a number.
        let e =
            ev(json!({"action_type": "SELECT", "rows_affected": "15000", "contains_pii": true}));
        assert!(!parse(RULE_QUERY).unwrap().matches(&e));
    }

    #[test]
    fn precedence_not_and_or() {
        let e = spec_event();
        // OR binds looser than AND.
        assert!(
            parse(r#"EventType = "X" AND EventSource = "Y" OR EventSource = "DBaudit""#)
                .unwrap()
                .matches(&e)
        );
        assert!(
            !parse(r#"EventType = "X" AND (EventSource = "Y" OR EventSource = "DBaudit")"#)
                .unwrap()
                .matches(&e)
        );
        assert!(parse(r#"NOT CustomFields.severity = "critical""#)
            .unwrap()
            .matches(&e));
        assert!(!parse(r#"not not CustomFields.severity = "critical""#)
            .unwrap()
            .matches(&e));
    }

    #[test]
    fn absent_fields_never_match() {
        let e = spec_event();
        for q in [
            r#"SourceIP = "10.0.1.50""#,
            r#"SourceIP != "10.0.1.50""#,
            r#"SourceIP NOT IN ("1")"#,
            r#"CustomFields.nope > 1"#,
            r#"SourceIP EXISTS"#,
            r#"SourceIP IS NOT EMPTY"#,
        ] {
            assert!(!parse(q).unwrap().matches(&e), "{q}");
        }
        assert!(parse("SourceIP IS EMPTY").unwrap().matches(&e));
        assert!(parse("customfields.ACTOR_USER exists").unwrap().matches(&e));
    }

    #[test]
    fn operators() {
        let e = spec_event();
        let yes = [
            r#"CustomFields.rows_affected >= 1500"#,
            r#"CustomFields.rows_affected <= 1500"#,
            r#"CustomFields.rows_affected < 1500.5"#,
            r#"CustomFields.rows_affected != 1"#,
            r#"CustomFields.actor_user ContainsCIS "APP""#,
            r#"CustomFields.actor_user StartsWithCIS "App_""#,
            r#"CustomFields.actor_user EndsWithCIS "USER""#,
            r#"CustomFields.actor_user containscis ("zzz", "user")"#,
            r#"CustomFields.data_types = "email""#,
            r#"CustomFields.data_types IN ("phone")"#,
            r#"CustomFields.severity NOT IN ("critical", "info")"#,
            r#"EventTime > "2024-01-15T00:00:00.000Z""#,
            r#"CustomFields.contains_pii != false"#,
        ];
        for q in yes {
            assert!(parse(q).unwrap().matches(&e), "{q}");
        }
        let no = [
            r#"CustomFields.rows_affected > 1500"#,
            r#"CustomFields.rows_affected = "1500""#,
            r#"CustomFields.actor_user = "APP_USER""#,
            r#"CustomFields.actor_user Contains "APP""#,
            r#"CustomFields.contains_pii = "true""#,
            r#"CustomFields.data_types != "email""#,
        ];
        for q in no {
            assert!(!parse(q).unwrap().matches(&e), "{q}");
        }
    }

    #[test]
    fn escaped_strings_and_negative_numbers() {
        let e = ev(json!({"statement": "say \"hi\"", "delta": -5}));
        assert!(parse(r#"CustomFields.statement = "say \"hi\"""#)
            .unwrap()
            .matches(&e));
        assert!(parse("CustomFields.delta = -5").unwrap().matches(&e));
    }

    #[test]
    fn syntax_errors_name_the_position() {
        for (q, pos) in [
            ("", 0),
            ("EventType =", 11),
            ("EventType = \"x", 12),
            ("EventType \"x\"", 10),
            ("(EventType = \"x\"", 16),
            ("EventType = \"x\" AND", 19),
            ("EventType = \"x\" EventSource = \"y\"", 16),
            ("AND = 1", 0),
            ("EventType ~ 1", 10),
            ("EventType IN \"x\"", 13),
            ("x RegExp \"a.*\"", 2),
            ("x ContainsCIS 1", 2),
        ] {
            let e = parse(q).expect_err(q);
            assert_eq!(e.pos, pos, "{q}: {e}");
        }
    }
}
