//! The one error type features return. The web layer turns it into a page.

use std::fmt;

/// Messages for form fields, keyed by the field's name, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_owned(), message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first message for `field`, for display beside it.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, m)| (f.as_str(), m.as_str()))
    }

    /// A value picked in a form (an id, a level): empty is none; anything that does not parse
    /// gets "Choose from the list." on its field (so every field is checked at once).
    pub fn choice<T: std::str::FromStr>(&mut self, field: &str, text: &str) -> Option<T> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let parsed = text.parse().ok();
        if parsed.is_none() {
            self.add(field, "Choose from the list.");
        }
        parsed
    }

    /// `Ok(())` when nothing was found, else the errors.
    pub fn into_result(self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self))
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("sign-in required")]
    Unauthenticated,
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Is this the database being unreachable (as opposed to a bug in a query)?
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Db(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            )
        )
    }
}

impl Error {
    /// Did two transactions collide (deadlock, serialization failure)? Running the action
    /// again would work: it is not the user's fault, nor a bug.
    pub fn is_collision(&self) -> bool {
        matches!(self, Error::Db(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    }
}

/// Turn a unique or check violation on a named constraint into a field error, as realworld does.
pub trait OnConstraint<T> {
    fn on_constraint(self, name: &str, field_error: impl FnOnce() -> FieldErrors) -> Result<T>;
}

impl<T> OnConstraint<T> for std::result::Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, field_error: impl FnOnce() -> FieldErrors) -> Result<T> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some(name) => {
                Error::Invalid(field_error())
            }
            _ => Error::Db(e),
        })
    }
}

/// For `map_err`: a foreign-key violation (a chosen thing does not exist, or was just deleted)
/// becomes a message on `field`; anything else passes through.
pub fn missing_reference(
    field: &'static str,
    message: &'static str,
) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::Db(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            Error::Invalid(FieldErrors::one(field, message))
        }
        other => other,
    }
}
