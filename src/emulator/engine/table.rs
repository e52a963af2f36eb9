//! Dataset contents: a table of typed cells, with Personalize's FULL, INCREMENTAL and Put* update rules.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One value. Serialised untagged (`null`, `"text"`, `5`, `2.5`, `true`) to keep persisted state small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Str(String),
    Int(i64),
    /// Always finite: imports reject NaN and infinities.
    Float(f64),
    Bool(bool),
}

impl Cell {
    /// The text of a string cell.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The numeric value of an int or float cell, or of a string that holds a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            Cell::Str(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            Cell::Null | Cell::Bool(_) => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }
}

impl fmt::Display for Cell {
    /// The value as it would appear in a CSV file (empty for null).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => Ok(()),
            Cell::Str(s) => f.write_str(s),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) => write!(f, "{x}"),
            Cell::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The rows of a dataset, each with one cell per column.
///
/// Personalize distinguishes bulk rows (import jobs) from rows added one by one (PutEvents,
/// PutItems, PutUsers): a FULL import replaces the bulk rows and keeps the others. The table
/// remembers which rows were put individually; rows pushed directly onto `rows` count as bulk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// `individual[i]`: row `i` came from a Put* call. Shorter than `rows` when the tail is bulk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    individual: Vec<bool>,
}

impl Table {
    /// A table of bulk rows. Each row must have one cell per column.
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Cell>>) -> Self {
        Self {
            columns,
            rows,
            individual: Vec::new(),
        }
    }

    /// The index of the column named exactly `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether row `i` was added by a Put* call rather than an import job.
    pub fn is_individual(&self, i: usize) -> bool {
        self.individual.get(i).copied().unwrap_or(false)
    }

    /// A FULL import: the bulk rows become `other`'s, and the individually put rows are kept after
    /// them (re-aligned to `other`'s columns), so a later row wins a lookup by ID.
    pub fn replace_all(&mut self, other: Table) {
        let kept: Vec<Vec<Cell>> = std::mem::take(&mut self.rows)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.is_individual(*i))
            .map(|(_, row)| row)
            .collect();
        let old_columns = std::mem::replace(&mut self.columns, other.columns);
        let bulk = other.rows.len();
        self.rows = other.rows;
        let mapping: Vec<Option<usize>> = self
            .columns
            .iter()
            .map(|c| old_columns.iter().position(|o| o == c))
            .collect();
        for row in kept {
            self.rows.push(
                mapping
                    .iter()
                    .map(|from| from.and_then(|i| row.get(i).cloned()).unwrap_or(Cell::Null))
                    .collect(),
            );
        }
        self.individual = vec![false; bulk];
        self.individual.resize(self.rows.len(), true);
    }

    /// An INCREMENTAL import: rows whose `id_column` value matches an existing row replace it, the
    /// others are appended. Without an ID column (interactions) every row is appended.
    pub fn upsert(&mut self, other: Table, id_column: Option<&str>) {
        self.merge(&other, id_column, false);
    }

    /// PutEvents / PutItems / PutUsers: as [`Table::upsert`], and the rows are marked as put
    /// individually, so a later FULL import keeps them.
    pub fn put_individual(&mut self, other: Table, id_column: Option<&str>) {
        self.merge(&other, id_column, true);
    }

    /// Merges `delta`'s rows as [`Table::upsert`] or [`Table::put_individual`] would.
    pub fn apply(&mut self, delta: &RowDelta) {
        self.merge(&delta.rows, delta.id_column.as_deref(), delta.individual);
    }

    fn merge(&mut self, other: &Table, id_column: Option<&str>, individual: bool) {
        // Columns of `other` that this table lacks are added (a dataset can switch schema).
        let mapping: Vec<usize> = other
            .columns
            .iter()
            .map(|name| match self.column(name) {
                Some(i) => i,
                None => {
                    self.columns.push(name.clone());
                    for row in &mut self.rows {
                        row.push(Cell::Null);
                    }
                    self.columns.len() - 1
                }
            })
            .collect();
        let width = self.columns.len();
        let id = id_column.and_then(|name| self.column(name));
        let mut index: HashMap<String, usize> = HashMap::new();
        if let Some(id) = id {
            for (i, row) in self.rows.iter().enumerate() {
                if let Some(key) = row.get(id) {
                    index.insert(key.to_string(), i);
                }
            }
        }
        if individual {
            self.individual.resize(self.rows.len(), false);
        }
        for row in &other.rows {
            let mut aligned = vec![Cell::Null; width];
            for (cell, &to) in row.iter().zip(&mapping) {
                aligned[to] = cell.clone();
            }
            let existing = id.and_then(|id| index.get(&aligned[id].to_string()).copied());
            match existing {
                Some(i) => {
                    self.rows[i] = aligned;
                    self.set_individual(i, individual);
                }
                None => {
                    if let Some(id) = id {
                        index.insert(aligned[id].to_string(), self.rows.len());
                    }
                    self.rows.push(aligned);
                    self.set_individual(self.rows.len() - 1, individual);
                }
            }
        }
    }

    fn set_individual(&mut self, i: usize, individual: bool) {
        if individual || i < self.individual.len() {
            if self.individual.len() <= i {
                self.individual.resize(i + 1, false);
            }
            self.individual[i] = individual;
        }
    }
}

