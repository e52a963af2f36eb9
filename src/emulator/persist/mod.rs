//! Saving and loading the emulator's state under `--state-dir`: a write-ahead log of changed
//! resources on top of generation-stamped snapshots, synced before a change is answered.
//!
//! Layout:
//! - `snapshot-<G>.json`: every resource, the clock offset, and a manifest naming one file per
//!   dataset table (`tables/`) and per model (`models/`) — generation `G` of the state.
//! - `wal-<G>.log`: the commits made since `snapshot-<G>.json`, one checksummed frame each
//!   ([`wal`]); a commit holds the resources that changed (compared with the saved copy, see
//!   [`changes`]) and the table and model files that replaced others.
//! - `tables/<arn hash>-<data generation>.json`, `models/…`: written (and synced) before the commit
//!   that names them, never rewritten; a file no commit names any more is removed.
//!
//! Loading reads the newest snapshot and replays its log up to the first torn or garbled frame.
//! Compaction writes `snapshot-<G+1>.json` (temp file, sync, rename, sync the directory — the
//! rename is the switch), then removes `wal-<G>.log` and `snapshot-<G>.json`: a crash between any
//! two steps leaves either generation `G` complete with its log, or `G+1` complete. Every start
//! after replaying a log (or after a torn tail) compacts at once, so nothing is ever appended after
//! garbage. The `state.json` of earlier versions (format 1) is loaded and compacted into
//! `snapshot-1.json` at the first start, keeping its table and model files.

mod changes;
mod wal;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use self::changes::Change;
use super::data::{Data, Entry};
use super::engine::model::Model;
use super::engine::table::{RowDelta, Table};
use super::state::State;

/// The state file of earlier versions (format 1): loaded once and compacted into a snapshot.
const LEGACY_STATE_FILE: &str = "state.json";
const LEGACY_FORMAT: u32 = 1;
const TABLES_DIR: &str = "tables";
const MODELS_DIR: &str = "models";
/// Bumped when the snapshot or record layout changes incompatibly; other formats are refused.
const FORMAT: u32 = 2;
/// The log file grows in steps of this many zero bytes, written and synced ahead of the records.
const PREALLOCATE_BYTES: u64 = 1 << 20;
/// A log longer than this is compacted into the next snapshot after the commit that grew it.
const COMPACT_AFTER_BYTES: u64 = 4 << 20;
/// Failed commits remembered for the callers still waiting to learn their outcome.
const FAILURES_KEPT: usize = 4096;

fn snapshot_name(generation: u64) -> String {
    format!("snapshot-{generation}.json")
}

fn wal_name(generation: u64) -> String {
    format!("wal-{generation}.log")
}

/// Why the state could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a state file of this emulator: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} has format {found}; this emulator reads format {FORMAT} (and {LEGACY_FORMAT} in state.json)"
    )]
    Format { path: PathBuf, found: u32 },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the state writer stopped unexpectedly: {reason}")]
    Writer { reason: String },
}
impl PersistError {
    /// A copy with the same variant, path and message (the sources are not `Clone`), so one
    /// failure can be both returned and kept for later reports.
    pub fn duplicate(&self) -> Self {
        let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        let json = |e: &serde_json::Error| <serde_json::Error as serde::de::Error>::custom(e.to_string());
        match self {
            Self::Write { path, source } => Self::Write {
                path: path.clone(),
                source: io(source),
            },
            Self::Read { path, source } => Self::Read {
                path: path.clone(),
                source: io(source),
            },
            Self::Corrupt { path, source } => Self::Corrupt {
                path: path.clone(),
                source: json(source),
            },
            Self::Format { path, found } => Self::Format {
                path: path.clone(),
                found: *found,
            },
            Self::Encode { what, source } => Self::Encode {
                what: what.clone(),
                source: json(source),
            },
            Self::Writer { reason } => Self::Writer {
                reason: reason.clone(),
            },
        }
    }
}

/// What `snapshot-<G>.json` holds (and, with format 1 and no generation, the legacy `state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Snapshot {
    format: u32,
    #[serde(default)]
    generation: u64,
    /// The emulator clock's offset from wall time, so timelines continue where they were.
    clock_offset: f64,
    /// The data's generation counter: data restored from here continues above it, so a new table
    /// or model file never takes the name of one a saved manifest names.
    #[serde(default)]
    data_generation: u64,
    state: State,
    /// Dataset ARN → file under `tables/`.
    #[serde(default)]
    tables: BTreeMap<String, String>,
    /// Solution version or recommender ARN → file under `models/`.
    #[serde(default)]
    models: BTreeMap<String, String>,
}

/// The snapshot as written: borrowed from the saved image, not cloned.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u32,
    generation: u64,
    clock_offset: f64,
    data_generation: u64,
    state: &'a State,
    tables: BTreeMap<&'a str, &'a str>,
    models: BTreeMap<&'a str, &'a str>,
}

/// One commit in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// The state's creation counter after the commit.
    seq: u64,
    clock_offset: f64,
    data_generation: u64,
    #[serde(default)]
    changes: Vec<Change>,
    /// Dataset ARN → its new table file, or `None` when the table is gone.
    #[serde(default)]
    tables: BTreeMap<String, Option<String>>,
    #[serde(default)]
    models: BTreeMap<String, Option<String>>,
    /// Dataset ARN → rows merged into its table, in order, on top of its file and earlier rows.
    #[serde(default)]
    rows: BTreeMap<String, Vec<RowDelta>>,
}

/// A record as written: borrowed from the batch, so rows are encoded without being copied.
#[derive(Serialize)]
struct RecordRef<'a> {
    seq: u64,
    clock_offset: f64,
    data_generation: u64,
    changes: &'a [Change],
    tables: &'a BTreeMap<String, Option<String>>,
    models: &'a BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    rows: BTreeMap<&'a str, Vec<&'a RowDelta>>,
}

/// A table or model read back from the state directory.
#[derive(Debug)]
pub struct Restored<T> {
    pub arn: String,
    /// The file it was read from.
    file: String,
    /// Rows were merged into it after its file was written: the file alone is not the saved table.
    behind: bool,
    pub value: T,
}

/// What a state directory held.
#[derive(Debug)]
pub struct Loaded {
    pub state: State,
    pub clock_offset: f64,
    /// The data generation counter to continue above ([`Data::continue_after`]).
    pub data_generation: u64,
    /// Dataset ARN → its rows.
    pub tables: Vec<Restored<Table>>,
    /// Solution version or recommender ARN → the model.
    pub models: Vec<Restored<Model>>,
    /// The snapshot generation the log continues.
    generation: u64,
    /// Compact at start: a log was replayed, a tail dropped, or the layout is the legacy one.
    compact: bool,
    /// Where the log's intact records end.
    log_end: u64,
}

impl Loaded {
    /// Puts the saved tables and models into `data`, counting above the saved counter first, so
    /// restored entries and later changes get generations no saved file is named with.
    pub fn restore_into(&self, data: &mut Data) {
        data.continue_after(self.data_generation);
        for t in &self.tables {
            data.restore_table(t.arn.clone(), t.value.clone());
        }
        for m in &self.models {
            data.set_model(&m.arn, Arc::new(m.value.clone()));
        }
    }
}

