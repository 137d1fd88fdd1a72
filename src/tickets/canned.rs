//! Canned responses: reusable replies with `{{placeholders}}`, shared by every project or
//! one project's own (`canned_responses`). A template is checked when it is saved (unknown
//! or malformed placeholders are refused by name), and expanded for one ticket and the
//! person replying by a pure function, so the reply box can be filled without script.

use std::fmt;

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use super::ticket::{TEXT_MAX, TITLE_MAX, Ticket};
use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{CannedId, ProjectId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

/// Every placeholder a template may use, with what it becomes.
pub const PLACEHOLDERS: [(&str, &str); 8] = [
    ("requester.name", "the requester's name"),
    ("requester.first_name", "the requester's first name"),
    ("requester.email", "the requester's e-mail address"),
    ("ticket.key", "the ticket's key, e.g. HD-42"),
    ("ticket.title", "the ticket's title"),
    ("project.name", "the ticket's project"),
    ("agent.name", "the name of the person replying"),
    ("agent.first_name", "the first name of the person replying"),
];

/// What a template is filled with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub requester_name: String,
    pub requester_email: String,
    pub ticket_key: String,
    pub ticket_title: String,
    pub project_name: String,
    pub agent_name: String,
}

fn first_name(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or("")
}

impl Context {
    fn value(&self, placeholder: &str) -> Option<&str> {
        Some(match placeholder {
            "requester.name" => &self.requester_name,
            "requester.first_name" => first_name(&self.requester_name),
            "requester.email" => &self.requester_email,
            "ticket.key" => &self.ticket_key,
            "ticket.title" => &self.ticket_title,
            "project.name" => &self.project_name,
            "agent.name" => &self.agent_name,
            "agent.first_name" => first_name(&self.agent_name),
            _ => return None,
        })
    }
}

/// Why a template cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// Placeholders that do not exist, as written (trimmed).
    Unknown(Vec<String>),
    /// A `{{` without its `}}`, with the text that follows it.
    Unclosed(String),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unknown(names) => {
                let names: Vec<String> = names.iter().map(|n| format!("{{{{{n}}}}}")).collect();
                let known: Vec<String> = PLACEHOLDERS
                    .iter()
                    .map(|(n, _)| format!("{{{{{n}}}}}"))
                    .collect();
                write!(
                    f,
                    "Unknown placeholder{} {}. Use one of {}.",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", "),
                    known.join(", ")
                )
            }
            TemplateError::Unclosed(near) => {
                write!(f, "A “{{{{” is not closed with “}}}}”: near “{near}”.")
            }
        }
    }
}

enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits a template into text and known placeholders.
fn parse(template: &str) -> std::result::Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let near = || rest[open..].chars().take(24).collect::<String>();
        let Some(close) = after.find("}}") else {
            return Err(TemplateError::Unclosed(near()));
        };
        let name = after[..close].trim();
        if name.contains("{{") || name.contains('\n') {
            return Err(TemplateError::Unclosed(near()));
        }
        if PLACEHOLDERS.iter().any(|(known, _)| *known == name) {
            pieces.push(Piece::Placeholder(name));
        } else if !unknown.iter().any(|u| u == name) {
            unknown.push(name.to_owned());
        }
        rest = &after[close + 2..];
    }
    pieces.push(Piece::Text(rest));
    if unknown.is_empty() {
        Ok(pieces)
    } else {
        Err(TemplateError::Unknown(unknown))
    }
}

/// Checks a template: every `{{` closed, every placeholder known.
pub fn check(template: &str) -> std::result::Result<(), TemplateError> {
    parse(template).map(|_| ())
}

/// Fills a template's placeholders. A template that does not check (it was saved before a
/// placeholder was retired) comes back as written.
pub fn expand(template: &str, context: &Context) -> String {
    let Ok(pieces) = parse(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len());
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(name) => out.push_str(context.value(name).unwrap_or_default()),
        }
    }
    out
}

/// A stored canned response.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Canned {
    pub id: CannedId,
    /// `None`: offered in every project.
    pub project_id: Option<ProjectId>,
    pub project_key: Option<String>,
    pub title: String,
    pub body: String,
}

/// What an admin typed.
#[derive(Debug, Clone, Default)]
pub struct CannedInput {
    pub project_id: Option<ProjectId>,
    pub title: String,
    pub body: String,
}

fn check_input(input: &CannedInput) -> Result<()> {
    let mut errors = FieldErrors::new();
    let title = input.title.trim();
    if title.is_empty() {
        errors.add("title", "This cannot be empty.");
    } else if title.chars().count() > TITLE_MAX {
        errors.add("title", format!("Use at most {TITLE_MAX} characters."));
    }
    let length = input.body.chars().count();
    if input.body.trim().is_empty() {
        errors.add("body", "This cannot be empty.");
    } else if length > TEXT_MAX {
        errors.add(
            "body",
            format!("Use at most {TEXT_MAX} characters (this has {length})."),
        );
    } else if let Err(e) = check(&input.body) {
        errors.add("body", e.to_string());
    }
    errors.into_result()
}

const SELECT: &str = "select c.id, c.project_id, p.key as project_key, c.title, c.body
     from canned_responses c left join projects p on p.id = c.project_id";

