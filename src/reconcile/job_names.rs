//! Who holds an account-wide job name: this process's creates in flight or done, and the claims replicas share.
//!
//! An import job is named `dataset_import_<type>_<run start second>` (batch jobs likewise), and job
//! names are unique per account, so groups whose runs start in the same second want the same name.
//! Sending a create for a name another parent holds costs a refused create and a describe before
//! the create under the [`crate::spec::names::collision_free`] name; knowing the holder first costs
//! neither. A name is taken here from the moment its create is sent; replicas share a claim per name
//! in the state store ([`JobClaims`]), written before the create.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::store::{StateStore, StoreError};

/// Most names [`JobNames`] remembers; past it, it starts over (it only saves calls).
const JOB_NAMES_KEPT: usize = 10_000;

/// How long a shared claim on a job name lasts. Only a retry of the same run's create (after a lost
/// response, a crash, a lost lease) asks for a name again, within minutes; past the claim, a create
/// falls back to the refusal and the describe, which are always right.
pub const JOB_NAME_CLAIM_TTL: Duration = Duration::from_secs(24 * 3600);

/// A claim on a job name shared by every replica (the state store's, in the daemon).
#[async_trait::async_trait]
pub trait JobClaims: Send + Sync + fmt::Debug {
    /// Claims `name` for `owner` (the dataset or solution version ARN the job is for) and returns who
    /// holds it after the call: `owner` when it was free, expired, `owner`'s already, or held by
    /// `replacing` (a holder that found the job belongs to `owner`); else the other holder.
    async fn claim(&self, name: &str, owner: &str, replacing: Option<&str>) -> Result<String, StoreError>;
}

/// [`JobClaims`] kept in the state store, for [`JOB_NAME_CLAIM_TTL`].
#[derive(Debug, Clone)]
pub struct StoreClaims(pub Arc<dyn StateStore>);

#[async_trait::async_trait]
impl JobClaims for StoreClaims {
    async fn claim(&self, name: &str, owner: &str, replacing: Option<&str>) -> Result<String, StoreError> {
        self.0
            .claim_job_name(name, owner, replacing, JOB_NAME_CLAIM_TTL)
            .await
    }
}

/// The job names this process sent creates for (or learned the owner of), each with the dataset
/// (or solution version) it is for, and the replicas' shared claims when the daemon wired them in.
#[derive(Debug, Default)]
pub struct JobNames {
    taken: Mutex<HashMap<String, String>>,
    claims: Option<Arc<dyn JobClaims>>,
}

/// Who a job name is for, as far as this process and the shared claims know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Holder {
    /// Nobody else: the name is the parent's, taken for it now (or its own already).
    Parent,
    /// Another parent holds it: the create goes straight to the collision-free name.
    Another(String),
}

impl JobNames {
    /// Names remembered in this process only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names remembered here and claimed through `claims`, shared with the other replicas.
    pub fn shared(claims: Arc<dyn JobClaims>) -> Self {
        Self {
            taken: Mutex::default(),
            claims: Some(claims),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `name` for `parent` before its create is sent, here and then in the shared claims. A
    /// failing claim store takes nothing away: the create goes out under the plain name, and a
    /// refusal is told apart by a describe, as without claims.
    pub(super) async fn take(&self, name: &str, parent: &str) -> Holder {
        if let Some(other) = self.take_here(name, parent) {
            return Holder::Another(other);
        }
        let Some(claims) = &self.claims else {
            return Holder::Parent;
        };
        match claims.claim(name, parent, None).await {
            Ok(holder) if holder != parent => {
                self.belongs_to(name, &holder);
                Holder::Another(holder)
            }
            Ok(_) => Holder::Parent,
            Err(e) => {
                tracing::warn!(job = name, owner = parent, error = %e, "cannot claim the job name; creating without the claim");
                Holder::Parent
            }
        }
    }

    /// The other parent holding `name` in this process, or `None` after taking it for `parent`.
    fn take_here(&self, name: &str, parent: &str) -> Option<String> {
        let mut taken = self.lock();
        match taken.get(name) {
            Some(holder) if holder != parent => return Some(holder.clone()),
            Some(_) => return None,
            None => {}
        }
        if taken.len() >= JOB_NAMES_KEPT {
            taken.clear();
        }
        taken.insert(name.to_string(), parent.to_string());
        None
    }

    /// Gives `name` up when `parent`'s create of it certainly did not happen (Personalize refused
    /// it, or it was never sent). The shared claim stays: it only sends another parent to its
    /// collision-free name, which costs no call.
    pub(super) fn release(&self, name: &str, parent: &str) {
        let mut taken = self.lock();
        if taken.get(name).is_some_and(|holder| holder == parent) {
            taken.remove(name);
        }
    }

    /// Records that the job named `name` exists and is `owner`'s, as a describe found after `holder`'s
    /// create of that name was refused; the shared claim moves to `owner` too, so that `owner`'s own
    /// retry keeps its name on every replica.
    pub(super) async fn found_owner(&self, name: &str, owner: &str, holder: &str) {
        self.belongs_to(name, owner);
        if let Some(claims) = &self.claims
            && let Err(e) = claims.claim(name, owner, Some(holder)).await
        {
            tracing::warn!(job = name, owner, error = %e, "cannot record the job name's owner");
        }
    }

    fn belongs_to(&self, name: &str, owner: &str) {
        let mut taken = self.lock();
        if taken.len() >= JOB_NAMES_KEPT {
            taken.clear();
        }
        taken.insert(name.to_string(), owner.to_string());
    }

    /// The parent `name` is taken for in this process, if any.
    #[cfg(test)]
    pub(super) fn holder(&self, name: &str) -> Option<String> {
        self.lock().get(name).cloned()
    }
}
