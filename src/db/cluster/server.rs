//! The server process: a `postmaster.pid` left by a crash (ours to stop, or stale), the
//! watchdog that stops PostgreSQL however this process ends, `pg_ctl start`, and the database.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection};

use super::error::{ClusterError, io_err};
use super::handle::Cluster;

impl Cluster {
    /// A `postmaster.pid` left by a crash: stop the server when it is an orphan of an earlier
    /// Unitrack (we hold the data folder lock, so no live Unitrack owns it); otherwise its
    /// process is gone or the pid was reused by something else, so remove the file.
    pub(super) fn clear_stale_server(&self) -> Result<(), ClusterError> {
        let pid_file = self.pgdata().join("postmaster.pid");
        let Some(pid) = read_pid(&pid_file) else {
            return Ok(());
        };
        if self.serves_our_data(pid) {
            tracing::warn!(
                pid,
                "stopping a PostgreSQL left running by an earlier Unitrack"
            );
            self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60", "-s"])?;
        } else if pid_file.exists() {
            tracing::warn!(pid, "removing a stale postmaster.pid");
            fs::remove_file(&pid_file).map_err(io_err("cannot remove stale postmaster.pid"))?;
            for entry in fs::read_dir(self.socket_dir())
                .into_iter()
                .flatten()
                .flatten()
            {
                if entry.file_name().to_string_lossy().starts_with(".s.PGSQL.") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Whether `pid` is a PostgreSQL server of this cluster: our `postgres` program, working
    /// in our data folder. A pid from a stale file may since belong to anything, including
    /// another cluster's server (the system's, or another Unitrack's), which we must not stop.
    fn serves_our_data(&self, pid: i32) -> bool {
        let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
        let program = fs::canonicalize(self.bin_dir.join("postgres")).ok();
        if exe.is_none() || exe != program {
            return false;
        }
        let Ok(pgdata) = fs::canonicalize(self.pgdata()) else {
            return false;
        };
        // The postmaster changes into its data folder at start; pg_ctl names it after -D.
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok();
        let argument = fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .and_then(|cmdline| data_dir_argument(&cmdline))
            .and_then(|dir| fs::canonicalize(dir).ok());
        cwd.as_ref() == Some(&pgdata) || argument.as_ref() == Some(&pgdata)
    }

    pub(super) fn start_watchdog(&mut self) -> Result<(), ClusterError> {
        use std::os::unix::process::CommandExt;
        let script = if self.temporary {
            r#"read _ || true; "$0" stop -D "$1" -m immediate -s >/dev/null 2>&1; rm -rf "$2""#
        } else {
            r#"read _ || true; "$0" stop -D "$1" -m fast -s >/dev/null 2>&1"#
        };
        let mut cmd = self.command(Path::new("/bin/sh"));
        cmd.arg("-c")
            .arg(script)
            .arg(self.bin_dir.join("pg_ctl"))
            .arg(self.pgdata())
            .arg(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Ctrl-C in a terminal must not reach it.
            .process_group(0);
        let mut child = cmd.spawn().map_err(io_err("cannot start the watchdog"))?;
        let stdin = child.stdin.take().ok_or_else(|| ClusterError::Io {
            context: "watchdog".into(),
            source: io::Error::other("no stdin pipe"),
        })?;
        self.watchdog = Some((child, stdin));
        Ok(())
    }

    pub(super) fn pg_ctl_start(&self) -> Result<(), ClusterError> {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command(&self.bin_dir.join("pg_ctl"));
        cmd.args(["start", "-w", "-t", "60", "-s"])
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(self.log_path())
            .arg("-p")
            .arg(self.bin_dir.join("postgres"))
            // Its own process group: Ctrl-C goes to Unitrack, which then stops it in order.
            .process_group(0);
        self.run(cmd, "pg_ctl start")
    }

    pub(super) fn create_database(&self) -> Result<(), ClusterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_err("cannot start a runtime"))?;
        let options = self.connect_options("postgres");
        let socket = self.socket_dir();
        let database = self.database.clone();
        runtime.block_on(async move {
            let not_ready = |source| ClusterError::NotReady {
                socket: socket.clone(),
                source,
            };
            let mut attempt = 0;
            let mut conn = loop {
                match options.connect().await {
                    Ok(conn) => break conn,
                    Err(e) if attempt >= 50 => return Err(not_ready(e)),
                    Err(_) => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            };
            let exists: bool =
                sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                    .bind(&database)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(not_ready)?;
            if !exists {
                let sql = format!("create database \"{}\"", database.replace('"', "\"\""));
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(not_ready)?;
            }
            conn.close().await.map_err(not_ready)
        })
    }
}

/// The folder after `-D` (or in `-D<folder>`) in a NUL-separated command line.
pub(super) fn data_dir_argument(cmdline: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut args = cmdline.split(|b| *b == 0);
    while let Some(arg) = args.next() {
        if arg == b"-D" {
            return args
                .next()
                .filter(|dir| !dir.is_empty())
                .map(|dir| PathBuf::from(std::ffi::OsStr::from_bytes(dir)));
        }
        if let Some(dir) = arg.strip_prefix(b"-D").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir)));
        }
    }
    None
}

pub(super) fn read_pid(pid_file: &Path) -> Option<i32> {
    fs::read_to_string(pid_file)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}
