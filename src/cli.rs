//! The command line. `serve` is the default; every command reads the same configuration.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::core::Error;
use crate::core::time::{Clock, SystemClock};
use crate::people::{passwords, roles, sessions, users};
use crate::{db, processes, startup, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "unitrack",
    version,
    about = "One issue tracker for the whole organisation"
)]
pub struct Cli {
    /// Configuration file (default: unitrack.toml in the current folder, if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default).
    Serve {
        /// Load the demo organisation into an external database too.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Keep process definitions as TOML files under version control.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Incoming e-mail.
    #[command(subcommand)]
    Mail(MailCommand),
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Read one message on stdin (an MTA pipe) and process it. Exit status as sysexits:
    /// 0 done, 65 unusable message (kept for Mail problems), 67 unknown mailbox, 75 try
    /// again later (database unreachable).
    Ingest {
        /// The address the message was delivered to.
        #[arg(long)]
        mailbox: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write every process (its draft) as <dir>/<key>.toml.
    Export {
        #[arg(long, default_value = "config/processes")]
        dir: PathBuf,
    },
    /// Check the files in <dir> against this database's roles and groups; change nothing.
    Check {
        #[arg(long, default_value = "config/processes")]
        dir: PathBuf,
    },
    /// Import the files in <dir> as drafts (all or nothing); --publish also publishes them.
    Import {
        #[arg(long, default_value = "config/processes")]
        dir: PathBuf,
        #[arg(long)]
        publish: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is asked for, or read from stdin with --password-stdin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password; signs the user out everywhere.
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Runs the command; errors are printed as one line and give exit status 1.
#[allow(clippy::print_stderr)]
pub fn run(cli: Cli) -> ExitCode {
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let command = cli.command.unwrap_or(Command::Serve { demo: false });
    if let Command::Mail(MailCommand::Ingest { mailbox }) = &command {
        return mail_ingest(&config, mailbox);
    }
    let log = match command {
        Command::Serve { .. } => config.log.clone(),
        _ => "warn".to_owned(),
    };
    telemetry::init(&log, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve { demo } => startup::run(config, demo).await,
            Command::Migrate => migrate(&config).await,
            Command::User(cmd) => user(&config, cmd).await,
            Command::Config(cmd) => config_files(&config, cmd).await,
            Command::Mail(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let database = startup::open_database(config).await?;
    let result = db::migrate(&database.pool).await;
    database.close().await?;
    result?;
    println!("database is up to date");
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("reading the password")?;
        anyhow::ensure!(first == again, "the two passwords are not the same");
        first
    };
    passwords::check_new(&password, "password").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(password)
}

fn field_errors(e: Error) -> anyhow::Error {
    match e {
        Error::Invalid(errors) => anyhow::anyhow!("{errors}"),
        other => anyhow::Error::new(other),
    }
}

#[allow(clippy::print_stdout)]
async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let clock = SystemClock;
    match command {
        UserCommand::Create {
            email,
            name,
            admin,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let hash = passwords::hash(password).await.map_err(field_errors)?;
            let database = startup::open_database(config).await?;
            let result = async {
                db::migrate(&database.pool).await?;
                let mut tx = database.pool.begin().await?;
                let role_name = if admin { "Admin" } else { "Requester" };
                let role = roles::find_by_name(&mut tx, role_name)
                    .await
                    .map_err(field_errors)?
                    .ok_or_else(|| anyhow::anyhow!("the {role_name} role was deleted"))?;
                let new = users::NewUser {
                    email: email.clone(),
                    display_name: name,
                    password_hash: Some(hash),
                    roles: vec![role.id],
                    ..users::NewUser::default()
                };
                users::create(&mut tx, &new, clock.now())
                    .await
                    .map_err(field_errors)?;
                tx.commit().await?;
                anyhow::Ok(())
            }
            .await;
            database.close().await?;
            result?;
            println!("created {email}{}", if admin { " (admin)" } else { "" });
        }
        UserCommand::SetPassword {
            email,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let hash = passwords::hash(password).await.map_err(field_errors)?;
            let database = startup::open_database(config).await?;
            let result = async {
                let mut tx = database.pool.begin().await?;
                let user = users::find_by_email(&mut tx, &email)
                    .await
                    .map_err(field_errors)?
                    .ok_or_else(|| anyhow::anyhow!("no account with e-mail {email}"))?;
                users::set_password_hash(&mut tx, user.id, &hash, clock.now())
                    .await
                    .map_err(field_errors)?;
                sessions::revoke_others(&mut tx, user.id, None)
                    .await
                    .map_err(field_errors)?;
                tx.commit().await?;
                anyhow::Ok(())
            }
            .await;
            database.close().await?;
            result?;
            println!("password set for {email}; their sessions were ended");
        }
    }
    Ok(())
}

fn read_dir(dir: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no .toml files in {}", dir.display());
    Ok(files)
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn config_files(config: &Config, command: ConfigCommand) -> anyhow::Result<()> {
    let database = startup::open_database(config).await?;
    let result = async {
        db::migrate(&database.pool).await?;
        let mut tx = database.pool.begin().await?;
        processes::ensure_defaults(&mut tx, SystemClock.now())
            .await
            .map_err(field_errors)?;
        match command {
            ConfigCommand::Export { dir } => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let files = processes::export_files(&mut tx)
                    .await
                    .map_err(field_errors)?;
                for (name, text) in &files {
                    let path = dir.join(name);
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                tx.commit().await?;
                println!("exported {} process(es) to {}", files.len(), dir.display());
            }
            ConfigCommand::Check { dir } => {
                let files = read_dir(&dir)?;
                let known = processes::known(&mut tx).await.map_err(field_errors)?;
                let (parsed, errors) = processes::check_files(&files, &known);
                for e in &errors {
                    eprintln!("{e}");
                }
                anyhow::ensure!(
                    errors.is_empty(),
                    "{} problem(s); nothing was changed",
                    errors.len()
                );
                println!("{} process file(s) are valid", parsed.len());
            }
            ConfigCommand::Import { dir, publish } => {
                let files = read_dir(&dir)?;
                match processes::import_files(&mut tx, &files, publish, SystemClock.now())
                    .await
                    .map_err(field_errors)?
                {
                    Ok(count) => {
                        tx.commit().await?;
                        println!(
                            "imported {count} process(es){}",
                            if publish {
                                " and published them"
                            } else {
                                " as drafts"
                            }
                        );
                    }
                    Err(errors) => {
                        for e in &errors {
                            eprintln!("{e}");
                        }
                        anyhow::bail!("{} problem(s); nothing was changed", errors.len());
                    }
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    database.close().await?;
    result
}

/// sysexits(3): the codes an MTA understands from a delivery program.
const EX_DATAERR: u8 = 65;
const EX_NOUSER: u8 = 67;
const EX_TEMPFAIL: u8 = 75;

/// `mail ingest`: one message from stdin. Errors are one line on stderr; the exit status
/// tells the MTA whether to bounce (65, 67) or to retry (75).
#[allow(clippy::print_stderr, clippy::print_stdout)]
fn mail_ingest(config: &Config, mailbox: &str) -> ExitCode {
    telemetry::init("warn", config.log_format);
    let mut raw = Vec::new();
    // Read at most one byte past the limit: that is enough to know it is too large, and the
    // stored prefix shows what it was.
    let limit = config.mail_max_bytes.saturating_add(1);
    if let Err(e) = std::io::Read::read_to_end(
        &mut std::io::Read::take(std::io::stdin().lock(), limit as u64),
        &mut raw,
    ) {
        eprintln!("error: reading the message from stdin: {e}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    runtime.block_on(async move {
        // One message, one connection: no pool to fill, no migrations (the server runs them).
        let config = Config {
            db_max_connections: 1,
            ..config.clone()
        };
        let database = match startup::open_database(&config).await {
            Ok(database) => database,
            Err(e) => {
                eprintln!("error: database unreachable, try again later: {e:#}");
                return ExitCode::from(EX_TEMPFAIL);
            }
        };
        let code = async {
            let mut conn = match database.pool.acquire().await {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("error: database unreachable, try again later: {e}");
                    return ExitCode::from(EX_TEMPFAIL);
                }
            };
            let found = crate::mail::find_by_address(&mut conn, mailbox).await;
            drop(conn);
            let mailbox = match found {
                Ok(Some(mailbox)) => mailbox,
                Ok(None) => {
                    eprintln!("error: no active mailbox {mailbox}");
                    return ExitCode::from(EX_NOUSER);
                }
                Err(e) => {
                    eprintln!("error: database unreachable, try again later: {e}");
                    return ExitCode::from(EX_TEMPFAIL);
                }
            };
            let outcome = crate::mail::ingest(
                &database.pool,
                &mailbox,
                &raw,
                crate::mail::Source::Pipe,
                config.mail_limits(),
                SystemClock.now(),
            )
            .await;
            match outcome {
                Ok(crate::mail::Outcome::Failed { mail, error }) => {
                    eprintln!("error: message {mail} kept but not processed: {error}");
                    ExitCode::from(EX_DATAERR)
                }
                Ok(outcome) => {
                    println!("{outcome}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: try again later: {e}");
                    ExitCode::from(EX_TEMPFAIL)
                }
            }
        }
        .await;
        if let Err(e) = database.close().await {
            eprintln!("warning: closing the database: {e:#}");
        }
        code
    })
}
