//! Background tasks that must keep running beside the web server (the check loops):
//! each runs under a supervisor that restarts it, after a short backoff, if it panics or
//! returns, logs that at ERROR, and says so to the readiness probe (`/readyz`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// The first pause before a restart; it doubles on each quick failure, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A task that ran this long before failing starts again from the first pause.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Where one background task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Registered, not started yet.
    Starting,
    Running,
    /// It panicked or returned; it starts again after a pause.
    Restarting {
        reason: String,
        restarts: u32,
    },
}

impl TaskState {
    pub fn is_running(&self) -> bool {
        matches!(self, TaskState::Running)
    }

    /// Words for the readiness probe.
    pub fn describe(&self) -> String {
        match self {
            TaskState::Starting => "starting".into(),
            TaskState::Running => "running".into(),
            TaskState::Restarting { reason, restarts } => {
                format!("restarting (restart {restarts}; {reason})")
            }
        }
    }
}

/// The background tasks by name, and how each stands.
#[derive(Debug, Default)]
pub struct Supervisor {
    tasks: Mutex<BTreeMap<&'static str, TaskState>>,
}

impl Supervisor {
    /// A supervisor expecting these tasks (each `Starting` until supervised).
    pub fn new(names: &[&'static str]) -> Supervisor {
        Supervisor {
            tasks: Mutex::new(names.iter().map(|n| (*n, TaskState::Starting)).collect()),
        }
    }

    /// Every task and its state, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, TaskState> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, name: &'static str, state: TaskState) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, state);
    }

    /// Runs `make()`'s future as task `name`, and again whenever it panics or returns.
    /// Aborting the returned handle stops the task too.
    pub fn supervise<F, Fut>(self: &Arc<Self>, name: &'static str, make: F) -> JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let supervisor = self.clone();
        tokio::spawn(async move {
            let mut restarts = 0u32;
            let mut backoff = FIRST_BACKOFF;
            loop {
                supervisor.set(name, TaskState::Running);
                let started = Instant::now();
                let task = AbortOnDrop(tokio::spawn(make()));
                // The panic's own words go to the log only: `/readyz` is public, and a
                // message may quote internal state.
                let (reason, detail) = match task.await {
                    Ok(()) => ("it returned", String::new()),
                    Err(e) if e.is_panic() => ("it panicked", panic_message(e)),
                    // Cancelled from outside: the process is stopping.
                    Err(_) => return,
                };
                if started.elapsed() >= HEALTHY_AFTER {
                    backoff = FIRST_BACKOFF;
                }
                restarts = restarts.saturating_add(1);
                tracing::error!(
                    task = name,
                    restarts,
                    pause_s = backoff.as_secs(),
                    detail,
                    "background task stopped ({reason}); restarting it"
                );
                supervisor.set(
                    name,
                    TaskState::Restarting {
                        reason: reason.to_owned(),
                        restarts,
                    },
                );
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        })
    }
}

/// A spawned task that is aborted when its owner goes (so aborting the supervisor stops
/// what it supervises).
struct AbortOnDrop(JoinHandle<()>);

impl Future for AbortOnDrop {
    type Output = Result<(), tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A panic's message, when it is text.
fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gave up waiting for {what}");
    }

    #[tokio::test]
    async fn a_task_that_panics_is_restarted_and_reported_meanwhile() {
        let supervisor = Arc::new(Supervisor::new(&["checks"]));
        assert_eq!(supervisor.snapshot()["checks"], TaskState::Starting);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();

        let handle = supervisor.supervise("checks", move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    panic!("time overflow");
                }
                std::future::pending::<()>().await;
            }
        });
        until("the restart pause", || {
            !supervisor.snapshot()["checks"].is_running()
                && runs.load(Ordering::SeqCst) == 1
                && supervisor.snapshot()["checks"] != TaskState::Starting
        })
        .await;
        let during = supervisor.snapshot()["checks"].clone();
        until("the second run", || runs.load(Ordering::SeqCst) == 2).await;
        let after = supervisor.snapshot()["checks"].clone();

        assert_eq!(
            during,
            TaskState::Restarting {
                reason: "it panicked".into(),
                restarts: 1
            }
        );
        assert_eq!(during.describe(), "restarting (restart 1; it panicked)");
        assert_eq!(after, TaskState::Running);
        handle.abort();
    }

    #[tokio::test]
    async fn a_task_that_returns_is_restarted_too_and_aborting_stops_it() {
        let supervisor = Arc::new(Supervisor::new(&["loop"]));
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let handle = supervisor.supervise("loop", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        });

        until("a restart", || runs.load(Ordering::SeqCst) >= 2).await;
        handle.abort();
        let _ = handle.await;
        let at_abort = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3)).await;

        assert_eq!(
            runs.load(Ordering::SeqCst),
            at_abort,
            "nothing runs after the abort"
        );
    }

    #[tokio::test]
    async fn aborting_the_supervisor_stops_a_running_task() {
        let supervisor = Arc::new(Supervisor::new(&["loop"]));
        let ticks = Arc::new(AtomicU32::new(0));
        let counted = ticks.clone();
        let handle = supervisor.supervise("loop", move || {
            let counted = counted.clone();
            async move {
                loop {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        until("the task to run", || ticks.load(Ordering::SeqCst) > 0).await;

        handle.abort();
        let _ = handle.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stopped = ticks.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;

        assert_eq!(ticks.load(Ordering::SeqCst), stopped);
    }
}
