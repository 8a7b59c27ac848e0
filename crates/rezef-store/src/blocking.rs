//! Work off the async runtime, on its blocking threads. A panic there resumes in the task that
//! waits for the work, as if the work had run in it, rather than coming back as a `JoinError`.

use tokio::task::JoinHandle;

/// Runs `work` on a blocking thread and gives what it returns.
pub(crate) async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    joined(tokio::task::spawn_blocking(work)).await
}

/// What a task spawned earlier returned, once it is done.
pub(crate) async fn joined<T>(task: JoinHandle<T>) -> T {
    match task.await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Cancelled before it ran: only when the runtime shuts down, which drops this
        // waiting task as well.
        Err(_) => std::future::pending().await,
    }
}
