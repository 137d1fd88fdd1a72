//! Processes as data: definitions (fields, workflow, screen rules) with published,
//! immutable versions and an editable draft. Owns `processes` and `process_versions`.
//! The default processes ship as TOML in `config/processes/` and are loaded into an empty
//! database; `unitrack config export|import|check` keeps them under version control.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, RwLock};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection};

use crate::core::ids::{ProcessId, UserId};
use crate::core::time::to_db;
use crate::core::{Error, Result};
use crate::engine::workflow::{Definition, DefinitionError, Known, validate};

/// The processes shipped with Unitrack, as TOML.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("bug", include_str!("../../config/processes/bug.toml")),
    (
        "change_request",
        include_str!("../../config/processes/change_request.toml"),
    ),
    (
        "access_request",
        include_str!("../../config/processes/access_request.toml"),
    ),
    (
        "feature_request",
        include_str!("../../config/processes/feature_request.toml"),
    ),
    (
        "question",
        include_str!("../../config/processes/question.toml"),
    ),
    (
        "investigation",
        include_str!("../../config/processes/investigation.toml"),
    ),
];

/// A process as kept in a TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessFile {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub definition: Definition,
}

impl ProcessFile {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().replace('\n', " "))
    }

    pub fn to_toml(&self) -> std::result::Result<String, String> {
        toml::to_string_pretty(self).map_err(|e| e.to_string())
    }
}

/// Role and group names that definitions may use.
pub async fn known(conn: &mut PgConnection) -> Result<Known> {
    let roles: Vec<String> = sqlx::query_scalar("select name from roles")
        .fetch_all(&mut *conn)
        .await?;
    let groups: Vec<String> = sqlx::query_scalar("select name from groups")
        .fetch_all(conn)
        .await?;
    Ok(Known {
        roles: roles.into_iter().collect::<BTreeSet<_>>(),
        groups: groups.into_iter().collect(),
    })
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Process {
    pub id: ProcessId,
    pub key: String,
    pub name: String,
    pub description: String,
    pub active: bool,
    /// The newest published version, if any.
    pub version: Option<i32>,
}

const SELECT: &str = "select p.id, p.key, p.name, p.description, p.active,
        (select max(v.version) from process_versions v where v.process_id = p.id) as version
     from processes p";

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Process>> {
    Ok(
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} order by p.name")))
            .fetch_all(conn)
            .await?,
    )
}

/// Processes people can file: active and published.
pub async fn list_fileable(conn: &mut PgConnection) -> Result<Vec<Process>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where p.active and exists (select 1 from process_versions v where v.process_id = p.id) order by p.name"
    )))
    .fetch_all(conn)
    .await?)
}

pub async fn find(conn: &mut PgConnection, id: ProcessId) -> Result<Process> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where p.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn find_by_key(conn: &mut PgConnection, key: &str) -> Result<Option<Process>> {
    Ok(
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where p.key = $1")))
            .bind(key)
            .fetch_optional(conn)
            .await?,
    )
}

/// Published definitions already read, by process and version: a version never changes
/// once its publishing commits (migration 0020 refuses updates and deletes) and process ids
/// are random, so an entry stays right for every database this process talks to. A version
/// read by the transaction that publishes it is not kept: that transaction may still roll
/// back. Tickets read their definition at every view, change and filing; this keeps the read
/// and the JSON parse to once per version.
static DEFINITIONS: LazyLock<RwLock<Definitions>> = LazyLock::new(Default::default);

type Definitions = HashMap<(ProcessId, i32), Arc<Definition>>;

/// A published definition.
pub async fn definition(
    conn: &mut PgConnection,
    id: ProcessId,
    version: i32,
) -> Result<Arc<Definition>> {
    let cached = DEFINITIONS
        .read()
        .ok()
        .and_then(|known| known.get(&(id, version)).cloned());
    if let Some(def) = cached {
        return Ok(def);
    }
    // `own`: written by this very transaction (`publish` runs in a top-level transaction).
    let row: Option<(Json<Definition>, Option<bool>)> = sqlx::query_as(
        "select definition, xmin = pg_current_xact_id_if_assigned()::xid as own
         from process_versions where process_id = $1 and version = $2",
    )
    .bind(id)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    let (def, own) = row.ok_or(Error::NotFound)?;
    let def = Arc::new(def.0);
    if own != Some(true)
        && let Ok(mut known) = DEFINITIONS.write()
    {
        known.insert((id, version), def.clone());
    }
    Ok(def)
}

