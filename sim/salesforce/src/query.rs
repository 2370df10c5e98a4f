//! The SOQL subset the simulator understands, and running it against a [`SyntheticOrg`].
//!
//! ```text
//! query  := SELECT (COUNT() | path {, path}) FROM Object
//!           [WHERE cond {AND cond}] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST]]
//!           [LIMIT n]
//! path   := Field | Relationship.Field | Relationship.Relationship.Field
//! cond   := path op literal          op := = | != | <> | < | <= | > | >=
//! literal:= 'string' | number | true | false | null | 2024-04-01 |
//!           2024-04-01T00:00:00Z (or .000+0000, +00:00) | LAST_N_DAYS:n | TODAY
//! ```
//!
//! Keywords and names are case-insensitive; answers use the canonical names. String
//! `=`/`!=` compare case-insensitively, as SOQL does. `LAST_N_DAYS:n` stands for
//! midnight UTC n days ago: `= LAST_N_DAYS:n` and `>= LAST_N_DAYS:n` both mean "on or
//! after". A literal must match the field's type (booleans unquoted, dates unquoted).
//! Anything else (OR, IN, sub-queries, aggregates other than `COUNT()`) is
//! `MALFORMED_QUERY`.

use std::cmp::Ordering;

use serde::{Serialize, Serializer, ser::SerializeMap as _};
use serde_json::{Map, Value, json};

use crate::data::{FieldDef, Kind, Obj, SyntheticOrg};
use crate::field::Field;

/// A query refused: HTTP 400 with this `errorCode` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl QueryError {
    /// 400 `INVALID_TYPE`: an object the org lacks, or that the user may not see.
    pub(crate) fn not_supported(object: &str) -> Self {
        QueryError {
            code: "INVALID_TYPE",
            message: format!(
                "sObject type '{object}' is not supported. If you are attempting to use a \
                 custom object, be sure to append the '__c' after the entity name. Please \
                 reference your WSDL or the describe call for the appropriate names."
            ),
        }
    }
}

fn malformed(message: impl Into<String>) -> QueryError {
    QueryError {
        code: "MALFORMED_QUERY",
        message: message.into(),
    }
}

/// A validated field path: relationship hops, then the field.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    /// (id field on the current object, relationship name, target object).
    hops: Vec<(&'static str, &'static str, Obj)>,
    field: &'static FieldDef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// Canonical `YYYY-MM-DDTHH:MM:SS.sss+0000`.
    DateTime(String),
    Date(String),
    LastNDays(u32),
}

#[derive(Debug, Clone)]
struct Cond {
    path: Path,
    op: Op,
    literal: Literal,
    /// A dateTime literal as Unix milliseconds, for comparing `LoginHistory.LoginTime`
    /// without formatting each row's time (the same order as comparing the texts).
    millis: Option<i64>,
}

/// A parsed and validated query.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) obj: Obj,
    fields: Vec<Path>,
    conds: Vec<Cond>,
    order: Option<(Path, bool)>,
    limit: Option<u64>,
    pub(crate) count_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Sym(&'static str),
}

fn tokenize(soql: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = soql.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c.is_whitespace() {
            at += 1;
        } else if c == '\'' {
            let mut text = String::new();
            at += 1;
            loop {
                match chars.get(at) {
                    None => return Err(malformed("unterminated string literal")),
                    Some('\\') => {
                        text.extend(chars.get(at + 1));
                        at += 2;
                    }
                    Some('\'') => {
                        at += 1;
                        break;
                    }
                    Some(other) => {
                        text.push(*other);
                        at += 1;
                    }
                }
            }
            tokens.push(Token::Str(text));
        } else if c.is_alphanumeric() || c == '_' || c == '-' {
            let start = at;
            while at < chars.len() && (chars[at].is_alphanumeric() || "_.:-+".contains(chars[at])) {
                at += 1;
            }
            tokens.push(Token::Word(chars[start..at].iter().collect()));
        } else {
            let two: String = chars[at..chars.len().min(at + 2)].iter().collect();
            let sym = ["!=", "<>", "<=", ">=", "=", "<", ">", ",", "(", ")"]
                .into_iter()
                .find(|sym| two.starts_with(sym))
                .ok_or_else(|| malformed(format!("unexpected character '{c}'")))?;
            at += sym.len();
            tokens.push(Token::Sym(sym));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.peek_word(word);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_word(&mut self, word: &str) -> Result<(), QueryError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(malformed(format!("expected {word}")))
        }
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        let found = matches!(self.tokens.get(self.at), Some(Token::Sym(s)) if *s == sym);
        if found {
            self.at += 1;
        }
        found
    }

    fn word(&mut self) -> Result<String, QueryError> {
        match self.tokens.get(self.at) {
            Some(Token::Word(w)) => {
                self.at += 1;
                Ok(w.clone())
            }
            _ => Err(malformed("expected a name")),
        }
    }
}

