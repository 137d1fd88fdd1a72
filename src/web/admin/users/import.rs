//! CSV import of users with a dry-run preview: nothing is written until the admin confirms,
//! and then all rows or none.
//!
//! Columns (header row required): `email`, `name`, optional `org_unit` (its full path, e.g.
//! `Europe / Germany / Berlin`, or a unique name) and optional `groups` (names separated by
//! `;`). Imported accounts have no password: send them set-password links.

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::audit::{self, Change};
use crate::core::ids::{GroupId, OrgUnitId};
use crate::core::{Error, Result};
use crate::engine::policy::Actor;
use crate::people::{groups, roles, users};
use crate::projects::org;
use crate::web::AppState;
use crate::web::extract::Form;
use crate::web::flash;
use crate::web::layout::Shell;
use crate::web::pages::render;
use crate::web::paths;

const MAX_ROWS: usize = 5000;

struct Row {
    line: usize,
    email: String,
    name: String,
    org_unit: Option<(OrgUnitId, String)>,
    groups: Vec<(GroupId, String)>,
    errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/import.html")]
struct ImportPage {
    shell: Shell,
    csv: String,
    rows: Vec<Row>,
    problem: Option<String>,
    previewed: bool,
    can_import: bool,
}

pub async fn form(shell: Shell) -> Result<Response> {
    render(
        StatusCode::OK,
        &ImportPage {
            shell: shell.at("admin"),
            csv: String::new(),
            rows: Vec::new(),
            problem: None,
            previewed: false,
            can_import: false,
        },
    )
}

#[derive(Deserialize)]
pub struct ImportForm {
    #[serde(default)]
    csv: String,
    #[serde(default)]
    confirm: String,
}

/// Parses and checks every row against the database, writing nothing.
async fn check(conn: &mut sqlx::PgConnection, text: &str) -> Result<Result<Vec<Row>, String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.to_lowercase()).collect(),
        Err(e) => return Ok(Err(format!("The first line could not be read: {e}"))),
    };
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(email_col), Some(name_col)) = (column("email"), column("name")) else {
        return Ok(Err("The first line must name the columns: email, name, and optionally org_unit and groups.".into()));
    };
    let (org_col, groups_col) = (column("org_unit"), column("groups"));

    let units = org::tree(conn).await?;
    let mut unit_by_key: HashMap<String, Vec<&org::OrgUnit>> = HashMap::new();
    for unit in &units {
        unit_by_key
            .entry(unit.path.to_lowercase())
            .or_default()
            .push(unit);
        unit_by_key
            .entry(unit.name.to_lowercase())
            .or_default()
            .push(unit);
    }
    let all_groups = groups::list(conn).await?;
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        if rows.len() >= MAX_ROWS {
            return Ok(Err(format!("At most {MAX_ROWS} rows at a time.")));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("Line {line} could not be read: {e}"))),
        };
        let get = |col: Option<usize>| col.and_then(|c| record.get(c)).unwrap_or("").to_owned();
        let mut row = Row {
            line,
            email: get(Some(email_col)),
            name: get(Some(name_col)),
            org_unit: None,
            groups: Vec::new(),
            errors: Vec::new(),
        };
        match users::parse_email(&row.email, "email") {
            Ok(email) => {
                if !seen.insert(email.to_lowercase()) {
                    row.errors
                        .push("This e-mail appears twice in the file.".into());
                } else if users::find_by_email(conn, &email).await?.is_some() {
                    row.errors
                        .push("An account with this e-mail exists already.".into());
                }
            }
            Err(e) => row.errors.extend(e.iter().map(|(_, m)| m.to_owned())),
        }
        if row.name.is_empty() {
            row.errors.push("The name is empty.".into());
        }
        let unit = get(org_col);
        if !unit.is_empty() {
            match unit_by_key.get(&unit.to_lowercase()).map(Vec::as_slice) {
                Some([one]) => row.org_unit = Some((one.id, one.path.clone())),
                Some([_, _, ..]) => row.errors.push(format!(
                    "Several units are called {unit}: use the full path."
                )),
                _ => row
                    .errors
                    .push(format!("There is no organisation unit {unit}.")),
            }
        }
        for name in get(groups_col)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match all_groups
                .iter()
                .find(|g| g.name.eq_ignore_ascii_case(name))
            {
                Some(g) => row.groups.push((g.id, g.name.clone())),
                None => row.errors.push(format!("There is no group {name}.")),
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Ok(Err("The file has no rows below the header.".into()));
    }
    Ok(Ok(rows))
}

pub async fn submit(
    State(state): State<AppState>,
    shell: Shell,
    actor: Actor,
    Form(form): Form<ImportForm>,
) -> Result<Response> {
    let mut tx = state.pool.begin().await?;
    let checked = check(&mut tx, &form.csv).await?;
    let (rows, problem) = match checked {
        Ok(rows) => (rows, None),
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let clean = problem.is_none() && rows.iter().all(|r| r.errors.is_empty());
    if form.confirm != "yes" || !clean {
        drop(tx);
        let status = if clean {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return render(
            status,
            &ImportPage {
                shell: shell.at("admin"),
                csv: form.csv,
                rows,
                problem,
                previewed: true,
                can_import: clean,
            },
        );
    }
    let now = state.clock.now();
    let requester = roles::find_by_name(&mut tx, "Requester")
        .await?
        .map(|r| r.id);
    let count = rows.len();
    for row in &rows {
        let new = users::NewUser {
            email: row.email.clone(),
            display_name: row.name.clone(),
            password_hash: None,
            org_unit_id: row.org_unit.as_ref().map(|(id, _)| *id),
            roles: Vec::new(),
        };
        // All or nothing: any failure drops the transaction with every row.
        let id = users::create(&mut tx, &new, now)
            .await
            .map_err(|e| match e {
                Error::Invalid(errors) => Error::Conflict(format!(
                    "Line {}: {errors}. Nothing was imported.",
                    row.line
                )),
                other => other,
            })?;
        // Without a domain rule or group, a new person can at least file requests.
        if row.groups.is_empty()
            && roles::memberships_of(&mut tx, roles::Holder::User(id))
                .await?
                .is_empty()
            && let Some(role) = requester
        {
            roles::grant(&mut tx, role, roles::Holder::User(id), None, now).await?;
        }
        for (group, _) in &row.groups {
            groups::add_member(&mut tx, *group, id).await?;
        }
        let user = users::find(&mut tx, id).await?;
        audit::record(
            &mut tx,
            actor.user_id,
            now,
            Change::new("user", id, "import").after(&user),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(flash::redirect(
        paths::admin::users(),
        flash::Kind::Success,
        &format!("{count} account(s) imported. Send them set-password links."),
    ))
}
