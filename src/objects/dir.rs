//! A directory that serves one bucket: `s3://<bucket>/<key>` is the file `<root>/<key>` (local mode).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{ObjectError, ObjectMeta, ObjectStore, ObjectUrl, is_listed};

/// Marks the temporary files of atomic writes, which listings never show.
const TEMP_MARKER: &str = ".personalize-ops-tmp-";

/// Serves the bucket `bucket` from the directory `root`.
///
/// # Guarantees
/// * A key that is absolute, contains a `.` or `..` segment, an empty segment, a backslash or a NUL,
///   or resolves (through a symbolic link) outside `root`, is rejected with
///   [`ObjectError::BadUrl`] and never opened.
/// * `put` writes a temporary file beside the target and renames it, so readers see the old object
///   or the new one, never a part; missing folders are created.
/// * `list` is S3's: the prefix is a literal key prefix, results are sorted by key, and
///   `recursive == false` lists only keys without a further `/` (as `Delimiter="/"` does).
/// * Another bucket is an error naming it ([`ObjectError::Backend`]).
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
    bucket: String,
}

#[derive(Debug, thiserror::Error)]
#[error("this store serves only bucket {served} (from {root}), not {asked}")]
struct OtherBucket {
    served: String,
    asked: String,
    root: String,
}

