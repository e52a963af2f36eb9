//! Waiting for something to happen, with one bound: a test that waits forever is a test that hangs.
//!
//! Kept free of crate imports so the library's own unit tests can include it too
//! (`#[path = "../../tests/support/wait.rs"]`).

use std::future::Future;
use std::time::{Duration, Instant};

/// Upper bound of every wait; generous for a loaded 2-core machine. Only a test that would otherwise
/// hang reaches it, so it never decides a verdict on a healthy run.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// How often a condition is re-checked.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it holds; panics with `what` after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < PATIENCE, "gave up waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for blocking code (child processes): polls on this thread; the panic message ends
/// with what `log` returns then.
pub fn wait_until(what: &str, log: &dyn Fn() -> String, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < PATIENCE,
            "gave up waiting for: {what}\n{}",
            log()
        );
        std::thread::sleep(POLL);
    }
}
