//! Logs: tracing to standard error, filtered by `RUST_LOG` (`info` when unset), as text
//! (coloured only on a terminal) or as JSON lines with `json`. The runtime logs no personal
//! data: requests are logged by route and status.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; a second call (tests) leaves the first.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