/// Rows merged into a table by an INCREMENTAL import or a Put* call. The state log records this
/// instead of the whole table, so saving such a change costs the rows added, not the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowDelta {
    pub rows: Table,
    /// The column whose value identifies a row (matching rows are replaced); `None` appends all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    /// The rows were put one by one (Put*), so a later FULL import keeps them.
    #[serde(default)]
    pub individual: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Cell {
        Cell::Str(v.to_string())
    }

    fn items(rows: &[(&str, &str)]) -> Table {
        Table::new(
            vec!["ITEM_ID".into(), "GENRE".into()],
            rows.iter().map(|(id, g)| vec![s(id), s(g)]).collect(),
        )
    }

    #[test]
    fn cells_serialise_untagged_and_round_trip() {
        let row = vec![
            Cell::Null,
            s("a"),
            Cell::Int(5),
            Cell::Float(2.5),
            Cell::Float(1.0),
            Cell::Bool(true),
        ];
        let json = serde_json::to_string(&row).expect("serialise");
        assert_eq!(json, r#"[null,"a",5,2.5,1.0,true]"#);
        let back: Vec<Cell> = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, row);
    }

    #[test]
    fn upsert_replaces_rows_with_the_same_id_and_appends_the_rest() {
        let mut t = items(&[("1", "a"), ("2", "b")]);
        t.upsert(items(&[("2", "B"), ("3", "c"), ("3", "C")]), Some("ITEM_ID"));
        assert_eq!(t.rows, items(&[("1", "a"), ("2", "B"), ("3", "C")]).rows);
    }

    #[test]
    fn interactions_just_append() {
        let mut t = items(&[("1", "a")]);
        t.upsert(items(&[("1", "a")]), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_full_import_keeps_individually_put_rows() {
        let mut t = items(&[("1", "a"), ("2", "b")]);
        t.put_individual(items(&[("9", "put")]), Some("ITEM_ID"));
        t.put_individual(items(&[("2", "put")]), Some("ITEM_ID"));
        assert!(t.is_individual(1) && t.is_individual(2) && !t.is_individual(0));
        // The new bulk data has another column order and a new column.
        let mut bulk = Table::new(
            vec!["GENRE".into(), "ITEM_ID".into(), "PRICE".into()],
            vec![vec![s("x"), s("5"), Cell::Float(1.5)]],
        );
        bulk.rows.push(vec![s("y"), s("6"), Cell::Null]);
        t.replace_all(bulk);
        assert_eq!(t.columns, ["GENRE", "ITEM_ID", "PRICE"]);
        assert_eq!(
            t.rows,
            vec![
                vec![s("x"), s("5"), Cell::Float(1.5)],
                vec![s("y"), s("6"), Cell::Null],
                vec![s("put"), s("2"), Cell::Null],
                vec![s("put"), s("9"), Cell::Null],
            ]
        );
        assert!(!t.is_individual(0) && t.is_individual(2) && t.is_individual(3));
        // A second FULL import drops the earlier bulk rows but still keeps the put ones.
        t.replace_all(items(&[("7", "z")]));
        assert_eq!(t.len(), 3);
        // An INCREMENTAL import over a put row makes it bulk again.
        t.upsert(items(&[("9", "bulk")]), Some("ITEM_ID"));
        let nine = t.rows.iter().position(|r| r[0] == s("9")).expect("row 9");
        assert!(!t.is_individual(nine));
    }

    #[test]
    fn merging_adds_missing_columns() {
        let mut t = items(&[("1", "a")]);
        t.upsert(
            Table::new(
                vec!["ITEM_ID".into(), "PRICE".into()],
                vec![vec![s("2"), Cell::Int(3)]],
            ),
            Some("ITEM_ID"),
        );
        assert_eq!(t.columns, ["ITEM_ID", "GENRE", "PRICE"]);
        assert_eq!(t.rows[0], vec![s("1"), s("a"), Cell::Null]);
        assert_eq!(t.rows[1], vec![s("2"), Cell::Null, Cell::Int(3)]);
    }

    #[test]
    fn table_serialisation_keeps_the_individual_marks() {
        let mut t = items(&[("1", "a")]);
        t.put_individual(items(&[("2", "b")]), Some("ITEM_ID"));
        let back: Table =
            serde_json::from_str(&serde_json::to_string(&t).expect("serialise")).expect("deserialise");
        assert_eq!(back, t);
        let plain: Table = serde_json::from_str(r#"{"columns":["A"],"rows":[["x"]]}"#).expect("no marks");
        assert!(!plain.is_individual(0));
    }
}
