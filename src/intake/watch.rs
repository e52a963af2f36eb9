//! `local` mode's change events: poll `DIR/train/**.json` and hand new or changed files to the intake,
//! as S3 event notifications would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::intake::event::ObjectCreated;
use crate::intake::{ConfigSource, Intake};

/// Files whose names contain this are a `DirStore` write in progress.
const TEMP_MARKER: &str = ".personalize-ops-tmp-";

/// Deepest folder nesting walked under `train/` (a symlink loop cannot hold the watcher).
const MAX_DEPTH: usize = 16;

/// What identifies one write of a file.
type Fingerprint = (SystemTime, u64);

/// Watches `root/train/` (the bucket `bucket` as a `DirStore` serves it) by polling.
#[derive(Debug, Clone)]
pub struct DirWatcher {
    root: PathBuf,
    bucket: String,
    intake: Arc<Intake>,
    interval: Duration,
}

impl DirWatcher {
    pub fn new(
        root: impl Into<PathBuf>,
        bucket: impl Into<String>,
        intake: Arc<Intake>,
        interval: Duration,
    ) -> Self {
        Self {
            root: root.into(),
            bucket: bucket.into(),
            intake,
            interval,
        }
    }

    /// One scan: hands every new or changed `.json` file to the intake. `seen` remembers what was
    /// handled; a file whose handling failed is left out so the next scan retries it. Returns how
    /// many files were handed over.
    pub async fn scan(&self, seen: &mut HashMap<String, Fingerprint>) -> usize {
        let root = self.root.clone();
        let files = match tokio::task::spawn_blocking(move || list_json(&root)).await {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "directory scan failed");
                return 0;
            }
        };
        let mut handled = 0;
        for (key, fingerprint) in files {
            if seen.get(&key) == Some(&fingerprint) {
                continue;
            }
            let record = ObjectCreated {
                size: Some(fingerprint.1),
                ..ObjectCreated::bare(self.bucket.clone(), key.clone(), "ObjectCreated:Put")
            };
            match self.intake.handle_object(&record).await {
                Ok(outcome) => {
                    tracing::debug!(key = %key, ?outcome, "file handled");
                    seen.insert(key, fingerprint);
                    handled += 1;
                }
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "file not handled; retrying on the next scan")
                }
            }
        }
        handled
    }
}

#[async_trait::async_trait]
impl ConfigSource for DirWatcher {
    async fn run(&self, shutdown: CancellationToken) {
        let mut seen = HashMap::new();
        while !shutdown.is_cancelled() {
            self.scan(&mut seen).await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
        tracing::info!(dir = %self.root.display(), "directory watcher stopped");
    }
}

/// Every `train/**.json` file under `root` as (key, fingerprint), keys with `/`. Unreadable entries and
/// names that are not UTF-8 are skipped (and logged); symbolic links are not followed.
fn list_json(root: &Path) -> Vec<(String, Fingerprint)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.join("train"), "train".to_string(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list a folder");
                continue;
            }
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(path = %entry.path().display(), "skipping a file name that is not UTF-8");
                continue;
            };
            let Ok(kind) = entry.file_type() else { continue };
            let key = format!("{prefix}/{name}");
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((entry.path(), key, depth + 1));
            } else if kind.is_file()
                && name.ends_with(".json")
                && !name.contains(TEMP_MARKER)
                && let Ok(meta) = entry.metadata()
            {
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((key, (modified, meta.len())));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_json_under_train_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("train/a/b")).expect("mkdir");
        std::fs::write(root.join("train/a/config.json"), "{}").expect("write");
        std::fs::write(root.join("train/a/b/deep.json"), "{}").expect("write");
        std::fs::write(root.join("train/a/data.csv"), "x").expect("write");
        std::fs::write(root.join("train/a/x.personalize-ops-tmp-1.json"), "{}").expect("write");
        std::fs::write(root.join("other.json"), "{}").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("train/loop")).expect("symlink");
        let keys: Vec<String> = list_json(root).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["train/a/b/deep.json", "train/a/config.json"]);
        assert!(list_json(&root.join("missing")).is_empty());
    }
}
