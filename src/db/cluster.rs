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

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The superuser and the database that a private cluster gets.
pub const SUPERUSER: &str = "unitrack";
const PORT: u16 = 5432;
const RELOCATED_ROOT: &str = "/var/lib/unitrack";

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

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}

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

#[derive(Debug, Clone)]
struct RunAs {
    uid: u32,
    gid: u32,
    name: String,
}

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
    bin_dir: PathBuf,
    root: PathBuf,
    run_as: Option<RunAs>,
    database: String,
    temporary: bool,
    watchdog: Option<(Child, ChildStdin)>,
    _lock: File,
    stopped: bool,
}

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

        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name(&options.system_user)
                .ok()
                .flatten()
                .ok_or_else(|| ClusterError::NoUnprivilegedUser {
                    user: options.system_user.clone(),
                })?;
            Some(RunAs {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
                name: user.name,
            })
        } else {
            None
        };

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

    fn prepare_folders(&self) -> Result<(), ClusterError> {
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

    fn initdb(&self) -> Result<(), ClusterError> {
        let pgdata = self.pgdata();
        if pgdata.exists() {
            // A half-finished initdb from an earlier, interrupted start.
            fs::remove_dir_all(&pgdata).map_err(io_err("cannot clear a half-made cluster"))?;
        }
        let mut cmd = self.command(&self.bin_dir.join("initdb"));
        cmd.arg("-D")
            .arg(&pgdata)
            .args(["--username", SUPERUSER, "--auth", "trust"])
            .args(["--encoding", "UTF8", "--locale", "C", "--no-instructions"]);
        self.run(cmd, "initdb")
    }

    /// Settings live in `unitrack.conf`, included by `postgresql.conf` and rewritten at every
    /// start so a relocated or moved folder keeps working.
    fn write_settings(&self) -> Result<(), ClusterError> {
        let pgdata = self.pgdata();
        let main_conf = pgdata.join("postgresql.conf");
        let text = fs::read_to_string(&main_conf).map_err(io_err("cannot read postgresql.conf"))?;
        let include = "include_if_exists = 'unitrack.conf'";
        if !text.contains(include) {
            let mut file = OpenOptions::new()
                .append(true)
                .open(&main_conf)
                .map_err(io_err("cannot write postgresql.conf"))?;
            writeln!(file, "\n{include}").map_err(io_err("cannot write postgresql.conf"))?;
        }
        let socket = self.socket_dir().display().to_string().replace('\'', "''");
        let settings = format!(
            "# Written by Unitrack at every start; edit postgresql.conf for your own settings.\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{socket}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = 200\n\
             shared_buffers = 128MB\n"
        );
        let conf = pgdata.join("unitrack.conf");
        fs::write(&conf, settings).map_err(io_err("cannot write unitrack.conf"))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(&conf, Some(user.uid), Some(user.gid))
                .map_err(io_err("cannot give unitrack.conf to PostgreSQL"))?;
        }
        Ok(())
    }

    /// A `postmaster.pid` left by a crash: stop the server when it is an orphan of an earlier
    /// Unitrack (we hold the data folder lock, so no live Unitrack owns it); otherwise its
    /// process is gone or the pid was reused by something else, so remove the file.
    fn clear_stale_server(&self) -> Result<(), ClusterError> {
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

    fn start_watchdog(&mut self) -> Result<(), ClusterError> {
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

    fn pg_ctl_start(&self) -> Result<(), ClusterError> {
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

    fn create_database(&self) -> Result<(), ClusterError> {
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

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "stopping the private PostgreSQL failed");
        }
    }
}

