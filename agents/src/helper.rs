//! A second thread for work that splits in two: the caller runs one half while the helper
//! runs the other on state the helper owns.
//!
//! Between jobs the helper spins for a short while before it naps. Waking a sleeping thread
//! (on a virtual machine, a halted virtual CPU) takes longer than the gaps between the phases
//! of an SAC update, which are tens of microseconds; a thread pool that puts idle workers to
//! sleep lost a tenth of the update to those wake-ups.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a waiting side spins before it naps between checks, and how long a nap is.
const SPIN: Duration = Duration::from_millis(2);
const NAP: Duration = Duration::from_micros(200);

type Job<S> = Box<dyn FnOnce(&mut S) -> Box<dyn Any + Send> + Send>;
type Outcome = std::thread::Result<Box<dyn Any + Send>>;

/// A one-value mailbox.
struct Slot<T> {
    value: Mutex<Option<T>>,
    ready: AtomicBool,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot { value: Mutex::new(None), ready: AtomicBool::new(false) }
    }

    fn put(&self, value: T) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        self.ready.store(true, Ordering::Release);
    }

    /// Waits for a value: spins for [`SPIN`], then naps, asking `give_up` after each nap.
    fn take(&self, give_up: impl Fn() -> bool) -> Option<T> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.ready.swap(false, Ordering::Acquire) {
                return self.value.lock().unwrap_or_else(|e| e.into_inner()).take();
            }
            spins = spins.wrapping_add(1);
            // Reading the clock costs more than a spin: only every 64th.
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                if give_up() {
                    return None;
                }
                std::thread::park_timeout(NAP);
            }
        }
    }
}

struct Shared<S> {
    /// The next job, or `None` to stop.
    jobs: Slot<Option<Job<S>>>,
    results: Slot<Outcome>,
}

/// A helper thread that owns a state `S` and runs one job on it at a time.
pub struct Helper<S> {
    shared: Arc<Shared<S>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Send + 'static> Helper<S> {
    /// Starts the helper thread, named `name`, owning `state`.
    pub fn spawn(name: &str, mut state: S) -> std::io::Result<Self> {
        let shared = Arc::new(Shared { jobs: Slot::new(), results: Slot::new() });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || {
            while let Some(Some(job)) = theirs.jobs.take(|| false) {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut state)));
                theirs.results.put(outcome);
            }
        })?;
        Ok(Helper { shared, thread: Some(thread) })
    }

    /// Runs `here` on this thread and `there` on the helper's state at the same time, and
    /// returns both results. A panic on either side is raised here.
    pub fn join<A, B: Send + 'static>(
        &mut self,
        here: impl FnOnce() -> A,
        there: impl FnOnce(&mut S) -> B + Send + 'static,
    ) -> (A, B) {
        self.shared.jobs.put(Some(Box::new(move |state: &mut S| Box::new(there(state)) as Box<dyn Any + Send>)));
        let a = here();
        let thread = self.thread.as_ref().expect("helper thread present until drop");
        let outcome = self.shared.results.take(|| thread.is_finished()).expect("the helper thread ended");
        match outcome {
            Ok(b) => (a, *b.downcast::<B>().expect("a job's result has the job's type")),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<S> Drop for Helper<S> {
    fn drop(&mut self) {
        self.shared.jobs.put(None);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_both_halves_and_keeps_the_helpers_state() {
        let mut helper = Helper::spawn("test-helper", 0u64).unwrap();
        for i in 1..=100u64 {
            let (here, there) = helper.join(
                || i * 2,
                move |total: &mut u64| {
                    *total += i;
                    (*total, std::thread::current().name().map(str::to_string))
                },
            );
            assert_eq!(here, i * 2);
            assert_eq!(there.0, i * (i + 1) / 2);
            assert_eq!(there.1.as_deref(), Some("test-helper"));
        }
    }

    #[test]
    fn a_panic_on_the_helper_reaches_the_caller() {
        let mut helper = Helper::spawn("test-panic", ()).unwrap();
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            helper.join(|| (), |_: &mut ()| -> u8 { panic!("job failed") })
        }));
        let message = caught.unwrap_err().downcast::<&str>().map(|m| m.to_string()).unwrap_or_default();
        assert_eq!(message, "job failed");
        // The helper survives a failed job.
        assert_eq!(helper.join(|| 1, |_: &mut ()| 2), (1, 2));
    }
}
