//! What can go wrong when a private cluster starts or stops: below every other part.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server programs (initdb, pg_ctl, postgres) were not found on PATH or under \
         /usr/lib/postgresql/<version>/bin. Install them (Debian/Ubuntu: `apt-get install \
         postgresql`) or set DATABASE_URL to an existing database"
    )]
    NoBinaries,
    #[error(
        "data folder {path} is not writable ({source}); set UNITRACK_DATA_DIR to a folder you can write"
    )]
    NotWritable { path: PathBuf, source: io::Error },
    #[error(
        "another Unitrack is already using data folder {path}{pid}; stop it first, or set \
         UNITRACK_DATA_DIR to another folder"
    )]
    InUse { path: PathBuf, pid: String },
    #[error(
        "running as root, but there is no unprivileged `{user}` user to run PostgreSQL as \
         (PostgreSQL refuses to run as root). Create it (`useradd --system {user}`), run \
         Unitrack as a normal user, or set DATABASE_URL"
    )]
    NoUnprivilegedUser { user: String },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("PostgreSQL did not accept connections on {socket}: {source}")]
    NotReady {
        socket: PathBuf,
        source: sqlx::Error,
    },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

pub(super) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}
