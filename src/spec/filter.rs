//! Personalize filter expressions: lexer, parser and syntax tree (docs/personalize.md#filter-expressions).
//!
//! [`parse`] turns a `filterExpression` into a [`FilterExpression`] that the parameter-file validator
//! checks and the built-in Personalize evaluates. Errors point at the offending token with its byte
//! offset and 1-based column (characters from the start of the expression; a newline counts as one
//! character), e.g. ``column 16 near `WHER`: expected WHERE``.
//!
//! # Syntax
//! ```text
//! filter     = expression { "|" expression }
//! expression = (INCLUDE | EXCLUDE) (ItemID | UserID | ActionID) WHERE condition [IF user_cond {AND user_cond}]
//! condition  = comparison { (AND | OR) comparison }      AND binds tighter than OR; both left to right
//! comparison = Dataset.FIELD (IN | NOT IN) ( "(" value {"," value} ")" | CurrentItem.FIELD )
//!            | Dataset.FIELD (= | != | < | <= | > | >=) ( number | $PARAM | "(" number | $PARAM ")" | CurrentItem.FIELD )
//! user_cond  = CurrentUser.FIELD (IN | NOT IN) "(" value {"," value} ")"
//!            | CurrentUser.FIELD (= | != | < | <= | > | >=) ( number | $PARAM )
//! value      = "text" | 'text' | number | $PARAM | "*"
//! ```
//! Keywords, targets, datasets, `CurrentUser` and `CurrentItem` are case-insensitive; field and
//! placeholder names keep their case. Strings take double or single quotes and have no escapes.
//! The string `"*"` is the wildcard ("every event type"). Datasets are `Interactions`, `Items`,
//! `Users`, `Actions` and `Action_Interactions` (also written `ActionInteractions`). A scalar may be
//! parenthesised (`Actions.VALUE > ($VALUE)`), as the Personalize guide writes it.
//!
//! There are no parentheses for grouping, so a condition is an OR of ANDs:
//! `a AND b OR c AND d` means `(a AND b) OR (c AND d)`, which [`Condition`] stores as such.
//!
//! # Rules checked (each an error pointing at the token)
//! From the Personalize developer guide ("Filter expression structure and elements", "Guidelines and
//! requirements", and the item, user-segment and action example pages):
//! * Which datasets a target may use: `ItemID` → Items, Interactions; `UserID` (user segments) →
//!   Users, Interactions; `ActionID` → Actions, Action_Interactions.
//! * Conditions chained with AND/OR use the dataset of the first condition ("Conditions chained
//!   together using AND or OR can only affect fields of the dataset used in the first condition"), so
//!   Interactions and Items conditions are never chained in one expression: combine them with `|`.
//! * Interaction datasets are filtered only by `EVENT_TYPE`, and only with IN / NOT IN.
//! * The `"*"` wildcard only in `Interactions.EVENT_TYPE IN (...)` (or `Action_Interactions`).
//! * `CurrentItem.X` only as the operand of an Items field in an `ItemID` expression.
//! * `CurrentUser.X` only in the IF clause; the IF clause comes once, at the end, joined by AND only,
//!   and only in `ItemID` and `ActionID` expressions (the guide shows IF with both; a user segment has
//!   no current user).
//! * A placeholder cannot be used with NOT IN ("use the IN operator and the opposite action"), and its
//!   name is at most 50 characters (the limit of a `filterValues` key).
//! * The comparison operators compare numbers: their operand is a number, a placeholder or
//!   `CurrentItem.X`, never a string (use IN for text).
//! * A value list is not empty; an expression is at most 2500 characters; a filter references at most
//!   10 distinct fields (`CurrentUser.X` counts as `Users.X`, `CurrentItem.X` as `Items.X`).

use std::collections::HashSet;
use std::fmt;
use std::iter::Peekable;
use std::str::CharIndices;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::kinds::DatasetType;

/// The longest `filterExpression` Personalize accepts, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 2500;
/// The most distinct dataset fields one filter may reference.
pub const MAX_DISTINCT_FIELDS: usize = 10;
/// The longest placeholder name: the limit of a `filterValues` key.
pub const MAX_PLACEHOLDER_NAME: usize = 50;

// ---------------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------------

/// A whole filter: expressions joined by `|`.
///
/// Personalize unions the INCLUDE expressions, unions the EXCLUDE expressions, and keeps
/// `(∪ INCLUDE) − (∪ EXCLUDE)`; the order of expressions does not matter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterExpression {
    pub expressions: Vec<Expression>,
}

/// One `INCLUDE|EXCLUDE target WHERE condition [IF ...]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expression {
    pub action: Action,
    pub target: Target,
    pub condition: Condition,
    /// The IF clause: conditions on the user asking for recommendations, all of which must hold.
    /// Empty when there is no IF.
    pub user_conditions: Vec<UserCondition>,
}

/// Whether matching items (users, actions) are kept or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Include,
    Exclude,
}

/// What the filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// Item recommendations.
    ItemId,
    /// User segments.
    UserId,
    /// Action recommendations.
    ActionId,
}

/// The WHERE condition: an OR of ANDs, the only shape the grammar can express.
///
/// `any_of[i]` is one AND group; the condition holds when every comparison of some group holds.
/// Neither the list nor a group is empty in a parsed tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub any_of: Vec<Vec<Comparison>>,
}

/// `Dataset.FIELD operator operand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub field: Field,
    pub operator: Operator,
    pub operand: Operand,
}

/// `CurrentUser.ATTRIBUTE operator operand` in the IF clause. The operand is a list or a scalar,
/// never `CurrentItem`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCondition {
    /// A field of the Users dataset.
    pub attribute: String,
    pub operator: Operator,
    pub operand: Operand,
}

/// A dataset field, `Items.GENRE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    pub dataset: DatasetType,
    /// As written (field names are case-sensitive).
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operand {
    /// `("a", "b")` after IN / NOT IN; never empty.
    List(Vec<Value>),
    /// A number or a placeholder after a comparison operator.
    Scalar(Value),
    /// `CurrentItem.FIELD`: the named field of the item in a related-items request.
    CurrentItem(String),
}

/// A literal or a placeholder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Never `"*"`, which parses as [`Value::Wildcard`].
    String(String),
    /// Always finite.
    Number(f64),
    /// `$NAME`, bound by `filterValues[NAME]` at request time.
    Placeholder(String),
    /// `"*"`: every event type.
    Wildcard,
}

/// A placeholder and the kind of expression it occurs in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placeholder {
    pub name: String,
    /// Placeholders of INCLUDE expressions must be given at request time; a missing EXCLUDE one
    /// skips that part of the filter.
    pub action: Action,
}

impl FilterExpression {
    /// Every placeholder with the action of the expression it occurs in, in order of first
    /// appearance; a name used in both kinds of expression appears twice.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for expression in &self.expressions {
            for name in expression.placeholder_names() {
                let placeholder = Placeholder {
                    name: name.to_string(),
                    action: expression.action,
                };
                if seen.insert(placeholder.clone()) {
                    out.push(placeholder);
                }
            }
        }
        out
    }

    /// The distinct dataset fields referenced, in order of first appearance. `CurrentUser.X` is
    /// `Users.X` and `CurrentItem.X` is `Items.X`.
    pub fn fields(&self) -> Vec<Field> {
        let mut seen = HashSet::new();
        self.expressions
            .iter()
            .flat_map(Expression::fields)
            .filter(|field| seen.insert(field.clone()))
            .collect()
    }
}

