//! Saving and loading the emulator's state under `--state-dir`, atomically (temp file + rename).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::State;

/// The file holding the resources.
const STATE_FILE: &str = "state.json";
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
    #[error("cannot encode the state: {0}")]
    Encode(#[source] serde_json::Error),
}

/// What a state file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    /// The emulator clock's offset from wall time, so timelines continue where they were.
    pub clock_offset: f64,
    pub state: State,
}

impl Snapshot {
    pub fn new(state: State, clock_offset: f64) -> Self {
        Self {
            format: FORMAT,
            clock_offset,
            state,
        }
    }
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

/// Saves the snapshot into `dir`.
pub fn save(dir: &Path, snapshot: &Snapshot) -> Result<(), PersistError> {
    let bytes = serde_json::to_vec(snapshot).map_err(PersistError::Encode)?;
    write_atomically(&dir.join(STATE_FILE), &bytes)
}

/// Loads the snapshot saved in `dir`; `None` when there is none yet.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, PersistError> {
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
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| PersistError::Corrupt { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load(dir.path()).expect("nothing yet").is_none());
        let state = State {
            seq: 41,
            ..State::default()
        };
        save(dir.path(), &Snapshot::new(state.clone(), 12.5)).expect("saved");
        let back = load(dir.path()).expect("read").expect("present");
        assert_eq!(back.state, state);
        assert_eq!(back.clock_offset, 12.5);
        assert!(
            !dir.path().join("state.tmp").exists(),
            "the temp file was renamed"
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
}