impl DirStore {
    /// Serves bucket `bucket` from the directory `root` (one folder level per key segment).
    pub fn new(root: impl Into<PathBuf>, bucket: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            bucket: bucket.into(),
        }
    }

    /// The bucket this store serves.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn check_bucket(&self, op: &'static str, url: &ObjectUrl) -> Result<(), ObjectError> {
        if url.bucket == self.bucket {
            return Ok(());
        }
        Err(ObjectError::Backend {
            op,
            url: url.clone(),
            source: Box::new(OtherBucket {
                served: self.bucket.clone(),
                asked: url.bucket.clone(),
                root: self.root.display().to_string(),
            }),
        })
    }

    /// The file of an object key (not yet checked against symbolic links).
    fn path_of(
        &self,
        url: &ObjectUrl,
        key: &str,
        allow_trailing_slash: bool,
    ) -> Result<PathBuf, ObjectError> {
        let bad = |reason| ObjectError::BadUrl {
            url: url.to_string(),
            reason,
        };
        if key.starts_with('/') {
            return Err(bad("the key is absolute"));
        }
        if key.contains('\\') || key.contains('\0') {
            return Err(bad("the key contains a backslash or NUL"));
        }
        let trimmed = if allow_trailing_slash {
            key.strip_suffix('/').unwrap_or(key)
        } else {
            key
        };
        let mut path = self.root.clone();
        if trimmed.is_empty() {
            return Ok(path);
        }
        for segment in trimmed.split('/') {
            match segment {
                "" => return Err(bad("the key has an empty path segment")),
                "." | ".." => return Err(bad("the key has a . or .. segment")),
                _ => {}
            }
            if !matches!(Path::new(segment).components().next(), Some(Component::Normal(_))) {
                return Err(bad("the key has a segment that is not a plain name"));
            }
            path.push(segment);
        }
        Ok(path)
    }

    /// Fails when `path` exists but resolves outside the root (a symbolic link pointing away).
    fn check_inside(&self, url: &ObjectUrl, path: &Path) -> Result<(), ObjectError> {
        let (Ok(root), Ok(real)) = (self.root.canonicalize(), path.canonicalize()) else {
            return Ok(()); // missing: nothing to follow
        };
        if real.starts_with(&root) {
            Ok(())
        } else {
            Err(ObjectError::BadUrl {
                url: url.to_string(),
                reason: "the key resolves outside the store's directory",
            })
        }
    }

    fn backend(op: &'static str, url: &ObjectUrl, e: io::Error) -> ObjectError {
        ObjectError::Backend {
            op,
            url: url.clone(),
            source: Box::new(e),
        }
    }

    fn list_blocking(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
        // Walk only the folder the prefix names (its part up to the last `/`).
        let folder_key = prefix.key.rfind('/').map_or("", |i| &prefix.key[..i]);
        let folder = self.path_of(prefix, folder_key, false)?;
        self.check_inside(prefix, &folder)?;
        let mut out = Vec::new();
        let mut pending = vec![(folder, folder_key.to_string())];
        while let Some((dir, dir_key)) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                    continue;
                }
                Err(e) => return Err(Self::backend("list", prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Self::backend("list", prefix, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue; // not representable as an S3 key
                };
                if name.contains(TEMP_MARKER) {
                    continue;
                }
                let key = if dir_key.is_empty() {
                    name
                } else {
                    format!("{dir_key}/{name}")
                };
                let metadata = entry.metadata().map_err(|e| Self::backend("list", prefix, e))?;
                if metadata.is_dir() {
                    // A folder can only hold listed keys if it could still match the prefix.
                    let as_folder = format!("{key}/");
                    if recursive && (as_folder.starts_with(&prefix.key) || prefix.key.starts_with(&as_folder))
                    {
                        pending.push((entry.path(), key));
                    }
                } else if metadata.is_file() && is_listed(&prefix.key, &key, recursive) {
                    let url = ObjectUrl::new(self.bucket.clone(), key);
                    out.push(file_meta(url, &metadata));
                }
            }
        }
        out.sort_by(|a, b| a.url.key.cmp(&b.url.key));
        Ok(out)
    }

    fn head_blocking(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
        let path = self.path_of(url, &url.key, false)?;
        self.check_inside(url, &path)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(file_meta(url.clone(), &m))),
            Ok(_) => Ok(None), // a folder is not an object
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(Self::backend("head", url, e)),
        }
    }

    fn get_blocking(&self, url: &ObjectUrl, limit: u64) -> Result<Bytes, ObjectError> {
        let path = self.path_of(url, &url.key, false)?;
        self.check_inside(url, &path)?;
        let not_found = || ObjectError::NotFound { url: url.clone() };
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Err(not_found());
            }
            Err(e) => return Err(Self::backend("get", url, e)),
        };
        let metadata = file.metadata().map_err(|e| Self::backend("get", url, e))?;
        if !metadata.is_file() {
            return Err(not_found());
        }
        if metadata.len() > limit {
            return Err(ObjectError::TooLarge {
                url: url.clone(),
                size: metadata.len(),
                limit,
            });
        }
        // The file may grow between the check and the read: never read more than the limit allows.
        let mut body = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        file.take(limit.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| Self::backend("get", url, e))?;
        if body.len() as u64 > limit {
            return Err(ObjectError::TooLarge {
                url: url.clone(),
                size: body.len() as u64,
                limit,
            });
        }
        Ok(Bytes::from(body))
    }

    fn put_blocking(&self, url: &ObjectUrl, body: &[u8]) -> Result<(), ObjectError> {
        let path = self.path_of(url, &url.key, false)?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(ObjectError::BadUrl {
                url: url.to_string(),
                reason: "the key is empty",
            });
        };
        fs::create_dir_all(parent).map_err(|e| Self::backend("put", url, e))?;
        self.check_inside(url, parent)?;
        self.check_inside(url, &path)?;
        let temp = parent.join(format!(
            "{}{TEMP_MARKER}{}",
            name.to_string_lossy(),
            uuid::Uuid::new_v4().simple()
        ));
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(body)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        };
        write().map_err(|e| {
            // Best effort: the temporary file is hidden from listings anyway.
            let _ = fs::remove_file(&temp);
            Self::backend("put", url, e)
        })
    }
}

fn file_meta(url: ObjectUrl, metadata: &fs::Metadata) -> ObjectMeta {
    let last_modified = metadata
        .modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    ObjectMeta {
        url,
        size: metadata.len(),
        last_modified,
        etag: None,
    }
}

/// Runs blocking file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    url: &ObjectUrl,
    work: impl FnOnce() -> Result<T, ObjectError> + Send + 'static,
) -> Result<T, ObjectError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ObjectError::Backend {
            op,
            url: url.clone(),
            source: Box::new(e),
        })?
}