/// The draft being edited.
pub async fn draft(conn: &mut PgConnection, id: ProcessId) -> Result<Definition> {
    let def: Option<Json<Definition>> =
        sqlx::query_scalar("select draft from processes where id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    def.map(|d| d.0).ok_or(Error::NotFound)
}

/// Creates a process, or replaces its name, description and draft (matched by key).
pub async fn upsert(
    conn: &mut PgConnection,
    file: &ProcessFile,
    now: Timestamp,
) -> Result<ProcessId> {
    let id: ProcessId = sqlx::query_scalar(
        "insert into processes (id, key, name, description, draft, created_at) values ($1, $2, $3, $4, $5, $6)
         on conflict (key) do update set name = excluded.name, description = excluded.description, draft = excluded.draft
         returning id",
    )
    .bind(ProcessId::new())
    .bind(&file.key)
    .bind(&file.name)
    .bind(&file.description)
    .bind(Json(&file.definition))
    .bind(to_db(now))
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Why a draft cannot be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    Invalid(Vec<DefinitionError>),
    /// States that open tickets are in are gone: (state, tickets) that need a mapping.
    Unmapped(Vec<(String, i64)>),
}

/// A version just published, and the moves it leaves to the caller.
#[derive(Debug, Clone)]
#[must_use = "tickets in removed states must be moved (`tickets::publish_process` does)"]
pub struct Published {
    pub version: i32,
    pub definition: Definition,
    /// (old state, new state) for each removed state that open tickets are in.
    pub moves: Vec<(String, String)>,
}

/// Publishes the draft as a new version, which every open ticket of the process follows from
/// now on. Refused while open tickets are in states it removes and `mapping` (old state →
/// new state) does not say where they go; moving them is the tickets' business
/// (`tickets::publish_process`, in the same transaction), so `moves` says which to move.
pub async fn publish(
    conn: &mut PgConnection,
    id: ProcessId,
    mapping: &[(String, String)],
    by: Option<UserId>,
    now: Timestamp,
) -> Result<std::result::Result<Published, PublishError>> {
    let draft = draft(conn, id).await?;
    let known = known(conn).await?;
    let errors = validate(&draft, &known);
    if !errors.is_empty() {
        return Ok(Err(PublishError::Invalid(errors)));
    }
    // Serialise publishing of one process.
    sqlx::query("select 1 from processes where id = $1 for update")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let stranded = stranded_states(conn, id, &draft).await?;
    let unmapped: Vec<(String, i64)> = stranded
        .iter()
        .filter(|(state, _)| {
            !mapping
                .iter()
                .any(|(from, to)| from == state && draft.state(to).is_some())
        })
        .cloned()
        .collect();
    if !unmapped.is_empty() {
        return Ok(Err(PublishError::Unmapped(unmapped)));
    }
    let version: i32 = sqlx::query_scalar(
        "insert into process_versions (process_id, version, definition, published_at, published_by)
         select $1, coalesce(max(version), 0) + 1, $2, $3, $4 from process_versions where process_id = $1
         returning version",
    )
    .bind(id)
    .bind(Json(&draft))
    .bind(to_db(now))
    .bind(by)
    .fetch_one(&mut *conn)
    .await?;
    // Every open ticket of the process follows the new version.
    sqlx::query("update tickets set process_version = $2 where process_id = $1 and state_category <> 'closed'")
        .bind(id)
        .bind(version)
        .execute(conn)
        .await?;
    let moves = mapping
        .iter()
        .filter(|(from, _)| stranded.iter().any(|(s, _)| s == from))
        .cloned()
        .collect();
    Ok(Ok(Published {
        version,
        definition: draft,
        moves,
    }))
}

/// States of open tickets of this process that the definition no longer has.
pub async fn stranded_states(
    conn: &mut PgConnection,
    id: ProcessId,
    def: &Definition,
) -> Result<Vec<(String, i64)>> {
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "select state, count(*) from tickets where process_id = $1 and state_category <> 'closed'
         group by state order by state",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(counts
        .into_iter()
        .filter(|(s, _)| def.state(s).is_none())
        .collect())
}

/// Loads the shipped processes into a database that has none. Idempotent.
pub async fn ensure_defaults(conn: &mut PgConnection, now: Timestamp) -> Result<usize> {
    sqlx::query("select pg_advisory_xact_lock(hashtext('unitrack-processes'))")
        .execute(&mut *conn)
        .await?;
    let any: bool = sqlx::query_scalar("select exists (select 1 from processes)")
        .fetch_one(&mut *conn)
        .await?;
    if any {
        return Ok(0);
    }
    for (name, text) in DEFAULTS {
        let file = ProcessFile::parse(text)
            .map_err(|e| Error::Internal(anyhow::anyhow!("shipped process {name}: {e}")))?;
        let id = upsert(conn, &file, now).await?;
        match publish(conn, id, &[], None, now).await? {
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "shipped process {name} does not publish: {e:?}"
                )));
            }
        }
    }
    Ok(DEFAULTS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_processes_are_valid_with_the_built_in_roles() {
        let known = Known {
            roles: [
                "Requester",
                "Agent L1",
                "Agent L2",
                "Agent L3",
                "Developer",
                "Change approver",
                "Project manager",
                "Admin",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            groups: BTreeSet::new(),
        };
        for (name, text) in DEFAULTS {
            let file = ProcessFile::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&file.key, name);
            let errors = validate(&file.definition, &known);
            assert!(errors.is_empty(), "{name}: {errors:#?}");
            let again = ProcessFile::parse(&file.to_toml().unwrap()).unwrap();
            assert_eq!(again, file, "{name} survives export and import");
        }
    }
}

