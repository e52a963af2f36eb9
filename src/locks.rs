//! Locking a std mutex whose last holder panicked.
//!
//! Every std mutex in the crate guards data that a panic cannot leave half-written in a harmful way
//! (counters, slots replaced whole, caches), so a poisoned lock is taken over rather than spreading
//! the panic to every later caller. One helper, so the decision is made once.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// [`Mutex::lock`] that recovers the guard of a poisoned mutex.
pub trait LockRecovering<T: ?Sized> {
    /// The guard, whether or not a previous holder panicked.
    fn lock_recovering(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockRecovering<T> for Mutex<T> {
    fn lock_recovering(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_poisoned_mutex_still_yields_its_data() {
        let shared = Arc::new(Mutex::new(1));
        let holder = Arc::clone(&shared);
        let panicked = std::thread::spawn(move || {
            let mut guard = holder.lock().unwrap();
            *guard = 2;
            panic!("holder dies with the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(shared.is_poisoned());
        assert_eq!(*shared.lock_recovering(), 2);
    }
}
