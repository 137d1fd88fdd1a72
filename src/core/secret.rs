//! Secrets kept out of logs and error messages.

use url::Url;

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and errors.
pub fn mask_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparseable URL)".into(),
    }
}
