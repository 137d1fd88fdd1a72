//! Reference data (projects, processes, groups, systems, sites) cached per app instance.
//!
//! The queue page's filter form lists all of them on every view, and its rows show project
//! keys and group names; they change only when an admin edits them. A trigger bumps
//! `reference_version` on every such edit and each request reads the version with its
//! session (`people::sessions::load`, passed on as `Shell::reference_version`), so a cached
//! copy is used only while it is current, on every instance: no expiry time, no stale names.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, RwLock};

use sqlx::PgConnection;

use crate::core::Result;
use crate::tickets::queues::{self, Reference};

/// The cached data with the version it was loaded at.
#[derive(Default)]
pub struct ReferenceCache {
    current: RwLock<Option<(i64, Arc<Cached>)>>,
    /// Held while loading, so the requests that find the copy stale at the same moment
    /// load it once between them instead of each its own.
    loading: tokio::sync::Mutex<()>,
}

/// Reference data, and each filter list as HTML `<option>`s, escaped once per version: the
/// queue page lists some 400 options, and escaping them on every view was a tenth of the
/// app's time (docs/benchmarks.md).
pub struct Cached {
    pub data: Reference,
    option_html: BTreeMap<&'static str, OptionList>,
}

/// One list's `<option>`s, and where ` selected` goes for each value.
#[derive(Default)]
struct OptionList {
    html: String,
    selected_at: HashMap<String, usize>,
}

impl Cached {
    fn new(data: Reference) -> Self {
        let mut option_html = BTreeMap::new();
        for (kind, list) in &data.options {
            let mut options = OptionList::default();
            for (value, name) in list {
                let Ok(escaped) = askama::filters::escape(value, askama::filters::Html);
                let Ok(name) = askama::filters::escape(name, askama::filters::Html);
                // Writing to a String cannot fail.
                let _ = write!(options.html, "<option value=\"{escaped}\"");
                options
                    .selected_at
                    .insert(value.clone(), options.html.len());
                let _ = write!(options.html, ">{name}</option>");
            }
            option_html.insert(*kind, options);
        }
        Self { data, option_html }
    }

    /// The `<option>`s of a list, the one whose value is `selected` marked.
    pub fn option_html<'a>(&'a self, kind: &str, selected: &str) -> OptionHtml<'a> {
        let options = self.option_html.get(kind);
        OptionHtml {
            html: options.map_or("", |o| o.html.as_str()),
            selected_at: options.and_then(|o| o.selected_at.get(selected).copied()),
        }
    }
}

/// A list's options as they are written into the page (no copy of the list).
pub struct OptionHtml<'a> {
    html: &'a str,
    selected_at: Option<usize>,
}

impl std::fmt::Display for OptionHtml<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.selected_at {
            Some(at) => {
                f.write_str(&self.html[..at])?;
                f.write_str(" selected")?;
                f.write_str(&self.html[at..])
            }
            None => f.write_str(self.html),
        }
    }
}

impl ReferenceCache {
    /// The data as of `version` or later: the cached copy, or a fresh one from `conn`.
    pub async fn get(&self, conn: &mut PgConnection, version: i64) -> Result<Arc<Cached>> {
        if let Some(found) = self.cached(version) {
            return Ok(found);
        }
        let _loading = self.loading.lock().await;
        if let Some(found) = self.cached(version) {
            return Ok(found);
        }
        // Loaded after `version` was read, so at least as new as it.
        let fresh = Arc::new(Cached::new(queues::reference(conn).await?));
        if let Ok(mut slot) = self.current.write()
            && slot.as_ref().is_none_or(|(v, _)| *v <= version)
        {
            *slot = Some((version, fresh.clone()));
        }
        Ok(fresh)
    }

    fn cached(&self, version: i64) -> Option<Arc<Cached>> {
        let slot = self.current.read().ok()?;
        slot.as_ref()
            .filter(|(v, _)| *v >= version)
            .map(|(_, options)| options.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached() -> Cached {
        let mut data = Reference::default();
        data.options.insert(
            "group",
            vec![
                ("a1".into(), "Service <Desk> & \"L1\"".into()),
                ("b2".into(), "Network".into()),
            ],
        );
        Cached::new(data)
    }

    #[test]
    fn option_lists_are_escaped_once_and_mark_the_chosen_value() {
        let c = cached();
        let plain = c.option_html("group", "").to_string();
        assert_eq!(
            plain,
            "<option value=\"a1\">Service &#60;Desk&#62; &#38; &#34;L1&#34;</option>\
             <option value=\"b2\">Network</option>"
        );
        assert_eq!(
            c.option_html("group", "b2").to_string(),
            plain.replace("\"b2\">", "\"b2\" selected>")
        );
        // A value that is no option, or tries to close the attribute, selects nothing.
        for hostile in ["zz", "a1\"><script>", "\">", "Network"] {
            assert_eq!(
                c.option_html("group", hostile).to_string(),
                plain,
                "{hostile}"
            );
        }
        assert_eq!(c.option_html("site", "a1").to_string(), "");
    }
}