/// Parses `soql` and checks its object and fields against the org's schema.
pub(crate) fn parse(soql: &str) -> Result<Plan, QueryError> {
    let mut p = Parser {
        tokens: tokenize(soql)?,
        at: 0,
    };
    p.expect_word("SELECT")?;
    let mut raw_fields = Vec::new();
    let mut count_only = false;
    if p.peek_word("COUNT") {
        p.at += 1;
        if !(p.eat_sym("(") && p.eat_sym(")")) {
            return Err(malformed("only COUNT() is supported"));
        }
        count_only = true;
    } else {
        loop {
            raw_fields.push(p.word()?);
            if !p.eat_sym(",") {
                break;
            }
        }
    }
    p.expect_word("FROM")?;
    let object = p.word()?;
    let obj = Obj::from_name(&object).ok_or_else(|| QueryError::not_supported(&object))?;
    let fields = raw_fields
        .iter()
        .map(|raw| resolve(obj, raw))
        .collect::<Result<Vec<_>, _>>()?;
    let mut conds = Vec::new();
    if p.eat_word("WHERE") {
        loop {
            let path = resolve(obj, &p.word()?)?;
            let op = match p.tokens.get(p.at) {
                Some(Token::Sym(sym)) => match *sym {
                    "=" => Op::Eq,
                    "!=" | "<>" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => return Err(malformed("expected a comparison operator")),
                },
                _ => return Err(malformed("expected a comparison operator")),
            };
            p.at += 1;
            let literal = literal(p.tokens.get(p.at))?;
            p.at += 1;
            check_type(&path, &literal)?;
            let millis = match &literal {
                Literal::DateTime(text) => {
                    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z")
                        .ok()
                        .map(|t| t.timestamp_millis())
                }
                _ => None,
            };
            conds.push(Cond {
                path,
                op,
                literal,
                millis,
            });
            if !p.eat_word("AND") {
                break;
            }
        }
    }
    let mut order = None;
    if p.eat_word("ORDER") {
        p.expect_word("BY")?;
        let path = resolve(obj, &p.word()?)?;
        let descending = if p.eat_word("DESC") {
            true
        } else {
            p.eat_word("ASC");
            false
        };
        if p.eat_word("NULLS") && !(p.eat_word("FIRST") || p.eat_word("LAST")) {
            return Err(malformed("expected FIRST or LAST"));
        }
        order = Some((path, descending));
    }
    let mut limit = None;
    if p.eat_word("LIMIT") {
        let n = p.word()?;
        limit = Some(
            n.parse::<u64>()
                .map_err(|_| malformed(format!("bad LIMIT {n}")))?,
        );
    }
    if let Some(token) = p.tokens.get(p.at) {
        return Err(malformed(format!("unexpected token: {token:?}")));
    }
    Ok(Plan {
        obj,
        fields,
        conds,
        order,
        limit,
        count_only,
    })
}