/// All of them, for the admin page: shared first, then by project and title.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Canned>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} order by p.key nulls first, lower(c.title)"
    )))
    .fetch_all(conn)
    .await?)
}

/// Those offered on a ticket of `project`: its own and the shared ones, by title.
pub async fn offered(conn: &mut PgConnection, project: ProjectId) -> Result<Vec<Canned>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where c.project_id is null or c.project_id = $1 order by lower(c.title), c.id"
    )))
    .bind(project)
    .fetch_all(conn)
    .await?)
}

pub async fn find(conn: &mut PgConnection, id: CannedId) -> Result<Canned> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where c.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

/// The one with this id if it is offered in `project`.
pub async fn find_offered(
    conn: &mut PgConnection,
    id: CannedId,
    project: ProjectId,
) -> Result<Option<Canned>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where c.id = $1 and (c.project_id is null or c.project_id = $2)"
    )))
    .bind(id)
    .bind(project)
    .fetch_optional(conn)
    .await?)
}

fn title_taken() -> FieldErrors {
    FieldErrors::one(
        "title",
        "Another canned response for the same projects has this title.",
    )
}

pub async fn create(
    conn: &mut PgConnection,
    input: &CannedInput,
    by: UserId,
    now: Timestamp,
) -> Result<CannedId> {
    check_input(input)?;
    let id = CannedId::new();
    sqlx::query(
        "insert into canned_responses (id, project_id, title, body, created_by, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(id)
    .bind(input.project_id)
    .bind(input.title.trim())
    .bind(&input.body)
    .bind(by)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("canned_responses_title_key", title_taken)
    .map_err(missing_reference("project_id", "This project no longer exists."))?;
    Ok(id)
}

pub async fn update(
    conn: &mut PgConnection,
    id: CannedId,
    input: &CannedInput,
    now: Timestamp,
) -> Result<()> {
    check_input(input)?;
    let done = sqlx::query(
        "update canned_responses set project_id = $2, title = $3, body = $4, updated_at = $5
         where id = $1",
    )
    .bind(id)
    .bind(input.project_id)
    .bind(input.title.trim())
    .bind(&input.body)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("canned_responses_title_key", title_taken)
    .map_err(missing_reference(
        "project_id",
        "This project no longer exists.",
    ))?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, id: CannedId) -> Result<()> {
    let done = sqlx::query("delete from canned_responses where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// What placeholders become on `ticket` when `agent` replies.
pub async fn context(conn: &mut PgConnection, ticket: &Ticket, agent: UserId) -> Result<Context> {
    let (requester_email, agent_name): (String, String) = sqlx::query_as(
        "select (select email from users where id = $1), (select display_name from users where id = $2)",
    )
    .bind(ticket.requester_id)
    .bind(agent)
    .fetch_one(conn)
    .await?;
    Ok(Context {
        requester_name: ticket.requester_name.clone(),
        requester_email,
        ticket_key: ticket.key(),
        ticket_title: ticket.title.clone(),
        project_name: ticket.project_name.clone(),
        agent_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            requester_name: "Rita <b>Requester</b>".into(),
            requester_email: "rita@example.com".into(),
            ticket_key: "HD-42".into(),
            ticket_title: "Printer jammed".into(),
            project_name: "Help desk".into(),
            agent_name: "Lars Level-One".into(),
        }
    }

    #[test]
    fn placeholders_expand_and_text_stays_as_written() {
        let cases = [
            (
                "Hello {{requester.name}}, about {{ticket.key}} ({{ticket.title}}). — {{agent.name}}",
                "Hello Rita <b>Requester</b>, about HD-42 (Printer jammed). — Lars Level-One",
            ),
            ("Hi {{ requester.first_name }}!", "Hi Rita!"),
            ("{{agent.first_name}}/{{project.name}}", "Lars/Help desk"),
            ("{{requester.email}}", "rita@example.com"),
            ("no placeholders }} here", "no placeholders }} here"),
            ("", ""),
            ("{{ticket.key}}{{ticket.key}}", "HD-42HD-42"),
        ];
        for (template, expected) in cases {
            assert_eq!(expand(template, &context()), expected, "{template:?}");
        }
    }

    #[test]
    fn unknown_and_malformed_placeholders_are_named() {
        assert_eq!(
            check("Dear {{customer.name}} and {{ ticket.keys }}, {{customer.name}}"),
            Err(TemplateError::Unknown(vec![
                "customer.name".into(),
                "ticket.keys".into()
            ]))
        );
        let message = check("Dear {{customer.name}}").unwrap_err().to_string();
        assert!(message.contains("{{customer.name}}"), "{message}");
        assert!(message.contains("{{requester.name}}"), "{message}");
        assert!(matches!(
            check("Hello {{requester.name"),
            Err(TemplateError::Unclosed(near)) if near == "{{requester.name"
        ));
        assert!(matches!(
            check("Hello {{requester.name, see {{ticket.key}}"),
            Err(TemplateError::Unclosed(_))
        ));
        assert!(matches!(check("{{}}"), Err(TemplateError::Unknown(n)) if n == [""]));
        assert_eq!(check("All {{ticket.key}} fine"), Ok(()));
    }

    #[test]
    fn a_template_that_no_longer_checks_is_left_alone() {
        assert_eq!(expand("Hi {{gone}}", &context()), "Hi {{gone}}");
    }
}