impl Expression {
    /// Every field referenced, with repeats, in order.
    fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        for comparison in self.condition.comparisons() {
            out.push(comparison.field.clone());
            if let Operand::CurrentItem(name) = &comparison.operand {
                out.push(Field {
                    dataset: DatasetType::Items,
                    name: name.clone(),
                });
            }
        }
        out.extend(self.user_conditions.iter().map(|c| Field {
            dataset: DatasetType::Users,
            name: c.attribute.clone(),
        }));
        out
    }

    fn placeholder_names(&self) -> impl Iterator<Item = &str> {
        self.condition
            .comparisons()
            .map(|c| &c.operand)
            .chain(self.user_conditions.iter().map(|c| &c.operand))
            .flat_map(Operand::values)
            .filter_map(|value| match value {
                Value::Placeholder(name) => Some(name.as_str()),
                _ => None,
            })
    }
}

impl Condition {
    /// Every comparison, group by group.
    pub fn comparisons(&self) -> impl Iterator<Item = &Comparison> {
        self.any_of.iter().flatten()
    }

    /// Evaluates the OR of ANDs, asking `holds` about each comparison it needs (short-circuiting).
    pub fn evaluate(&self, mut holds: impl FnMut(&Comparison) -> bool) -> bool {
        self.any_of.iter().any(|group| group.iter().all(&mut holds))
    }
}