fn resolve(obj: Obj, raw: &str) -> Result<Path, QueryError> {
    let parts: Vec<&str> = raw.split('.').collect();
    let (last, hops_raw) = parts.split_last().expect("split yields one part");
    let mut current = obj;
    let mut hops = Vec::new();
    let invalid = |on: Obj| QueryError {
        code: "INVALID_FIELD",
        message: format!(
            "No such column '{raw}' on entity '{}'. If you are attempting to use a custom \
             field, be sure to append the '__c' after the custom field name. Please \
             reference your WSDL or the describe call for the appropriate names.",
            on.name()
        ),
    };
    for hop in hops_raw {
        let found = current.fields().iter().find_map(|field| match field.kind {
            Kind::Ref(target, rel) if rel.eq_ignore_ascii_case(hop) => {
                Some((field.name, rel, target))
            }
            _ => None,
        });
        let found = found.ok_or_else(|| invalid(current))?;
        hops.push(found);
        current = found.2;
    }
    let field = current
        .fields()
        .iter()
        .find(|field| field.name.eq_ignore_ascii_case(last))
        .ok_or_else(|| invalid(current))?;
    Ok(Path { hops, field })
}

fn literal(token: Option<&Token>) -> Result<Literal, QueryError> {
    let word = match token {
        Some(Token::Str(text)) => return Ok(Literal::Str(text.clone())),
        Some(Token::Word(word)) => word,
        _ => return Err(malformed("expected a value")),
    };
    let lower = word.to_ascii_lowercase();
    if lower == "true" || lower == "false" {
        return Ok(Literal::Bool(lower == "true"));
    }
    if lower == "null" {
        return Ok(Literal::Null);
    }
    if lower == "today" {
        return Ok(Literal::LastNDays(0));
    }
    if let Some(n) = lower.strip_prefix("last_n_days:") {
        let n = n
            .parse()
            .map_err(|_| malformed(format!("bad date literal {word}")))?;
        return Ok(Literal::LastNDays(n));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(word, "%Y-%m-%d") {
        return Ok(Literal::Date(date.format("%Y-%m-%d").to_string()));
    }
    if word.contains('T') {
        let parsed = chrono::DateTime::parse_from_rfc3339(word)
            .or_else(|_| chrono::DateTime::parse_from_str(word, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .map_err(|_| malformed(format!("bad dateTime literal {word}")))?;
        return Ok(Literal::DateTime(
            parsed
                .with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string(),
        ));
    }
    word.parse::<f64>()
        .map(Literal::Num)
        .map_err(|_| malformed(format!("unexpected value {word}")))
}

fn check_type(path: &Path, literal: &Literal) -> Result<(), QueryError> {
    let kind = path.field.kind;
    let fits = match literal {
        Literal::Null => true,
        Literal::Str(_) => matches!(kind, Kind::Id | Kind::Str | Kind::Ref(..)),
        Literal::Num(_) => kind == Kind::Int,
        Literal::Bool(_) => kind == Kind::Bool,
        Literal::DateTime(_) => kind == Kind::DateTime,
        Literal::Date(_) => kind == Kind::Date,
        Literal::LastNDays(_) => matches!(kind, Kind::Date | Kind::DateTime),
    };
    if fits {
        Ok(())
    } else {
        Err(QueryError {
            code: "INVALID_FIELD",
            message: format!(
                "value of filter criterion for field '{}' must be of type {} and should not \
                 be enclosed in quotes",
                path.field.name,
                path.field.kind.soap_type()
            ),
        })
    }
}

/// The value of `path` on the row at `pos` of `obj`.
fn eval(org: &SyntheticOrg, obj: Obj, pos: u64, path: &Path) -> Value {
    let (mut current, mut at) = (obj, pos);
    for (id_field, _, target) in &path.hops {
        let id = org.value(current, at, id_field);
        match id.as_str().and_then(|id| org.pos_of(*target, id)) {
            Some(next) => (current, at) = (*target, next),
            None => return Value::Null,
        }
    }
    org.value(current, at, path.field.name)
}

fn compare(value: &Value, literal: &Literal, org: &SyntheticOrg) -> Option<Ordering> {
    match (value, literal) {
        (Value::String(v), Literal::Str(l)) => Some(v.to_lowercase().cmp(&l.to_lowercase())),
        (Value::String(v), Literal::DateTime(l)) => Some(v.as_str().cmp(l.as_str())),
        (Value::String(v), Literal::Date(l)) => Some(v[..v.len().min(10)].cmp(l.as_str())),
        (Value::String(v), Literal::LastNDays(n)) => {
            let bound = org.days_ago_midnight(*n);
            if v.len() == 10 {
                Some(v.as_str().cmp(&bound[..10]))
            } else {
                Some(v.as_str().cmp(bound.as_str()))
            }
        }
        (Value::Number(v), Literal::Num(l)) => v.as_f64()?.partial_cmp(l),
        (Value::Bool(v), Literal::Bool(l)) => Some(v.cmp(l)),
        _ => None,
    }
}

fn matches(org: &SyntheticOrg, obj: Obj, pos: u64, cond: &Cond) -> bool {
    if let Some(millis) = cond.millis
        && obj == Obj::LoginHistory
        && cond.path.hops.is_empty()
        && cond.path.field.name == "LoginTime"
    {
        return holds(cond.op, org.login_time_millis(pos).cmp(&millis));
    }
    let value = eval(org, obj, pos, &cond.path);
    if cond.literal == Literal::Null {
        return match cond.op {
            Op::Eq => value.is_null(),
            Op::Ne => !value.is_null(),
            _ => false,
        };
    }
    if value.is_null() {
        return cond.op == Op::Ne;
    }
    let Some(ordering) = compare(&value, &cond.literal, org) else {
        return false;
    };
    if matches!(cond.literal, Literal::LastNDays(_)) && cond.op == Op::Eq {
        return ordering != Ordering::Less;
    }
    holds(cond.op, ordering)
}

/// Whether `op` holds between a value and a literal that compare as `ordering`.
fn holds(op: Op, ordering: Ordering) -> bool {
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
    }
}

impl Plan {
    /// Checks the plan against what this org has: a hidden object answers `INVALID_TYPE`
    /// and a feature flag the org lacks `INVALID_FIELD`, as on Salesforce.
    pub(crate) fn check_org(&self, org: &SyntheticOrg) -> Result<(), QueryError> {
        if org.hides(self.obj) {
            return Err(QueryError::not_supported(self.obj.name()));
        }
        let paths = self
            .fields
            .iter()
            .chain(self.conds.iter().map(|cond| &cond.path))
            .chain(self.order.iter().map(|(path, _)| path));
        for path in paths {
            let on = path.hops.last().map_or(self.obj, |hop| hop.2);
            if !org.has_field(on, path.field.name) {
                return Err(QueryError {
                    code: "INVALID_FIELD",
                    message: format!(
                        "No such column '{}' on entity '{}'. If you are attempting to use a \
                         custom field, be sure to append the '__c' after the custom field name. \
                         Please reference your WSDL or the describe call for the appropriate \
                         names.",
                        path.field.name,
                        on.name()
                    ),
                });
            }
        }
        Ok(())
    }

    fn selects(&self, org: &SyntheticOrg, pos: u64) -> bool {
        org.exists(self.obj, pos)
            && self
                .conds
                .iter()
                .all(|cond| matches(org, self.obj, pos, cond))
    }

    /// Whether rows come in position (= `Id`) order.
    pub(crate) fn natural_order(&self) -> bool {
        self.order.as_ref().is_none_or(|(path, descending)| {
            !descending && path.hops.is_empty() && path.field.name == "Id"
        })
    }

    /// `totalSize`: matching rows (one pass, nothing stored), capped by `LIMIT`.
    pub(crate) fn count(&self, org: &SyntheticOrg) -> u64 {
        let len = org.len(self.obj);
        let total = if self.conds.is_empty() && SyntheticOrg::dense(self.obj) {
            len
        } else {
            (0..len).filter(|pos| self.selects(org, *pos)).count() as u64
        };
        self.limit.map_or(total, |limit| total.min(limit))
    }

    /// For an `ORDER BY` other than `Id`: the positions of the matching rows, sorted.
    pub(crate) fn sorted_positions(&self, org: &SyntheticOrg) -> Vec<u64> {
        let mut keyed: Vec<(Value, u64)> = (0..org.len(self.obj))
            .filter(|pos| self.selects(org, *pos))
            .map(|pos| {
                let key = self
                    .order
                    .as_ref()
                    .map_or(Value::Null, |(path, _)| eval(org, self.obj, pos, path));
                (key, pos)
            })
            .collect();
        let descending = self.order.as_ref().is_some_and(|(_, desc)| *desc);
        keyed.sort_by(|a, b| {
            let ordering = order_values(&a.0, &b.0).then(a.1.cmp(&b.1));
            if descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
        let mut positions: Vec<u64> = keyed.into_iter().map(|(_, pos)| pos).collect();
        if let Some(limit) = self.limit {
            positions.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        positions
    }

    /// Up to `max` matching rows from position `from` on; returns them and the
    /// position after the last one scanned.
    pub(crate) fn scan(&self, org: &SyntheticOrg, from: u64, max: usize) -> (Vec<u64>, u64) {
        let len = org.len(self.obj);
        let mut found = Vec::new();
        let mut pos = from;
        while pos < len && found.len() < max {
            if self.selects(org, pos) {
                found.push(pos);
            }
            pos += 1;
        }
        (found, pos)
    }

    /// One record, serialised without building it first (a plan without relationship
    /// fields writes each field as it is read; one with them goes through [`Plan::record`]).
    pub(crate) fn view<'a>(
        &'a self,
        org: &'a SyntheticOrg,
        pos: u64,
        version: &'a str,
    ) -> RecordView<'a> {
        RecordView {
            plan: self,
            org,
            pos,
            version,
        }
    }

    /// The header line of a Bulk API 2.0 result: the selected fields in the order asked,
    /// a relationship field as `Relationship.Field`, each quoted.
    pub(crate) fn csv_header(&self, out: &mut Vec<u8>) {
        for (k, path) in self.fields.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.push(b'"');
            for (_, relationship, _) in &path.hops {
                out.extend_from_slice(relationship.as_bytes());
                out.push(b'.');
            }
            out.extend_from_slice(path.field.name.as_bytes());
            out.push(b'"');
        }
        out.push(b'\n');
    }

    /// The row at `pos` as a line of a Bulk API 2.0 result ([`Field::write_csv`]); a
    /// relationship that points nowhere gives an empty field.
    pub(crate) fn csv_row(&self, org: &SyntheticOrg, pos: u64, out: &mut Vec<u8>) {
        for (k, path) in self.fields.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            let (mut current, mut at) = (self.obj, pos);
            let mut found = true;
            for (id_field, _, target) in &path.hops {
                let id = org.value(current, at, id_field);
                match id.as_str().and_then(|id| org.pos_of(*target, id)) {
                    Some(next) => (current, at) = (*target, next),
                    None => found = false,
                }
                if !found {
                    break;
                }
            }
            let field = if found {
                org.field(current, at, path.field.name)
            } else {
                Field::Null
            };
            field.write_csv(out);
        }
        out.push(b'\n');
    }

    /// One record as Salesforce serialises it, relationship fields nested.
    pub(crate) fn record(&self, org: &SyntheticOrg, pos: u64, version: &str) -> Value {
        let mut record = Map::new();
        let id = org.value(self.obj, pos, "Id");
        record.insert("attributes".to_owned(), attributes(self.obj, &id, version));
        for path in &self.fields {
            insert(org, &mut record, self.obj, pos, path, 0, version);
        }
        Value::Object(record)
    }
}

/// A record of [`Plan::view`].
pub(crate) struct RecordView<'a> {
    plan: &'a Plan,
    org: &'a SyntheticOrg,
    pos: u64,
    version: &'a str,
}

