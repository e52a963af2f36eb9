//! The data behind the resources: dataset tables and trained models, keyed by the owning ARN.
//!
//! Entries sit behind `Arc`s: background work and the persister take cheap snapshots under the lock
//! and use them after releasing it; a writer copies on write. Every change bumps the entry's
//! generation, so the persister rewrites only what changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::engine::filter_eval::FilterData;
use super::engine::model::Model;
use super::engine::table::{RowDelta, Table};
use super::state::State;
use crate::spec::kinds::DatasetType;

/// One stored value and the generation it was last changed in.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    pub value: Arc<T>,
    pub generation: u64,
}

/// Dataset contents and models. Kept beside [`State`] (not inside it) because it is large: it is
/// saved to its own files and never cloned for a response.
#[derive(Debug, Default)]
pub struct Data {
    /// Dataset ARN → its rows.
    tables: BTreeMap<String, Entry<Table>>,
    /// Solution version or recommender ARN → its trained model.
    models: BTreeMap<String, Entry<Model>>,
    /// The last generation handed out (shared by all entries).
    generation: u64,
    /// Dataset ARN → the row deltas merged into its table since the persister last took them
    /// ([`Data::take_deltas`]), an unbroken chain of generations; any other change of the table
    /// drops its chain, so the persister writes the whole table instead.
    deltas: BTreeMap<String, Vec<Stamped>>,
}

/// A row delta and the table generations it leads from and to.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub from: u64,
    pub to: u64,
    pub delta: Arc<RowDelta>,
}

/// Where a recommender's retrained model waits until the update that retrained it is ACTIVE.
pub fn pending_model_key(recommender_arn: &str) -> String {
    format!("{recommender_arn}{PENDING_SUFFIX}")
}

/// `#` never occurs in an ARN, so a pending key cannot name a resource.
const PENDING_SUFFIX: &str = "#update";

/// The column that identifies a row of a dataset type, for upserts (interactions have none: every
/// row is new).
pub fn id_column(ty: DatasetType) -> Option<&'static str> {
    match ty {
        DatasetType::Items => Some("ITEM_ID"),
        DatasetType::Users => Some("USER_ID"),
        DatasetType::Actions => Some("ACTION_ID"),
        DatasetType::Interactions | DatasetType::ActionInteractions => None,
    }
}

/// Snapshots of the three datasets of a dataset group that training and filters read.
#[derive(Debug, Clone, Default)]
pub struct GroupTables {
    pub interactions: Option<Arc<Table>>,
    pub items: Option<Arc<Table>>,
    pub users: Option<Arc<Table>>,
}

impl GroupTables {
    /// The tables of the group's datasets (those not deleted yet) at this instant.
    pub fn of(state: &State, data: &Data, group_arn: &str) -> Self {
        let table = |ty: DatasetType| {
            state
                .datasets
                .values()
                .find(|d| d.group_arn == group_arn && d.dataset_type == ty)
                .and_then(|d| data.table(&d.meta.arn))
                .cloned()
        };
        Self {
            interactions: table(DatasetType::Interactions),
            items: table(DatasetType::Items),
            users: table(DatasetType::Users),
        }
    }

    /// What a filter reads.
    pub fn filter_data(&self) -> FilterData<'_> {
        FilterData {
            items: self.items.as_deref(),
            users: self.users.as_deref(),
            interactions: self.interactions.as_deref(),
        }
    }
}

