//! Admin: mailboxes (address → project and process), a mailbox's IMAP account (the password
//! is write-only: never put back into the page) and "Mail problems" (stored messages that
//! could not be processed: the raw source, and "process again").

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{collect_id, parse_id, status_for};
use crate::audit::{self, Change};
use crate::core::ids::MailboxId;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::policy::Actor;
use crate::mail::imap::{self, Account, AccountInput};
use crate::mail::{self, Mailbox, MailboxInput, Outcome, Problem};
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;
use crate::{processes, projects};

#[derive(Debug, Default, Deserialize)]
pub struct MailboxForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    process_id: String,
    #[serde(default)]
    from_name: String,
    #[serde(default)]
    signature: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    active: String,
}

impl MailboxForm {
    fn of(m: &Mailbox) -> Self {
        Self {
            address: m.address.clone(),
            project_id: m.project_id.to_string(),
            process_id: m.process_id.map(|p| p.to_string()).unwrap_or_default(),
            from_name: m.from_name.clone(),
            signature: m.signature.clone(),
            active: if m.active { "on".into() } else { String::new() },
        }
    }

    fn input(&self) -> Result<MailboxInput> {
        let mut errors = FieldErrors::new();
        let project_id = collect_id(&self.project_id, "project_id", &mut errors);
        let process_id = collect_id(&self.process_id, "process_id", &mut errors);
        errors.into_result()?;
        Ok(MailboxInput {
            address: self.address.clone(),
            project_id,
            process_id,
            from_name: self.from_name.clone(),
            signature: self.signature.clone(),
            active: !self.active.is_empty(),
        })
    }
}

/// The IMAP account form. The password field is always sent back empty.
#[derive(Default, Deserialize)]
pub struct ImapForm {
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    tls: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    folder: String,
    #[serde(default)]
    processed_folder: String,
    #[serde(default)]
    active: String,
}

impl ImapForm {
    fn of(a: &Account) -> Self {
        Self {
            host: a.host.clone(),
            port: a.port.to_string(),
            tls: a.tls.clone(),
            username: a.username.clone(),
            password: String::new(),
            folder: a.folder.clone(),
            processed_folder: a.processed_folder.clone(),
            active: if a.active { "on".into() } else { String::new() },
        }
    }

    fn input(&self) -> AccountInput {
        AccountInput {
            host: self.host.clone(),
            port: self.port.clone(),
            tls: self.tls.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            folder: self.folder.clone(),
            processed_folder: self.processed_folder.clone(),
            active: !self.active.is_empty(),
        }
    }
}

/// An account as the audit log shows it: no password.
#[derive(serde::Serialize)]
struct AuditedAccount<'a> {
    host: &'a str,
    port: i32,
    tls: &'a str,
    username: &'a str,
    folder: &'a str,
    processed_folder: &'a str,
    active: bool,
}

