//! What a private cluster is: the options it starts from, the handle of a running one, and the
//! names and places every part of it shares.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, ChildStdin};

use super::bins::BinSearch;
use super::user::RunAs;

/// The superuser and the database that a private cluster gets.
pub const SUPERUSER: &str = "unitrack";
pub(super) const PORT: u16 = 5432;
pub(super) const RELOCATED_ROOT: &str = "/var/lib/unitrack";

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The data folder; the cluster goes in `<data_dir>/postgres` (or is relocated, see above).
    pub data_dir: PathBuf,
    /// The database to create and connect to.
    pub database: String,
    pub bins: BinSearch,
    /// The unprivileged user to run as when this process is root.
    pub system_user: String,
    /// Remove everything when the cluster stops (test clusters).
    pub temporary: bool,
}

impl ClusterOptions {
    pub fn new(data_dir: impl Into<PathBuf>, database: &str) -> Self {
        Self {
            data_dir: data_dir.into(),
            database: database.to_owned(),
            bins: BinSearch::default(),
            system_user: "postgres".into(),
            temporary: false,
        }
    }
}

/// A running private cluster. Stop it with [`Cluster::stop`]; dropping it stops it too.
#[derive(Debug)]
pub struct Cluster {
    pub(super) bin_dir: PathBuf,
    pub(super) root: PathBuf,
    pub(super) run_as: Option<RunAs>,
    pub(super) database: String,
    pub(super) temporary: bool,
    pub(super) watchdog: Option<(Child, ChildStdin)>,
    pub(super) _lock: File,
    pub(super) stopped: bool,
}