impl Data {
    fn bump(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// The last generation handed out.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Makes every later generation greater than `after` (a restored state's counter), so a
    /// change after a restart never reuses a generation the saved files are named with.
    pub fn continue_after(&mut self, after: u64) {
        self.generation = self.generation.max(after);
    }

    /// Puts back saved tables and models (after a change that could not be saved). The counter
    /// keeps counting, so the next change gets a generation no file was written with.
    pub fn put_back(
        &mut self,
        tables: BTreeMap<String, Entry<Table>>,
        models: BTreeMap<String, Entry<Model>>,
    ) {
        self.tables = tables;
        self.models = models;
        self.deltas.clear();
    }

    /// The dataset's table, if anything was imported or put into it.
    pub fn table(&self, dataset_arn: &str) -> Option<&Arc<Table>> {
        self.tables.get(dataset_arn).map(|e| &e.value)
    }

    /// The dataset's table for writing (created empty when missing). The persister saves the
    /// whole table after this; [`Data::merge_rows`] saves only the rows.
    pub fn table_mut(&mut self, dataset_arn: &str) -> &mut Table {
        self.deltas.remove(dataset_arn);
        self.entry_mut(dataset_arn)
    }

    /// Merges rows into the dataset's table (an INCREMENTAL import, a Put* call) and remembers
    /// the delta, so saving it costs the rows added rather than the table.
    pub fn merge_rows(&mut self, dataset_arn: &str, delta: RowDelta) {
        let from = self.tables.get(dataset_arn).map(|e| e.generation);
        let delta = Arc::new(delta);
        self.entry_mut(dataset_arn).apply(&delta);
        let to = self.generation;
        match from {
            Some(from) => self
                .deltas
                .entry(dataset_arn.to_string())
                .or_default()
                .push(Stamped { from, to, delta }),
            // A new table has no saved base to apply rows to.
            None => {
                self.deltas.remove(dataset_arn);
            }
        }
    }

    /// The row deltas recorded since the last call (the persister's view).
    pub fn take_deltas(&mut self) -> BTreeMap<String, Vec<Stamped>> {
        std::mem::take(&mut self.deltas)
    }

    fn entry_mut(&mut self, dataset_arn: &str) -> &mut Table {
        let generation = self.bump();
        let entry = self
            .tables
            .entry(dataset_arn.to_string())
            .or_insert_with(|| Entry {
                value: Arc::new(Table::default()),
                generation,
            });
        entry.generation = generation;
        Arc::make_mut(&mut entry.value)
    }

    /// Every table with its generation (the persister's view).
    pub fn tables(&self) -> &BTreeMap<String, Entry<Table>> {
        &self.tables
    }

    /// Restores a saved table.
    pub fn restore_table(&mut self, dataset_arn: String, table: Table) {
        let generation = self.bump();
        self.tables.insert(
            dataset_arn,
            Entry {
                value: Arc::new(table),
                generation,
            },
        );
    }

    /// The trained model of a solution version or recommender.
    pub fn model(&self, arn: &str) -> Option<&Arc<Model>> {
        self.models.get(arn).map(|e| &e.value)
    }

    /// Stores (or replaces) a trained model.
    pub fn set_model(&mut self, arn: &str, model: Arc<Model>) {
        let generation = self.bump();
        self.models.insert(
            arn.to_string(),
            Entry {
                value: model,
                generation,
            },
        );
    }

    /// Every model with its generation (the persister's view).
    pub fn models(&self) -> &BTreeMap<String, Entry<Model>> {
        &self.models
    }

    /// Drops the data of resources that no longer exist.
    pub fn retain_for(&mut self, state: &State) {
        self.tables.retain(|arn, _| state.datasets.contains_key(arn));
        self.deltas.retain(|arn, _| state.datasets.contains_key(arn));
        self.models.retain(|key, _| {
            let arn = key.strip_suffix(PENDING_SUFFIX).unwrap_or(key);
            state.solution_versions.contains_key(arn) || state.recommenders.contains_key(arn)
        });
    }

    /// Swaps in the retrained model of every recommender whose update has been applied, and
    /// returns the recommenders that got one (their metrics change with it).
    pub fn promote_retrained(&mut self, state: &State) -> Vec<(String, Arc<Model>)> {
        let mut promoted = Vec::new();
        for r in state.recommenders.values() {
            if !r.update.as_ref().is_some_and(|u| u.applied) {
                continue;
            }
            let Some(entry) = self.models.remove(&pending_model_key(&r.meta.arn)) else {
                continue;
            };
            self.set_model(&r.meta.arn, Arc::clone(&entry.value));
            promoted.push((r.meta.arn.clone(), entry.value));
        }
        promoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::engine::table::Cell;

    #[test]
    fn writes_copy_on_write_and_bump_generations() {
        let mut data = Data::default();
        data.table_mut("d").rows.push(vec![Cell::Str("a".into())]);
        let snapshot = Arc::clone(data.table("d").expect("created"));
        let first = data.tables()["d"].generation;
        data.table_mut("d").rows.push(vec![Cell::Str("b".into())]);
        assert_eq!(snapshot.rows.len(), 1, "a snapshot does not see later writes");
        assert_eq!(data.table("d").expect("present").rows.len(), 2);
        assert!(data.tables()["d"].generation > first);
    }

    #[test]
    fn merged_rows_are_chained_until_a_whole_table_change() {
        let row = |v: i64| RowDelta {
            rows: Table::new(vec!["A".into()], vec![vec![Cell::Int(v)]]),
            id_column: None,
            individual: true,
        };
        let mut data = Data::default();
        data.merge_rows("d", row(1));
        assert!(
            data.take_deltas().is_empty(),
            "a new table has no base to apply rows to"
        );
        let base = data.tables()["d"].generation;
        data.merge_rows("d", row(2));
        data.merge_rows("d", row(3));
        let chain = data.take_deltas().remove("d").expect("chained");
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].from, base);
        assert_eq!(chain[0].to, chain[1].from);
        assert_eq!(chain[1].to, data.tables()["d"].generation);
        assert_eq!(data.table("d").expect("table").len(), 3);
        assert!(data.take_deltas().is_empty(), "taken");
        data.merge_rows("d", row(4));
        data.table_mut("d").rows.push(vec![Cell::Int(5)]);
        assert!(
            data.take_deltas().is_empty(),
            "a whole-table change drops the chain"
        );
    }

    #[test]
    fn data_of_deleted_datasets_is_dropped() {
        let mut data = Data::default();
        data.table_mut("gone");
        data.retain_for(&State::default());
        assert!(data.table("gone").is_none());
    }
}
