//! What every page shows around its content: navigation, the signed-in user, flash messages,
//! and the CSRF token for its forms.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::assets;
use super::csrf::CsrfToken;
use super::flash::Flash;
use super::session::ShellUser;
use crate::people::sessions::Current;

#[derive(Debug, Clone)]
pub struct Shell {
    pub user: Option<ShellUser>,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub section: &'static str,
    pub css: String,
    /// The reference data's version read with the session (`web::reference`); 0 signed out.
    pub reference_version: i64,
}

impl Shell {
    /// Marks the navigation entry of the page.
    pub fn at(mut self, section: &'static str) -> Self {
        self.section = section;
        self
    }

    /// `aria-current` for a navigation entry.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }

    pub(super) fn for_error(user: Option<ShellUser>) -> Self {
        let csrf = user.as_ref().map(|u| u.csrf.clone()).unwrap_or_default();
        Self {
            user,
            csrf,
            flash: None,
            section: "",
            css: assets::css_url(),
            reference_version: 0,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Shell {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let current = parts.extensions.get::<Current>();
        let user = current.map(ShellUser::of);
        let csrf = parts
            .extensions
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        Ok(Self {
            user,
            csrf,
            flash: parts.extensions.get::<Flash>().cloned(),
            section: "",
            css: assets::css_url(),
            reference_version: current.map_or(0, |c| c.reference_version),
        })
    }
}