/// Holds `unitrack.lock` in the data folder for as long as the process lives.
fn lock_data_dir(data_dir: &Path) -> Result<File, ClusterError> {
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
fn cluster_root(data_dir: &Path, run_as: Option<&RunAs>) -> Result<PathBuf, ClusterError> {
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

fn traversable(dir: &Path, user: &RunAs) -> bool {
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

fn owned_by(path: &Path, uid: u32) -> bool {
    fs::metadata(path).is_ok_and(|m| m.uid() == uid)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// The folder after `-D` (or in `-D<folder>`) in a NUL-separated command line.
fn data_dir_argument(cmdline: &[u8]) -> Option<PathBuf> {
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

fn read_pid(pid_file: &Path) -> Option<i32> {
    fs::read_to_string(pid_file)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path) -> ClusterOptions {
        ClusterOptions::new(dir, "unitrack_test")
    }

    /// Whether `pid` is gone within a few seconds: pg_ctl returns once the lock file is
    /// removed, which the postmaster does just before it exits.
    fn gone(pid: i32) -> bool {
        for _ in 0..100 {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Running, not merely a zombie waiting for a parent that does not reap (as in containers).
    fn alive(pid: i32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim().to_owned())
            })
            .is_some_and(|rest| !rest.starts_with('Z'))
    }

    fn query_one(cluster: &Cluster, sql: &'static str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let options = cluster.connect_options("unitrack_test");
        rt.block_on(async move {
            let mut conn = options.connect().await.unwrap();
            let value: String = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
            value
        })
    }

    fn execute(cluster: &Cluster, sql: &'static str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let options = cluster.connect_options("unitrack_test");
        rt.block_on(async move {
            let mut conn = options.connect().await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        });
    }

    #[test]
    fn starts_stops_and_keeps_data_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        let pid = cluster.postmaster_pid().unwrap();
        assert!(alive(pid));
        // Unix socket only: no TCP listener.
        assert_eq!(
            query_one(&cluster, "select current_setting('listen_addresses')"),
            ""
        );
        execute(
            &cluster,
            "create table kept (v text); insert into kept values ('yes')",
        );
        cluster.stop().unwrap();
        assert!(gone(pid), "postgres {pid} still running after stop");

        let cluster = Cluster::start(&options(dir.path())).unwrap();
        assert_eq!(query_one(&cluster, "select v from kept"), "yes");
        let pid = cluster.postmaster_pid().unwrap();
        drop(cluster);
        assert!(gone(pid), "postgres {pid} still running after drop");
    }

    #[test]
    fn runs_postgres_as_an_unprivileged_user_when_root() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        let pid = cluster.postmaster_pid().unwrap();
        let owner = fs::metadata(format!("/proc/{pid}")).unwrap().uid();
        assert_ne!(owner, 0, "postgres must never run as root");
        let expected = if nix::unistd::geteuid().is_root() {
            nix::unistd::User::from_name("postgres")
                .unwrap()
                .unwrap()
                .uid
        } else {
            nix::unistd::geteuid()
        };
        assert_eq!(owner, expected.as_raw());
        cluster.stop().unwrap();
    }

    /// Live processes whose command line mentions `needle`.
    fn processes_mentioning(needle: &str) -> Vec<String> {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .parse::<i32>()
                    .is_ok_and(alive)
            })
            .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(needle))
            .collect()
    }

    #[test]
    #[allow(clippy::print_stderr)]
    fn as_root_a_data_dir_postgres_cannot_reach_is_relocated() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: relocation happens only when running as root");
            return;
        }
        // A checkout under /root: the PostgreSQL user cannot pass through a 0700 folder.
        let private = tempfile::tempdir().unwrap();
        fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let data = private.path().join("checkout").join(".unitrack");
        let cluster = Cluster::start(&options(&data)).unwrap();
        let root = cluster.root().to_path_buf();
        assert!(root.starts_with(RELOCATED_ROOT), "{}", root.display());
        // Removed however the test ends (it is outside the temporary folder).
        struct Remove(PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let _remove = Remove(root.clone());
        let note = fs::read_to_string(data.join("postgres-location.txt")).unwrap();
        assert_eq!(note.trim(), root.display().to_string());
        assert_eq!(
            fs::metadata(private.path()).unwrap().mode() & 0o777,
            0o700,
            "the folder above the data dir is left as it was"
        );
        let pid = cluster.postmaster_pid().unwrap();
        let owner = fs::metadata(format!("/proc/{pid}")).unwrap().uid();
        assert_eq!(owner, fs::metadata(&root).unwrap().uid());
        assert_ne!(owner, 0);
        execute(
            &cluster,
            "create table kept (v text); insert into kept values ('yes')",
        );
        cluster.stop().unwrap();
        assert!(gone(pid), "postgres {pid} still running after stop");

        // The second start finds the relocated cluster again.
        let cluster = Cluster::start(&options(&data)).unwrap();
        assert_eq!(cluster.root(), root);
        assert_eq!(query_one(&cluster, "select v from kept"), "yes");
        let pid = cluster.postmaster_pid().unwrap();
        cluster.stop().unwrap();
        assert!(gone(pid), "postgres {pid} still running after stop");
        let root_text = root.display().to_string();
        assert_eq!(processes_mentioning(&root_text), Vec::<String>::new());
    }

    #[test]
    fn a_second_start_on_the_same_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        let err = Cluster::start(&options(dir.path())).unwrap_err();
        assert!(matches!(err, ClusterError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("another Unitrack"), "{err}");
        cluster.stop().unwrap();
    }

    #[test]
    fn recovers_from_a_stale_postmaster_pid() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        let pid_file = cluster.pgdata().join("postmaster.pid");
        cluster.stop().unwrap();
        // A crash leaves the lock file naming a process that is now something else: this one.
        fs::write(&pid_file, format!("{}\n/x\n", std::process::id())).unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        assert_ne!(cluster.postmaster_pid(), Some(std::process::id() as i32));
        cluster.stop().unwrap();
    }

    #[test]
    fn a_stale_pid_of_an_unrelated_process_is_never_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        let pid_file = cluster.pgdata().join("postmaster.pid");
        cluster.stop().unwrap();

        // The pid now belongs to some other program.
        let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
        let sleeper_pid = sleeper.id() as i32;
        fs::write(&pid_file, format!("{sleeper_pid}\n/x\n")).unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        assert!(alive(sleeper_pid), "an unrelated process was stopped");
        assert_ne!(cluster.postmaster_pid(), Some(sleeper_pid));
        cluster.stop().unwrap();
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();

        // The pid now belongs to the PostgreSQL of another cluster: same program, other data.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Cluster::start(&options(other_dir.path())).unwrap();
        let other_pid = other.postmaster_pid().unwrap();
        fs::write(&pid_file, format!("{other_pid}\n/x\n")).unwrap();
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        assert!(alive(other_pid), "another cluster's server was stopped");
        assert!(
            cluster
                .postmaster_pid()
                .is_some_and(|p| p != other_pid && alive(p))
        );
        assert_eq!(query_one(&other, "select 'still here'"), "still here");
        cluster.stop().unwrap();
        other.stop().unwrap();
    }

    #[test]
    fn the_data_folder_is_read_from_a_command_line() {
        assert_eq!(
            data_dir_argument(b"/usr/lib/postgresql/15/bin/postgres\0-D\0/srv/pg/data\0"),
            Some(PathBuf::from("/srv/pg/data"))
        );
        assert_eq!(
            data_dir_argument(b"postgres\0-D/srv/pg/data\0-p\x005432\0"),
            Some(PathBuf::from("/srv/pg/data"))
        );
        assert_eq!(data_dir_argument(b"sleep\x0060\0"), None);
        assert_eq!(data_dir_argument(b"postgres\0-D"), None);
        assert_eq!(data_dir_argument(b"postgres\0-D\0"), None);
    }

    #[test]
    fn an_orphaned_server_is_stopped_and_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster::start(&options(dir.path())).unwrap();
        let first = cluster.postmaster_pid().unwrap();
        // Simulate Unitrack being killed: the server stays, but nobody holds the folder lock.
        let (mut watchdog, stdin) = cluster.watchdog.take().unwrap();
        watchdog.kill().unwrap();
        watchdog.wait().unwrap();
        drop(stdin);
        cluster.stopped = true;
        drop(cluster);
        assert!(alive(first));
        let cluster = Cluster::start(&options(dir.path())).unwrap();
        assert!(gone(first), "the orphan must be stopped");
        assert!(cluster.postmaster_pid().is_some_and(alive));
        cluster.stop().unwrap();
    }

    #[test]
    fn the_watchdog_stops_the_server_when_its_owner_disappears() {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Cluster::start(&options(dir.path())).unwrap();
        let pid = cluster.postmaster_pid().unwrap();
        // Closing the pipe is what the kernel does when the owning process dies.
        let (mut watchdog, stdin) = cluster.watchdog.take().unwrap();
        drop(stdin);
        watchdog.wait().unwrap();
        cluster.stopped = true;
        assert!(gone(pid), "postgres {pid} survived its owner");
    }

    #[test]
    fn missing_programs_and_unwritable_folders_get_actionable_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        opts.bins = BinSearch {
            path: Some(dir.path().as_os_str().to_owned()),
            versioned_roots: vec![dir.path().join("nothing")],
        };
        let err = Cluster::start(&opts).unwrap_err();
        assert!(matches!(err, ClusterError::NoBinaries));
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");

        let file = dir.path().join("a-file");
        fs::write(&file, "").unwrap();
        let err = Cluster::start(&options(&file.join("data"))).unwrap_err();
        assert!(matches!(err, ClusterError::NotWritable { .. }), "{err}");
        assert!(err.to_string().contains("UNITRACK_DATA_DIR"), "{err}");
    }

    #[test]
    fn newest_versioned_install_is_preferred() {
        let dir = tempfile::tempdir().unwrap();
        for version in ["9.6", "13", "16"] {
            let bin = dir.path().join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            for program in ["initdb", "pg_ctl", "postgres"] {
                fs::write(bin.join(program), "").unwrap();
            }
        }
        let search = BinSearch {
            path: None,
            versioned_roots: vec![dir.path().to_path_buf()],
        };
        assert_eq!(search.find().unwrap(), dir.path().join("16").join("bin"));
    }
}
