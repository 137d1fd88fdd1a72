//! A new cluster: initdb, and the settings Unitrack writes at every start.

use std::fs::{self, OpenOptions};
use std::io::Write;

use super::error::{ClusterError, io_err};
use super::handle::{Cluster, PORT, SUPERUSER};

impl Cluster {
    pub(super) fn initdb(&self) -> Result<(), ClusterError> {
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
    pub(super) fn write_settings(&self) -> Result<(), ClusterError> {
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
}
