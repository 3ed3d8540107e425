//! Logs: human-readable text or JSON lines, filtered by `RUST_LOG` or the configured level.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; logs go to stderr so stdout stays for command output.
pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
