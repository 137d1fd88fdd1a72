//! Keeps the architecture honest: engines stay pure, axum stays inside `web`.

use std::fs;
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn engines_do_no_io_and_only_web_knows_axum() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let in_web = rel.starts_with("web/");
        let in_engine = rel.starts_with("engine/");
        // Outgoing mail is a view too (text and HTML templates), rendered by a job, not a
        // request: it may use askama, nothing else of the web.
        let mail_view = rel == "mail/out/render.rs";
        for (needle, allowed) in [
            ("axum::", in_web),
            ("askama::", in_web || mail_view),
            ("tower_http::", in_web),
        ] {
            if text.contains(needle) && !allowed {
                problems.push(format!("{rel} uses {needle}"));
            }
        }
        if in_engine {
            for needle in [
                "PgPool",
                "PgConnection",
                "tokio::",
                "std::fs",
                "std::net",
                "Timestamp::now",
                "SystemTime",
            ] {
                if text.contains(needle) {
                    problems.push(format!("{rel} (an engine) uses {needle}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
