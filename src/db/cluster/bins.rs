//! Finding the PostgreSQL server programs: on PATH (following Debian's links), else the newest
//! versioned install.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::ClusterError;

/// Where to look for the server programs; `Default` is PATH, then the Debian layout.
#[derive(Debug, Clone)]
pub struct BinSearch {
    pub path: Option<OsString>,
    pub versioned_roots: Vec<PathBuf>,
}

impl Default for BinSearch {
    fn default() -> Self {
        Self {
            path: std::env::var_os("PATH"),
            versioned_roots: vec![PathBuf::from("/usr/lib/postgresql")],
        }
    }
}

impl BinSearch {
    /// The folder holding `initdb`, `pg_ctl` and `postgres`.
    pub fn find(&self) -> Result<PathBuf, ClusterError> {
        let complete = |dir: &Path| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| dir.join(b).is_file())
        };
        if let Some(path) = &self.path {
            for dir in std::env::split_paths(path) {
                let initdb = dir.join("initdb");
                if initdb.is_file() {
                    // Debian links /usr/local/bin/initdb to the versioned folder: follow it.
                    let real = fs::canonicalize(&initdb).unwrap_or(initdb);
                    if let Some(parent) = real.parent()
                        && complete(parent)
                    {
                        return Ok(parent.to_path_buf());
                    }
                }
            }
        }
        for root in &self.versioned_roots {
            let Ok(entries) = fs::read_dir(root) else {
                continue;
            };
            let mut versions: Vec<(u32, PathBuf)> = entries
                .flatten()
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
                    Some((version, e.path().join("bin")))
                })
                .filter(|(_, bin)| complete(bin))
                .collect();
            versions.sort();
            if let Some((_, bin)) = versions.pop() {
                return Ok(bin);
            }
        }
        Err(ClusterError::NoBinaries)
    }
}
