//! Keeps the architecture honest, and is the circle check anyone can run
//! (`cargo test --test it layout -- --nocapture` prints what it found): engines stay pure,
//! axum stays inside `web`, no import circle between files of `src/`, imports point down the
//! layers (`core` < `engine` < features < `web` < `startup`/`cli` < `main`), `jobs` and
//! `engine` import no feature, and no file of `src/` passes 700 lines (a separate `tests.rs`
//! aside; an inline test module counts).

mod graph;

use std::fs;
use std::path::Path;

use graph::Graph;

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

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn engines_do_no_io_and_only_web_knows_axum() {
    let root = src();
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

/// The layers, bottom up. A file may import its own layer and those below; features may
/// import each other (but not in a circle, which `no_import_circles` checks). `lib.rs` is the
/// crate's table of contents and stands outside.
const LAYERS: [(&str, &[&str]); 6] = [
    ("core", &["core/", "db/", "telemetry.rs"]),
    ("engine", &["engine/", "jobs/"]),
    (
        "features",
        &[
            "audit/",
            "config.rs",
            "demo.rs",
            "mail/",
            "notifications/",
            "people/",
            "processes/",
            "projects/",
            "reports/",
            "sla/",
            "tickets/",
        ],
    ),
    ("web", &["web/"]),
    (
        "startup",
        &["startup.rs", "startup/", "workers.rs", "cli.rs", "cli/"],
    ),
    ("main", &["main.rs"]),
];

fn layer_of(rel: &str) -> Option<(usize, &'static str)> {
    LAYERS.iter().enumerate().find_map(|(n, (name, prefixes))| {
        prefixes
            .iter()
            .any(|p| rel == *p || (p.ends_with('/') && rel.starts_with(p)))
            .then_some((n, *name))
    })
}

fn graph() -> Graph {
    let graph = Graph::read(&src());
    // Every file has its layer: a new top-level module must be placed in `LAYERS`.
    let unplaced: Vec<&String> = graph
        .files
        .keys()
        .filter(|rel| *rel != "lib.rs" && layer_of(rel).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "files in no layer of LAYERS: {unplaced:?}"
    );
    graph
}

#[test]
fn no_import_circles_between_files_of_src() {
    let graph = graph();
    let circles = graph.circles();
    let shown: Vec<String> = circles.iter().map(|c| graph.show_circle(c)).collect();
    println!("{} import circles in src/:", shown.len());
    for line in &shown {
        println!("  {line}");
    }
    assert!(
        shown.is_empty(),
        "{} import circles in src/ (file:line (path) → …):\n  {}",
        shown.len(),
        shown.join("\n  ")
    );
}

#[test]
fn imports_point_down_the_layers_and_jobs_and_engine_import_no_feature() {
    let graph = graph();
    let mut problems = Vec::new();
    for (from, targets) in &graph.edges {
        let Some((from_layer, from_name)) = layer_of(from) else {
            continue;
        };
        for (to, edge) in targets {
            let Some((to_layer, to_name)) = layer_of(to) else {
                continue;
            };
            let what = format!("{from}:{} → {to} ({})", edge.line, edge.path);
            if to_layer > from_layer {
                problems.push(format!("{what}: {from_name} imports up into {to_name}"));
            } else if (from.starts_with("jobs/") || from.starts_with("engine/"))
                && to_name == "features"
            {
                problems.push(format!("{what}: {from_name} imports a feature"));
            } else if from.starts_with("engine/") && to.starts_with("jobs/") {
                problems.push(format!("{what}: an engine imports the job queue"));
            }
        }
    }
    println!("{} imports against the layers:", problems.len());
    for line in &problems {
        println!("  {line}");
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn no_file_of_src_passes_700_lines() {
    let graph = graph();
    let big: Vec<String> = graph
        .files
        .values()
        .filter(|f| f.lines > 700 && !f.rel.ends_with("/tests.rs"))
        .map(|f| format!("{} ({} lines)", f.rel, f.lines))
        .collect();
    println!("{} files over 700 lines: {big:?}", big.len());
    assert!(big.is_empty(), "files over 700 lines: {big:#?}");
}
