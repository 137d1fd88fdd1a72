//! The reference data pages keep per instance: the filter lists, the labels queue rows show,
//! and each group's members and next tier.

use std::collections::{BTreeMap, HashMap};

use sqlx::PgConnection;

use super::Row;
use crate::core::Result;
use crate::core::ids::{GroupId, ProjectId};

/// The filter form's lists by kind (`project`, `process`, `group`, `system`, `site`): id and
/// label.
pub type Options = BTreeMap<&'static str, Vec<(String, String)>>;

/// Reference data pages keep per instance (`web::reference::ReferenceCache`): the filter
/// lists (also the choices of group, system and site fields, and of the sub-task form), the
/// project keys and group names queue rows show, and each group's members and next tier for
/// the ticket page's triage panel.
#[derive(Debug, Default)]
pub struct Reference {
    pub options: Options,
    pub labels: Labels,
    pub teams: HashMap<GroupId, Team>,
}

/// A group as the triage panel offers it.
#[derive(Debug, Default)]
pub struct Team {
    /// Active members as (user id, name), by name; at most `TEAM_LIMIT`.
    pub members: Vec<(String, String)>,
    /// The name of the group it escalates to.
    pub escalates_to: Option<String>,
}

/// The most members the assignee list offers.
const TEAM_LIMIT: usize = 500;

impl Reference {
    /// One list (`project`, `process`, `group`, `system`, `site`) as (id, label) pairs, for
    /// a form's choices.
    pub fn list(&self, kind: &str) -> Vec<(String, String)> {
        self.options.get(kind).cloned().unwrap_or_default()
    }
}

/// Project keys and group names by id.
#[derive(Debug, Default)]
pub struct Labels {
    projects: HashMap<ProjectId, String>,
    groups: HashMap<GroupId, String>,
}

impl Labels {
    /// Names the rows' projects and groups. A row of a project or group newer than these
    /// labels (created since they were loaded) has them read afresh.
    pub async fn fill(&self, conn: &mut PgConnection, rows: &mut [Row]) -> Result<()> {
        let known = |r: &Row| {
            self.projects.contains_key(&r.project_id)
                && r.assignee_group_id
                    .is_none_or(|g| self.groups.contains_key(&g))
        };
        let fresh;
        let labels = if rows.iter().all(known) {
            self
        } else {
            fresh = lists(conn).await?.labels;
            &fresh
        };
        for r in rows {
            r.project_key = labels
                .projects
                .get(&r.project_id)
                .cloned()
                .unwrap_or_default();
            r.group_name = r
                .assignee_group_id
                .and_then(|g| labels.groups.get(&g).cloned());
        }
        Ok(())
    }
}

/// Loads the reference data; pages take it through `web::reference::ReferenceCache`.
pub async fn reference(conn: &mut PgConnection) -> Result<Reference> {
    let mut out = lists(conn).await?;
    // Members of every group in one statement: a membership change, a rename or a
    // deactivation bumps the reference version (migration 0020).
    let members: Vec<(GroupId, String, String)> = sqlx::query_as(
        "select m.group_id, u.id::text, u.display_name from group_members m
         join users u on u.id = m.user_id where u.active
         order by m.group_id, lower(u.display_name), u.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (group, id, name) in members {
        let team = out.teams.entry(group).or_default();
        if team.members.len() < TEAM_LIMIT {
            team.members.push((id, name));
        }
    }
    Ok(out)
}

/// The reference data without the groups' members: the lists, the labels and each group's
/// next tier.
async fn lists(conn: &mut PgConnection) -> Result<Reference> {
    // One statement for the five lists (each is a round trip otherwise, on every page); an
    // `Append` of small sorted subqueries keeps their order.
    let rows: Vec<(String, uuid::Uuid, String, Option<String>)> = sqlx::query_as(
        "(select 'project', id, key || ' ' || name, key from projects order by key)
         union all
         (select 'process', id, name, null from processes where active order by lower(name))
         union all
         (select 'group', g.id, g.name, n.name from groups g left join groups n on n.id = g.escalates_to
          order by lower(g.name))
         union all
         (select 'system', id, name, null from systems order by lower(name))
         union all
         (select 'site', id, name, null from org_units where kind in ('site', 'business_unit')
          order by lower(name))",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Reference::default();
    for (kind, id, name, key) in rows {
        // The fourth column is a project's key, or the name of a group's next tier.
        let kind = match kind.as_str() {
            "project" => {
                let key = key.unwrap_or_default();
                out.labels.projects.insert(ProjectId(id), key);
                "project"
            }
            "process" => "process",
            "group" => {
                out.labels.groups.insert(GroupId(id), name.clone());
                out.teams.entry(GroupId(id)).or_default().escalates_to = key;
                "group"
            }
            "system" => "system",
            _ => "site",
        };
        out.options
            .entry(kind)
            .or_default()
            .push((id.to_string(), name));
    }
    Ok(out)
}
