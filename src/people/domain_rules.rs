//! Low-maintenance onboarding: a new user whose e-mail domain matches a rule gets its
//! organisation unit and role.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::OnConstraint;
use crate::core::ids::{DomainRuleId, OrgUnitId, RoleId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct DomainRule {
    pub id: DomainRuleId,
    pub domain: String,
    pub org_unit_id: Option<OrgUnitId>,
    pub org_unit_name: Option<String>,
    pub role_id: Option<RoleId>,
    pub role_name: Option<String>,
}

const SELECT: &str = "select d.id, d.domain, d.org_unit_id, o.name as org_unit_name, d.role_id,
        r.name as role_name
     from domain_rules d left join org_units o on o.id = d.org_unit_id
     left join roles r on r.id = d.role_id";

pub async fn list(conn: &mut PgConnection) -> Result<Vec<DomainRule>> {
    Ok(
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} order by d.domain")))
            .fetch_all(conn)
            .await?,
    )
}

/// The rule for an address's domain (exact match on the part after `@`).
pub async fn for_email(conn: &mut PgConnection, email: &str) -> Result<Option<DomainRule>> {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return Ok(None);
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} where d.domain = lower($1)"
    )))
    .bind(domain)
    .fetch_optional(conn)
    .await?)
}

pub async fn create(
    conn: &mut PgConnection,
    domain: &str,
    org_unit_id: Option<OrgUnitId>,
    role_id: Option<RoleId>,
    now: Timestamp,
) -> Result<DomainRuleId> {
    let domain = domain.trim().trim_start_matches('@').to_lowercase();
    let valid = domain.contains('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let mut errors = FieldErrors::new();
    if !valid {
        errors.add("domain", "Enter a domain like example.com.");
    }
    if org_unit_id.is_none() && role_id.is_none() {
        errors.add("role_id", "Choose an organisation unit, a role, or both.");
    }
    errors.into_result()?;
    let id = DomainRuleId::new();
    sqlx::query(
        "insert into domain_rules (id, domain, org_unit_id, role_id, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(&domain)
    .bind(org_unit_id)
    .bind(role_id)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("domain_rules_domain_key", || {
        FieldErrors::one("domain", "There is already a rule for this domain.")
    })?;
    Ok(id)
}

pub async fn delete(conn: &mut PgConnection, id: DomainRuleId) -> Result<DomainRule> {
    let rule: DomainRule = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where d.id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound)?;
    sqlx::query("delete from domain_rules where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(rule)
}