impl<'a> From<&'a Account> for AuditedAccount<'a> {
    fn from(a: &'a Account) -> Self {
        Self {
            host: &a.host,
            port: a.port,
            tls: &a.tls,
            username: &a.username,
            folder: &a.folder,
            processed_folder: &a.processed_folder,
            active: a.active,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/mailboxes.html")]
struct MailboxesPage {
    shell: Shell,
    mailboxes: Vec<Mailbox>,
    projects: Vec<projects::Project>,
    processes: Vec<processes::Process>,
    editing: Option<Mailbox>,
    form: MailboxForm,
    errors: FieldErrors,
    imap: Option<Account>,
    imap_form: ImapForm,
    imap_errors: FieldErrors,
    tls_modes: &'static [&'static str],
}

impl MailboxesPage {
    fn project_name(&self, m: &Mailbox) -> String {
        self.projects
            .iter()
            .find(|p| p.id == m.project_id)
            .map(|p| format!("{} ({})", p.name, p.key))
            .unwrap_or_default()
    }

    fn process_name(&self, m: &Mailbox) -> String {
        match m.process_id {
            Some(id) => self
                .processes
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            None => "(default)".into(),
        }
    }
}

async fn page(
    state: &AppState,
    shell: Shell,
    editing: Option<MailboxId>,
    form: Option<MailboxForm>,
    errors: FieldErrors,
) -> Result<Response> {
    imap_page(
        state,
        shell,
        editing,
        form,
        errors,
        None,
        FieldErrors::new(),
    )
    .await
}

async fn imap_page(
    state: &AppState,
    shell: Shell,
    editing: Option<MailboxId>,
    form: Option<MailboxForm>,
    errors: FieldErrors,
    imap_form: Option<ImapForm>,
    imap_errors: FieldErrors,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let editing = match editing {
        Some(id) => Some(mail::find(&mut conn, id).await?),
        None => None,
    };
    let account = match &editing {
        Some(m) => imap::find(&mut conn, m.id).await?,
        None => None,
    };
    let imap_form = match (imap_form, &account) {
        (Some(f), _) => f,
        (None, Some(a)) => ImapForm::of(a),
        (None, None) => ImapForm {
            port: "993".into(),
            tls: "implicit".into(),
            folder: "INBOX".into(),
            processed_folder: "Processed".into(),
            active: "on".into(),
            ..ImapForm::default()
        },
    };
    let status = if imap_errors.is_empty() {
        status_for(&errors)
    } else {
        status_for(&imap_errors)
    };
    let form = match (form, &editing) {
        (Some(f), _) => f,
        (None, Some(m)) => MailboxForm::of(m),
        (None, None) => MailboxForm {
            active: "on".into(),
            ..MailboxForm::default()
        },
    };
    render(
        status,
        &MailboxesPage {
            shell: shell.at("admin"),
            mailboxes: mail::list(&mut conn).await?,
            projects: projects::list(&mut conn).await?,
            processes: processes::list(&mut conn).await?,
            editing,
            form,
            errors,
            imap: account,
            imap_form,
            imap_errors,
            tls_modes: imap::TLS_MODES,
        },
    )
}

/// Adds or changes the IMAP account of a mailbox (an empty password keeps the stored one).
pub async fn save_imap(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<ImapForm>,
) -> Result<Response> {
    let id: MailboxId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    mail::find(&mut tx, id).await?;
    let before = imap::find(&mut tx, id).await?;
    match imap::save(&mut tx, id, &form.input(), now).await {
        Ok(()) => {
            let after = imap::find(&mut tx, id).await?;
            let mut change = Change::new(
                "imap_account",
                id,
                if before.is_some() { "update" } else { "create" },
            );
            if let Some(before) = &before {
                change = change.before(&AuditedAccount::from(before));
            }
            if let Some(after) = &after {
                change = change.after(&AuditedAccount::from(after));
            }
            audit::record(&mut tx, actor.user_id, now, change).await?;
            tx.commit().await?;
            Ok(flash::redirect(
                &paths::admin::mailbox(id),
                flash::Kind::Success,
                "IMAP account saved; it is polled every minute.",
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            let form = ImapForm {
                password: String::new(),
                ..form
            };
            imap_page(
                &state,
                shell,
                Some(id),
                None,
                FieldErrors::new(),
                Some(form),
                errors,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// Removes the IMAP account of a mailbox.
pub async fn remove_imap(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: MailboxId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    mail::find(&mut tx, id).await?;
    let before = imap::find(&mut tx, id).await?.ok_or(Error::NotFound)?;
    imap::remove(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor.user_id,
        now,
        Change::new("imap_account", id, "delete").before(&AuditedAccount::from(&before)),
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &paths::admin::mailbox(id),
        flash::Kind::Success,
        "IMAP account removed.",
    ))
}

pub async fn list(State(state): State<AppState>, shell: Shell) -> Result<Response> {
    page(&state, shell, None, None, FieldErrors::new()).await
}

pub async fn show(
    State(state): State<AppState>,
    shell: Shell,
    Path(id): Path<String>,
) -> Result<Response> {
    page(
        &state,
        shell,
        Some(parse_id(&id)?),
        None,
        FieldErrors::new(),
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<MailboxForm>,
) -> Result<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let result = match form.input() {
        Ok(input) => mail::create(&mut tx, &input, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(id) => {
            let after = mail::find(&mut tx, id).await?;
            audit::record(
                &mut tx,
                actor.user_id,
                now,
                Change::new("mailbox", id, "create").after(&after),
            )
            .await?;
            tx.commit().await?;
            Ok(flash::redirect(
                paths::admin::mailboxes(),
                flash::Kind::Success,
                "Mailbox added.",
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            page(&state, shell, None, Some(form), errors).await
        }
        Err(e) => Err(e),
    }
}

pub async fn update(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Path(id): Path<String>,
    Form(form): Form<MailboxForm>,
) -> Result<Response> {
    let id: MailboxId = parse_id(&id)?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let before = mail::find(&mut tx, id).await?;
    let result = match form.input() {
        Ok(input) => mail::update(&mut tx, id, &input, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            let after = mail::find(&mut tx, id).await?;
            audit::record(
                &mut tx,
                actor.user_id,
                now,
                Change::new("mailbox", id, "update")
                    .before(&before)
                    .after(&after),
            )
            .await?;
            tx.commit().await?;
            Ok(flash::redirect(
                paths::admin::mailboxes(),
                flash::Kind::Success,
                "Mailbox saved.",
            ))
        }
        Err(Error::Invalid(errors)) => {
            drop(tx);
            page(&state, shell, Some(id), Some(form), errors).await
        }
        Err(e) => Err(e),
    }
}

/// Problems shown per page.
const PAGE: i64 = 50;
/// The raw source shown on the page; the rest is cut (the stored message is whole).
const RAW_SHOWN: usize = 256 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct ProblemsQuery {
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/mail_problems.html")]
struct ProblemsPage {
    shell: Shell,
    problems: Vec<Problem>,
    next: Option<i64>,
    /// Outgoing mail not sent (yet): the newest 50.
    outgoing: Vec<mail::out::Waiting>,
    relay: bool,
}

pub async fn problems(
    State(state): State<AppState>,
    shell: Shell,
    Query(query): Query<ProblemsQuery>,
) -> Result<Response> {
    let mut conn = state.pool.acquire().await?;
    let mut problems = mail::problems(&mut conn, query.before, PAGE + 1).await?;
    let next = if problems.len() as i64 > PAGE {
        problems.truncate(PAGE as usize);
        problems.last().map(|p| p.id)
    } else {
        None
    };
    render(
        StatusCode::OK,
        &ProblemsPage {
            shell: shell.at("admin"),
            problems,
            next,
            outgoing: mail::out::waiting(&mut conn, 50).await?,
            relay: state.config.smtp_relay.is_some(),
        },
    )
}

#[derive(Template)]
#[template(path = "admin/mail_problem.html")]
struct ProblemPage {
    shell: Shell,
    problem: Problem,
    source: String,
    cut: bool,
}

pub async fn problem(
    State(state): State<AppState>,
    shell: Shell,
    Path(id): Path<String>,
) -> Result<Response> {
    let id: i64 = parse_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    let (problem, raw) = mail::stored(&mut conn, id).await?;
    let cut = raw.len() > RAW_SHOWN;
    let source = String::from_utf8_lossy(&raw[..raw.len().min(RAW_SHOWN)]).into_owned();
    render(
        StatusCode::OK,
        &ProblemPage {
            shell: shell.at("admin"),
            problem,
            source,
            cut,
        },
    )
}

/// Processes a stored message again, in its own transactions (as on arrival).
pub async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let id: i64 = parse_id(&id)?;
    let outcome = mail::reprocess(
        &state.pool,
        id,
        state.config.mail_limits(),
        state.clock.now(),
    )
    .await?;
    let (kind, text) = match outcome {
        Outcome::New { key, .. } => (flash::Kind::Success, format!("Opened {key}.")),
        Outcome::Reply { key, .. } => (flash::Kind::Success, format!("Added to {key}.")),
        Outcome::Bounce { .. } => (
            flash::Kind::Success,
            "Recorded as a delivery report.".into(),
        ),
        Outcome::Ignored { why, .. } => (flash::Kind::Success, format!("Ignored: {why}.")),
        Outcome::Duplicate { .. } => (flash::Kind::Success, "Already processed.".into()),
        Outcome::Failed { error, .. } => (flash::Kind::Error, format!("Failed again: {error}")),
    };
    Ok(flash::redirect(paths::admin::mail_problems(), kind, &text))
}