#[async_trait::async_trait]
impl ObjectStore for DirStore {
    async fn list(&self, prefix: &ObjectUrl, recursive: bool) -> Result<Vec<ObjectMeta>, ObjectError> {
        self.check_bucket("list", prefix)?;
        let (store, owned) = (self.clone(), prefix.clone());
        blocking("list", prefix, move || store.list_blocking(&owned, recursive)).await
    }

    async fn head(&self, url: &ObjectUrl) -> Result<Option<ObjectMeta>, ObjectError> {
        self.check_bucket("head", url)?;
        let (store, owned) = (self.clone(), url.clone());
        blocking("head", url, move || store.head_blocking(&owned)).await
    }

    async fn get(&self, url: &ObjectUrl, limit: u64) -> Result<Bytes, ObjectError> {
        self.check_bucket("get", url)?;
        let (store, owned) = (self.clone(), url.clone());
        blocking("get", url, move || store.get_blocking(&owned, limit)).await
    }

    async fn put(&self, url: &ObjectUrl, body: Bytes) -> Result<(), ObjectError> {
        self.check_bucket("put", url)?;
        let (store, owned) = (self.clone(), url.clone());
        blocking("put", url, move || store.put_blocking(&owned, &body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, DirStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = DirStore::new(dir.path().join("data"), "data");
        (dir, store)
    }

    #[tokio::test]
    async fn escaping_keys_are_rejected() {
        let (_dir, store) = store();
        for key in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "./a",
            "a\\..\\b",
            "a/\0",
        ] {
            let url = ObjectUrl::new("data", key);
            for result in [
                store.put(&url, Bytes::from_static(b"x")).await.err(),
                store.get(&url, 10).await.err(),
                store.head(&url).await.err(),
            ] {
                assert!(
                    matches!(result, Some(ObjectError::BadUrl { .. })),
                    "{key:?}: {result:?}"
                );
            }
        }
        let listed = store.list(&ObjectUrl::new("data", "../"), true).await;
        assert!(matches!(listed, Err(ObjectError::BadUrl { .. })), "{listed:?}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symbolic_links_out_of_the_root_are_not_followed() {
        let (dir, store) = store();
        let outside = dir.path().join("secret.txt");
        fs::write(&outside, "secret").expect("write outside");
        fs::create_dir_all(dir.path().join("data")).expect("mkdir");
        std::os::unix::fs::symlink(&outside, dir.path().join("data/link.txt")).expect("symlink");
        let url = ObjectUrl::new("data", "link.txt");
        assert!(matches!(
            store.get(&url, 100).await,
            Err(ObjectError::BadUrl { .. })
        ));
        assert!(matches!(
            store.put(&url, Bytes::from_static(b"overwrite")).await,
            Err(ObjectError::BadUrl { .. })
        ));
        assert_eq!(fs::read_to_string(&outside).expect("read"), "secret");
    }

    #[tokio::test]
    async fn another_bucket_is_named_in_the_error() {
        let (_dir, store) = store();
        let err = store
            .get(&ObjectUrl::new("other", "k"), 10)
            .await
            .expect_err("other bucket");
        let text = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        assert!(
            text.contains("s3://other/k") && text.contains("serves only bucket data"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_key_that_is_a_folder_is_not_an_object_and_cannot_be_overwritten() {
        let (_dir, store) = store();
        store
            .put(&ObjectUrl::new("data", "a/b.csv"), Bytes::from_static(b"1"))
            .await
            .expect("put");
        let folder = ObjectUrl::new("data", "a");
        assert_eq!(store.head(&folder).await.expect("head"), None);
        assert!(matches!(
            store.get(&folder, 10).await,
            Err(ObjectError::NotFound { .. })
        ));
        let err = store
            .put(&folder, Bytes::from_static(b"2"))
            .await
            .expect_err("folder");
        assert!(matches!(err, ObjectError::Backend { op: "put", .. }), "{err:?}");
        // The failed write left no visible temporary file.
        let listed = store.list(&ObjectUrl::new("data", ""), true).await.expect("list");
        assert_eq!(listed.len(), 1, "{listed:?}");
    }
}