impl Operand {
    /// The literal values and placeholders of this operand (none for `CurrentItem`).
    pub fn values(&self) -> &[Value] {
        match self {
            Operand::List(values) => values,
            Operand::Scalar(value) => std::slice::from_ref(value),
            Operand::CurrentItem(_) => &[],
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

/// Why a filter expression was rejected, pointing at the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FilterError {
    /// Byte offset of the token in the expression.
    pub offset: usize,
    /// 1-based column: characters before the token, plus one.
    pub column: usize,
    /// The token's text; empty at the end of the expression.
    pub token: String,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.token.is_empty() {
            write!(f, "column {} at the end: {}", self.column, self.message)
        } else {
            write!(
                f,
                "column {} near `{}`: {}",
                self.column, self.token, self.message
            )
        }
    }
}

fn error(src: &str, start: usize, end: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        offset: start,
        column: src[..start].chars().count() + 1,
        token: src[start..end].to_string(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// An identifier or keyword: `[A-Za-z_][A-Za-z0-9_]*`.
    Word,
    Dot,
    Comma,
    LParen,
    RParen,
    Pipe,
    Star,
    Op(Operator),
    Str(String),
    Number(f64),
    Param(String),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Consumes the characters that `keep` accepts, moving `end` past them.
fn take_while(chars: &mut Chars<'_>, end: &mut usize, keep: fn(char) -> bool) {
    while let Some((i, next)) = chars.next_if(|&(_, n)| keep(n)) {
        *end = i + next.len_utf8();
    }
}

fn lex(src: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut end = start + c.len_utf8();
        let kind = match c {
            c if c.is_whitespace() => continue,
            '.' => Kind::Dot,
            ',' => Kind::Comma,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '|' => Kind::Pipe,
            '*' => Kind::Star,
            '=' => Kind::Op(Operator::Eq),
            '<' | '>' | '!' => {
                let with_eq = chars.next_if(|&(_, n)| n == '=').is_some();
                if with_eq {
                    end += 1;
                }
                match (c, with_eq) {
                    ('<', false) => Kind::Op(Operator::Lt),
                    ('<', true) => Kind::Op(Operator::Le),
                    ('>', false) => Kind::Op(Operator::Gt),
                    ('>', true) => Kind::Op(Operator::Ge),
                    (_, true) => Kind::Op(Operator::Ne),
                    (_, false) => return Err(error(src, start, end, "`!` must be followed by `=`")),
                }
            }
            '"' | '\'' => {
                let close = src[end..]
                    .find(c)
                    .ok_or_else(|| error(src, start, end, format!("this string has no closing {c}")))?;
                let text = src[end..end + close].to_string();
                end += close + 1;
                while chars.next_if(|&(i, _)| i < end).is_some() {}
                Kind::Str(text)
            }
            '$' => lex_placeholder(src, &mut chars, start, &mut end)?,
            '-' | '0'..='9' => lex_number(src, &mut chars, start, &mut end)?,
            c if c.is_ascii_alphabetic() || c == '_' => {
                take_while(&mut chars, &mut end, |n| n.is_ascii_alphanumeric() || n == '_');
                Kind::Word
            }
            _ => {
                return Err(error(src, start, end, format!("unexpected character {c:?}")));
            }
        };
        tokens.push(Token { kind, start, end });
    }
    tokens.push(Token {
        kind: Kind::End,
        start: src.len(),
        end: src.len(),
    });
    Ok(tokens)
}

type Chars<'a> = Peekable<CharIndices<'a>>;

/// `$NAME` after its `$`: a name of at most the filterValues key length.
fn lex_placeholder(
    src: &str,
    chars: &mut Chars<'_>,
    start: usize,
    end: &mut usize,
) -> Result<Kind, FilterError> {
    take_while(chars, end, |n| n.is_ascii_alphanumeric() || n == '_');
    if *end == start + 1 {
        return Err(error(src, start, *end, "a placeholder needs a name: `$NAME`"));
    }
    if *end - start - 1 > MAX_PLACEHOLDER_NAME {
        return Err(error(
            src,
            start,
            *end,
            format!(
                "a placeholder name is at most {MAX_PLACEHOLDER_NAME} characters (the limit of a \
                 filterValues key)"
            ),
        ));
    }
    Ok(Kind::Param(src[start + 1..*end].to_string()))
}

/// A number: digits with an optional `-` and fraction, finite.
fn lex_number(src: &str, chars: &mut Chars<'_>, start: usize, end: &mut usize) -> Result<Kind, FilterError> {
    take_while(chars, end, |n| n.is_ascii_digit());
    let fraction = chars.peek().is_some_and(|&(_, n)| n == '.')
        && src[*end + 1..].starts_with(|n: char| n.is_ascii_digit());
    if fraction {
        chars.next();
        *end += 1;
        take_while(chars, end, |n| n.is_ascii_digit());
    }
    let text = &src[start..*end];
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(Kind::Number(value)),
        Ok(_) => Err(error(src, start, *end, "this number is too large")),
        Err(_) => Err(error(src, start, *end, "`-` must start a number")),
    }
}

// ---------------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------------

/// Parses and checks a filter expression.
///
/// # Errors
/// [`FilterError`] for the first syntax or rule violation (see the module documentation), pointing at
/// the offending token.
pub fn parse(expr: &str) -> Result<FilterExpression, FilterError> {
    if let Some((offset, c)) = expr.char_indices().nth(MAX_EXPRESSION_CHARS) {
        return Err(error(
            expr,
            offset,
            offset + c.len_utf8(),
            format!(
                "the expression is {} characters long; Personalize accepts at most {MAX_EXPRESSION_CHARS}",
                expr.chars().count()
            ),
        ));
    }
    let mut parser = Parser {
        src: expr,
        tokens: lex(expr)?,
        pos: 0,
        fields: HashSet::new(),
    };
    parser.filter()
}

impl FromStr for FilterExpression {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// Distinct fields seen so far, for the per-filter limit.
    fields: HashSet<Field>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != Kind::End {
            self.pos += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &str {
        &self.src[token.start..token.end]
    }

    fn fail<T>(&self, token: &Token, message: impl Into<String>) -> Result<T, FilterError> {
        Err(error(self.src, token.start, token.end, message))
    }

    /// Whether the next token is the (case-insensitive) keyword.
    fn at_keyword(&self, keyword: &str) -> bool {
        let token = self.peek();
        token.kind == Kind::Word && self.text(token).eq_ignore_ascii_case(keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<Token, FilterError> {
        if self.at_keyword(keyword) {
            Ok(self.advance())
        } else {
            self.fail(self.peek(), format!("expected {keyword}"))
        }
    }

    fn expect(&mut self, kind: Kind, what: &str) -> Result<Token, FilterError> {
        if self.peek().kind == kind {
            Ok(self.advance())
        } else {
            self.fail(self.peek(), format!("expected {what}"))
        }
    }

    fn expect_word(&mut self, what: &str) -> Result<Token, FilterError> {
        self.expect(Kind::Word, what)
    }

    fn filter(&mut self) -> Result<FilterExpression, FilterError> {
        let mut expressions = vec![self.expression()?];
        while self.peek().kind == Kind::Pipe {
            self.advance();
            expressions.push(self.expression()?);
        }
        Ok(FilterExpression { expressions })
    }

    fn expression(&mut self) -> Result<Expression, FilterError> {
        let action = if self.eat_keyword("INCLUDE") {
            Action::Include
        } else if self.eat_keyword("EXCLUDE") {
            Action::Exclude
        } else {
            return self.fail(self.peek(), "expected INCLUDE or EXCLUDE");
        };
        let target = match self.peek() {
            token if token.kind == Kind::Word => match self.text(token).to_ascii_lowercase().as_str() {
                "itemid" => Target::ItemId,
                "userid" => Target::UserId,
                "actionid" => Target::ActionId,
                _ => return self.fail(token, "expected ItemID, UserID or ActionID"),
            },
            token => return self.fail(token, "expected ItemID, UserID or ActionID"),
        };
        self.advance();
        self.expect_keyword("WHERE")?;
        let condition = self.condition(target)?;
        let mut user_conditions = Vec::new();
        if self.at_keyword("IF") {
            let if_token = self.advance();
            if target == Target::UserId {
                return self.fail(
                    &if_token,
                    "IF applies to ItemID and ActionID expressions; a UserID (user segment) filter has \
                     no current user",
                );
            }
            user_conditions = self.user_conditions()?;
        }
        let next = self.peek();
        match next.kind {
            Kind::Pipe | Kind::End => Ok(Expression {
                action,
                target,
                condition,
                user_conditions,
            }),
            _ if !user_conditions.is_empty() && self.at_keyword("OR") => {
                self.fail(next, "IF conditions can only be joined with AND")
            }
            _ if !user_conditions.is_empty() && self.at_keyword("IF") => self.fail(
                next,
                "the IF clause comes once, at the end of an expression; join its conditions with AND",
            ),
            _ if !user_conditions.is_empty() => {
                self.fail(next, "expected AND, `|` or the end of the expression")
            }
            _ => self.fail(next, "expected AND, OR, IF, `|` or the end of the expression"),
        }
    }

    fn condition(&mut self, target: Target) -> Result<Condition, FilterError> {
        let first = self.comparison(target, None)?;
        let dataset = first.field.dataset;
        let mut any_of = vec![vec![first]];
        loop {
            if self.eat_keyword("AND") {
                let next = self.comparison(target, Some(dataset))?;
                if let Some(group) = any_of.last_mut() {
                    group.push(next);
                }
            } else if self.eat_keyword("OR") {
                any_of.push(vec![self.comparison(target, Some(dataset))?]);
            } else {
                return Ok(Condition { any_of });
            }
        }
    }

    /// `Dataset.FIELD op operand`, checking the dataset against the target and the first condition.
    fn comparison(&mut self, target: Target, first: Option<DatasetType>) -> Result<Comparison, FilterError> {
        let (dataset_token, dataset) = self.condition_dataset(target, first)?;
        self.expect(Kind::Dot, "`.` and a field name")?;
        let name_token = self.expect_word("a field name")?;
        let field = Field {
            dataset,
            name: self.text(&name_token).to_string(),
        };
        let interactions = is_interactions(dataset);
        if interactions && !field.name.eq_ignore_ascii_case("EVENT_TYPE") {
            return self.fail(
                &name_token,
                format!("{} can only be filtered by EVENT_TYPE", dataset.api_name()),
            );
        }
        self.count_field(&field, dataset_token.start, name_token.end)?;
        let operator_token = self.peek().clone();
        let operator = self.operator()?;
        if interactions && !matches!(operator, Operator::In | Operator::NotIn) {
            return self.fail(
                &operator_token,
                format!("{}.EVENT_TYPE takes IN or NOT IN", dataset.api_name()),
            );
        }
        let operand = self.comparison_operand(target, dataset, operator, &field)?;
        Ok(Comparison {
            field,
            operator,
            operand,
        })
    }

    /// The dataset a condition names (`Items` in `Items.GENRE`): known, allowed for the target, and the
    /// same as the first condition's.
    fn condition_dataset(
        &mut self,
        target: Target,
        first: Option<DatasetType>,
    ) -> Result<(Token, DatasetType), FilterError> {
        let dataset_token = self.expect_word("a condition such as Items.GENRE IN (\"drama\")")?;
        let word = self.text(&dataset_token);
        if word.eq_ignore_ascii_case("CurrentUser") {
            return self.fail(
                &dataset_token,
                "CurrentUser can only be used in the IF clause at the end of an expression",
            );
        }
        if word.eq_ignore_ascii_case("CurrentItem") {
            return self.fail(
                &dataset_token,
                "CurrentItem can only be the right-hand side of a condition on an Items field",
            );
        }
        let Some(dataset) = dataset_from_word(word) else {
            return self.fail(
                &dataset_token,
                format!(
                    "unknown dataset `{word}`; expected Interactions, Items, Users, Actions or \
                     Action_Interactions"
                ),
            );
        };
        let allowed = allowed_datasets(target);
        if !allowed.contains(&dataset) {
            return self.fail(
                &dataset_token,
                format!(
                    "{target} expressions filter on {} fields, not {}",
                    allowed.map(DatasetType::api_name).join(" or "),
                    dataset.api_name()
                ),
            );
        }
        if let Some(first) = first.filter(|first| *first != dataset) {
            let message = if [first, dataset].contains(&DatasetType::Interactions)
                && [first, dataset].contains(&DatasetType::Items)
            {
                "Interactions and Items conditions cannot be chained in one expression; combine them \
                 with `|`"
                    .to_string()
            } else {
                format!(
                    "conditions chained with AND or OR must use the dataset of the first condition \
                     ({}); combine expressions with `|`",
                    first.api_name()
                )
            };
            return self.fail(&dataset_token, message);
        }
        Ok((dataset_token, dataset))
    }

    /// The right-hand side: `CurrentItem.FIELD` (ItemID expressions on Items fields) or values.
    fn comparison_operand(
        &mut self,
        target: Target,
        dataset: DatasetType,
        operator: Operator,
        field: &Field,
    ) -> Result<Operand, FilterError> {
        if self.at_keyword("CurrentItem") {
            let token = self.advance();
            if target != Target::ItemId || dataset != DatasetType::Items {
                return self.fail(
                    &token,
                    "CurrentItem can only be compared with an Items field in an ItemID expression",
                );
            }
            self.expect(Kind::Dot, "`.` and a field name")?;
            let name_token = self.expect_word("a field name")?;
            let name = self.text(&name_token).to_string();
            let item_field = Field {
                dataset: DatasetType::Items,
                name: name.clone(),
            };
            self.count_field(&item_field, token.start, name_token.end)?;
            Ok(Operand::CurrentItem(name))
        } else {
            self.value_operand(operator, field)
        }
    }

    fn user_conditions(&mut self) -> Result<Vec<UserCondition>, FilterError> {
        let mut conditions = Vec::new();
        loop {
            let user_token = self.peek().clone();
            if !self.eat_keyword("CurrentUser") {
                return self.fail(&user_token, "the IF clause takes CurrentUser.FIELD conditions");
            }
            self.expect(Kind::Dot, "`.` and a field name")?;
            let name_token = self.expect_word("a field name")?;
            let field = Field {
                dataset: DatasetType::Users,
                name: self.text(&name_token).to_string(),
            };
            self.count_field(&field, user_token.start, name_token.end)?;
            let operator = self.operator()?;
            if self.at_keyword("CurrentItem") {
                return self.fail(self.peek(), "CurrentItem cannot be used in the IF clause");
            }
            let operand = self.value_operand(operator, &field)?;
            conditions.push(UserCondition {
                attribute: field.name,
                operator,
                operand,
            });
            if !self.eat_keyword("AND") {
                return Ok(conditions);
            }
        }
    }

    /// Records a referenced field; fails on the eleventh distinct one.
    fn count_field(&mut self, field: &Field, start: usize, end: usize) -> Result<(), FilterError> {
        if self.fields.insert(field.clone()) && self.fields.len() > MAX_DISTINCT_FIELDS {
            return Err(error(
                self.src,
                start,
                end,
                format!(
                    "a filter can reference at most {MAX_DISTINCT_FIELDS} distinct fields; this is the 11th"
                ),
            ));
        }
        Ok(())
    }

    fn operator(&mut self) -> Result<Operator, FilterError> {
        let token = self.peek().clone();
        if let Kind::Op(operator) = token.kind {
            self.advance();
            return Ok(operator);
        }
        if self.eat_keyword("IN") {
            return Ok(Operator::In);
        }
        if self.eat_keyword("NOT") {
            self.expect_keyword("IN")?;
            return Ok(Operator::NotIn);
        }
        self.fail(&token, "expected IN, NOT IN, =, !=, <, <=, > or >=")
    }

    /// The list after IN / NOT IN, or the scalar after a comparison operator.
    fn value_operand(&mut self, operator: Operator, field: &Field) -> Result<Operand, FilterError> {
        if matches!(operator, Operator::In | Operator::NotIn) {
            let open = self.peek().clone();
            if open.kind != Kind::LParen {
                let what = if field.dataset == DatasetType::Items {
                    "`(` and a list of values, or CurrentItem.FIELD"
                } else {
                    "`(` and a list of values"
                };
                return self.fail(&open, format!("expected {what}"));
            }
            self.advance();
            let mut values = Vec::new();
            if self.peek().kind == Kind::RParen {
                return self.fail(self.peek(), "a list needs at least one value");
            }
            loop {
                values.push(self.list_value(operator, field)?);
                if self.peek().kind == Kind::Comma {
                    self.advance();
                } else {
                    self.expect(Kind::RParen, "`,` or `)`")?;
                    return Ok(Operand::List(values));
                }
            }
        }
        let parenthesised = self.peek().kind == Kind::LParen;
        if parenthesised {
            self.advance();
        }
        let token = self.advance();
        let value = match token.kind {
            Kind::Number(n) => Value::Number(n),
            Kind::Param(ref name) => Value::Placeholder(name.clone()),
            Kind::Str(_) => {
                return self.fail(
                    &token,
                    format!(
                        "`{}` compares numbers: use a number or a $PLACEHOLDER (for text, use IN (...))",
                        operator
                    ),
                );
            }
            _ => {
                let what = if field.dataset == DatasetType::Items && !parenthesised {
                    "a number, a $PLACEHOLDER or CurrentItem.FIELD"
                } else {
                    "a number or a $PLACEHOLDER"
                };
                return self.fail(&token, format!("expected {what}"));
            }
        };
        if parenthesised {
            self.expect(Kind::RParen, "`)`")?;
        }
        Ok(Operand::Scalar(value))
    }

    fn list_value(&mut self, operator: Operator, field: &Field) -> Result<Value, FilterError> {
        let token = self.advance();
        match &token.kind {
            Kind::Str(text) if text == "*" => {
                if operator != Operator::In || !is_interactions(field.dataset) {
                    return self.fail(
                        &token,
                        "the wildcard \"*\" is only allowed in Interactions.EVENT_TYPE IN (...)",
                    );
                }
                Ok(Value::Wildcard)
            }
            Kind::Str(text) => Ok(Value::String(text.clone())),
            Kind::Number(n) => Ok(Value::Number(*n)),
            Kind::Param(name) => {
                if operator == Operator::NotIn {
                    return self.fail(
                        &token,
                        "placeholders cannot be used with NOT IN; use IN with the opposite action \
                         (EXCLUDE instead of INCLUDE, or the reverse)",
                    );
                }
                Ok(Value::Placeholder(name.clone()))
            }
            Kind::Star => self.fail(&token, "write the wildcard as a quoted string: \"*\""),
            _ => self.fail(&token, "expected a \"string\", a number or a $PLACEHOLDER"),
        }
    }
}

/// The dataset a word names (case-insensitive; `ActionInteractions` = `Action_Interactions`).
fn dataset_from_word(word: &str) -> Option<DatasetType> {
    Some(match word.to_ascii_lowercase().as_str() {
        "interactions" => DatasetType::Interactions,
        "items" => DatasetType::Items,
        "users" => DatasetType::Users,
        "actions" => DatasetType::Actions,
        "action_interactions" | "actioninteractions" => DatasetType::ActionInteractions,
        _ => return None,
    })
}

fn allowed_datasets(target: Target) -> [DatasetType; 2] {
    match target {
        Target::ItemId => [DatasetType::Items, DatasetType::Interactions],
        Target::UserId => [DatasetType::Users, DatasetType::Interactions],
        Target::ActionId => [DatasetType::Actions, DatasetType::ActionInteractions],
    }
}

fn is_interactions(dataset: DatasetType) -> bool {
    matches!(
        dataset,
        DatasetType::Interactions | DatasetType::ActionInteractions
    )
}

// ---------------------------------------------------------------------------------------------------
// Display: canonical text that parses back to an equal tree
// ---------------------------------------------------------------------------------------------------

impl fmt::Display for FilterExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, expression) in self.expressions.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{expression}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} WHERE {}", self.action, self.target, self.condition)?;
        for (i, condition) in self.user_conditions.iter().enumerate() {
            f.write_str(if i == 0 { " IF " } else { " AND " })?;
            write!(
                f,
                "CurrentUser.{} {} {}",
                condition.attribute, condition.operator, condition.operand
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Include => "INCLUDE",
            Action::Exclude => "EXCLUDE",
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::ItemId => "ItemID",
            Target::UserId => "UserID",
            Target::ActionId => "ActionID",
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.any_of.iter().enumerate() {
            if i > 0 {
                f.write_str(" OR ")?;
            }
            for (j, comparison) in group.iter().enumerate() {
                if j > 0 {
                    f.write_str(" AND ")?;
                }
                write!(f, "{comparison}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.field, self.operator, self.operand)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.dataset.api_name(), self.name)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::In => "IN",
            Operator::NotIn => "NOT IN",
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
        })
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::List(values) => {
                f.write_str("(")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_str(")")
            }
            Operand::Scalar(value) => write!(f, "{value}"),
            Operand::CurrentItem(name) => write!(f, "CurrentItem.{name}"),
        }
    }
}

impl fmt::Display for Value {
    /// Strings take double quotes unless they contain one (there are no escapes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(text) if text.contains('"') => write!(f, "'{text}'"),
            Value::String(text) => write!(f, "\"{text}\""),
            Value::Number(n) => write!(f, "{n}"),
            Value::Placeholder(name) => write!(f, "${name}"),
            Value::Wildcard => f.write_str("\"*\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(expr: &str) -> FilterExpression {
        parse(expr).unwrap_or_else(|e| panic!("{expr:?} should parse: {e}"))
    }