impl Serialize for RecordView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let plan = self.plan;
        if plan.fields.iter().any(|path| !path.hops.is_empty()) {
            return plan
                .record(self.org, self.pos, self.version)
                .serialize(serializer);
        }
        let mut map = serializer.serialize_map(Some(plan.fields.len() + 1))?;
        let id = self.org.field(plan.obj, self.pos, "Id");
        map.serialize_entry(
            "attributes",
            &AttributesView {
                obj: plan.obj,
                id: &id,
                version: self.version,
            },
        )?;
        for path in &plan.fields {
            if path.field.name == "Id" {
                map.serialize_entry(path.field.name, &id)?;
            } else {
                let field = self.org.field(plan.obj, self.pos, path.field.name);
                map.serialize_entry(path.field.name, &field)?;
            }
        }
        map.end()
    }
}

/// A record's `attributes` (`type`, `url`), written without building a map.
struct AttributesView<'a> {
    obj: Obj,
    id: &'a Field,
    version: &'a str,
}

impl Serialize for AttributesView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", self.obj.name())?;
        map.serialize_entry("url", &RecordUrl(self))?;
        map.end()
    }
}

/// `/services/data/vNN.N/sobjects/Object/Id`, written without a `String` first.
struct RecordUrl<'a>(&'a AttributesView<'a>);

