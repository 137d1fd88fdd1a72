//! The data folder and the cluster's own: the lock that keeps a second Unitrack out, where the
//! cluster lives (relocated when the PostgreSQL user cannot reach the data folder), and its
//! folders with the right owner and mode.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{ClusterError, io_err};
use super::handle::{Cluster, RELOCATED_ROOT};
use super::user::{RunAs, chown_tree, owned_by, traversable};

impl Cluster {
    pub(super) fn prepare_folders(&self) -> Result<(), ClusterError> {
        for dir in [self.root.clone(), self.socket_dir()] {
            fs::create_dir_all(&dir).map_err(|source| ClusterError::NotWritable {
                path: dir.clone(),
                source,
            })?;
        }
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .map_err(io_err("cannot set cluster folder permissions"))?;
        if let Some(user) = &self.run_as {
            let meta = fs::metadata(&self.root).map_err(io_err("cannot read cluster folder"))?;
            if meta.uid() != user.uid || !owned_by(&self.socket_dir(), user.uid) {
                chown_tree(&self.root, user.uid, user.gid).map_err(io_err(format!(
                    "cannot give {} to the {} user",
                    self.root.display(),
                    user.name
                )))?;
            }
        }
        Ok(())
    }
}

/// Holds `unitrack.lock` in the data folder for as long as the process lives.
pub(super) fn lock_data_dir(data_dir: &Path) -> Result<File, ClusterError> {
    let path = data_dir.join("unitrack.lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| ClusterError::NotWritable {
            path: data_dir.to_path_buf(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let pid = fs::read_to_string(&path)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(|s| format!(" (process {s})"))
                .unwrap_or_default();
            return Err(ClusterError::InUse {
                path: data_dir.to_path_buf(),
                pid,
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err("cannot lock data folder")(e)),
    }
    file.set_len(0).map_err(io_err("cannot write lock file"))?;
    write!(file, "{}", std::process::id()).map_err(io_err("cannot write lock file"))?;
    Ok(file)
}

/// `<data dir>/postgres`, unless the PostgreSQL user cannot walk to it.
pub(super) fn cluster_root(
    data_dir: &Path,
    run_as: Option<&RunAs>,
) -> Result<PathBuf, ClusterError> {
    let local = data_dir.join("postgres");
    let Some(user) = run_as else {
        return Ok(local);
    };
    // The data dir is ours: let others through it (not read it), so the cluster can live there.
    let meta = fs::metadata(data_dir).map_err(io_err("cannot read data folder"))?;
    if meta.mode() & 0o001 == 0 {
        let mode = (meta.mode() & 0o7777) | 0o011;
        fs::set_permissions(data_dir, fs::Permissions::from_mode(mode))
            .map_err(io_err("cannot open data folder to the PostgreSQL user"))?;
    }
    if data_dir.ancestors().all(|dir| traversable(dir, user)) {
        return Ok(local);
    }
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let relocated = Path::new(RELOCATED_ROOT).join(name);
    tracing::info!(
        data_dir = %data_dir.display(),
        cluster = %relocated.display(),
        "the {} user cannot reach the data folder; keeping the cluster in {RELOCATED_ROOT}",
        user.name
    );
    fs::create_dir_all(RELOCATED_ROOT).map_err(|source| ClusterError::NotWritable {
        path: RELOCATED_ROOT.into(),
        source,
    })?;
    fs::set_permissions(RELOCATED_ROOT, fs::Permissions::from_mode(0o711))
        .map_err(io_err("cannot set permissions"))?;
    // Leave a note where people will look for the data.
    let _ = fs::write(
        data_dir.join("postgres-location.txt"),
        format!("{}\n", relocated.display()),
    );
    Ok(relocated)
}