/// The file of one generation of an ARN's entry: a stable hash of the ARN (FNV-1a, 64 bits; ARNs
/// are too long and too rich for file names) and the data generation.
fn file_name(arn: &str, generation: u64) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in arn.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}-{generation}.json")
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes the directory's entries (a created, renamed or removed file) durable.
fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error(dir))
}

/// Writes `bytes` to a temp file beside `path` and syncs it; returns the temp file's path.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf, PersistError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(write_error(parent))?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(write_error(&tmp))?;
    file.write_all(bytes).map_err(write_error(&tmp))?;
    file.sync_all().map_err(write_error(&tmp))?;
    Ok(tmp)
}

/// Writes `bytes` to `path` so that readers see either the old or the new content, never a mix.
/// The caller syncs the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let tmp = write_temp(path, bytes)?;
    fs::rename(&tmp, path).map_err(write_error(path))
}

fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Vec<u8>, PersistError> {
    serde_json::to_vec(value).map_err(|source| PersistError::Encode {
        what: what.to_string(),
        source,
    })
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, PersistError> {
    let bytes = fs::read(path).map_err(|source| PersistError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a snapshot (or the legacy `state.json`), refusing other formats.
fn read_snapshot(path: &Path, expected: u32) -> Result<Snapshot, PersistError> {
    let bytes = fs::read(path).map_err(|source| PersistError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    #[derive(Deserialize)]
    struct Header {
        format: u32,
    }
    let corrupt = |source| PersistError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    let header: Header = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if header.format != expected {
        return Err(PersistError::Format {
            path: path.to_path_buf(),
            found: header.format,
        });
    }
    serde_json::from_slice(&bytes).map_err(corrupt)
}

/// The generations of the snapshots and logs in `dir`, and whether the legacy file is there.
#[derive(Debug, Default)]
struct Listing {
    snapshots: BTreeSet<u64>,
    logs: BTreeSet<u64>,
    temps: Vec<PathBuf>,
    legacy: bool,
}

fn list(dir: &Path) -> Result<Listing, PersistError> {
    let mut listing = Listing::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(source) => {
            return Err(PersistError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| PersistError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let generation = |prefix: &str, suffix: &str| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(suffix))
                .and_then(|g| g.parse::<u64>().ok())
        };
        if name == LEGACY_STATE_FILE {
            listing.legacy = true;
        } else if let Some(g) = generation("snapshot-", ".json") {
            listing.snapshots.insert(g);
        } else if let Some(g) = generation("wal-", ".log") {
            listing.logs.insert(g);
        } else if name.ends_with(".tmp") {
            listing.temps.push(entry.path());
        }
    }
    Ok(listing)
}

/// The snapshot a start continues from, its generation, and whether it is the legacy layout;
/// `None` when nothing was saved yet.
fn base_snapshot(dir: &Path, listing: &Listing) -> Result<Option<(Snapshot, u64, bool)>, PersistError> {
    let generation = listing.snapshots.last().copied().unwrap_or(0);
    if generation > 0 {
        let snapshot = read_snapshot(&dir.join(snapshot_name(generation)), FORMAT)?;
        return Ok(Some((snapshot, generation, false)));
    }
    if listing.legacy {
        let snapshot = read_snapshot(&dir.join(LEGACY_STATE_FILE), LEGACY_FORMAT)?;
        return Ok(Some((snapshot, 0, true)));
    }
    if !listing.logs.contains(&0) {
        return Ok(None);
    }
    let empty = Snapshot {
        format: FORMAT,
        generation: 0,
        clock_offset: 0.0,
        data_generation: 0,
        state: State::default(),
        tables: BTreeMap::new(),
        models: BTreeMap::new(),
    };
    Ok(Some((empty, 0, false)))
}

/// The log's bytes; empty when there is no log yet.
fn read_log(path: &Path) -> Result<Vec<u8>, PersistError> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(PersistError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Where a table's saved rows are: its file (none for a table that only ever got rows merged,
/// which cannot happen today but costs nothing to allow), then the row deltas logged after it.
#[derive(Debug, Default)]
struct TableSource {
    file: Option<String>,
    rows: Vec<RowDelta>,
}

/// The tables and models a load read back.
type RestoredData = (Vec<Restored<Table>>, Vec<Restored<Model>>);

/// The state as a snapshot and the records replayed so far leave it.
#[derive(Debug)]
struct Replay {
    state: State,
    clock_offset: f64,
    data_generation: u64,
    tables: BTreeMap<String, TableSource>,
    models: BTreeMap<String, String>,
}

impl Replay {
    fn new(base: Snapshot) -> Self {
        Self {
            state: base.state,
            clock_offset: base.clock_offset,
            data_generation: base.data_generation,
            tables: base
                .tables
                .into_iter()
                .map(|(arn, file)| {
                    let source = TableSource {
                        file: Some(file),
                        rows: Vec::new(),
                    };
                    (arn, source)
                })
                .collect(),
            models: base.models,
        }
    }

    /// Replays the intact frames in order, up to the first whose JSON does not parse (written by
    /// something else: like a torn tail, it and what follows were never acknowledged). Returns
    /// how many records were replayed and how many payload bytes were dropped.
    fn frames(&mut self, payloads: &[&[u8]]) -> (usize, usize) {
        for (i, payload) in payloads.iter().enumerate() {
            let Ok(record) = serde_json::from_slice::<Record>(payload) else {
                return (i, payloads[i..].iter().map(|p| p.len()).sum());
            };
            self.record(record);
        }
        (payloads.len(), 0)
    }

    fn record(&mut self, record: Record) {
        self.state.seq = record.seq;
        self.clock_offset = record.clock_offset;
        self.data_generation = record.data_generation;
        for change in record.changes {
            changes::apply(&mut self.state, change);
        }
        // A whole file replaces the table and the rows merged before it; a commit never carries
        // both a file and rows for one table.
        for (arn, file) in record.tables {
            match file {
                Some(file) => self.tables.insert(
                    arn,
                    TableSource {
                        file: Some(file),
                        rows: Vec::new(),
                    },
                ),
                None => self.tables.remove(&arn),
            };
        }
        for (arn, rows) in record.rows {
            self.tables.entry(arn).or_default().rows.extend(rows);
        }
        for (arn, file) in record.models {
            match file {
                Some(file) => self.models.insert(arn, file),
                None => self.models.remove(&arn),
            };
        }
    }

    /// Reads the table and model files the replayed state names, and merges the logged rows.
    fn read_files(&mut self, dir: &Path) -> Result<RestoredData, PersistError> {
        let mut tables = Vec::new();
        for (arn, source) in std::mem::take(&mut self.tables) {
            let mut table: Table = match &source.file {
                Some(file) => read_json(&dir.join(TABLES_DIR).join(file))?,
                None => Table::default(),
            };
            for delta in &source.rows {
                table.apply(delta);
            }
            tables.push(Restored {
                arn,
                file: source.file.unwrap_or_default(),
                behind: !source.rows.is_empty(),
                value: table,
            });
        }
        let mut models = Vec::new();
        for (arn, file) in std::mem::take(&mut self.models) {
            let model = read_json(&dir.join(MODELS_DIR).join(&file))?;
            models.push(Restored {
                arn,
                file,
                behind: false,
                value: model,
            });
        }
        Ok((tables, models))
    }
}

/// Loads what was saved in `dir`; `None` when nothing was saved yet.
///
/// # Errors
/// An unreadable or foreign snapshot, or a table or model file it names that is missing or corrupt.
/// A torn or garbled tail of the log is not an error: it was never acknowledged.
pub fn load(dir: &Path) -> Result<Option<Loaded>, PersistError> {
    let listing = list(dir)?;
    let Some((base, generation, legacy)) = base_snapshot(dir, &listing)? else {
        return Ok(None);
    };
    let mut replay = Replay::new(base);
    let log_path = dir.join(wal_name(generation));
    let log = read_log(&log_path)?;
    let frames = wal::decode(&log);
    let (replayed, garbled) = replay.frames(&frames.payloads);
    let dropped = frames.dropped + garbled;
    if dropped > 0 {
        tracing::warn!(log = %log_path.display(), bytes = dropped, "dropping the torn end of the state log (a change that was never acknowledged)");
    }
    let (tables, models) = replay.read_files(dir)?;
    Ok(Some(Loaded {
        state: replay.state,
        clock_offset: replay.clock_offset,
        data_generation: replay.data_generation,
        tables,
        models,
        generation,
        compact: legacy || replayed > 0 || dropped > 0,
        log_end: frames.end as u64,
    }))
}

/// One saved table or model: its data generation, its file, its value.
#[derive(Debug, Clone)]
struct Saved<T> {
    generation: u64,
    file: String,
    value: Arc<T>,
    /// Rows were merged after `file` was written (they are in the log): compaction writes the
    /// whole value to a new file before the snapshot can name it.
    behind: bool,
}

/// The state as the state directory holds it: what a restart would load.
#[derive(Debug, Default)]
struct Image {
    state: State,
    clock_offset: f64,
    data_generation: u64,
    tables: BTreeMap<String, Saved<Table>>,
    models: BTreeMap<String, Saved<Model>>,
}

/// What one commit writes: the changed resources, and the tables and models whose generation
/// changed. Taken under the world lock (the large parts are `Arc`s) and written after.
#[derive(Debug)]
pub struct Batch {
    seq: u64,
    clock_offset: f64,
    data_generation: u64,
    changes: Vec<Change>,
    tables: EntryUpdates<Table>,
    models: EntryUpdates<Model>,
    /// Tables that only had rows merged since they were saved: ARN, new generation, the rows.
    rows: Vec<(String, u64, Vec<Arc<RowDelta>>)>,
}

/// ARN → the entry's new generation and contents, or `None` when it is gone.
type EntryUpdates<T> = Vec<(String, Option<(u64, Arc<T>)>)>;

/// The entries whose generation differs from the saved one: `Some` for new contents, `None` for gone.
fn changed_entries<T>(
    live: &BTreeMap<String, Entry<T>>,
    saved: &BTreeMap<String, Saved<T>>,
) -> EntryUpdates<T> {
    let mut out: Vec<_> = live
        .iter()
        .filter(|(arn, e)| saved.get(*arn).map(|s| s.generation) != Some(e.generation))
        .map(|(arn, e)| (arn.clone(), Some((e.generation, Arc::clone(&e.value)))))
        .collect();
    out.extend(
        saved
            .keys()
            .filter(|arn| !live.contains_key(*arn))
            .map(|arn| (arn.clone(), None)),
    );
    out
}

/// Writes each new entry to a file of its own and syncs the directory; returns the manifest
/// updates (ARN → file or `None`) and the files written.
fn write_entries<T: Serialize>(
    dir: &Path,
    entries: &EntryUpdates<T>,
    written: &mut Vec<PathBuf>,
) -> Result<BTreeMap<String, Option<String>>, PersistError> {
    let mut manifest = BTreeMap::new();
    let before = written.len();
    for (arn, entry) in entries {
        let file = match entry {
            Some((generation, value)) => {
                let file = file_name(arn, *generation);
                let path = dir.join(&file);
                write_atomically(&path, &encode(arn, value.as_ref())?)?;
                written.push(path);
                Some(file)
            }
            None => None,
        };
        manifest.insert(arn.clone(), file);
    }
    if written.len() > before {
        sync_dir(dir)?;
    }
    Ok(manifest)
}

/// Points the saved image at the files a commit wrote; returns the files it no longer needs.
fn record_entries<T>(
    saved: &mut BTreeMap<String, Saved<T>>,
    entries: EntryUpdates<T>,
    manifest: &BTreeMap<String, Option<String>>,
    dir: &Path,
    obsolete: &mut Vec<PathBuf>,
) {
    for (arn, entry) in entries {
        let previous = match (entry, manifest.get(&arn).cloned().flatten()) {
            (Some((generation, value)), Some(file)) => saved.insert(
                arn,
                Saved {
                    generation,
                    file,
                    value,
                    behind: false,
                },
            ),
            _ => saved.remove(&arn),
        };
        if let Some(previous) = previous {
            obsolete.push(dir.join(previous.file));
        }
    }
}

/// The saved image of restored entries: the files they came from, the values `data` holds.
fn saved_entries<T>(
    restored: Vec<Restored<T>>,
    live: &BTreeMap<String, Entry<T>>,
) -> BTreeMap<String, Saved<T>> {
    restored
        .into_iter()
        .filter_map(|r| {
            let e = live.get(&r.arn)?;
            let saved = Saved {
                generation: e.generation,
                file: r.file,
                value: Arc::clone(&e.value),
                behind: r.behind,
            };
            Some((r.arn, saved))
        })
        .collect()
}

/// Removes files nothing needs any more; a failure only leaves clutter (removed at the next start).
fn remove_quietly(paths: impl IntoIterator<Item = PathBuf>) {
    for path in paths {
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a file the saved state no longer needs");
        }
    }
}

/// A step of compaction, for the tests that stop it halfway as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The new snapshot is written to its temp file and synced.
    TempWritten,
    /// The temp file is renamed into place: the new generation is the one a start loads.
    Renamed,
    /// The old generation's log is removed.
    LogRemoved,
    /// The old snapshot (and a legacy `state.json`) is removed.
    Done,
}

/// Saves into one state directory: appends commits to the log and compacts it.
#[derive(Debug)]
pub struct Persister {
    dir: PathBuf,
    /// The snapshot generation; commits go to `wal-<generation>.log`.
    generation: u64,
    /// Where the current log's records end (the next one is written there).
    log_bytes: u64,
    /// The current log's size (records and preallocated zeros); 0 when it is not created yet.
    log_capacity: u64,
    /// An append failed, so the log may end in a partial frame: the next commit starts a new
    /// generation first, and nothing is appended after it.
    suspect: bool,
    compact_after: u64,
    /// How far the log grows at a time ([`PREALLOCATE_BYTES`]; smaller in tests).
    preallocate: u64,
    image: Image,
    /// Every change numbered up to this has an outcome ([`Persister::outcome`]).
    settled_through: u64,
    /// Ranges `(after, through]` of change numbers whose commit failed (newest last).
    failures: VecDeque<(u64, u64)>,
    /// Why the latest commit failed, for the callers whose change it carried.
    last_failure: Option<String>,
}
impl Persister {
    /// A persister for `dir` holding `loaded` (already restored into `data`): removes files no
    /// saved state names, and compacts when the start replayed a log, dropped a torn tail, or found
    /// the legacy layout.
    ///
    /// # Errors
    /// The compaction could not be written.
    pub fn start(dir: PathBuf, loaded: Option<Loaded>, data: &Data) -> Result<Self, PersistError> {
        let mut persister = Self {
            dir,
            generation: 0,
            log_bytes: 0,
            log_capacity: 0,
            suspect: false,
            compact_after: COMPACT_AFTER_BYTES,
            preallocate: PREALLOCATE_BYTES,
            image: Image::default(),
            settled_through: 0,
            failures: VecDeque::new(),
            last_failure: None,
        };
        let mut compact = false;
        if let Some(loaded) = loaded {
            compact = loaded.compact;
            persister.generation = loaded.generation;
            let image = &mut persister.image;
            image.state = loaded.state;
            image.clock_offset = loaded.clock_offset;
            image.data_generation = data.generation();
            image.tables = saved_entries(loaded.tables, data.tables());
            image.models = saved_entries(loaded.models, data.models());
            persister.log_bytes = loaded.log_end;
            persister.log_capacity = fs::metadata(persister.log_path()).map_or(0, |m| m.len());
        }
        persister.remove_leftovers()?;
        if compact {
            persister.compact()?;
        }
        Ok(persister)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(wal_name(self.generation))
    }

    /// Removes what no saved state needs: other generations, temp files, unnamed table and model
    /// files (of commits that never completed).
    fn remove_leftovers(&self) -> Result<(), PersistError> {
        let listing = list(&self.dir)?;
        let mut stale: Vec<PathBuf> = listing.temps;
        let current = self.generation;
        stale.extend(
            listing
                .snapshots
                .iter()
                .filter(|g| **g != current)
                .map(|g| self.dir.join(snapshot_name(*g))),
        );
        stale.extend(
            listing
                .logs
                .iter()
                .filter(|g| **g != current)
                .map(|g| self.dir.join(wal_name(*g))),
        );
        if listing.legacy && current > 0 {
            stale.push(self.dir.join(LEGACY_STATE_FILE));
        }
        let tables: BTreeSet<&str> = self.image.tables.values().map(|s| s.file.as_str()).collect();
        let models: BTreeSet<&str> = self.image.models.values().map(|s| s.file.as_str()).collect();
        for (sub, named) in [(TABLES_DIR, tables), (MODELS_DIR, models)] {
            let Ok(entries) = fs::read_dir(self.dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !named.contains(name.as_str()) {
                    stale.push(entry.path());
                }
            }
        }
        remove_quietly(stale);
        Ok(())
    }

    /// Whether the change numbered `change` already has an outcome: `Some(Ok)` saved,
    /// `Some(Err(why))` refused (its commit failed and the world was put back), `None` not yet.
    pub fn outcome(&self, change: u64) -> Option<Result<(), String>> {
        if change > self.settled_through {
            return None;
        }
        let failed = self
            .failures
            .iter()
            .any(|(after, through)| *after < change && change <= *through);
        Some(if failed {
            Err(self
                .last_failure
                .clone()
                .unwrap_or_else(|| "the save failed".to_string()))
        } else {
            Ok(())
        })
    }

    /// Records that every change up to `through` is saved.
    pub fn settled(&mut self, through: u64) {
        self.settled_through = self.settled_through.max(through);
    }

    /// Records that every change after the last settled one up to `through` was refused.
    pub fn refused(&mut self, through: u64, why: &PersistError) {
        if through > self.settled_through {
            self.failures.push_back((self.settled_through, through));
            if self.failures.len() > FAILURES_KEPT {
                self.failures.pop_front();
            }
            self.settled_through = through;
        }
        self.last_failure = Some(why.to_string());
    }

    /// What differs between the live world and the saved image; `None` when nothing does. Takes
    /// the row deltas `data` recorded: a table that only had rows merged since it was saved is
    /// logged as those rows, any other changed table as a whole new file.
    pub fn prepare(&self, state: &State, data: &mut Data, clock_offset: f64) -> Option<Batch> {
        let image = &self.image;
        let mut chains = data.take_deltas();
        let mut tables = changed_entries(data.tables(), &image.tables);
        let mut rows = Vec::new();
        tables.retain(|(arn, update)| {
            let (Some((generation, _)), Some(saved)) = (update, image.tables.get(arn)) else {
                return true;
            };
            let Some(chain) = chains.remove(arn) else {
                return true;
            };
            // The rows lead exactly from the saved generation to the live one.
            let linked = chain.first().is_some_and(|d| d.from == saved.generation)
                && chain.last().is_some_and(|d| d.to == *generation)
                && chain.windows(2).all(|w| w[0].to == w[1].from);
            if !linked {
                return true;
            }
            rows.push((
                arn.clone(),
                *generation,
                chain.into_iter().map(|d| d.delta).collect(),
            ));
            false
        });
        let batch = Batch {
            seq: state.seq,
            clock_offset,
            data_generation: data.generation(),
            changes: changes::diff(state, &image.state),
            tables,
            models: changed_entries(data.models(), &image.models),
            rows,
        };
        let unchanged = batch.changes.is_empty()
            && batch.tables.is_empty()
            && batch.models.is_empty()
            && batch.rows.is_empty()
            && batch.seq == image.state.seq
            && batch.clock_offset.to_bits() == image.clock_offset.to_bits()
            && batch.data_generation == image.data_generation;
        (!unchanged).then_some(batch)
    }

    /// Writes a commit: the new table and model files (synced), then one log frame (synced). When
    /// it returns `Ok`, a kill -9 or power loss keeps the commit.
    ///
    /// # Errors
    /// The first write that failed. The saved image is unchanged; the caller puts the world back.
    pub fn write(&mut self, batch: Batch) -> Result<(), PersistError> {
        if self.suspect {
            self.compact()?;
        }
        let (tables_dir, models_dir) = (self.dir.join(TABLES_DIR), self.dir.join(MODELS_DIR));
        let mut written = Vec::new();
        let result = self.append(batch, &tables_dir, &models_dir, &mut written);
        match result {
            Ok(()) => {
                if self.log_bytes > self.compact_after
                    && let Err(e) = self.compact()
                {
                    // The commit stands; the log keeps growing until a compaction succeeds.
                    tracing::warn!(error = %e, "cannot compact the emulator's state log");
                }
                Ok(())
            }
            Err(e) => {
                remove_quietly(written);
                Err(e)
            }
        }
    }

    fn append(
        &mut self,
        batch: Batch,
        tables_dir: &Path,
        models_dir: &Path,
        written: &mut Vec<PathBuf>,
    ) -> Result<(), PersistError> {
        let Batch {
            seq,
            clock_offset,
            data_generation,
            changes,
            tables,
            models,
            rows,
        } = batch;
        let table_files = write_entries(tables_dir, &tables, written)?;
        let model_files = write_entries(models_dir, &models, written)?;
        let record = RecordRef {
            seq,
            clock_offset,
            data_generation,
            changes: &changes,
            tables: &table_files,
            models: &model_files,
            rows: rows
                .iter()
                .map(|(arn, _, chain)| (arn.as_str(), chain.iter().map(AsRef::as_ref).collect()))
                .collect(),
        };
        let frame = encode("a state log record", &record)?;
        drop(record);
        self.append_frame(&frame)?;
        let image = &mut self.image;
        image.state.seq = seq;
        image.clock_offset = clock_offset;
        image.data_generation = data_generation;
        for change in changes {
            changes::apply(&mut image.state, change);
        }
        let mut obsolete = Vec::new();
        record_entries(&mut image.tables, tables, &table_files, tables_dir, &mut obsolete);
        record_entries(&mut image.models, models, &model_files, models_dir, &mut obsolete);
        remove_quietly(obsolete);
        // The image keeps its own copy of a table (the live one was copied on its first write
        // after sharing it), so merging the same rows here costs the rows, not the table.
        for (arn, generation, chain) in rows {
            if let Some(saved) = image.tables.get_mut(&arn) {
                let value = Arc::make_mut(&mut saved.value);
                for delta in &chain {
                    value.apply(delta);
                }
                saved.generation = generation;
                saved.behind = true;
            }
        }
        Ok(())
    }

    /// Appends one frame around `payload` to the log and syncs it; a failure marks the log
    /// suspect (it may end in a partial frame).
    fn append_frame(&mut self, payload: &[u8]) -> Result<(), PersistError> {
        let path = self.log_path();
        let frame = wal::encode(payload).map_err(|e| PersistError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let end = self.log_bytes + frame.len() as u64;
        if end > self.log_capacity
            && let Err(e) = self.grow_log(end)
        {
            self.suspect = true;
            return Err(e);
        }
        // Opened per commit, so a state directory that was removed or replaced is noticed
        // instead of writing on into an unlinked file.
        let at = self.log_bytes;
        let written = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut log| {
                log.seek(SeekFrom::Start(at))?;
                log.write_all(&frame)?;
                log.sync_data()
            });
        if let Err(source) = written {
            self.suspect = true;
            return Err(PersistError::Write { path, source });
        }
        self.log_bytes = end;
        Ok(())
    }

    /// Makes the current log at least `end` bytes long with zeros, written and synced (and the
    /// new file's directory entry synced): records are then written over blocks that exist, and
    /// syncing one needs no change of the file's size.
    fn grow_log(&mut self, end: u64) -> Result<(), PersistError> {
        let path = self.log_path();
        let fresh = self.log_capacity == 0;
        if fresh {
            fs::create_dir_all(&self.dir).map_err(write_error(&self.dir))?;
        }
        let target = end.max(self.log_capacity + self.preallocate);
        let from = self.log_capacity;
        fs::OpenOptions::new()
            .create(fresh)
            .truncate(fresh)
            .write(true)
            .open(&path)
            .and_then(|mut log| {
                log.seek(SeekFrom::Start(from))?;
                let zeros = vec![0u8; 64 << 10];
                let mut left = target - from;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    log.write_all(&zeros[..n])?;
                    left -= n as u64;
                }
                log.sync_all()
            })
            .map_err(write_error(&path))?;
        if fresh {
            sync_dir(&self.dir)?;
        }
        self.log_capacity = target;
        Ok(())
    }

    /// Writes the saved image as the next generation's snapshot and drops the current log.
    ///
    /// # Errors
    /// The snapshot could not be written; the current generation stays in use.
    pub fn compact(&mut self) -> Result<(), PersistError> {
        self.compact_until(Step::Done)
    }

    fn compact_until(&mut self, last: Step) -> Result<(), PersistError> {
        let next = self.generation + 1;
        let caught_up = self.catch_up_tables()?;
        let image = &self.image;
        let mut tables: BTreeMap<&str, &str> = image
            .tables
            .iter()
            .map(|(arn, s)| (arn.as_str(), s.file.as_str()))
            .collect();
        for (arn, file) in &caught_up {
            tables.insert(arn.as_str(), file.as_str());
        }
        let snapshot = SnapshotRef {
            format: FORMAT,
            generation: next,
            clock_offset: image.clock_offset,
            data_generation: image.data_generation,
            state: &image.state,
            tables,
            models: image
                .models
                .iter()
                .map(|(arn, s)| (arn.as_str(), s.file.as_str()))
                .collect(),
        };
        let tables_dir = self.dir.join(TABLES_DIR);
        let unnamed = || caught_up.iter().map(|(_, file)| tables_dir.join(file));
        let path = self.dir.join(snapshot_name(next));
        let tmp = match encode("the state snapshot", &snapshot).and_then(|bytes| write_temp(&path, &bytes)) {
            Ok(tmp) => tmp,
            Err(e) => {
                remove_quietly(unnamed());
                return Err(e);
            }
        };
        if last == Step::TempWritten {
            return Ok(());
        }
        if let Err(source) = fs::rename(&tmp, &path) {
            remove_quietly(unnamed().chain([tmp]));
            return Err(PersistError::Write { path, source });
        }
        // The rename is the switch: from here on a start loads the new snapshot, so commits must
        // go to its log even if syncing the directory fails (that only matters for a power loss).
        let (old_log, old_snapshot) = (self.log_path(), self.dir.join(snapshot_name(self.generation)));
        self.generation = next;
        self.log_bytes = 0;
        self.log_capacity = 0;
        self.suspect = false;
        let mut replaced = Vec::new();
        for (arn, file) in caught_up {
            if let Some(saved) = self.image.tables.get_mut(&arn) {
                replaced.push(tables_dir.join(std::mem::replace(&mut saved.file, file)));
                saved.behind = false;
            }
        }
        sync_dir(&self.dir)?;
        if last == Step::Renamed {
            return Ok(());
        }
        remove_quietly([old_log]);
        if last == Step::LogRemoved {
            return Ok(());
        }
        remove_quietly(
            replaced
                .into_iter()
                .chain([old_snapshot, self.dir.join(LEGACY_STATE_FILE)]),
        );
        Ok(())
    }

    /// Writes each table whose file lacks rows merged since (they are only in the log) whole to a
    /// new file, synced, for the next snapshot to name; returns ARN → new file. Until that
    /// snapshot is in place nothing names these files, so a crash leaves only clutter.
    fn catch_up_tables(&self) -> Result<Vec<(String, String)>, PersistError> {
        let dir = self.dir.join(TABLES_DIR);
        let mut files = Vec::new();
        let mut written = Vec::new();
        for (arn, saved) in self.image.tables.iter().filter(|(_, s)| s.behind) {
            let file = file_name(arn, saved.generation);
            let path = dir.join(&file);
            if let Err(e) =
                encode(arn, saved.value.as_ref()).and_then(|bytes| write_atomically(&path, &bytes))
            {
                remove_quietly(written);
                return Err(e);
            }
            written.push(path);
            files.push((arn.clone(), file));
        }
        if !written.is_empty()
            && let Err(e) = sync_dir(&dir)
        {
            remove_quietly(written);
            return Err(e);
        }
        Ok(files)
    }

    /// The saved state, for putting the world back after a failed commit.
    pub fn saved_state(&self) -> &State {
        &self.image.state
    }

    /// The saved tables and models, for putting the data back after a failed commit.
    pub fn saved_data(&self) -> (BTreeMap<String, Entry<Table>>, BTreeMap<String, Entry<Model>>) {
        fn entries<T>(saved: &BTreeMap<String, Saved<T>>) -> BTreeMap<String, Entry<T>> {
            saved
                .iter()
                .map(|(arn, s)| {
                    (
                        arn.clone(),
                        Entry {
                            value: Arc::clone(&s.value),
                            generation: s.generation,
                        },
                    )
                })
                .collect()
        }
        (entries(&self.image.tables), entries(&self.image.models))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::engine::table::Cell;

    fn group(state: &mut State, name: &str) -> String {
        let arn = format!("arn:aws:personalize:us-east-1:000000000000:dataset-group/{name}");
        let seq = state.next_seq();
        state
            .dataset_groups
            .insert(arn.clone(), changes::tests::group(&arn, seq));
        arn
    }

    /// A live world and a persister on `dir`, started the way `emulator::start` does.
    struct Live {
        state: State,
        data: Data,
        clock_offset: f64,
        persister: Persister,
    }

    fn open(dir: &Path) -> Live {
        let loaded = load(dir).expect("loads");
        let mut data = Data::default();
        let mut state = State::default();
        let mut clock_offset = 0.0;
        if let Some(l) = &loaded {
            l.restore_into(&mut data);
            state = l.state.clone();
            clock_offset = l.clock_offset;
        }
        let mut persister = Persister::start(dir.to_path_buf(), loaded, &data).expect("starts");
        persister.preallocate = 4096;
        Live {
            state,
            data,
            clock_offset,
            persister,
        }
    }

    impl Live {
        fn commit(&mut self) -> Result<(), PersistError> {
            match self
                .persister
                .prepare(&self.state, &mut self.data, self.clock_offset)
            {
                Some(batch) => self.persister.write(batch),
                None => Ok(()),
            }
        }

        fn rows(&self, arn: &str) -> Vec<Vec<Cell>> {
            self.data.table(arn).map(|t| t.rows.clone()).unwrap_or_default()
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The world as a restart would see it.
    fn reopened(dir: &Path) -> Live {
        open(dir)
    }

    #[test]
    fn commits_are_logged_and_replayed_with_their_tables() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load(dir.path()).expect("nothing yet").is_none());
        let mut live = open(dir.path());
        let a = group(&mut live.state, "a");
        let b = group(&mut live.state, "b");
        live.data.table_mut("arn:d1").rows.push(vec![Cell::Int(7)]);
        live.clock_offset = 12.5;
        live.commit().expect("committed");
        assert!(
            live.persister
                .prepare(&live.state, &mut live.data, 12.5)
                .is_none(),
            "nothing left"
        );
        // A change, a removal, a grown table.
        live.state.dataset_groups.get_mut(&a).expect("a").role_arn = Some("role".into());
        live.state.dataset_groups.remove(&b);
        live.data.table_mut("arn:d1").rows.push(vec![Cell::Int(8)]);
        live.commit().expect("committed");
        assert_eq!(
            names(dir.path()),
            vec!["tables", "wal-0.log"],
            "no snapshot yet: the log is the state"
        );
        assert_eq!(
            names(&dir.path().join(TABLES_DIR)).len(),
            1,
            "the replaced table file is removed"
        );

        let back = load(dir.path()).expect("loads").expect("saved");
        assert_eq!(back.state, live.state);
        assert_eq!(back.clock_offset, 12.5);
        assert_eq!(back.tables.len(), 1);
        assert_eq!(
            back.tables[0].value.rows,
            vec![vec![Cell::Int(7)], vec![Cell::Int(8)]]
        );
        // A start after replaying compacts into the next generation.
        let again = reopened(dir.path());
        assert_eq!(again.state, live.state);
        assert_eq!(names(dir.path()), vec!["snapshot-1.json", "tables"]);
        assert_eq!(reopened(dir.path()).rows("arn:d1").len(), 2);
    }

    /// Merges one row (`ID`, `V`) into the table of `arn`, as a Put* call does.
    fn put_row(live: &mut Live, arn: &str, id: &str, v: i64) {
        live.data.merge_rows(
            arn,
            RowDelta {
                rows: Table::new(
                    vec!["ID".into(), "V".into()],
                    vec![vec![Cell::Str(id.into()), Cell::Int(v)]],
                ),
                id_column: Some("ID".into()),
                individual: true,
            },
        );
    }

    /// A table of `n` rows, saved whole.
    fn saved_table(live: &mut Live, arn: &str, n: i64) {
        let rows = (0..n)
            .map(|i| vec![Cell::Str(format!("r{i}")), Cell::Int(i)])
            .collect();
        *live.data.table_mut(arn) = Table::new(vec!["ID".into(), "V".into()], rows);
        live.commit().expect("committed");
    }

    /// Rows merged into a saved table are logged as rows: no table file is written and the log
    /// grows by about the rows' size, whatever the table's; a restart replays them (upserts
    /// included) onto the file, and compaction then writes the whole table once.
    #[test]
    fn merged_rows_are_logged_as_rows_and_replayed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut live = open(dir.path());
        saved_table(&mut live, "arn:t", 2000);
        let files = names(&dir.path().join(TABLES_DIR));
        let before = live.persister.log_bytes;
        put_row(&mut live, "arn:t", "new", 1);
        live.commit().expect("committed");
        let grown = live.persister.log_bytes - before;
        assert!(grown < 400, "a one-row commit logged {grown} bytes");
        put_row(&mut live, "arn:t", "r5", 50);
        put_row(&mut live, "arn:t", "new", 2);
        live.commit().expect("committed");
        assert_eq!(
            names(&dir.path().join(TABLES_DIR)),
            files,
            "no table file written"
        );
        let expected = live.rows("arn:t");
        assert_eq!(expected.len(), 2001);
        assert_eq!(expected[5], vec![Cell::Str("r5".into()), Cell::Int(50)]);
        assert_eq!(expected[2000], vec![Cell::Str("new".into()), Cell::Int(2)]);
        let expected_table = live.data.table("arn:t").expect("table").as_ref().clone();
        drop(live);

        let back = load(dir.path()).expect("loads").expect("saved");
        assert_eq!(back.tables.len(), 1);
        assert_eq!(back.tables[0].value, expected_table, "rows and their put marks");
        assert!(back.tables[0].behind);
        let mut again = reopened(dir.path());
        assert_eq!(again.rows("arn:t"), expected);
        assert_eq!(names(dir.path()), vec!["snapshot-1.json", "tables"]);
        let caught_up = names(&dir.path().join(TABLES_DIR));
        assert_eq!(caught_up.len(), 1);
        assert_ne!(caught_up, files, "compaction wrote the table whole to a new file");
        // Rows merged after the compaction go on the new file.
        put_row(&mut again, "arn:t", "later", 3);
        again.commit().expect("committed");
        assert_eq!(reopened(dir.path()).rows("arn:t").len(), 2002);
    }

    /// A torn frame carrying rows is dropped like any other: the rows committed before it stay.
    #[test]
    fn a_torn_record_of_rows_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut live = open(dir.path());
        saved_table(&mut live, "arn:t", 3);
        put_row(&mut live, "arn:t", "kept", 1);
        live.commit().expect("committed");
        let expected = live.rows("arn:t");
        let one = live.persister.log_bytes as usize;
        put_row(&mut live, "arn:t", "torn", 2);
        live.commit().expect("committed");
        let two = live.persister.log_bytes as usize;
        let full = fs::read(dir.path().join(wal_name(0))).expect("log");
        let tables = dir.path().join(TABLES_DIR);
        drop(live);
        for cut in one..two {
            let case = tempfile::tempdir().expect("temp dir");
            let mut torn = full[..cut].to_vec();
            torn.resize(full.len(), 0);
            fs::write(case.path().join(wal_name(0)), &torn).expect("write");
            fs::create_dir(case.path().join(TABLES_DIR)).expect("dir");
            for file in names(&tables) {
                fs::copy(tables.join(&file), case.path().join(TABLES_DIR).join(&file)).expect("copy");
            }
            let mut live = reopened(case.path());
            assert_eq!(live.rows("arn:t"), expected, "cut at {cut}");
            put_row(&mut live, "arn:t", "after", 3);
            live.commit().expect("committed after the torn tail");
            let after = reopened(case.path()).rows("arn:t");
            assert_eq!(after.len(), expected.len() + 1, "cut at {cut}");
            assert!(!after.iter().any(|r| r[0] == Cell::Str("torn".into())));
        }
    }

    /// A crash between any two steps of a compaction that must first write logged rows into a
    /// new table file: the directory loads to the same rows, and leftovers are removed.
    #[test]
    fn compaction_keeps_logged_rows_when_interrupted_at_each_step() {
        for last in [Step::TempWritten, Step::Renamed, Step::LogRemoved, Step::Done] {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut live = open(dir.path());
            saved_table(&mut live, "arn:t", 3);
            put_row(&mut live, "arn:t", "a", 1);
            live.commit().expect("committed");
            live.persister.compact_until(last).expect("stopped");
            let expected = live.rows("arn:t");
            drop(live);
            let mut back = reopened(dir.path());
            assert_eq!(back.rows("arn:t"), expected, "{last:?}");
            assert_eq!(names(&dir.path().join(TABLES_DIR)).len(), 1, "{last:?}");
            put_row(&mut back, "arn:t", "b", 2);
            back.commit().expect("committed");
            assert_eq!(reopened(dir.path()).rows("arn:t").len(), 5, "{last:?}");
        }
    }

    /// A commit of rows that cannot be written is refused: the saved data handed back for
    /// putting the world back holds the rows committed before, not the refused ones.
    #[test]
    fn refused_rows_are_not_in_the_saved_data() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut live = open(dir.path());
        saved_table(&mut live, "arn:t", 3);
        put_row(&mut live, "arn:t", "kept", 1);
        live.commit().expect("committed");
        fs::rename(dir.path().join(wal_name(0)), dir.path().join("moved")).expect("move");
        fs::create_dir(dir.path().join(wal_name(0))).expect("block");
        put_row(&mut live, "arn:t", "refused", 2);
        live.commit().expect_err("cannot append");
        let (tables, _) = live.persister.saved_data();
        let saved = &tables["arn:t"].value.rows;
        assert_eq!(saved.len(), 4);
        assert_eq!(saved[3][0], Cell::Str("kept".into()));
        fs::remove_dir(dir.path().join(wal_name(0))).expect("unblock");
        fs::rename(dir.path().join("moved"), dir.path().join(wal_name(0))).expect("restore");
        // Put back as `commit::commit` does; the next rows start a new generation.
        let (tables, models) = live.persister.saved_data();
        live.data.put_back(tables, models);
        put_row(&mut live, "arn:t", "later", 3);
        live.commit().expect("committed");
        let back = reopened(dir.path()).rows("arn:t");
        assert_eq!(back.len(), 5);
        assert!(!back.iter().any(|r| r[0] == Cell::Str("refused".into())));
    }

    /// Every cut through the last frame (a kill -9 or power loss during the append): the load
    /// keeps every earlier commit, drops the torn one, and later commits are kept too.
    #[test]
    fn a_torn_last_record_is_dropped_at_every_cut() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut live = open(dir.path());
        group(&mut live.state, "first");
        live.commit().expect("committed");
        let expected = live.state.clone();
        let one = live.persister.log_bytes as usize;
        group(&mut live.state, "torn");
        live.commit().expect("committed");
        let two = live.persister.log_bytes as usize;
        let full = fs::read(dir.path().join(wal_name(0))).expect("log");
        assert!(full.len() > two, "the log is preallocated");
        drop(live);
        // Every cut through the header, then every few bytes through the payload (the framing's
        // own test tries every cut).
        let cuts = (one..one + 12).chain((one + 12..two).step_by(7));
        for cut in cuts {
            let case = tempfile::tempdir().expect("temp dir");
            let mut torn = full[..cut].to_vec();
            torn.resize(full.len(), 0);
            fs::write(case.path().join(wal_name(0)), &torn).expect("write");
            let mut live = reopened(case.path());
            assert_eq!(live.state, expected, "cut at {cut}");
            group(&mut live.state, "after");
            live.commit().expect("committed after the torn tail");
            let after = reopened(case.path());
            assert_eq!(after.state, live.state, "cut at {cut}: the later commit is kept");
            assert!(!after.state.dataset_groups.keys().any(|a| a.ends_with("/torn")));
        }
    }

    /// A crash between any two steps of compaction: the directory loads to the same state, and
    /// the next start removes what the crash left behind.
    #[test]
    fn compaction_interrupted_at_each_step_loads() {
        for last in [Step::TempWritten, Step::Renamed, Step::LogRemoved, Step::Done] {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut live = open(dir.path());
            group(&mut live.state, "one");
            live.data.table_mut("arn:t").rows.push(vec![Cell::Int(1)]);
            live.commit().expect("committed");
            live.persister.compact().expect("compacted");
            group(&mut live.state, "two");
            live.data.table_mut("arn:t").rows.push(vec![Cell::Int(2)]);
            live.clock_offset = 3.0;
            live.commit().expect("committed");
            live.persister.compact_until(last).expect("stopped");
            let expected = live.state.clone();
            drop(live);
            let back = reopened(dir.path());
            assert_eq!(back.state, expected, "{last:?}");
            assert_eq!(back.clock_offset, 3.0, "{last:?}");
            assert_eq!(back.rows("arn:t").len(), 2, "{last:?}");
            let files = names(dir.path());
            assert_eq!(
                files.iter().filter(|f| f.starts_with("snapshot-")).count(),
                1,
                "{last:?}: {files:?}"
            );
            assert!(!files.iter().any(|f| f.ends_with(".tmp")), "{last:?}: {files:?}");
            assert_eq!(names(&dir.path().join(TABLES_DIR)).len(), 1, "{last:?}");
            assert_eq!(reopened(dir.path()).state, expected, "{last:?}: loads again");
        }
    }

    /// After an append failed, the log may end in a partial frame: the next commit starts a new
    /// generation and carries everything not yet saved.
    #[test]
    fn a_failed_append_is_refused_and_the_next_commit_starts_a_new_generation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut live = open(dir.path());
        group(&mut live.state, "saved");
        live.commit().expect("committed");
        // Something in the log's way: the append fails.
        fs::rename(dir.path().join(wal_name(0)), dir.path().join("moved")).expect("move");
        fs::create_dir(dir.path().join(wal_name(0))).expect("block");
        group(&mut live.state, "refused");
        let e = live.commit().expect_err("cannot append");
        assert!(
            matches!(&e, PersistError::Write { path, .. } if path.ends_with(wal_name(0))),
            "{e:?}"
        );
        fs::remove_dir(dir.path().join(wal_name(0))).expect("unblock");
        fs::rename(dir.path().join("moved"), dir.path().join(wal_name(0))).expect("restore");
        // The caller puts the world back (`Shared::commit`); here, drop the refused group.
        live.state = live.persister.saved_state().clone();
        group(&mut live.state, "later");
        live.commit().expect("committed");
        assert!(dir.path().join(snapshot_name(1)).exists(), "a new generation");
        let back = reopened(dir.path());
        assert_eq!(back.state, live.state);
        assert!(!back.state.dataset_groups.keys().any(|a| a.ends_with("/refused")));
    }

    /// The `state.json` of earlier versions loads and becomes `snapshot-1.json`, keeping its
    /// table files.
    #[test]
    fn the_legacy_state_json_is_migrated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut state = State::default();
        group(&mut state, "old");
        let mut table = Table::default();
        table.columns = vec!["USER_ID".into()];
        table.rows = vec![vec![Cell::Str("u1".into())]];
        fs::create_dir(dir.path().join(TABLES_DIR)).expect("dir");
        fs::write(
            dir.path().join(TABLES_DIR).join("0123456789abcdef.json"),
            serde_json::to_vec(&table).expect("encodes"),
        )
        .expect("write");
        let legacy = serde_json::json!({
            "format": 1,
            "clock_offset": 4.0,
            "state": state,
            "tables": { "arn:d": "0123456789abcdef.json" },
        });
        fs::write(dir.path().join(LEGACY_STATE_FILE), legacy.to_string()).expect("write");
        let mut live = reopened(dir.path());
        assert_eq!(live.state, state);
        assert_eq!(live.clock_offset, 4.0);
        assert_eq!(live.rows("arn:d"), table.rows);
        assert_eq!(names(dir.path()), vec!["snapshot-1.json", "tables"]);
        group(&mut live.state, "new");
        live.commit().expect("committed");
        let back = reopened(dir.path());
        assert_eq!(back.state, live.state);
        assert_eq!(back.rows("arn:d"), table.rows);
    }

    /// After a restart, a changed table goes to a new file even though the data's counter started
    /// again: the restored counter continues above the saved one.
    #[test]
    fn a_restarted_counter_never_reuses_a_saved_file_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut live = open(dir.path());
        for i in 0..5 {
            live.data.table_mut("a").rows.push(vec![Cell::Int(i)]);
        }
        live.commit().expect("committed");
        let before = names(&dir.path().join(TABLES_DIR));
        let mut live = reopened(dir.path());
        live.data.table_mut("a").rows.push(vec![Cell::Int(9)]);
        live.commit().expect("committed");
        let after = names(&dir.path().join(TABLES_DIR));
        assert_eq!(after.len(), 1);
        assert_ne!(after, before);
        assert_eq!(reopened(dir.path()).rows("a").len(), 6);
    }

    #[test]
    fn refuses_garbage_and_other_formats() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(LEGACY_STATE_FILE), b"{not json").expect("write");
        assert!(matches!(load(dir.path()), Err(PersistError::Corrupt { .. })));
        fs::write(dir.path().join(LEGACY_STATE_FILE), br#"{"format": 99}"#).expect("write");
        assert!(matches!(
            load(dir.path()),
            Err(PersistError::Format { found: 99, .. })
        ));
        fs::write(dir.path().join(snapshot_name(3)), br#"{"format": 1}"#).expect("write");
        assert!(matches!(
            load(dir.path()),
            Err(PersistError::Format { found: 1, .. })
        ));
    }

    #[test]
    fn a_duplicated_error_keeps_its_variant_path_and_message() {
        let e = PersistError::Write {
            path: PathBuf::from("/x/wal-0.log"),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        };
        let copy = e.duplicate();
        assert!(matches!(&copy, PersistError::Write { path, .. } if path == Path::new("/x/wal-0.log")));
        assert_eq!(copy.to_string(), e.to_string());
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(LEGACY_STATE_FILE), b"{not json").expect("write");
        let corrupt = load(dir.path()).expect_err("garbage");
        assert_eq!(corrupt.duplicate().to_string(), corrupt.to_string());
    }

    #[test]
    fn file_names_are_stable_and_distinct() {
        assert_eq!(file_name("x", 1), file_name("x", 1));
        assert_ne!(file_name("x", 1), file_name("x", 2));
        assert_ne!(file_name("a/b", 1), file_name("a_b", 1));
        assert_eq!(
            file_name("arn:aws:personalize:us-east-1:000000000000:dataset/g/ITEMS", 7).len(),
            23
        );
    }

    #[test]
    fn outcomes_follow_settled_and_refused_ranges() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut p = open(dir.path()).persister;
        assert_eq!(p.outcome(1), None);
        p.settled(2);
        p.refused(
            5,
            &PersistError::Writer {
                reason: "disk".into(),
            },
        );
        p.settled(7);
        assert_eq!(p.outcome(2), Some(Ok(())));
        assert!(matches!(p.outcome(3), Some(Err(why)) if why.contains("disk")));
        assert!(p.outcome(5).is_some_and(|o| o.is_err()));
        assert_eq!(p.outcome(6), Some(Ok(())));
        assert_eq!(p.outcome(8), None);
    }
}
