//! IMAP polling: a mailbox may have one IMAP account (`imap_accounts`). The job runner polls
//! each active account once a minute (`poll`): log in, SELECT the folder, check UIDVALIDITY
//! (changed: start from UID 0 again; ingest's Message-ID check keeps that from duplicating),
//! `UID SEARCH` for UIDs above `last_uid`, `UID FETCH … BODY.PEEK[]` in batches, ingest each
//! (stored first), record `last_uid`, then MOVE the batch to the processed folder (created if
//! missing). A message that cannot be processed is still stored (Mail problems) and moved;
//! only a database failure stops the round. Connection and login errors go in `last_error` and
//! the next round tries again.
//!
//! TLS: rustls with the `ring` provider and the Mozilla roots (`webpki-roots`); `implicit`
//! (port 993), `starttls` (143), or `none`, which is allowed for the local host only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Client;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use sqlx::{FromRow, PgConnection, PgPool};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::{Limits, Source, ingest};
use crate::core::ids::MailboxId;
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

/// Messages fetched per `UID FETCH`.
const BATCH: usize = 20;
/// Longest a TCP connect, the TLS handshake and the greeting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest one whole round may take (the job lease is five minutes).
const ROUND_TIMEOUT: Duration = Duration::from_secs(180);

/// How the connection is secured.
pub const TLS_MODES: &[&str] = &["implicit", "starttls", "none"];

/// An IMAP account as stored. `Debug` leaves the password out.
#[derive(Clone, FromRow)]
pub struct Account {
    pub mailbox_id: MailboxId,
    pub host: String,
    pub port: i32,
    pub tls: String,
    pub username: String,
    pub password: String,
    pub folder: String,
    pub processed_folder: String,
    pub uid_validity: Option<i64>,
    pub last_uid: i64,
    pub last_polled_at: Option<jiff_sqlx::Timestamp>,
    pub last_error: Option<String>,
    pub active: bool,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("mailbox_id", &self.mailbox_id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"***")
            .field("folder", &self.folder)
            .field("last_uid", &self.last_uid)
            .field("last_error", &self.last_error)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn last_polled(&self) -> String {
        self.last_polled_at
            .as_ref()
            .map(|t| crate::core::time::display(t.to_jiff()))
            .unwrap_or_else(|| "never".into())
    }
}

/// An account as an admin enters it. An empty password keeps the stored one.
#[derive(Clone, Default)]
pub struct AccountInput {
    pub host: String,
    pub port: String,
    pub tls: String,
    pub username: String,
    pub password: String,
    pub folder: String,
    pub processed_folder: String,
    pub active: bool,
}

impl fmt::Debug for AccountInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountInput")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "mailbox_id, host, port, tls, username, password, folder,
    processed_folder, uid_validity, last_uid, last_polled_at, last_error, active";

fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

fn folder_ok(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 200 && !name.contains(['"', '\\', '\r', '\n'])
}

