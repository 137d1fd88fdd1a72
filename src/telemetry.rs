//! Logging: pretty in a terminal, JSON in production; one span per request (see `web`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use serde::{Deserialize, Serialize};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber, writing to stderr. `filter` is already validated by
/// `Config::validate`.
pub fn init(filter: &str, format: LogFormat) {
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = subscriber(filter, format, std::io::stderr).try_init();
}

/// The subscriber `init` installs, writing to `writer` (tests read what it logs).
pub fn subscriber<W>(
    filter: &str,
    format: LogFormat,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // async-imap traces every command it sends, LOGIN with its password included.
    let filter = match "async_imap=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
        LogFormat::Pretty => Box::new(builder.compact().finish()),
    }
}
