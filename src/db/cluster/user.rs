//! Running PostgreSQL as an unprivileged user: PostgreSQL refuses to run as root, so a root
//! process runs it as the system user and gives it the folders it needs.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::ClusterError;

/// The unprivileged user PostgreSQL runs as when this process is root.
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) name: String,
}

impl RunAs {
    /// The user to run as when this process is root (`system_user`); `None` otherwise.
    pub(super) fn when_root(system_user: &str) -> Result<Option<Self>, ClusterError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        let user = nix::unistd::User::from_name(system_user)
            .ok()
            .flatten()
            .ok_or_else(|| ClusterError::NoUnprivilegedUser {
                user: system_user.to_owned(),
            })?;
        Ok(Some(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            name: user.name,
        }))
    }
}

pub(super) fn traversable(dir: &Path, user: &RunAs) -> bool {
    let Ok(meta) = fs::metadata(dir) else {
        return false;
    };
    let mode = meta.mode();
    if meta.uid() == user.uid {
        mode & 0o100 != 0
    } else if meta.gid() == user.gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

pub(super) fn owned_by(path: &Path, uid: u32) -> bool {
    fs::metadata(path).is_ok_and(|m| m.uid() == uid)
}

pub(super) fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
