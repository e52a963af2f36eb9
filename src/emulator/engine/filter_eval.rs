//! Filters at request time: which candidate items (or users) a parsed filter expression admits.
//!
//! Semantics (docs/personalize.md, "Filter expressions"):
//! * `(∪ INCLUDE) − (∪ EXCLUDE)`: a candidate is admitted when some applicable INCLUDE expression
//!   matches it (or no INCLUDE applies) and no applicable EXCLUDE expression matches it.
//! * An expression whose IF clause does not hold for the current user does not apply.
//! * A comparison of an EXCLUDE expression whose placeholder has no value is skipped; an AND group
//!   left empty is dropped, and an expression left without groups does not apply.
//! * `Interactions.EVENT_TYPE` looks at the current user's interactions with the candidate item (the
//!   newest 100 of each event type), case-insensitively; `"*"` is every event type. For user
//!   segments it looks at the candidate user's interactions with any item.
//! * Every other match is exact. Multi-value fields (`a|b`) match when any value does; `NOT IN` holds
//!   when none does (so also for a missing value); numeric comparisons need a number on both sides.
//! * Actions datasets are not stored by the engine: their conditions never hold.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::table::{Cell, Table};
use crate::spec::filter::{
    Action, Comparison, Expression, FilterExpression, Operand, Operator, Target, UserCondition, Value,
};
use crate::spec::kinds::DatasetType;

/// How many of the newest interactions of each event type `Interactions.EVENT_TYPE` considers.
pub const EVENT_TYPE_WINDOW: usize = 100;
/// The most `filterValues` entries a request may carry.
pub const MAX_FILTER_VALUES: usize = 25;

/// A value bound to a placeholder, or a literal.
#[derive(Debug, Clone, PartialEq)]
enum Bound {
    Text(String),
    Number(f64),
    Wildcard,
}

/// Parses a `filterValues` entry: a comma-separated list of quoted strings (`"\"a\",\"b\""`) or
/// numbers (`10`, also quoted: `"\"10\""`).
fn parse_bound(text: &str) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("the value is empty".to_string());
    }
    loop {
        let (token, after) = if let Some(inner) = rest.strip_prefix('"') {
            let close = inner
                .find('"')
                .ok_or_else(|| format!("{text:?} has an unclosed quote"))?;
            (
                Bound::Text(inner[..close].to_string()),
                inner[close + 1..].trim_start(),
            )
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let word = rest[..end].trim();
            let number = word
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| {
                    format!("{word:?} must be a quoted string (write \"\\\"{word}\\\"\") or a number")
                })?;
            (Bound::Number(number), &rest[end..])
        };
        out.push(token);
        match after.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None if after.is_empty() => return Ok(out),
            None => return Err(format!("{text:?}: expected a comma after each value")),
        }
    }
}

/// Checks a request's `filterValues` against the filter: every placeholder of an INCLUDE expression
/// has a value, every value has Personalize's format, and a placeholder compared with `<`, `=`, …
/// holds one number.
///
/// # Errors
/// A message for an InvalidInputException.
pub fn check_filter_values(expr: &FilterExpression, values: &HashMap<String, String>) -> Result<(), String> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(format!(
            "filterValues has {} entries; the limit is {MAX_FILTER_VALUES}",
            values.len()
        ));
    }
    for placeholder in expr.placeholders() {
        let Some(text) = values.get(&placeholder.name) else {
            if placeholder.action == Action::Include {
                return Err(format!(
                    "filterValues has no value for ${}, which the filter's INCLUDE expression needs",
                    placeholder.name
                ));
            }
            continue;
        };
        let bound = parse_bound(text).map_err(|e| format!("filterValues.{}: {e}", placeholder.name))?;
        if scalar_placeholders(expr).contains(placeholder.name.as_str())
            && !matches!(bound.as_slice(), [Bound::Number(_)] | [Bound::Text(_)] if bound_number(&bound[0]).is_some())
        {
            return Err(format!(
                "filterValues.{}: {text:?} must be one number, as ${} is compared with an operator",
                placeholder.name, placeholder.name
            ));
        }
    }
    Ok(())
}

