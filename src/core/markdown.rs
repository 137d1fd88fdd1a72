//! Markdown from users becomes HTML once, at write time: pulldown-cmark with raw HTML dropped,
//! then ammonia. Only this module makes `SafeHtml`, and templates mark only `SafeHtml` safe.

use std::fmt;
use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser};

/// HTML that went through the sanitiser (or was read back from a column only it writes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SafeHtml(String);

impl SafeHtml {
    /// For HTML that this module produced earlier and that was stored.
    pub fn from_stored(html: String) -> Self {
        Self(html)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for SafeHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Renders user Markdown to sanitised HTML.
pub fn render(markdown: &str) -> SafeHtml {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(markdown, options)
        .filter(|event| !matches!(event, Event::Html(_) | Event::InlineHtml(_)));
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    SafeHtml(SANITIZER.clean(&html).to_string())
}

/// Built once: a default `ammonia::Builder` allocates its tag and attribute sets anew.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"));
    builder
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_anything_active_is_removed() {
        let cases = [
            ("**bold**", "<strong>bold</strong>", ""),
            ("<script>alert(1)</script>", "", "<script"),
            ("hi <img src=x onerror=alert(1)>", "hi", "onerror"),
            ("[x](javascript:alert(1))", "x", "javascript:"),
            (
                "[x](https://example.com)",
                "href=\"https://example.com\"",
                "",
            ),
            ("`<b>`", "&lt;b&gt;", "<b>"),
            ("<svg><circle/></svg>", "", "<svg"),
        ];
        for (input, must_contain, must_not_contain) in cases {
            let html = render(input).into_string();
            assert!(html.contains(must_contain), "{input:?} gave {html:?}");
            if !must_not_contain.is_empty() {
                assert!(!html.contains(must_not_contain), "{input:?} gave {html:?}");
            }
        }
    }
}