/// A problem in a process file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub problem: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

/// Parses and validates process files (name, text); every problem of every file.
pub fn check_files(
    files: &[(String, String)],
    known: &Known,
) -> (Vec<ProcessFile>, Vec<FileError>) {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    let mut keys = BTreeSet::new();
    for (name, text) in files {
        match ProcessFile::parse(text) {
            Err(problem) => errors.push(FileError {
                file: name.clone(),
                problem,
            }),
            Ok(file) => {
                if !keys.insert(file.key.clone()) {
                    errors.push(FileError {
                        file: name.clone(),
                        problem: format!("key: {:?} is used by another file", file.key),
                    });
                }
                for e in validate(&file.definition, known) {
                    errors.push(FileError {
                        file: name.clone(),
                        problem: format!("definition.{e}"),
                    });
                }
                parsed.push(file);
            }
        }
    }
    (parsed, errors)
}

/// Imports process files in one transaction: all or nothing. With `publish`, each draft is
/// published too (refused if open tickets would be stranded: publish those in the browser,
/// where states can be mapped).
pub async fn import_files(
    conn: &mut PgConnection,
    files: &[(String, String)],
    publish_too: bool,
    now: Timestamp,
) -> Result<std::result::Result<usize, Vec<FileError>>> {
    let known = known(conn).await?;
    let (parsed, errors) = check_files(files, &known);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let mut problems = Vec::new();
    for file in &parsed {
        let id = upsert(conn, file, now).await?;
        if publish_too {
            match publish(conn, id, &[], None, now).await? {
                Ok(_) => {}
                Err(PublishError::Unmapped(states)) => problems.push(FileError {
                    file: file.key.clone(),
                    problem: format!(
                        "open tickets are in removed states {}: publish in the browser to map them",
                        states
                            .iter()
                            .map(|(s, n)| format!("{s} ({n})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
                Err(PublishError::Invalid(errors)) => {
                    problems.extend(errors.into_iter().map(|e| FileError {
                        file: file.key.clone(),
                        problem: e.to_string(),
                    }))
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Ok(parsed.len()))
    } else {
        Ok(Err(problems))
    }
}

/// Every process's draft as a file (name, TOML).
pub async fn export_files(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for p in list(conn).await? {
        let definition = draft(conn, p.id).await?;
        let file = ProcessFile {
            key: p.key.clone(),
            name: p.name,
            description: p.description,
            definition,
        };
        let text = file
            .to_toml()
            .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
        files.push((format!("{}.toml", p.key), text));
    }
    Ok(files)
}

/// Where process definitions (drafts and newest published versions) use a role or group
/// name: "process Bug: transition start" and the like. Deleting such a role or group would
/// break them, so it is refused with this list.
pub async fn uses_of(
    conn: &mut PgConnection,
    role: Option<&str>,
    group: Option<&str>,
) -> Result<Vec<String>> {
    use crate::engine::workflow::{Approvers, Effect};
    let rows: Vec<(String, Json<Definition>, Option<Json<Definition>>)> = sqlx::query_as(
        "select p.name, p.draft,
                (select v.definition from process_versions v where v.process_id = p.id order by v.version desc limit 1)
         from processes p order by p.name",
    )
    .fetch_all(conn)
    .await?;
    let mut found = BTreeSet::new();
    for (name, draft, published) in rows {
        for def in std::iter::once(draft.0).chain(published.map(|p| p.0)) {
            for t in &def.transitions {
                if role.is_some_and(|r| t.roles.iter().any(|x| x == r)) {
                    found.insert(format!("process {name}: transition {}", t.label));
                }
                if let Some(g) = group
                    && t.effects
                        .iter()
                        .any(|e| matches!(e, Effect::SetGroup { group } if group == g))
                {
                    found.insert(format!(
                        "process {name}: transition {} assigns to it",
                        t.label
                    ));
                }
            }
            if let Some(r) = role {
                for rule in def.screen.iter().filter(|s| s.role == r) {
                    found.insert(format!("process {name}: screen rule for {}", rule.field));
                }
            }
            if let Some(g) = group {
                for s in &def.states {
                    if s.on_enter
                        .iter()
                        .any(|e| matches!(e, Effect::SetGroup { group } if group == g))
                    {
                        found.insert(format!(
                            "process {name}: entering {} assigns to it",
                            s.label
                        ));
                    }
                    if matches!(&s.approval, Some(step) if matches!(&step.approvers, Approvers::Group { group } if group == g))
                    {
                        found.insert(format!("process {name}: approvers of {}", s.label));
                    }
                }
            }
        }
    }
    Ok(found.into_iter().collect())
}
