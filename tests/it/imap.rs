//! IMAP polling against a real Dovecot started by the test in a temporary folder (plain
//! IMAP on 127.0.0.1, a passwd-file user, maildir storage).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_imap::Client;
use futures_util::TryStreamExt;
use tokio::net::TcpStream;
use unitrack::core::ids::MailboxId;
use unitrack::mail::imap::{self, AccountInput};
use unitrack::mail::{self, Limits, MailboxInput};

use crate::common::{NowTs, TestApp};

const LIMITS: Limits = Limits {
    max_bytes: 1024 * 1024,
    attachment_max_bytes: 1024 * 1024,
};
const USER: &str = "desk";
const PASSWORD: &str = "s3cret-imap";

/// A Dovecot of its own, stopped when dropped.
struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

fn dovecot_binary() -> PathBuf {
    for candidate in ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v dovecot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match found {
        Some(path) if !path.is_empty() => path.into(),
        _ => panic!(
            "dovecot is not installed: the IMAP tests need it (apt-get install dovecot-imapd)"
        ),
    }
}

impl Dovecot {
    fn start() -> Self {
        let binary = dovecot_binary();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Dovecot's own processes must reach the folder.
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        // Dovecot refuses to run its login and mail processes as root; as root they run as
        // the users the Debian package made, else as whoever runs the test.
        let (internal, login, mail_uid) = if nix::unistd::Uid::effective().is_root() {
            let dovecot = nix::unistd::User::from_name("dovecot")
                .unwrap()
                .expect("the dovecot user (made by the dovecot-core package)");
            std::os::unix::fs::chown(
                root.join("home"),
                Some(dovecot.uid.as_raw()),
                Some(dovecot.gid.as_raw()),
            )
            .unwrap();
            (
                "dovecot".to_owned(),
                "dovenull".to_owned(),
                "dovecot".to_owned(),
            )
        } else {
            let me = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
                .unwrap()
                .unwrap()
                .name;
            (me.clone(), me.clone(), me)
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = root.display();
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {r}/run\nstate_dir = {r}/state\n\
             log_path = {r}/dovecot.log\nssl = no\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nauth_failure_delay = 0\n\
             default_internal_user = {internal}\ndefault_internal_group = {internal}\n\
             default_login_user = {login}\nfirst_valid_uid = 0\n\
             mail_location = maildir:{r}/home/%u/Maildir\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_uid} home={r}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
             \x20 inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0600\n  }}\n\
             \x20 unix_listener stats-writer {{\n    mode = 0600\n  }}\n}}\n"
        );
        std::fs::write(root.join("dovecot.conf"), conf).unwrap();
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("stderr")).unwrap())
            .spawn()
            .expect("start dovecot");
        let dovecot = Self { dir, port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return dovecot;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("dovecot did not start:\n{}", dovecot.log());
    }

    fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr"), read("dovecot.log"))
    }

    async fn session(&self) -> async_imap::Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .unwrap()
    }

    async fn append(&self, folder: &str, messages: &[Vec<u8>]) {
        let mut session = self.session().await;
        let _ = session.create(folder).await;
        for raw in messages {
            session.append(folder, None, None, raw).await.unwrap();
        }
        session.logout().await.unwrap();
    }

    /// How many messages a folder holds (0 when it does not exist).
    async fn count(&self, folder: &str) -> u32 {
        let mut session = self.session().await;
        let n = match session.examine(folder).await {
            Ok(mailbox) => mailbox.exists,
            Err(_) => 0,
        };
        session.logout().await.unwrap();
        n
    }

    /// Flags of the messages in a folder.
    async fn flags(&self, folder: &str) -> Vec<String> {
        let mut session = self.session().await;
        session.examine(folder).await.unwrap();
        let fetched: Vec<_> = session
            .fetch("1:*", "FLAGS")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        session.logout().await.unwrap();
        fetched
            .iter()
            .map(|f| format!("{:?}", f.flags().collect::<Vec<_>>()))
            .collect()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn message(id: &str, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: Ann <ann@client.example>\r\nTo: helpdesk@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\nDate: Thu, 26 Nov 2026 04:00:00 +0000\r\n{extra}\r\nHello there.\r\n"
    )
    .into_bytes()
}

