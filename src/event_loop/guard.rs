//! Take, call, put back, through a guard (the model is explained once, in `handle.rs`).
//!
//! The guard is `catch_unwind` + `resume_unwind`: the restoring code runs whether the
//! callback returned or panicked, and a panic then continues to the caller of `run`
//! unchanged. On the happy path it costs nothing (unwinding tables, no extra branch).

use super::Loop;
use crate::sys::selfpipe::SelfPipe;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

impl Loop {
    /// Run `call`, then `after`, also when `call` panics; the panic then goes on.
    pub(crate) fn call_guarded<R>(
        &mut self,
        call: impl FnOnce(&mut Loop) -> R,
        after: impl FnOnce(&mut Loop),
    ) -> R {
        // AssertUnwindSafe: `after` is exactly what restores the loop's invariants.
        let result = panic::catch_unwind(AssertUnwindSafe(|| call(self)));
        after(self);
        result.unwrap_or_else(|payload| panic::resume_unwind(payload))
    }

    /// Lend `value` (a callback or buffer taken out of its slot) to `call`, then hand it
    /// to `put_back`, also when `call` panics.
    pub(crate) fn call_taken<V, R>(
        &mut self,
        mut value: V,
        call: impl FnOnce(&mut Loop, &mut V) -> R,
        put_back: impl FnOnce(&mut Loop, V),
    ) -> R {
        let result = panic::catch_unwind(AssertUnwindSafe(|| call(self, &mut value)));
        put_back(self, value);
        result.unwrap_or_else(|payload| panic::resume_unwind(payload))
    }
}

/// Wakes the loop again if dropped during a panic: the self-pipe's byte was consumed for
/// a batch of completions, and the ones after a panicking callback still wait.
pub(super) struct WakeOnUnwind(pub Arc<SelfPipe>);

impl Drop for WakeOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Nothing to report to from a drop; a full pipe is already a pending wake.
            let _ = self.0.wake();
        }
    }
}