/// Adds or changes the account of a mailbox.
pub async fn save(
    conn: &mut PgConnection,
    mailbox: MailboxId,
    input: &AccountInput,
    now: Timestamp,
) -> Result<()> {
    let existing = find(conn, mailbox).await?;
    let mut errors = FieldErrors::new();
    let host = input.host.trim().to_ascii_lowercase();
    if host.is_empty() || host.contains(char::is_whitespace) || host.len() > 253 {
        errors.add("host", "Enter the IMAP server's host name.");
    }
    let port = input.port.trim().parse::<u16>().ok().filter(|p| *p > 0);
    if port.is_none() {
        errors.add(
            "port",
            "Enter a port between 1 and 65535 (993, or 143 with STARTTLS).",
        );
    }
    if !TLS_MODES.contains(&input.tls.as_str()) {
        errors.add("tls", "Choose how the connection is secured.");
    } else if input.tls == "none" && !host.is_empty() && !is_local(&host) {
        errors.add(
            "tls",
            "Without TLS the password travels in clear: only for an IMAP server on this machine.",
        );
    }
    let username = input.username.trim();
    if username.is_empty() || username.len() > 200 {
        errors.add("username", "Enter the user name.");
    }
    if input.password.is_empty() && existing.is_none() {
        errors.add("password", "Enter the password.");
    }
    if input.password.len() > 500 {
        errors.add("password", "Use at most 500 characters.");
    }
    let folder = input.folder.trim();
    let processed = input.processed_folder.trim();
    if !folder_ok(folder) {
        errors.add("folder", "Enter a folder name (e.g. INBOX).");
    }
    if !folder_ok(processed) {
        errors.add("processed_folder", "Enter a folder name (e.g. Processed).");
    } else if processed == folder {
        errors.add(
            "processed_folder",
            "Use another folder than the one that is read.",
        );
    }
    errors.into_result()?;
    let password = if input.password.is_empty() {
        existing.map(|a| a.password).unwrap_or_default()
    } else {
        input.password.clone()
    };
    sqlx::query(
        "insert into imap_accounts (mailbox_id, host, port, tls, username, password, folder,
                                    processed_folder, active, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         on conflict (mailbox_id) do update set host = excluded.host, port = excluded.port,
             tls = excluded.tls, username = excluded.username, password = excluded.password,
             processed_folder = excluded.processed_folder, active = excluded.active,
             updated_at = excluded.updated_at,
             -- Another server or folder: its UIDs mean nothing here.
             uid_validity = case when (imap_accounts.host, imap_accounts.folder, imap_accounts.username)
                                      = (excluded.host, excluded.folder, excluded.username)
                                 then imap_accounts.uid_validity end,
             last_uid = case when (imap_accounts.host, imap_accounts.folder, imap_accounts.username)
                                  = (excluded.host, excluded.folder, excluded.username)
                             then imap_accounts.last_uid else 0 end,
             folder = excluded.folder, last_error = null",
    )
    .bind(mailbox)
    .bind(&host)
    .bind(i32::from(port.unwrap_or(993)))
    .bind(&input.tls)
    .bind(username)
    .bind(&password)
    .bind(folder)
    .bind(processed)
    .bind(input.active)
    .bind(to_db(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the account of a mailbox (true when there was one).
pub async fn remove(conn: &mut PgConnection, mailbox: MailboxId) -> Result<bool> {
    let done = sqlx::query("delete from imap_accounts where mailbox_id = $1")
        .bind(mailbox)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(conn: &mut PgConnection, mailbox: MailboxId) -> Result<Option<Account>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from imap_accounts where mailbox_id = $1"
    )))
    .bind(mailbox)
    .fetch_optional(conn)
    .await?)
}

/// The mailboxes whose account is polled (both active).
pub async fn due(conn: &mut PgConnection) -> Result<Vec<MailboxId>> {
    Ok(sqlx::query_scalar(
        "select a.mailbox_id from imap_accounts a join mailboxes b on b.id = a.mailbox_id
         where a.active and b.active order by a.mailbox_id",
    )
    .fetch_all(conn)
    .await?)
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    /// Messages given to ingest.
    pub taken: usize,
    /// The IMAP error of the round, also written to `last_error`.
    pub error: Option<String>,
}

/// One round for the account of `mailbox`. IMAP trouble is recorded on the account and is
/// not an error here (the next round retries); a database failure is.
pub async fn poll(
    pool: &PgPool,
    mailbox: MailboxId,
    limits: Limits,
    now: Timestamp,
) -> Result<Polled> {
    let mut conn = pool.acquire().await?;
    let Some(account) = find(&mut conn, mailbox).await? else {
        return Ok(Polled::default());
    };
    let target = super::find(&mut conn, mailbox).await?;
    drop(conn);
    if !account.active || !target.active {
        return Ok(Polled::default());
    }
    let mut taken = 0;
    let round = tokio::time::timeout(
        ROUND_TIMEOUT,
        run_round(pool, &account, &target, limits, now, &mut taken),
    )
    .await
    .unwrap_or_else(|_| Err(Failure::Imap("the round took too long".into())));
    let error = match round {
        Ok(()) => None,
        Err(Failure::Imap(message)) => Some(message),
        Err(Failure::Db(e)) => return Err(e),
    };
    if let Some(message) = &error {
        tracing::warn!(mailbox = %target.address, host = %account.host, error = %message, "imap poll");
    }
    sqlx::query(
        "update imap_accounts set last_polled_at = $2, last_error = $3 where mailbox_id = $1",
    )
    .bind(mailbox)
    .bind(to_db(now))
    .bind(&error)
    .execute(pool)
    .await?;
    Ok(Polled { taken, error })
}

enum Failure {
    Imap(String),
    Db(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Db(e)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e.into())
    }
}

