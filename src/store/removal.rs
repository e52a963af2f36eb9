//! A parameter file removed from the bucket, recorded as a removal generation of its dataset group.
//!
//! The removal is a desired generation with an empty text ([`super::Desired::is_removal`]), ordered
//! against the file's writes like any upload (S3's sequencer when the events carry one): a later upload
//! of the file supersedes it, and a removal event that arrives after a newer upload changes nothing.

use super::{DesiredSource, NewDesired, PutDesired, StateStore, StoreError};
use crate::objects::ObjectUrl;

/// What one removal event did to one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The group's file was this object: a removal generation is recorded.
    Recorded { group: String, generation: u64 },
    /// The removal was already recorded (a redelivered event).
    Duplicate { group: String, generation: u64 },
    /// A newer write of the file is recorded; the late removal event changed nothing.
    Superseded { group: String, generation: u64 },
}

/// Records that the object at `url` was removed, for every group whose current parameter file it is.
/// Empty when no group's file is that object (a file that was never valid, or another group's
/// since).
pub async fn record_removal(
    store: &dyn StateStore,
    url: &ObjectUrl,
    version_id: Option<String>,
    sequencer: Option<String>,
) -> Result<Vec<Removal>, StoreError> {
    let mut out = Vec::new();
    for g in store.list_groups().await? {
        // A destroyed group has nothing left to keep or tear down.
        if g.desired_source.as_ref() != Some(url) || g.destroyed() {
            continue;
        }
        if let Some(current) = store.group(&g.name).await?.and_then(|s| s.desired)
            && current.is_removal()
            && current.source.url == *url
        {
            out.push(Removal::Duplicate {
                group: g.name,
                generation: current.generation,
            });
            continue;
        }
        let new = NewDesired {
            group: g.name.clone(),
            text: String::new(),
            source: DesiredSource {
                url: url.clone(),
                etag: None,
                version_id: version_id.clone(),
                sequencer: sequencer.clone(),
                last_modified: None,
            },
        };
        out.push(match store.put_desired(&new).await? {
            PutDesired::Recorded(d) => Removal::Recorded {
                group: g.name,
                generation: d.generation,
            },
            PutDesired::Duplicate(d) => Removal::Duplicate {
                group: g.name,
                generation: d.generation,
            },
            PutDesired::Superseded { current } => Removal::Superseded {
                group: g.name,
                generation: current.generation,
            },
        });
    }
    Ok(out)
}
