//! A private PostgreSQL cluster for when no `DATABASE_URL` is given: found on the machine,
//! initialised into the data folder, reachable only through a Unix socket, stopped on exit.
//!
//! Layout under the cluster root: `data/` (PGDATA), `run/` (the socket), `postgres.log`.
//! The root is `<data dir>/postgres`, except when the process is root and the PostgreSQL user
//! cannot reach the data dir (e.g. under `/root`): then it is `/var/lib/unitrack/<hash>`.
//!
//! A watchdog shell holds the read end of a pipe whose write end only this process holds.
//! However this process ends — return, panic, `kill -9` — the pipe closes and the watchdog
//! stops PostgreSQL, so no server is left behind.
//!
//! By concern: [`BinSearch`] finds the server programs (`bins`); `user` runs them as an
//! unprivileged user when this process is root; `folders` locks the data folder and picks the
//! cluster root; `init` runs initdb and writes our settings; `server` starts PostgreSQL (and
//! its watchdog), clears what a crash left, and creates the database. This file is the
//! lifecycle: start, the ways to reach it, stop.

mod bins;
mod error;
mod folders;
mod handle;
mod init;
mod server;
#[cfg(test)]
mod tests;
mod user;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::postgres::PgConnectOptions;

pub use bins::BinSearch;
pub use error::ClusterError;
use error::io_err;
use folders::{cluster_root, lock_data_dir};
use handle::PORT;
pub use handle::{Cluster, ClusterOptions, SUPERUSER};
use server::read_pid;
use user::RunAs;

impl Cluster {
    /// Finds the programs, initialises on first use, starts and waits until ready, and creates
    /// the database. Blocking: call it from `spawn_blocking` or before the runtime starts.
    pub fn start(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin_dir = options.bins.find()?;
        let data_dir = &options.data_dir;
        fs::create_dir_all(data_dir).map_err(|source| ClusterError::NotWritable {
            path: data_dir.clone(),
            source,
        })?;
        let data_dir = fs::canonicalize(data_dir).map_err(io_err("cannot resolve data folder"))?;
        let lock = lock_data_dir(&data_dir)?;

        let run_as = RunAs::when_root(&options.system_user)?;

        let root = cluster_root(&data_dir, run_as.as_ref())?;
        let mut cluster = Cluster {
            bin_dir,
            root,
            run_as,
            database: options.database.clone(),
            temporary: options.temporary,
            watchdog: None,
            _lock: lock,
            stopped: false,
        };
        cluster.prepare_folders()?;
        if !cluster.pgdata().join("PG_VERSION").is_file() {
            cluster.initdb()?;
        }
        cluster.write_settings()?;
        cluster.clear_stale_server()?;
        cluster.start_watchdog()?;
        cluster.pg_ctl_start()?;
        cluster.create_database()?;
        Ok(cluster)
    }

    pub fn pgdata(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// Where the cluster lives (may differ from the data dir when relocated).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Connection options for a database of this cluster.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.socket_dir())
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// The database this cluster was started for.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// A URL for `psql` or `DATABASE_URL`: the socket folder, percent-encoded, as the host.
    pub fn display_url(&self, database: &str) -> String {
        let socket: String =
            url::form_urlencoded::byte_serialize(self.socket_dir().as_os_str().as_encoded_bytes())
                .collect();
        format!("postgresql://{SUPERUSER}@{socket}:{PORT}/{database}")
    }

    /// The process id of the running postmaster, read from its lock file.
    pub fn postmaster_pid(&self) -> Option<i32> {
        read_pid(&self.pgdata().join("postmaster.pid"))
    }

    /// Stops PostgreSQL (fast shutdown: sessions end, data is flushed) and waits for it.
    pub fn stop(mut self) -> Result<(), ClusterError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ClusterError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let result = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60", "-s"]);
        if let Some((mut child, stdin)) = self.watchdog.take() {
            let _ = child.kill();
            drop(stdin);
            let _ = child.wait();
        }
        if self.temporary {
            let _ = fs::remove_dir_all(&self.root);
        }
        result
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("PGDATA")
            .stdin(Stdio::null());
        if let Some(user) = &self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }

    fn run(&self, mut cmd: Command, name: &str) -> Result<(), ClusterError> {
        let output = cmd.output().map_err(io_err(format!("cannot run {name}")))?;
        if output.status.success() {
            Ok(())
        } else {
            let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            if detail.is_empty() {
                detail = format!("exit status {}", output.status);
            }
            let log = self.log_tail();
            if !log.is_empty() {
                detail.push_str("; server log: ");
                detail.push_str(&log);
            }
            Err(ClusterError::Command {
                command: name.to_owned(),
                detail,
            })
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), ClusterError> {
        let mut cmd = self.command(&self.bin_dir.join("pg_ctl"));
        cmd.args(args).arg("-D").arg(self.pgdata());
        self.run(cmd, &format!("pg_ctl {}", args.first().unwrap_or(&"")))
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "stopping the private PostgreSQL failed");
        }
    }
}