    /// Parses, prints, and parses the print again: both trees must be equal.
    fn round_trips(expr: &str) -> FilterExpression {
        let tree = parsed(expr);
        let printed = tree.to_string();
        assert_eq!(
            parse(&printed),
            Ok(tree.clone()),
            "{expr:?} printed as {printed:?}"
        );
        tree
    }

    /// The error for `expr`, checked for its column, token and (part of its) message.
    fn assert_fails(expr: &str, column: usize, token: &str, message: &str) {
        let error = parse(expr).expect_err(expr);
        assert_eq!(
            (error.column, error.token.as_str()),
            (column, token),
            "{expr:?}: {error}"
        );
        assert!(error.message.contains(message), "{expr:?}: {error}");
        assert_eq!(&expr[error.offset..error.offset + error.token.len()], token);
    }

    fn strings(values: &[&str]) -> Operand {
        Operand::List(values.iter().map(|v| Value::String(v.to_string())).collect())
    }

    fn field(dataset: DatasetType, name: &str) -> Field {
        Field {
            dataset,
            name: name.to_string(),
        }
    }

    #[test]
    fn canonical_examples_of_the_api_reference() {
        for expr in [
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")"#,
            r#"INCLUDE ItemID WHERE Items.CATEGORY IN ("shoe") AND Items.DESCRIPTION NOT IN ("boot")"#,
            r#"EXCLUDE ItemID WHERE Items.GENRE IN ($GENRE) IF CurrentUser.AGE = $AGE"#,
            r#"INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.GENRE"#,
            r#"INCLUDE ItemID WHERE Items.GENRE IN ($GENRE) | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")"#,
            r#"INCLUDE UserID WHERE Users.MEMBERSHIP_STATUS IN ($MEMBERSHIP)"#,
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")"#,
        ] {
            round_trips(expr);
        }
    }

