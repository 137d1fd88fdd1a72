//! The private cluster, started for real: restarts, root and relocation, stale and orphaned
//! servers, the watchdog, and the errors that say what to do.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::ConnectOptions;

use super::handle::RELOCATED_ROOT;
use super::server::data_dir_argument;
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