impl From<async_imap::error::Error> for Failure {
    fn from(e: async_imap::error::Error) -> Self {
        Failure::Imap(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Imap(e.to_string())
    }
}

/// The stream under the IMAP client: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

fn tls_connector() -> std::result::Result<TlsConnector, Failure> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Imap(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn secure(tcp: TcpStream, host: &str) -> std::result::Result<Box<dyn Io>, Failure> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| Failure::Imap(format!("{host} is not a valid TLS server name")))?;
    let tls = tls_connector()?
        .connect(name, tcp)
        .await
        .map_err(|e| Failure::Imap(format!("TLS with {host}: {e}")))?;
    Ok(Box::new(tls))
}

/// Connects, secures and reads the greeting.
async fn connect(account: &Account) -> std::result::Result<Client<Box<dyn Io>>, Failure> {
    let host = account.host.as_str();
    let port = u16::try_from(account.port).unwrap_or(993);
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| Failure::Imap(format!("cannot connect to {host}:{port}: {e}")))?;
    let stream: Box<dyn Io> = match account.tls.as_str() {
        "implicit" => secure(tcp, host).await?,
        "starttls" => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            client.run_command_and_check_ok("STARTTLS", None).await?;
            secure(client.into_inner(), host).await?
        }
        _ => Box::new(tcp),
    };
    let mut client = Client::new(stream);
    if account.tls != "starttls" {
        greeting(&mut client).await?;
    }
    Ok(client)
}

async fn greeting<T: Io>(client: &mut Client<T>) -> std::result::Result<(), Failure> {
    match client.read_response().await? {
        Some(_) => Ok(()),
        None => Err(Failure::Imap("the server closed the connection".into())),
    }
}

async fn run_round(
    pool: &PgPool,
    account: &Account,
    mailbox: &super::Mailbox,
    limits: Limits,
    now: Timestamp,
    taken: &mut usize,
) -> std::result::Result<(), Failure> {
    let client = tokio::time::timeout(CONNECT_TIMEOUT, connect(account))
        .await
        .map_err(|_| {
            Failure::Imap(format!("no answer from {}:{}", account.host, account.port))
        })??;
    let mut session = client
        .login(&account.username, &account.password)
        .await
        .map_err(|(e, _)| Failure::Imap(format!("login as {} refused: {e}", account.username)))?;
    let selected = session
        .select(&account.folder)
        .await
        .map_err(|e| Failure::Imap(format!("cannot open folder {}: {e}", account.folder)))?;
    let validity = selected.uid_validity.map(i64::from);
    let mut last_uid = account.last_uid;
    if validity != account.uid_validity {
        // A new folder (or the first round): its UIDs start over.
        last_uid = 0;
        sqlx::query(
            "update imap_accounts set uid_validity = $2, last_uid = 0 where mailbox_id = $1",
        )
        .bind(account.mailbox_id)
        .bind(validity)
        .execute(pool)
        .await?;
    }
    // Exists already: fine (the error is ignored); any real problem shows at MOVE.
    let _ = session.create(&account.processed_folder).await;
    let found = session
        .uid_search(format!("UID {}:*", last_uid + 1))
        .await?;
    // `N:*` always includes the newest message, even below N.
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|uid| i64::from(*uid) > last_uid)
        .collect();
    uids.sort_unstable();
    for batch in uids.chunks(BATCH) {
        let set = batch
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let fetched: Vec<_> = session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        let mut bodies: Vec<(u32, Vec<u8>)> = fetched
            .iter()
            .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
            .collect();
        bodies.sort_by_key(|(uid, _)| *uid);
        let mut done = Vec::new();
        for (uid, raw) in bodies {
            let outcome = ingest(pool, mailbox, &raw, Source::Imap, limits, now).await?;
            tracing::info!(mailbox = %mailbox.address, uid, %outcome, "imap: message taken");
            *taken += 1;
            sqlx::query(
                "update imap_accounts set last_uid = greatest(last_uid, $2) where mailbox_id = $1",
            )
            .bind(account.mailbox_id)
            .bind(i64::from(uid))
            .execute(pool)
            .await?;
            done.push(uid.to_string());
        }
        if !done.is_empty() {
            session
                .uid_mv(done.join(","), &account.processed_folder)
                .await
                .map_err(|e| {
                    Failure::Imap(format!(
                        "taken, but cannot move to {}: {e}",
                        account.processed_folder
                    ))
                })?;
        }
    }
    let _ = session.logout().await;
    Ok(())
}
