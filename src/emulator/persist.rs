//! Saving and loading the emulator's state under `--state-dir`, atomically (temp file + rename).
//!
//! Layout: `state.json` holds the resources, the clock offset and a manifest naming one file per
//! dataset table (`tables/`) and per model (`models/`). Large entries are rewritten only when their
//! generation changed; `state.json` is written last, so it never names a file that is not complete.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::data::{Data, Entry};
use super::engine::model::Model;
use super::engine::table::Table;
use super::state::State;

/// The file holding the resources.
const STATE_FILE: &str = "state.json";
const TABLES_DIR: &str = "tables";
const MODELS_DIR: &str = "models";
/// Bumped when the layout changes incompatibly; older files are refused, not misread.
const FORMAT: u32 = 1;

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
    #[error("{path} has format {found}; this emulator reads format {FORMAT}")]
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

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    /// The emulator clock's offset from wall time, so timelines continue where they were.
    pub clock_offset: f64,
    pub state: State,
    /// Dataset ARN → file under `tables/`.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    /// Solution version or recommender ARN → file under `models/`.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
}

impl Snapshot {
    pub fn new(state: State, clock_offset: f64) -> Self {
        Self {
            format: FORMAT,
            clock_offset,
            state,
            tables: BTreeMap::new(),
            models: BTreeMap::new(),
        }
    }
}

/// A consistent view of everything to save, taken under the lock (the large parts are `Arc`s).
#[derive(Debug)]
pub struct SaveRequest {
    pub snapshot: Snapshot,
    /// Every table: ARN, generation, contents.
    pub tables: Vec<(String, u64, Arc<Table>)>,
    /// Every model: ARN, generation, contents.
    pub models: Vec<(String, u64, Arc<Model>)>,
}

fn entries<T>(map: &BTreeMap<String, Entry<T>>) -> Vec<(String, u64, Arc<T>)> {
    map.iter()
        .map(|(arn, e)| (arn.clone(), e.generation, Arc::clone(&e.value)))
        .collect()
}

impl SaveRequest {
    pub fn new(state: State, clock_offset: f64, data: &Data) -> Self {
        Self {
            snapshot: Snapshot::new(state, clock_offset),
            tables: entries(data.tables()),
            models: entries(data.models()),
        }
    }
}

/// What a state directory held.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub tables: Vec<(String, Table)>,
    pub models: Vec<(String, Model)>,
}

/// A stable file name for an ARN (FNV-1a, 64 bits): ARNs are too long and too rich for file names.
fn file_name(arn: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in arn.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}.json")
}

/// Writes `bytes` to `path` so that readers see either the old or the new content, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let err = |source| PersistError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::File::create(&tmp).map_err(err)?;
        file.write_all(bytes).map_err(err)?;
        file.sync_all().map_err(err)?;
    }
    fs::rename(&tmp, path).map_err(err)
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, PersistError> {
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

/// Saves into one state directory, remembering what is already on disk.
#[derive(Debug)]
pub struct Persister {
    dir: PathBuf,
    /// ARN → generation of the table file on disk.
    saved_tables: HashMap<String, u64>,
    /// ARN → generation of the model file on disk.
    saved_models: HashMap<String, u64>,
}

/// Writes the entries of one kind whose generation changed; returns the manifest (ARN → file).
fn write_changed<T: Serialize>(
    dir: &Path,
    saved: &mut HashMap<String, u64>,
    entries: &[(String, u64, Arc<T>)],
) -> Result<BTreeMap<String, String>, PersistError> {
    let mut manifest = BTreeMap::new();
    for (arn, generation, value) in entries {
        let name = file_name(arn);
        if saved.get(arn) != Some(generation) {
            write_atomically(&dir.join(&name), &encode(arn, value.as_ref())?)?;
            saved.insert(arn.clone(), *generation);
        }
        manifest.insert(arn.clone(), name);
    }
    Ok(manifest)
}

/// Removes the files of entries the manifest no longer names.
fn remove_stale(
    dir: &Path,
    saved: &mut HashMap<String, u64>,
    manifest: &BTreeMap<String, String>,
) -> Result<(), PersistError> {
    let stale: Vec<String> = saved
        .keys()
        .filter(|arn| !manifest.contains_key(*arn))
        .cloned()
        .collect();
    for arn in stale {
        saved.remove(&arn);
        let path = dir.join(file_name(&arn));
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(PersistError::Write { path, source: e });
        }
    }
    Ok(())
}

impl Persister {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            saved_tables: HashMap::new(),
            saved_models: HashMap::new(),
        }
    }

    /// Forgets what is on disk, so the next save rewrites every table and model.
    pub fn forget(&mut self) {
        self.saved_tables.clear();
        self.saved_models.clear();
    }

    /// Records that the data restored from disk is already saved.
    pub fn mark_saved(&mut self, data: &Data) {
        for (arn, e) in data.tables() {
            self.saved_tables.insert(arn.clone(), e.generation);
        }
        for (arn, e) in data.models() {
            self.saved_models.insert(arn.clone(), e.generation);
        }
    }

    /// Writes what changed since the last save, then `state.json`, then removes stale files.
    ///
    /// # Errors
    /// The first write that failed; nothing after it is written, so the previous `state.json`
    /// stays valid.
    pub fn save(&mut self, request: SaveRequest) -> Result<(), PersistError> {
        let SaveRequest {
            mut snapshot,
            tables,
            models,
        } = request;
        let (tables_dir, models_dir) = (self.dir.join(TABLES_DIR), self.dir.join(MODELS_DIR));
        snapshot.tables = write_changed(&tables_dir, &mut self.saved_tables, &tables)?;
        snapshot.models = write_changed(&models_dir, &mut self.saved_models, &models)?;
        write_atomically(&self.dir.join(STATE_FILE), &encode("the state", &snapshot)?)?;
        remove_stale(&tables_dir, &mut self.saved_tables, &snapshot.tables)?;
        remove_stale(&models_dir, &mut self.saved_models, &snapshot.models)
    }
}