async fn setup(dovecot: &Dovecot, folder: &str) -> (TestApp, MailboxId) {
    let app = TestApp::new().await;
    let project = app.create_project("HD", "Help desk").await;
    let mut conn = app.pool.acquire().await.unwrap();
    let mailbox = mail::create(
        &mut conn,
        &MailboxInput {
            address: "helpdesk@example.org".into(),
            project_id: Some(project),
            active: true,
            ..MailboxInput::default()
        },
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    imap::save(
        &mut conn,
        mailbox,
        &account(dovecot.port, folder, PASSWORD),
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    (app, mailbox)
}

fn account(port: u16, folder: &str, password: &str) -> AccountInput {
    AccountInput {
        host: "127.0.0.1".into(),
        port: port.to_string(),
        tls: "none".into(),
        username: USER.into(),
        password: password.into(),
        folder: folder.into(),
        processed_folder: "Processed".into(),
        active: true,
    }
}

async fn last_uid(app: &TestApp) -> (i64, Option<String>) {
    sqlx::query_as("select last_uid, last_error from imap_accounts")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_job_polls_new_mail_moves_it_and_a_second_round_is_a_no_op() {
    let dovecot = Dovecot::start();
    let (app, mailbox) = setup(&dovecot, "INBOX").await;
    dovecot
        .append(
            "INBOX",
            &[
                message("a1@client.example", "Printer on fire", ""),
                message("a2@client.example", "VPN down", ""),
                message(
                    "a3@client.example",
                    "Re: Printer on fire",
                    "In-Reply-To: <a1@client.example>\r\n",
                ),
                b"not a message at all".to_vec(),
            ],
        )
        .await;

    // The job runner schedules one poll per account and runs it.
    let ran = unitrack::workers::run_jobs_once(&app.pool, &app.clock, LIMITS, None)
        .await
        .unwrap();
    assert!(ran >= 2, "the sweep and the poll ran: {ran}");
    assert_eq!(
        app.count("select count(*) from tickets").await,
        2,
        "{}",
        dovecot.log()
    );
    assert_eq!(
        app.count("select count(*) from mail_in where source = 'imap'")
            .await,
        4
    );
    assert_eq!(
        app.count("select count(*) from mail_in where outcome = 'reply'")
            .await,
        1
    );
    // The unreadable one is kept for Mail problems, and moved like the others.
    assert_eq!(
        app.count("select count(*) from mail_in where status = 'failed'")
            .await,
        1
    );
    assert_eq!(last_uid(&app).await, (4, None));
    assert_eq!(dovecot.count("INBOX").await, 0);
    assert_eq!(dovecot.count("Processed").await, 4);
    // Fetched with BODY.PEEK: the moved copies are not marked read by us.
    assert!(
        dovecot
            .flags("Processed")
            .await
            .iter()
            .all(|f| !f.contains("Seen")),
        "{:?}",
        dovecot.flags("Processed").await
    );

    // Nothing new: nothing happens.
    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    assert_eq!(polled, imap::Polled::default());
    assert_eq!(app.count("select count(*) from mail_in").await, 4);

    // One more: only that one is fetched.
    dovecot
        .append("INBOX", &[message("a5@client.example", "Mouse gone", "")])
        .await;
    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    assert_eq!(polled.taken, 1);
    assert_eq!(app.count("select count(*) from tickets").await, 3);
    assert_eq!(last_uid(&app).await, (5, None));
    app.expect_queued("mail_send", 3).await;
}

#[tokio::test]
async fn a_recreated_folder_with_a_new_uidvalidity_does_not_duplicate() {
    let dovecot = Dovecot::start();
    let (app, mailbox) = setup(&dovecot, "Support").await;
    let first = [
        message("b1@client.example", "One", ""),
        message("b2@client.example", "Two", ""),
    ];
    dovecot.append("Support", &first).await;
    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    assert_eq!(polled.taken, 2, "{polled:?} {}", dovecot.log());
    let validity: Option<i64> = sqlx::query_scalar("select uid_validity from imap_accounts")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // The folder is deleted and made again: UIDs start over under a new UIDVALIDITY. The
    // same two messages come back, with one new one.
    let mut session = dovecot.session().await;
    session.delete("Support").await.unwrap();
    session.create("Support").await.unwrap();
    session.logout().await.unwrap();
    let mut again = first.to_vec();
    again.push(message("b3@client.example", "Three", ""));
    dovecot.append("Support", &again).await;

    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    assert_eq!(polled.taken, 3, "{polled:?}");
    let (new_validity, uid): (Option<i64>, i64) =
        sqlx::query_as("select uid_validity, last_uid from imap_accounts")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_ne!(new_validity, validity);
    assert_eq!(uid, 3);
    assert_eq!(app.count("select count(*) from tickets").await, 3);
    assert_eq!(app.count("select count(*) from mail_in").await, 3);
    assert_eq!(dovecot.count("Support").await, 0);
    app.expect_queued("mail_send", 3).await;
}

#[tokio::test]
async fn a_wrong_password_or_a_dead_server_is_recorded_not_fatal() {
    let dovecot = Dovecot::start();
    let (app, mailbox) = setup(&dovecot, "INBOX").await;
    dovecot
        .append("INBOX", &[message("c1@client.example", "Hi", "")])
        .await;
    let mut conn = app.pool.acquire().await.unwrap();
    imap::save(
        &mut conn,
        mailbox,
        &account(dovecot.port, "INBOX", "wrong"),
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    drop(conn);
    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    assert_eq!(polled.taken, 0);
    let (_, error) = last_uid(&app).await;
    let error = error.expect("the failure is recorded");
    assert!(error.contains("login as desk refused"), "{error}");
    assert!(
        !error.contains("wrong"),
        "no password in the error: {error}"
    );
    assert_eq!(dovecot.count("INBOX").await, 1);

    // The right password again (an empty one would keep the wrong stored one): it works and
    // the error is cleared.
    let mut conn = app.pool.acquire().await.unwrap();
    imap::save(
        &mut conn,
        mailbox,
        &account(dovecot.port, "INBOX", PASSWORD),
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    drop(conn);
    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    assert_eq!(polled.taken, 1);
    assert_eq!(last_uid(&app).await, (1, None));

    // The server is gone.
    let port = dovecot.port;
    drop(dovecot);
    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    let error = polled.error.unwrap();
    assert!(
        error.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{error}"
    );
    app.expect_queued("mail_send", 1).await;
}

#[tokio::test]
async fn account_input_is_checked_and_the_password_never_shows_in_debug() {
    let app = TestApp::new().await;
    let project = app.create_project("HD", "Help desk").await;
    let mut conn = app.pool.acquire().await.unwrap();
    let mailbox = mail::create(
        &mut conn,
        &MailboxInput {
            address: "helpdesk@example.org".into(),
            project_id: Some(project),
            active: true,
            ..MailboxInput::default()
        },
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    let mut bad = account(0, "INBOX", "");
    bad.host = "imap.example.org".into();
    bad.processed_folder = "INBOX".into();
    let err = imap::save(&mut conn, mailbox, &bad, app.clock.now_ts())
        .await
        .unwrap_err()
        .to_string();
    for field in ["port", "tls", "password", "processed_folder"] {
        assert!(err.contains(field), "{field} in {err}");
    }
    imap::save(
        &mut conn,
        mailbox,
        &account(993, "INBOX", "hunter2"),
        app.clock.now_ts(),
    )
    .await
    .unwrap();
    let stored = imap::find(&mut conn, mailbox).await.unwrap().unwrap();
    assert!(!format!("{stored:?}").contains("hunter2"));
    assert!(!format!("{:?}", account(1, "x", "hunter2")).contains("hunter2"));
}

#[tokio::test]
async fn an_admin_sets_up_an_imap_account_and_never_sees_the_password_again() {
    let dovecot = Dovecot::start();
    let (mut app, mailbox) = setup(&dovecot, "INBOX").await;
    let mut conn = app.pool.acquire().await.unwrap();
    imap::remove(&mut conn, mailbox).await.unwrap();
    drop(conn);
    app.create_user("admin@example.com", "Alex Admin", true)
        .await;
    app.login("admin@example.com").await;
    let page = format!("/admin/mailboxes/{mailbox}");
    let action = format!("{page}/imap");
    app.get(&page)
        .await
        .assert_status(axum::http::StatusCode::OK)
        .assert_contains("IMAP account")
        .assert_not_contains("Remove IMAP account");
    let port = dovecot.port.to_string();
    // Bad input: 422, messages next to the fields, input kept, the password not echoed.
    app.post_form(
        &action,
        &[
            ("host", "imap.example.org"),
            ("port", "99999"),
            ("tls", "none"),
            ("username", "desk"),
            ("password", "typed-secret"),
            ("folder", "INBOX"),
            ("processed_folder", "Done"),
            ("active", "on"),
        ],
    )
    .await
    .assert_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("Enter a port between 1 and 65535")
    .assert_contains("only for an IMAP server on this machine")
    .assert_contains("imap.example.org")
    .assert_not_contains("typed-secret");
    app.post_form(
        &action,
        &[
            ("host", "127.0.0.1"),
            ("port", &port),
            ("tls", "none"),
            ("username", USER),
            ("password", PASSWORD),
            ("folder", "INBOX"),
            ("processed_folder", "Done"),
            ("active", "on"),
        ],
    )
    .await
    .assert_redirect_to(&page);
    app.get(&page)
        .await
        .assert_contains("Remove IMAP account")
        .assert_contains("(unchanged; type to replace)")
        .assert_not_contains(PASSWORD);
    // Saved again with the password left empty: the stored one stays and polling works.
    app.post_form(
        &action,
        &[
            ("host", "127.0.0.1"),
            ("port", &port),
            ("tls", "none"),
            ("username", USER),
            ("password", ""),
            ("folder", "INBOX"),
            ("processed_folder", "Done"),
            ("active", "on"),
        ],
    )
    .await
    .assert_redirect_to(&page);
    dovecot
        .append("INBOX", &[message("d1@client.example", "Hi", "")])
        .await;
    let polled = imap::poll(&app.pool, mailbox, LIMITS, app.clock.now_ts())
        .await
        .unwrap();
    assert_eq!(polled.taken, 1, "{polled:?}");
    assert_eq!(dovecot.count("Done").await, 1);
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'imap_account'")
            .await,
        2
    );
    assert_eq!(
        app.count("select count(*) from admin_audit where entity = 'imap_account' and (coalesce(before::text, '') || coalesce(after::text, '')) like '%s3cret%'")
            .await,
        0
    );
    app.post_form(&format!("{page}/imap/delete"), &[])
        .await
        .assert_redirect_to(&page);
    assert_eq!(app.count("select count(*) from imap_accounts").await, 0);
    app.expect_queued("mail_send", 1).await;
}