/// Placeholders that are the operand of a comparison operator (they must hold one number).
fn scalar_placeholders(expr: &FilterExpression) -> HashSet<&str> {
    let scalars = expr.expressions.iter().flat_map(|e| {
        e.condition
            .comparisons()
            .map(|c| &c.operand)
            .chain(e.user_conditions.iter().map(|c| &c.operand))
    });
    scalars
        .filter_map(|operand| match operand {
            Operand::Scalar(Value::Placeholder(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

fn bound_number(b: &Bound) -> Option<f64> {
    match b {
        Bound::Number(n) => Some(*n),
        Bound::Text(t) => t.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        Bound::Wildcard => None,
    }
}

/// Lookups shared by every request of one filter evaluation (a batch job reuses them per line).
#[derive(Debug)]
struct Shared<'a> {
    expr: &'a FilterExpression,
    /// Placeholder values that parsed; a malformed one counts as missing.
    bound: HashMap<&'a str, Vec<Bound>>,
    items: Option<&'a Table>,
    users: Option<&'a Table>,
    interactions: Option<&'a Table>,
    items_by_id: OnceLock<HashMap<&'a str, usize>>,
    users_by_id: OnceLock<HashMap<&'a str, usize>>,
    interactions_by_user: OnceLock<HashMap<&'a str, Vec<usize>>>,
}

/// The datasets a filter reads. Each is optional: a condition on a missing dataset never holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilterData<'a> {
    /// ITEM_ID plus metadata.
    pub items: Option<&'a Table>,
    /// USER_ID plus metadata.
    pub users: Option<&'a Table>,
    /// USER_ID, ITEM_ID, EVENT_TYPE and TIMESTAMP.
    pub interactions: Option<&'a Table>,
}

/// A filter expression with its values and the data it reads, for one request.
///
/// [`FilterContext::for_request`] gives the context of another user or item while keeping the
/// lookups (rows by ID, interactions by user) already built, so a batch job builds them once.
#[derive(Debug)]
pub struct FilterContext<'a> {
    shared: Arc<Shared<'a>>,
    /// Owned, so one context can serve requests whose IDs live shorter than the data.
    user_id: Option<String>,
    current_item: Option<String>,
    /// The current user's newest interactions: item → lowercased event types.
    user_events: OnceLock<HashMap<&'a str, HashSet<String>>>,
}

impl<'a> FilterContext<'a> {
    /// A context for a request without a user or item; `values` are the request's `filterValues`.
    /// Use [`FilterContext::for_request`] to set them.
    pub fn new(
        expr: &'a FilterExpression,
        values: &'a HashMap<String, String>,
        data: FilterData<'a>,
    ) -> Self {
        let bound = values
            .iter()
            .filter_map(|(k, v)| parse_bound(v).ok().map(|b| (k.as_str(), b)))
            .collect();
        Self {
            shared: Arc::new(Shared {
                expr,
                bound,
                items: data.items,
                users: data.users,
                interactions: data.interactions,
                items_by_id: OnceLock::new(),
                users_by_id: OnceLock::new(),
                interactions_by_user: OnceLock::new(),
            }),
            user_id: None,
            current_item: None,
            user_events: OnceLock::new(),
        }
    }

    /// The same filter and data for a request by `user_id` about `current_item`.
    pub fn for_request(&self, user_id: Option<&str>, current_item: Option<&str>) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            user_id: user_id.map(str::to_string),
            current_item: current_item.map(str::to_string),
            user_events: OnceLock::new(),
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    pub fn current_item(&self) -> Option<&str> {
        self.current_item.as_deref()
    }

    /// The filter's target: items, users (segments) or actions.
    pub fn target(&self) -> Option<Target> {
        self.shared.expr.expressions.first().map(|e| e.target)
    }

    /// Whether the candidate (an item ID, or a user ID for user-segment filters) passes the filter.
    pub fn admits(&self, candidate_id: &str) -> bool {
        let mut include_applies = false;
        let mut included = false;
        for expression in &self.shared.expr.expressions {
            let Some(groups) = self.effective_groups(expression) else {
                continue;
            };
            if !self.if_clause_holds(expression) {
                continue;
            }
            let matches = groups.iter().any(|group| {
                group
                    .iter()
                    .all(|c| self.comparison_holds(c, expression.target, candidate_id))
            });
            match expression.action {
                Action::Include => {
                    include_applies = true;
                    included |= matches;
                }
                Action::Exclude if matches => return false,
                Action::Exclude => {}
            }
        }
        included || !include_applies
    }

    /// The AND groups that apply: for EXCLUDE, comparisons with an unbound placeholder are skipped.
    /// `None` when nothing of the expression is left.
    fn effective_groups<'e>(&self, expression: &'e Expression) -> Option<Vec<Vec<&'e Comparison>>> {
        let groups: Vec<Vec<&Comparison>> = expression
            .condition
            .any_of
            .iter()
            .map(|group| {
                group
                    .iter()
                    .filter(|c| expression.action == Action::Include || self.all_bound(&c.operand))
                    .collect::<Vec<_>>()
            })
            .filter(|group| !group.is_empty())
            .collect();
        (!groups.is_empty()).then_some(groups)
    }

    fn all_bound(&self, operand: &Operand) -> bool {
        operand.values().iter().all(|v| match v {
            Value::Placeholder(name) => self.shared.bound.contains_key(name.as_str()),
            _ => true,
        })
    }

    fn if_clause_holds(&self, expression: &Expression) -> bool {
        let conditions: Vec<&UserCondition> = expression
            .user_conditions
            .iter()
            .filter(|c| expression.action == Action::Include || self.all_bound(&c.operand))
            .collect();
        if conditions.is_empty() {
            return true;
        }
        let Some(user) = self.user_id.as_deref() else {
            return false;
        };
        conditions.iter().all(|c| {
            let values = self.row_values(DatasetType::Users, user, &c.attribute);
            self.compare(&values, c.operator, &self.operand_values(&c.operand), false)
        })
    }

    fn comparison_holds(&self, comparison: &Comparison, target: Target, candidate: &str) -> bool {
        let field = &comparison.field;
        let operand = self.operand_values(&comparison.operand);
        match field.dataset {
            DatasetType::Interactions if field.name.eq_ignore_ascii_case("EVENT_TYPE") => {
                let types = match target {
                    Target::ItemId => self.current_user_event_types(candidate),
                    Target::UserId => self.event_types_of_user(candidate),
                    Target::ActionId => HashSet::new(),
                };
                let values: Vec<Bound> = types.into_iter().map(Bound::Text).collect();
                self.compare(&values, comparison.operator, &operand, true)
            }
            DatasetType::Items | DatasetType::Users => {
                let values = self.row_values(field.dataset, candidate, &field.name);
                self.compare(&values, comparison.operator, &operand, false)
            }
            _ => false,
        }
    }

    /// The operand's values, with placeholders replaced and `CurrentItem.X` looked up.
    fn operand_values(&self, operand: &Operand) -> Vec<Bound> {
        match operand {
            Operand::CurrentItem(name) => self
                .current_item
                .as_deref()
                .map(|item| self.row_values(DatasetType::Items, item, name))
                .unwrap_or_default(),
            other => other
                .values()
                .iter()
                .flat_map(|v| match v {
                    Value::String(s) => vec![Bound::Text(s.clone())],
                    Value::Number(n) => vec![Bound::Number(*n)],
                    Value::Wildcard => vec![Bound::Wildcard],
                    Value::Placeholder(name) => {
                        self.shared.bound.get(name.as_str()).cloned().unwrap_or_default()
                    }
                })
                .collect(),
        }
    }

    fn compare(
        &self,
        values: &[Bound],
        operator: Operator,
        operand: &[Bound],
        case_insensitive: bool,
    ) -> bool {
        let equal = |a: &Bound, b: &Bound| match (a, b) {
            (_, Bound::Wildcard) | (Bound::Wildcard, _) => true,
            (Bound::Text(x), Bound::Text(y)) if case_insensitive => x.eq_ignore_ascii_case(y),
            (Bound::Text(x), Bound::Text(y)) => x == y,
            _ => matches!((bound_number(a), bound_number(b)), (Some(x), Some(y)) if x == y),
        };
        let any_in = || values.iter().any(|v| operand.iter().any(|o| equal(v, o)));
        let numeric = |test: fn(f64, f64) -> bool| {
            let right = operand.first().and_then(bound_number);
            values
                .iter()
                .filter_map(bound_number)
                .any(|left| right.is_some_and(|right| test(left, right)))
        };
        match operator {
            Operator::In => any_in(),
            Operator::NotIn => !any_in(),
            Operator::Eq => any_in(),
            Operator::Ne => !values.is_empty() && !any_in(),
            Operator::Lt => numeric(|a, b| a < b),
            Operator::Le => numeric(|a, b| a <= b),
            Operator::Gt => numeric(|a, b| a > b),
            Operator::Ge => numeric(|a, b| a >= b),
        }
    }

    /// The values of `field` in the Items or Users row of `id` (multi-value strings split on `|`).
    fn row_values(&self, dataset: DatasetType, id: &str, field: &str) -> Vec<Bound> {
        let (table, index) = match dataset {
            DatasetType::Items => (self.shared.items, &self.shared.items_by_id),
            DatasetType::Users => (self.shared.users, &self.shared.users_by_id),
            _ => return Vec::new(),
        };
        let Some(table) = table else { return Vec::new() };
        let id_column = if dataset == DatasetType::Items {
            "ITEM_ID"
        } else {
            "USER_ID"
        };
        let index = index.get_or_init(|| index_by(table, id_column));
        let (Some(&row), Some(column)) = (index.get(id), table.column(field)) else {
            return Vec::new();
        };
        match table.rows.get(row).and_then(|r| r.get(column)) {
            Some(Cell::Str(s)) => s.split('|').map(|v| Bound::Text(v.to_string())).collect(),
            Some(Cell::Int(i)) => vec![Bound::Number(*i as f64)],
            Some(Cell::Float(f)) => vec![Bound::Number(*f)],
            Some(Cell::Bool(b)) => vec![Bound::Text(b.to_string())],
            Some(Cell::Null) | None => Vec::new(),
        }
    }

    fn rows_of_user(&self, user: &str) -> &[usize] {
        let Some(table) = self.shared.interactions else {
            return &[];
        };
        let index = self.shared.interactions_by_user.get_or_init(|| {
            let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
            if let Some(column) = table.column("USER_ID") {
                for (i, row) in table.rows.iter().enumerate() {
                    if let Some(Cell::Str(user)) = row.get(column) {
                        index.entry(user.as_str()).or_default().push(i);
                    }
                }
            }
            index
        });
        index.get(user).map_or(&[], Vec::as_slice)
    }

    /// Lowercased event types of the current user's interactions with `item`.
    fn current_user_event_types(&self, item: &str) -> HashSet<String> {
        let Some(user) = self.user_id.as_deref() else {
            return HashSet::new();
        };
        let events = self.user_events.get_or_init(|| self.newest_events_by_item(user));
        events.get(item).cloned().unwrap_or_default()
    }

    fn newest_events_by_item(&self, user: &str) -> HashMap<&'a str, HashSet<String>> {
        let mut out: HashMap<&'a str, HashSet<String>> = HashMap::new();
        let Some(table) = self.shared.interactions else {
            return out;
        };
        let (Some(item_col), type_col, time_col) = (
            table.column("ITEM_ID"),
            table.column("EVENT_TYPE"),
            table.column("TIMESTAMP"),
        ) else {
            return out;
        };
        let mut rows: Vec<usize> = self.rows_of_user(user).to_vec();
        // Newest first; rows without a timestamp keep their order (later rows are newer).
        rows.sort_by_key(|&i| {
            let time = time_col.and_then(|c| table.rows[i].get(c)).and_then(Cell::as_f64);
            std::cmp::Reverse((time.map(|t| t as i64), i))
        });
        let mut per_type: HashMap<String, usize> = HashMap::new();
        for i in rows {
            let row = &table.rows[i];
            let event_type = type_col
                .and_then(|c| row.get(c))
                .map(|c| c.to_string().to_lowercase())
                .unwrap_or_default();
            let seen = per_type.entry(event_type.clone()).or_default();
            if *seen >= EVENT_TYPE_WINDOW {
                continue;
            }
            *seen += 1;
            if let Some(Cell::Str(item)) = row.get(item_col) {
                out.entry(item.as_str()).or_default().insert(event_type);
            }
        }
        out
    }

    fn event_types_of_user(&self, user: &str) -> HashSet<String> {
        let Some(table) = self.shared.interactions else {
            return HashSet::new();
        };
        let Some(type_col) = table.column("EVENT_TYPE") else {
            return HashSet::new();
        };
        self.rows_of_user(user)
            .iter()
            .filter_map(|&i| table.rows[i].get(type_col))
            .map(|c| c.to_string().to_lowercase())
            .collect()
    }
}