    #[test]
    fn examples_of_the_developer_guide() {
        for expr in [
            r#"EXCLUDE UserID WHERE Users.AGE < $AGE"#,
            r#"INCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("click", "rating")"#,
            r#"INCLUDE ItemID WHERE Items.PRICE <= $PRICE"#,
            r#"INCLUDE ItemID WHERE Items.CREATION_TIMESTAMP < $DATE"#,
            r#"INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.CREATION_TIMESTAMP > $DATE"#,
            r#"INCLUDE ActionID WHERE Action_Interactions.EVENT_TYPE IN ($EVENT_TYPE)"#,
            r#"EXCLUDE ActionID WHERE Action_Interactions.EVENT_TYPE IN ("NOT_TAKEN")"#,
            r#"EXCLUDE ActionID WHERE Actions.CATEGORY IN ($CATEGORY)"#,
            r#"INCLUDE ActionID WHERE Actions.VALUE > ($VALUE)"#,
            r#"EXCLUDE ActionID WHERE Actions.VALUE < ($VALUE) IF CurrentUser.MEMBERSHIP = $PREMIUM"#,
        ] {
            round_trips(expr);
        }
    }

    #[test]
    fn fixture_expressions_parse_including_lower_case_keywords_and_single_quotes() {
        let double = round_trips(r#"INCLUDE ItemID WHERE Interactions.EVENT_TYPE in ("click", "stream")"#);
        let single = round_trips("INCLUDE ItemID WHERE Interactions.EVENT_TYPE in ('click', 'stream')");
        assert_eq!(double, single);
        let comparison = &double.expressions[0].condition.any_of[0][0];
        assert_eq!(comparison.field, field(DatasetType::Interactions, "EVENT_TYPE"));
        assert_eq!(comparison.operator, Operator::In);
        assert_eq!(comparison.operand, strings(&["click", "stream"]));
        let all = round_trips(r#"INCLUDE ItemID WHERE Interactions.EVENT_TYPE in ("*")"#);
        assert_eq!(
            all.expressions[0].condition.any_of[0][0].operand,
            Operand::List(vec![Value::Wildcard])
        );
    }

    #[test]
    fn the_tree_holds_what_was_written() {
        let tree = parsed(
            "exclude itemid where items.GENRE in ($GENRE, 'Drama', 3) if currentuser.AGE >= 18 and \
             CurrentUser.TIER in ($TIER)",
        );
        assert_eq!(
            tree,
            FilterExpression {
                expressions: vec![Expression {
                    action: Action::Exclude,
                    target: Target::ItemId,
                    condition: Condition {
                        any_of: vec![vec![Comparison {
                            field: field(DatasetType::Items, "GENRE"),
                            operator: Operator::In,
                            operand: Operand::List(vec![
                                Value::Placeholder("GENRE".into()),
                                Value::String("Drama".into()),
                                Value::Number(3.0),
                            ]),
                        }]],
                    },
                    user_conditions: vec![
                        UserCondition {
                            attribute: "AGE".into(),
                            operator: Operator::Ge,
                            operand: Operand::Scalar(Value::Number(18.0)),
                        },
                        UserCondition {
                            attribute: "TIER".into(),
                            operator: Operator::In,
                            operand: Operand::List(vec![Value::Placeholder("TIER".into())]),
                        },
                    ],
                }],
            }
        );
        assert_eq!(
            tree.to_string(),
            r#"EXCLUDE ItemID WHERE Items.GENRE IN ($GENRE, "Drama", 3) IF CurrentUser.AGE >= 18 AND CurrentUser.TIER IN ($TIER)"#
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let tree = parsed(
            r#"INCLUDE ItemID WHERE Items.A IN ("1") OR Items.B IN ("2") AND Items.C IN ("3") OR Items.D > 4"#,
        );
        let groups: Vec<Vec<&str>> = tree.expressions[0]
            .condition
            .any_of
            .iter()
            .map(|group| group.iter().map(|c| c.field.name.as_str()).collect())
            .collect();
        assert_eq!(groups, vec![vec!["A"], vec!["B", "C"], vec!["D"]]);
        // (A) OR (B AND C) OR (D): true when only B and C hold, false when only A's partner C holds.
        let holds = |names: &[&str]| {
            tree.expressions[0]
                .condition
                .evaluate(|c| names.contains(&c.field.name.as_str()))
        };
        assert!(holds(&["B", "C"]));
        assert!(holds(&["D"]));
        assert!(!holds(&["C"]));
        assert!(!holds(&["B"]));
    }

    #[test]
    fn spelling_is_normalised() {
        let tree =
            round_trips("  include   ACTIONID\twhere\nactioninteractions.event_type   not in ( 'a' )  ");
        assert_eq!(
            tree.to_string(),
            r#"INCLUDE ActionID WHERE Action_Interactions.event_type NOT IN ("a")"#
        );
        assert_eq!(
            parsed(r#"INCLUDE ItemID WHERE Items.X IN ('say "hi"')"#).to_string(),
            r#"INCLUDE ItemID WHERE Items.X IN ('say "hi"')"#,
            "a string holding a double quote prints in single quotes"
        );
        assert_eq!(
            parsed("INCLUDE ItemID WHERE Items.PRICE > -2.50").to_string(),
            "INCLUDE ItemID WHERE Items.PRICE > -2.5"
        );
    }

    #[test]
    fn placeholders_carry_the_action_of_their_expression() {
        let tree = parsed(
            "INCLUDE ItemID WHERE Items.GENRE IN ($GENRE) AND Items.PRICE < $PRICE IF CurrentUser.AGE = $AGE \
             | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($EVENT, $GENRE) \
             | INCLUDE ItemID WHERE Items.STUDIO IN ($GENRE)",
        );
        let placeholder = |name: &str, action| Placeholder {
            name: name.to_string(),
            action,
        };
        assert_eq!(
            tree.placeholders(),
            vec![
                placeholder("GENRE", Action::Include),
                placeholder("PRICE", Action::Include),
                placeholder("AGE", Action::Include),
                placeholder("EVENT", Action::Exclude),
                placeholder("GENRE", Action::Exclude),
            ]
        );
        assert!(
            parsed(r#"INCLUDE ItemID WHERE Items.A IN ("x")"#)
                .placeholders()
                .is_empty()
        );
    }

    #[test]
    fn fields_are_distinct_and_include_current_user_and_item() {
        let tree = parsed(
            "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.STUDIO \
             IF CurrentUser.AGE > 3 | EXCLUDE ItemID WHERE Items.GENRE IN ($G) IF CurrentUser.AGE < 9",
        );
        assert_eq!(
            tree.fields(),
            vec![
                field(DatasetType::Items, "PRICE"),
                field(DatasetType::Items, "GENRE"),
                field(DatasetType::Items, "STUDIO"),
                field(DatasetType::Users, "AGE"),
            ]
        );
    }

    #[test]
    fn trees_serialise_for_the_emulator() {
        let tree = parsed(
            "INCLUDE ItemID WHERE Items.PRICE <= 9.5 AND Items.GENRE IN CurrentItem.GENRE IF CurrentUser.T IN ('a') \
             | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"*\")",
        );
        let json = serde_json::to_string(&tree).expect("serialisable");
        assert_eq!(
            serde_json::from_str::<FilterExpression>(&json).expect("deserialisable"),
            tree
        );
    }

    #[test]
    fn the_documented_error_format() {
        let error = parse(r#"INCLUDE ItemID WHER Items.GENRE IN ("a")"#).expect_err("misspelt WHERE");
        assert_eq!(error.to_string(), "column 16 near `WHER`: expected WHERE");
        assert_eq!(error.offset, 15);
        let at_end = parse(r#"INCLUDE ItemID WHERE Items.GENRE IN ("a""#).expect_err("unclosed list");
        assert_eq!(at_end.to_string(), "column 41 at the end: expected `,` or `)`");
    }

    #[rustfmt::skip]
    #[test]
    fn syntax_errors_point_at_the_token() {
        assert_fails("", 1, "", "expected INCLUDE or EXCLUDE");
        assert_fails("INCLUDES ItemID", 1, "INCLUDES", "expected INCLUDE or EXCLUDE");
        assert_fails("INCLUDE Items WHERE", 9, "Items", "expected ItemID, UserID or ActionID");
        assert_fails("INCLUDE ItemID WHERE", 21, "", "expected a condition");
        assert_fails("INCLUDE ItemID WHERE Items GENRE", 28, "GENRE", "expected `.` and a field name");
        assert_fails("INCLUDE ItemID WHERE Items.GENRE ~ 1", 34, "~", "unexpected character '~'");
        assert_fails("INCLUDE ItemID WHERE Items.GENRE IS 1", 34, "IS", "expected IN, NOT IN, =, !=, <, <=, > or >=");
        assert_fails("INCLUDE ItemID WHERE Items.GENRE NOT (1)", 38, "(", "expected IN");
        assert_fails("INCLUDE ItemID WHERE Items.GENRE IN 'a'", 37, "'a'", "expected `(` and a list of values, or CurrentItem.FIELD");
        assert_fails("INCLUDE ItemID WHERE Items.GENRE IN ('a' 'b')", 42, "'b'", "expected `,` or `)`");
        assert_fails("INCLUDE ItemID WHERE Items.GENRE IN (WHERE)", 38, "WHERE", "expected a \"string\", a number or a $PLACEHOLDER");
        assert_fails(r#"INCLUDE ItemID WHERE Items.GENRE IN ("a") foo"#, 43, "foo", "expected AND, OR, IF, `|` or the end");
        assert_fails(r#"INCLUDE ItemID WHERE Items.GENRE IN ("a") |"#, 44, "", "expected INCLUDE or EXCLUDE");
        assert_fails(r#"INCLUDE ItemID WHERE Items.GENRE IN ("a)"#, 38, "\"", "this string has no closing \"");
        assert_fails("INCLUDE ItemID WHERE Items.PRICE ! 3", 34, "!", "`!` must be followed by `=`");
        assert_fails("INCLUDE ItemID WHERE Items.PRICE < $", 36, "$", "a placeholder needs a name");
        assert_fails("INCLUDE ItemID WHERE Items.PRICE < - 3", 36, "-", "`-` must start a number");
        assert_fails("INCLUDE ItemID WHERE Items.PRICE < ($P", 39, "", "expected `)`");
        assert_fails("INCLUDE ItemID WHERE Items.PRICE < (CurrentItem.PRICE)", 37, "CurrentItem", "expected a number or a $PLACEHOLDER");
        assert_fails("INCLUDE ItemID WHERE Items.PRICE < ", 36, "", "expected a number, a $PLACEHOLDER or CurrentItem.FIELD");
        assert_fails("INCLUDE ItemID WHERE Items.GENRE IN (*)", 38, "*", "write the wildcard as a quoted string");
    }

    #[rustfmt::skip]
    #[test]
    fn rule_violations_point_at_the_token() {
        // Datasets per target, and unknown datasets.
        assert_fails(r#"INCLUDE ItemID WHERE Item.GENRE IN ("a")"#, 22, "Item", "unknown dataset `Item`");
        assert_fails(r#"INCLUDE UserID WHERE Items.GENRE IN ("a")"#, 22, "Items", "UserID expressions filter on Users or Interactions fields, not Items");
        assert_fails(r#"INCLUDE ItemID WHERE Users.AGE IN ("a")"#, 22, "Users", "ItemID expressions filter on Items or Interactions fields");
        assert_fails(r#"INCLUDE ActionID WHERE Interactions.EVENT_TYPE IN ("a")"#, 24, "Interactions", "not Interactions");
        // Chaining.
        assert_fails(
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click") AND Items.GENRE IN ("a")"#,
            63, "Items", "Interactions and Items conditions cannot be chained in one expression",
        );
        assert_fails(
            r#"INCLUDE ItemID WHERE Items.GENRE IN ("a") OR Interactions.EVENT_TYPE IN ("click")"#,
            46, "Interactions", "Interactions and Items conditions cannot be chained",
        );
        assert_fails(
            r#"INCLUDE UserID WHERE Users.AGE > 3 AND Interactions.EVENT_TYPE IN ("click")"#,
            40, "Interactions", "must use the dataset of the first condition (Users)",
        );
        // Interaction datasets: EVENT_TYPE with IN / NOT IN only.
        assert_fails(r#"INCLUDE ItemID WHERE Interactions.EVENT_VALUE IN ("a")"#, 35, "EVENT_VALUE", "Interactions can only be filtered by EVENT_TYPE");
        assert_fails(r#"INCLUDE ItemID WHERE Interactions.EVENT_TYPE = 3"#, 46, "=", "Interactions.EVENT_TYPE takes IN or NOT IN");
        // The wildcard.
        assert_fails(r#"INCLUDE ItemID WHERE Items.GENRE IN ("*")"#, 38, r#""*""#, "only allowed in Interactions.EVENT_TYPE IN");
        assert_fails(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("a", "*")"#, 59, r#""*""#, "only allowed in Interactions.EVENT_TYPE IN");
        assert_fails(r#"INCLUDE ItemID WHERE Items.A IN ("a") IF CurrentUser.B IN ("*")"#, 60, r#""*""#, "only allowed");
        // CurrentItem and CurrentUser.
        assert_fails("INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN CurrentItem.X", 49, "CurrentItem", "only be compared with an Items field in an ItemID expression");
        assert_fails("INCLUDE ActionID WHERE Actions.VALUE < CurrentItem.VALUE", 40, "CurrentItem", "in an ItemID expression");
        assert_fails("INCLUDE ItemID WHERE CurrentItem.PRICE > 3", 22, "CurrentItem", "right-hand side of a condition on an Items field");
        assert_fails("INCLUDE ItemID WHERE Items.A > 3 IF CurrentUser.B IN CurrentItem.C", 54, "CurrentItem", "CurrentItem cannot be used in the IF clause");
        assert_fails("INCLUDE ItemID WHERE CurrentUser.AGE > 3", 22, "CurrentUser", "only be used in the IF clause");
        // The IF clause.
        assert_fails("INCLUDE UserID WHERE Users.AGE > 3 IF CurrentUser.AGE > 3", 36, "IF", "a UserID (user segment) filter has no current user");
        assert_fails("INCLUDE ItemID WHERE Items.A > 3 IF Users.AGE > 3", 37, "Users", "the IF clause takes CurrentUser.FIELD conditions");
        assert_fails("INCLUDE ItemID WHERE Items.A > 3 IF CurrentUser.B > 1 OR CurrentUser.C > 1", 55, "OR", "IF conditions can only be joined with AND");
        assert_fails("INCLUDE ItemID WHERE Items.A > 3 IF CurrentUser.B > 1 IF CurrentUser.C > 1", 55, "IF", "the IF clause comes once");
        assert_fails("INCLUDE ItemID WHERE Items.A > 3 IF CurrentUser.B > 1 Items.C", 55, "Items", "expected AND, `|` or the end");
        // Values.
        assert_fails("INCLUDE ItemID WHERE Items.GENRE IN ()", 38, ")", "a list needs at least one value");
        assert_fails("EXCLUDE ItemID WHERE Items.GENRE NOT IN ($GENRE)", 42, "$GENRE", "placeholders cannot be used with NOT IN");
        assert_fails(r#"INCLUDE ItemID WHERE Items.PRICE < "10""#, 36, r#""10""#, "`<` compares numbers");
        assert_fails(r#"INCLUDE ItemID WHERE Items.GENRE = "drama""#, 36, r#""drama""#, "`=` compares numbers: use a number or a $PLACEHOLDER (for text, use IN (...))");
        let long_name = format!("INCLUDE ItemID WHERE Items.A < ${}", "P".repeat(51));
        assert_fails(&long_name, 32, &long_name[31..], "a placeholder name is at most 50 characters");
        let huge = format!("INCLUDE ItemID WHERE Items.A < 1{}", "0".repeat(400));
        assert_fails(&huge, 32, &huge[31..], "this number is too large");
    }

    #[test]
    fn at_most_ten_distinct_fields() {
        let conditions = |n: usize| {
            (0..n)
                .map(|i| format!("Items.F{i} > 1"))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let ten = format!("INCLUDE ItemID WHERE {} AND Items.F0 < 9", conditions(10));
        assert_eq!(parsed(&ten).fields().len(), 10, "repeats do not count");
        let eleven = format!("INCLUDE ItemID WHERE {}", conditions(11));
        let column = eleven.find("Items.F10").expect("the 11th field is there") + 1;
        assert_fails(&eleven, column, "Items.F10", "at most 10 distinct fields");
        // CurrentUser and CurrentItem count too, across expressions.
        let mixed = format!(
            "INCLUDE ItemID WHERE {} | EXCLUDE ItemID WHERE Items.F0 < CurrentItem.PRICE",
            conditions(10)
        );
        let column = mixed.find("CurrentItem.PRICE").expect("present") + 1;
        assert_fails(&mixed, column, "CurrentItem.PRICE", "at most 10 distinct fields");
        let user = format!("INCLUDE ItemID WHERE {} IF CurrentUser.AGE > 3", conditions(10));
        let column = user.find("CurrentUser.AGE").expect("present") + 1;
        assert_fails(&user, column, "CurrentUser.AGE", "at most 10 distinct fields");
    }

    #[test]
    fn at_most_2500_characters() {
        let head = r#"INCLUDE ItemID WHERE Items.GENRE IN ("#;
        let fits = format!("{head}\"{}\")", "x".repeat(MAX_EXPRESSION_CHARS - head.len() - 3));
        assert_eq!(fits.chars().count(), MAX_EXPRESSION_CHARS);
        parsed(&fits);
        let too_long = format!("{head}\"{}\")", "é".repeat(MAX_EXPRESSION_CHARS - head.len() - 2));
        let error = parse(&too_long).expect_err("2501 characters");
        assert_eq!(error.column, MAX_EXPRESSION_CHARS + 1);
        assert_eq!(error.token, ")", "the 2501st character");
        assert!(error.message.contains("2501 characters long"), "{error}");
    }

    #[test]
    fn columns_count_characters_and_offsets_count_bytes() {
        let error = parse(r#"INCLUDE ItemID WHERE Items.GENRE IN ("ünïcödé") AND Items.X IN ()"#)
            .expect_err("empty list");
        assert_eq!(error.column, 65);
        assert_eq!(error.offset, 68);
        assert_eq!(error.token, ")");
    }

    // ------------------------------------------------------------------------------------------------
    // Property tests
    // ------------------------------------------------------------------------------------------------

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,8}"
    }

    fn placeholder() -> impl Strategy<Value = Value> {
        "[A-Za-z0-9_]{1,12}".prop_map(Value::Placeholder)
    }

    fn number() -> impl Strategy<Value = Value> {
        (any::<i32>(), 0i32..4).prop_map(|(n, decimals)| Value::Number(f64::from(n) / 10f64.powi(decimals)))
    }

    fn string() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-zA-Z0-9 _.:-]{0,10}",
            "[a-z ]{0,4}'[a-z ]{0,4}",
            "[a-z ]{0,4}\"[a-z ]{0,4}",
        ]
        .prop_filter("the string * is the wildcard", |s| s != "*")
        .prop_map(Value::String)
    }

    fn scalar() -> impl Strategy<Value = Operand> {
        prop_oneof![number(), placeholder()].prop_map(Operand::Scalar)
    }

    /// A list after IN (placeholders allowed) or NOT IN (no placeholders).
    fn list(placeholders: bool) -> impl Strategy<Value = Operand> {
        let value = if placeholders {
            prop_oneof![string(), number(), placeholder()].boxed()
        } else {
            prop_oneof![string(), number()].boxed()
        };
        prop::collection::vec(value, 1..4).prop_map(Operand::List)
    }

    const COMPARE: [Operator; 6] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Lt,
        Operator::Le,
        Operator::Gt,
        Operator::Ge,
    ];

    /// An operator and an operand that fit a non-interaction field.
    fn attribute_test(current_item: bool) -> impl Strategy<Value = (Operator, Operand)> {
        let compare = prop::sample::select(COMPARE.to_vec());
        let by_value = prop_oneof![
            list(true).prop_map(|l| (Operator::In, l)),
            list(false).prop_map(|l| (Operator::NotIn, l)),
            (compare.clone(), scalar()),
        ];
        if current_item {
            let any_operator = prop_oneof![compare, Just(Operator::In), Just(Operator::NotIn)];
            prop_oneof![by_value, (any_operator, name().prop_map(Operand::CurrentItem))].boxed()
        } else {
            by_value.boxed()
        }
    }

    fn event_type_test() -> impl Strategy<Value = (Operator, Operand)> {
        let with_wildcard =
            prop::collection::vec(prop_oneof![string(), placeholder(), Just(Value::Wildcard)], 1..4)
                .prop_map(Operand::List);
        prop_oneof![
            with_wildcard.prop_map(|l| (Operator::In, l)),
            list(false).prop_map(|l| (Operator::NotIn, l)),
        ]
    }

    fn comparison(target: Target, dataset: DatasetType) -> BoxedStrategy<Comparison> {
        if is_interactions(dataset) {
            event_type_test()
                .prop_map(move |(operator, operand)| Comparison {
                    field: field(dataset, "EVENT_TYPE"),
                    operator,
                    operand,
                })
                .boxed()
        } else {
            let current_item = target == Target::ItemId && dataset == DatasetType::Items;
            (name(), attribute_test(current_item))
                .prop_map(move |(name, (operator, operand))| Comparison {
                    field: field(dataset, &name),
                    operator,
                    operand,
                })
                .boxed()
        }
    }

    fn user_condition() -> impl Strategy<Value = UserCondition> {
        (name(), attribute_test(false)).prop_map(|(attribute, (operator, operand))| UserCondition {
            attribute,
            operator,
            operand,
        })
    }

    fn expression() -> impl Strategy<Value = Expression> {
        let targets = prop::sample::select(vec![Target::ItemId, Target::UserId, Target::ActionId]);
        (targets, any::<bool>(), any::<bool>()).prop_flat_map(|(target, first_dataset, include)| {
            let dataset = allowed_datasets(target)[usize::from(first_dataset)];
            let groups =
                prop::collection::vec(prop::collection::vec(comparison(target, dataset), 1..3), 1..3);
            let user_conditions = if target == Target::UserId {
                Just(Vec::new()).boxed()
            } else {
                prop::collection::vec(user_condition(), 0..3).boxed()
            };
            (groups, user_conditions).prop_map(move |(any_of, user_conditions)| Expression {
                action: if include { Action::Include } else { Action::Exclude },
                target,
                condition: Condition { any_of },
                user_conditions,
            })
        })
    }

    fn filter() -> impl Strategy<Value = FilterExpression> {
        prop::collection::vec(expression(), 1..4)
            .prop_map(|expressions| FilterExpression { expressions })
            .prop_filter("within the field limit", |f| {
                f.fields().len() <= MAX_DISTINCT_FIELDS
            })
    }

    const SOUP: &[&str] = &[
        "INCLUDE",
        "EXCLUDE",
        "include",
        "ItemID",
        "UserID",
        "ActionID",
        "WHERE",
        "Items",
        "Interactions",
        "Users",
        "Actions",
        "Action_Interactions",
        ".",
        "EVENT_TYPE",
        "GENRE",
        "IN",
        "NOT",
        "(",
        ")",
        ",",
        "\"click\"",
        "'a'",
        "\"*\"",
        "*",
        "$P",
        "3",
        "-2.5",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "AND",
        "OR",
        "IF",
        "CurrentUser",
        "CurrentItem",
        "|",
        "\"open",
        "!",
        "$",
        "-",
        "é",
    ];

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn token_soups_never_panic_and_whatever_parses_round_trips(
            tokens in prop::collection::vec(prop::sample::select(SOUP.to_vec()), 0..24),
            glue in prop::sample::select(vec![" ", "", "  \n"]),
        ) {
            let text = tokens.join(glue);
            match parse(&text) {
                Ok(tree) => prop_assert_eq!(parse(&tree.to_string()), Ok(tree)),
                Err(error) => {
                    prop_assert!(error.offset <= text.len());
                    prop_assert_eq!(&text[error.offset..error.offset + error.token.len()], error.token.as_str());
                }
            }
        }

        #[test]
        fn generated_trees_round_trip_through_display(tree in filter()) {
            let printed = tree.to_string();
            prop_assert_eq!(parse(&printed), Ok(tree), "{}", printed);
        }
    }
}