/// Loads what was saved in `dir`; `None` when nothing was saved yet.
///
/// # Errors
/// An unreadable or foreign `state.json`, or a table file it names that is missing or corrupt.
pub fn load(dir: &Path) -> Result<Option<Loaded>, PersistError> {
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PersistError::Read { path, source }),
    };
    #[derive(Deserialize)]
    struct Header {
        format: u32,
    }
    let header: Header = serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt {
        path: path.clone(),
        source,
    })?;
    if header.format != FORMAT {
        return Err(PersistError::Format {
            path,
            found: header.format,
        });
    }
    let snapshot: Snapshot =
        serde_json::from_slice(&bytes).map_err(|source| PersistError::Corrupt { path, source })?;
    let mut tables = Vec::with_capacity(snapshot.tables.len());
    for (arn, name) in &snapshot.tables {
        tables.push((arn.clone(), read_json(&dir.join(TABLES_DIR).join(name))?));
    }
    let mut models = Vec::with_capacity(snapshot.models.len());
    for (arn, name) in &snapshot.models {
        models.push((arn.clone(), read_json(&dir.join(MODELS_DIR).join(name))?));
    }
    Ok(Some(Loaded {
        snapshot,
        tables,
        models,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::engine::table::Cell;

    fn request(state: &State, data: &Data) -> SaveRequest {
        SaveRequest::new(state.clone(), 12.5, data)
    }

    #[test]
    fn saves_and_loads_state_and_tables() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load(dir.path()).expect("nothing yet").is_none());
        let state = State {
            seq: 41,
            ..State::default()
        };
        let mut data = Data::default();
        data.table_mut("arn:d1").rows.push(vec![Cell::Int(7)]);
        let mut persister = Persister::new(dir.path().to_path_buf());
        persister.save(request(&state, &data)).expect("saved");
        let back = load(dir.path()).expect("read").expect("present");
        assert_eq!(back.snapshot.state, state);
        assert_eq!(back.snapshot.clock_offset, 12.5);
        assert_eq!(back.tables.len(), 1);
        assert_eq!(back.tables[0].1.rows, vec![vec![Cell::Int(7)]]);
        assert!(
            !dir.path().join("state.tmp").exists(),
            "the temp file was renamed"
        );
    }

    #[test]
    fn rewrites_only_changed_tables_and_removes_dropped_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut data = Data::default();
        data.table_mut("a");
        data.table_mut("b");
        let mut persister = Persister::new(dir.path().to_path_buf());
        persister.save(request(&State::default(), &data)).expect("saved");
        let a_file = dir.path().join(TABLES_DIR).join(file_name("a"));
        // Replace a's file behind the persister's back: an unchanged table is not rewritten.
        fs::write(&a_file, b"{\"columns\":[\"marker\"],\"rows\":[]}").expect("write");
        data.table_mut("b").rows.push(vec![Cell::Null]);
        persister.save(request(&State::default(), &data)).expect("saved");
        assert!(fs::read_to_string(&a_file).expect("read").contains("marker"));
        data.retain_for(&State::default());
        persister.save(request(&State::default(), &data)).expect("saved");
        assert!(!a_file.exists(), "dropped tables lose their file");
        assert!(
            load(dir.path())
                .expect("read")
                .expect("present")
                .tables
                .is_empty()
        );
    }

    #[test]
    fn refuses_garbage_and_other_formats() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(STATE_FILE), b"{not json").expect("write");
        assert!(matches!(load(dir.path()), Err(PersistError::Corrupt { .. })));
        fs::write(dir.path().join(STATE_FILE), br#"{"format": 99}"#).expect("write");
        assert!(matches!(
            load(dir.path()),
            Err(PersistError::Format { found: 99, .. })
        ));
    }

    #[test]
    fn a_duplicated_error_keeps_its_variant_path_and_message() {
        let e = PersistError::Write {
            path: PathBuf::from("/x/state.json"),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        };
        let copy = e.duplicate();
        assert!(matches!(&copy, PersistError::Write { path, .. } if path == Path::new("/x/state.json")));
        assert_eq!(copy.to_string(), e.to_string());
        let corrupt = load_garbage();
        assert_eq!(corrupt.duplicate().to_string(), corrupt.to_string());
    }

    fn load_garbage() -> PersistError {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(STATE_FILE), b"{not json").expect("write");
        load(dir.path()).expect_err("garbage")
    }

    #[test]
    fn file_names_are_stable_and_distinct() {
        assert_eq!(file_name("x"), file_name("x"));
        assert_ne!(file_name("a/b"), file_name("a_b"));
        assert_eq!(
            file_name("arn:aws:personalize:us-east-1:000000000000:dataset/g/ITEMS").len(),
            21
        );
    }
}