impl Serialize for RecordUrl<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for RecordUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let view = self.0;
        f.write_str("/services/data/v")?;
        f.write_str(view.version)?;
        f.write_str("/sobjects/")?;
        f.write_str(view.obj.name())?;
        f.write_str("/")?;
        std::fmt::Display::fmt(view.id, f)
    }
}

fn attributes(obj: Obj, id: &Value, version: &str) -> Value {
    json!({
        "type": obj.name(),
        "url": format!("/services/data/v{version}/sobjects/{}/{}", obj.name(), id.as_str().unwrap_or_default()),
    })
}

/// Inserts `path` (from hop `depth` on) into `record`, the row at `pos` of `obj`.
fn insert(
    org: &SyntheticOrg,
    record: &mut Map<String, Value>,
    obj: Obj,
    pos: u64,
    path: &Path,
    depth: usize,
    version: &str,
) {
    let Some((id_field, rel, target)) = path.hops.get(depth) else {
        record.insert(
            path.field.name.to_owned(),
            org.value(obj, pos, path.field.name),
        );
        return;
    };
    let id = org.value(obj, pos, id_field);
    let Some(next) = id.as_str().and_then(|id| org.pos_of(*target, id)) else {
        record.insert((*rel).to_owned(), Value::Null);
        return;
    };
    let child = record.entry((*rel).to_owned()).or_insert_with(|| {
        let mut child = Map::new();
        child.insert("attributes".to_owned(), attributes(*target, &id, version));
        Value::Object(child)
    });
    if let Value::Object(child) = child {
        insert(org, child, *target, next, path, depth + 1, version);
    }
}

fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => a.as_str().cmp(&b.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::OrgSpec;

    fn org() -> SyntheticOrg {
        SyntheticOrg::new(
            &OrgSpec {
                users: 50,
                ..OrgSpec::default()
            },
            chrono::Utc::now(),
        )
    }

    /// Every field of every object, written by the view as the record (`Value`) has it, and
    /// as a Bulk API 2.0 row the same values (dateTimes ending in `Z`, null empty).
    #[test]
    fn views_and_csv_rows_write_what_records_hold() {
        let org = org();
        for obj in crate::data::ALL_OBJECTS {
            let fields: Vec<&str> = obj
                .fields()
                .iter()
                .map(|f| f.name)
                .filter(|name| org.has_field(obj, name))
                .collect();
            let plan = parse(&format!("SELECT {} FROM {}", fields.join(", "), obj.name()))
                .unwrap_or_else(|e| panic!("{}: {}", obj.name(), e.message));
            let mut header = Vec::new();
            plan.csv_header(&mut header);
            assert_eq!(
                String::from_utf8(header).expect("UTF-8"),
                format!("\"{}\"\n", fields.join("\",\""))
            );
            let (positions, _) = plan.scan(&org, 0, 40);
            assert!(!positions.is_empty(), "{} has rows", obj.name());
            for pos in positions {
                let record = plan.record(&org, pos, "62.0");
                let view = serde_json::to_value(plan.view(&org, pos, "62.0")).expect("writes");
                assert_eq!(view, record, "{} row {pos}", obj.name());
                let mut line = Vec::new();
                plan.csv_row(&org, pos, &mut line);
                let expected: Vec<String> = fields
                    .iter()
                    .map(|name| match &record[*name] {
                        Value::Null => "\"\"".to_owned(),
                        Value::String(text) => format!(
                            "\"{}\"",
                            text.replace('"', "\"\"").replace(".000+0000", ".000Z")
                        ),
                        other => format!("\"{other}\""),
                    })
                    .collect();
                assert_eq!(
                    String::from_utf8(line).expect("UTF-8"),
                    format!("{}\n", expected.join(",")),
                    "{} row {pos}",
                    obj.name()
                );
            }
        }
    }

    #[test]
    fn parses_the_subset() {
        let org = org();
        let plan = parse(
            "select Id, profile.userlicense.name FROM user WHERE IsActive = true AND \
             LastLoginDate >= 2024-01-01T00:00:00Z ORDER BY LastLoginDate DESC LIMIT 5",
        )
        .expect("parses");
        assert_eq!(plan.obj, Obj::User);
        assert!(plan.count(&org) <= 5);
        let record = plan.record(&org, 0, "62.0");
        assert_eq!(record["Profile"]["UserLicense"]["Name"], "Salesforce");
        assert_eq!(record["Profile"]["attributes"]["type"], "Profile");
        let plan = parse("SELECT UserId FROM LoginHistory WHERE LoginTime = LAST_N_DAYS:30")
            .expect("parses");
        assert!(plan.count(&org) > 0);
        assert!(parse("SELECT COUNT() FROM User").expect("count").count_only);
    }

    #[test]
    fn login_time_windows_select_what_comparing_the_texts_selects() {
        let org = org();
        let bound = org.days_ago_midnight(40);
        let upper = org.days_ago_midnight(20);
        let by_text = |pos: u64, cmp: &dyn Fn(&str) -> bool| {
            org.exists(Obj::LoginHistory, pos)
                && cmp(org
                    .value(Obj::LoginHistory, pos, "LoginTime")
                    .as_str()
                    .expect("a time"))
        };
        let len = org.len(Obj::LoginHistory);
        let check = |soql: String, cmp: &dyn Fn(&str) -> bool| {
            let expected = (0..len).filter(|pos| by_text(*pos, cmp)).count() as u64;
            let plan = parse(&soql).expect("parses");
            assert_eq!(plan.count(&org), expected, "{soql}");
            expected
        };
        let at = |text: &str| text.replace(".000+0000", "Z");
        let (lo, hi) = (at(&bound), at(&upper));
        let older = check(
            format!("SELECT UserId FROM LoginHistory WHERE LoginTime < {lo}"),
            &|t| t < bound.as_str(),
        );
        let middle = check(
            format!("SELECT UserId FROM LoginHistory WHERE LoginTime >= {lo} AND LoginTime < {hi}"),
            &|t| t >= bound.as_str() && t < upper.as_str(),
        );
        let newer = check(
            format!("SELECT UserId FROM LoginHistory WHERE LoginTime >= {hi}"),
            &|t| t >= upper.as_str(),
        );
        assert!(older > 0 && middle > 0 && newer > 0);
        assert_eq!(
            older + middle + newer,
            parse("SELECT UserId FROM LoginHistory")
                .expect("parses")
                .count(&org),
            "the windows split the rows"
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let code = |soql: &str| parse(soql).expect_err(soql).code;
        assert_eq!(code("SELECT Id FROM Account"), "INVALID_TYPE");
        assert_eq!(code("SELECT Nope FROM User"), "INVALID_FIELD");
        assert_eq!(code("SELECT Profile.Nope FROM User"), "INVALID_FIELD");
        assert_eq!(
            code("SELECT Id FROM User WHERE IsActive = 'x'"),
            "INVALID_FIELD"
        );
        assert_eq!(
            code("SELECT Id FROM User WHERE A = 1 OR B = 2"),
            "INVALID_FIELD"
        );
        assert_eq!(
            code("SELECT Id FROM User WHERE IsActive = true OR IsActive = false"),
            "MALFORMED_QUERY"
        );
        assert_eq!(code("SELECT FROM User"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Id FROM User WHERE Name = 'x"),
            "MALFORMED_QUERY"
        );
    }
}
