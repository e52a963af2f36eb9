//! Which [`GroupReconciler`] the daemon commands (`run`, `local`) use.
//!
//! Until the reconciler (`src/reconcile`) is merged, passes report that this build cannot reconcile:
//! groups are recorded, leased, retried and shown by `status`, and nothing is created in Personalize.

use std::sync::Arc;

use personalize_ops::daemon::{GroupReconciler, PassError, PassInput, PassReport, PassSink};
use personalize_ops::settings::Settings;

/// The reconciler for `personalize` with the roles and limits of `settings`.
pub fn build(personalize: aws_sdk_personalize::Client, settings: &Settings) -> Arc<dyn GroupReconciler> {
    let _ = (personalize, settings);
    Arc::new(NotBuiltIn)
}

/// Every pass ends with an error saying the reconciler is missing from this build.
struct NotBuiltIn;

#[async_trait::async_trait]
impl GroupReconciler for NotBuiltIn {
    async fn pass(&self, input: PassInput<'_>, _sink: &PassSink) -> Result<PassReport, PassError> {
        Err(PassError {
            group: input.group.to_string(),
            message: "this build has no reconciler yet; the desired state is recorded but not applied".into(),
        })
    }
}
