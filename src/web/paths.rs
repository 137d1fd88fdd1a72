//! URLs, built in one place. A `next=` target is accepted only when it is a path on this site.

use url::form_urlencoded;

pub fn login(next: &str) -> String {
    if next == "/" {
        "/login".into()
    } else {
        let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        format!("/login?next={encoded}")
    }
}

pub fn ticket(key: &str) -> String {
    format!("/tickets/{key}")
}

/// `next` when it is a local path (not `//host`, not `/\host`, no control characters); else `/`.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if local { next } else { "/" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        let cases = [
            ("/tickets/HD-1", "/tickets/HD-1"),
            ("/requests?after=x", "/requests?after=x"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example", "/"),
            ("javascript:alert(1)", "/"),
            ("/ok\r\nSet-Cookie: x", "/"),
            ("", "/"),
        ];
        for (input, expected) in cases {
            assert_eq!(safe_next(input), expected, "{input:?}");
        }
    }
}