/// Row index by ID; a later row wins, as later imports and puts replace earlier ones.
fn index_by<'a>(table: &'a Table, id_column: &str) -> HashMap<&'a str, usize> {
    let Some(column) = table.column(id_column) else {
        return HashMap::new();
    };
    table
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| row.get(column).and_then(Cell::as_str).map(|id| (id, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::filter;

    fn s(v: &str) -> Cell {
        Cell::Str(v.to_string())
    }

    fn items() -> Table {
        Table::new(
            vec!["ITEM_ID".into(), "GENRE".into(), "PRICE".into()],
            vec![
                vec![s("i1"), s("Comedy"), Cell::Float(10.0)],
                vec![s("i2"), s("Drama|Comedy"), Cell::Float(20.0)],
                vec![s("i3"), s("Action"), Cell::Float(5.0)],
                vec![s("i4"), s("Drama"), Cell::Float(30.0)],
            ],
        )
    }

    fn users() -> Table {
        Table::new(
            vec!["USER_ID".into(), "AGE".into(), "MEMBERSHIP".into()],
            vec![
                vec![s("u1"), Cell::Int(30), s("gold")],
                vec![s("u2"), Cell::Int(70), s("silver")],
            ],
        )
    }

    fn interactions() -> Table {
        let mut rows = vec![
            vec![s("u1"), s("i1"), Cell::Int(100), s("click")],
            vec![s("u1"), s("i2"), Cell::Int(101), s("Purchase")],
            vec![s("u2"), s("i3"), Cell::Int(102), s("click")],
        ];
        // u3 viewed "old" first, then "new" 100 times: only the newest 100 views count.
        rows.push(vec![s("u3"), s("old"), Cell::Int(1), s("view")]);
        for t in 0..EVENT_TYPE_WINDOW as i64 {
            rows.push(vec![s("u3"), s("new"), Cell::Int(1000 + t), s("VIEW")]);
        }
        Table::new(
            vec![
                "USER_ID".into(),
                "ITEM_ID".into(),
                "TIMESTAMP".into(),
                "EVENT_TYPE".into(),
            ],
            rows,
        )
    }

    /// The candidates among `ids` that the filter admits for `user` and `item`.
    fn admitted(
        expression: &str,
        values: &[(&str, &str)],
        user: Option<&str>,
        item: Option<&str>,
        ids: &[&str],
    ) -> Vec<String> {
        let expr = filter::parse(expression).expect("valid filter");
        let values: HashMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (items, users, interactions) = (items(), users(), interactions());
        let data = FilterData {
            items: Some(&items),
            users: Some(&users),
            interactions: Some(&interactions),
        };
        let context = FilterContext::new(&expr, &values, data);
        let context = context.for_request(user, item);
        ids.iter()
            .filter(|id| context.admits(id))
            .map(|id| id.to_string())
            .collect()
    }

    const ITEMS: [&str; 5] = ["i1", "i2", "i3", "i4", "i5"];

    #[test]
    fn event_types_match_the_current_users_interactions_case_insensitively() {
        let exclude_purchases = r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")"#;
        assert_eq!(
            admitted(exclude_purchases, &[], Some("u1"), None, &ITEMS),
            ["i1", "i3", "i4", "i5"]
        );
        assert_eq!(admitted(exclude_purchases, &[], Some("u2"), None, &ITEMS), ITEMS);
        let exclude_all = r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")"#;
        assert_eq!(
            admitted(exclude_all, &[], Some("u1"), None, &ITEMS),
            ["i3", "i4", "i5"]
        );
        assert_eq!(
            admitted(exclude_all, &[], Some("u2"), None, &ITEMS),
            ["i1", "i2", "i4", "i5"]
        );
        assert_eq!(admitted(exclude_all, &[], None, None, &ITEMS), ITEMS);
        let include_clicked = r#"INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("CLICK")"#;
        assert_eq!(admitted(include_clicked, &[], Some("u1"), None, &ITEMS), ["i1"]);
    }

    #[test]
    fn only_the_newest_interactions_of_each_type_count() {
        let filter = r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("view")"#;
        assert_eq!(admitted(filter, &[], Some("u3"), None, &["old", "new"]), ["old"]);
    }

    #[test]
    fn includes_are_unioned_and_excludes_subtracted_in_any_order() {
        let parts = [
            r#"INCLUDE ItemID WHERE Items.GENRE IN ("Action")"#,
            "INCLUDE ItemID WHERE Items.PRICE >= 30",
            r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#,
        ];
        let forward = parts.join(" | ");
        let backward = parts.iter().rev().copied().collect::<Vec<_>>().join(" | ");
        for filter in [forward, backward] {
            assert_eq!(
                admitted(&filter, &[], Some("u2"), None, &ITEMS),
                ["i4"],
                "{filter}"
            );
            assert_eq!(
                admitted(&filter, &[], Some("u1"), None, &ITEMS),
                ["i3", "i4"],
                "{filter}"
            );
        }
    }

    #[test]
    fn placeholders_take_personalizes_value_format() {
        let filter = "INCLUDE ItemID WHERE Items.GENRE IN ($GENRE)";
        assert_eq!(
            admitted(filter, &[("GENRE", "\"Comedy\"")], None, None, &ITEMS),
            ["i1", "i2"]
        );
        assert_eq!(
            admitted(filter, &[("GENRE", "\"Action\", \"Drama\"")], None, None, &ITEMS),
            ["i2", "i3", "i4"]
        );
        let price = "INCLUDE ItemID WHERE Items.PRICE <= $P";
        assert_eq!(admitted(price, &[("P", "10")], None, None, &ITEMS), ["i1", "i3"]);
        assert_eq!(
            admitted(price, &[("P", "\"10\"")], None, None, &ITEMS),
            ["i1", "i3"]
        );
    }

    #[test]
    fn a_missing_exclude_placeholder_skips_that_part() {
        let whole = "EXCLUDE ItemID WHERE Items.GENRE IN ($G)";
        assert_eq!(admitted(whole, &[], None, None, &ITEMS), ITEMS);
        assert_eq!(
            admitted(whole, &[("G", "\"Drama\"")], None, None, &ITEMS),
            ["i1", "i3", "i5"]
        );
        let part = "EXCLUDE ItemID WHERE Items.GENRE IN ($G) AND Items.PRICE > 15";
        assert_eq!(admitted(part, &[], None, None, &ITEMS), ["i1", "i3", "i5"]);
        assert_eq!(
            admitted(part, &[("G", "\"Comedy\"")], None, None, &ITEMS),
            ["i1", "i3", "i4", "i5"]
        );
    }

    #[test]
    fn the_if_clause_applies_an_expression_only_to_matching_users() {
        let filter = r#"EXCLUDE ItemID WHERE Items.GENRE IN ("Drama") IF CurrentUser.AGE > 60"#;
        assert_eq!(
            admitted(filter, &[], Some("u2"), None, &ITEMS),
            ["i1", "i3", "i5"]
        );
        assert_eq!(admitted(filter, &[], Some("u1"), None, &ITEMS), ITEMS);
        assert_eq!(admitted(filter, &[], Some("unknown"), None, &ITEMS), ITEMS);
        assert_eq!(admitted(filter, &[], None, None, &ITEMS), ITEMS);
        let membership = r#"EXCLUDE ItemID WHERE Items.GENRE IN ("Drama") IF CurrentUser.MEMBERSHIP IN ($M)"#;
        assert_eq!(
            admitted(membership, &[("M", "\"gold\"")], Some("u1"), None, &ITEMS),
            ["i1", "i3", "i5"]
        );
        assert_eq!(
            admitted(membership, &[("M", "\"gold\"")], Some("u2"), None, &ITEMS),
            ITEMS
        );
    }

    #[test]
    fn current_item_compares_with_the_requested_item() {
        let filter =
            "INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.GENRE";
        assert_eq!(admitted(filter, &[], None, Some("i4"), &ITEMS), ["i2"]);
        assert_eq!(admitted(filter, &[], None, Some("i2"), &ITEMS), ["i1"]);
        assert!(admitted(filter, &[], None, None, &ITEMS).is_empty());
    }

    #[test]
    fn not_in_and_missing_values() {
        let filter = r#"INCLUDE ItemID WHERE Items.GENRE NOT IN ("Drama")"#;
        assert_eq!(admitted(filter, &[], None, None, &ITEMS), ["i1", "i3", "i5"]);
        let ne = "INCLUDE ItemID WHERE Items.PRICE != 10";
        assert_eq!(admitted(ne, &[], None, None, &ITEMS), ["i2", "i3", "i4"]);
    }

    #[test]
    fn user_segment_filters() {
        let users = ["u1", "u2", "u9"];
        assert_eq!(
            admitted(
                r#"INCLUDE UserID WHERE Users.MEMBERSHIP IN ("gold")"#,
                &[],
                None,
                None,
                &users
            ),
            ["u1"]
        );
        assert_eq!(
            admitted(
                r#"EXCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("purchase")"#,
                &[],
                None,
                None,
                &users
            ),
            ["u2", "u9"]
        );
    }

    #[test]
    fn lookups_are_shared_between_requests() {
        let expr =
            filter::parse(r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")"#).expect("valid");
        let values = HashMap::new();
        let table = interactions();
        let data = FilterData {
            interactions: Some(&table),
            ..FilterData::default()
        };
        let base = FilterContext::new(&expr, &values, data);
        let u1 = base.for_request(Some("u1"), None);
        let u2 = base.for_request(Some("u2"), None);
        assert!(!u1.admits("i1") && u1.admits("i3"));
        assert!(u2.admits("i1") && !u2.admits("i3"));
        assert_eq!(u2.user_id(), Some("u2"));
        assert_eq!(base.target(), Some(Target::ItemId));
    }

    #[test]
    fn filter_values_are_checked() {
        let expr = filter::parse(
            "INCLUDE ItemID WHERE Items.GENRE IN ($GENRE) | INCLUDE ItemID WHERE Items.PRICE < $MAX | EXCLUDE ItemID WHERE Items.GENRE IN ($NOT)",
        )
        .expect("valid");
        let check = |pairs: &[(&str, &str)]| {
            let values: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            check_filter_values(&expr, &values)
        };
        assert_eq!(check(&[("GENRE", "\"a\",\"b\""), ("MAX", "10")]), Ok(()));
        assert_eq!(
            check(&[("GENRE", "\"a\""), ("MAX", "\"10.5\""), ("NOT", "\"x\"")]),
            Ok(())
        );
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("MAX", "10")],
                "filterValues has no value for $GENRE, which the filter's INCLUDE expression needs",
            ),
            (
                &[("GENRE", "Comedy"), ("MAX", "1")],
                "filterValues.GENRE: \"Comedy\" must be a quoted string (write \"\\\"Comedy\\\"\") or a number",
            ),
            (&[("GENRE", "\"a"), ("MAX", "1")], "unclosed quote"),
            (&[("GENRE", "\"a\" \"b\""), ("MAX", "1")], "expected a comma"),
            (
                &[("GENRE", ""), ("MAX", "1")],
                "filterValues.GENRE: the value is empty",
            ),
            (
                &[("GENRE", "\"a\""), ("MAX", "\"ten\"")],
                "filterValues.MAX: \"\\\"ten\\\"\" must be one number",
            ),
            (&[("GENRE", "\"a\""), ("MAX", "1,2")], "must be one number"),
            (
                &[("GENRE", "\"a\""), ("MAX", "1"), ("NOT", "x")],
                "filterValues.NOT",
            ),
        ];
        for (pairs, expected) in cases {
            let err = check(pairs).expect_err(expected);
            assert!(
                err.contains(expected),
                "{pairs:?}: expected {expected:?} in {err}"
            );
        }
        let many: Vec<(String, String)> = (0..26).map(|i| (format!("K{i}"), "1".to_string())).collect();
        let values: HashMap<String, String> = many
            .into_iter()
            .chain([("GENRE".into(), "\"a\"".into()), ("MAX".into(), "1".into())])
            .collect();
        assert!(
            check_filter_values(&expr, &values)
                .expect_err("too many")
                .contains("limit is 25")
        );
    }
}
