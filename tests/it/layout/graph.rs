//! The file-level import graph of `src/`, read from the source text: `use` trees and paths in
//! code (`crate::…`, `super::…`, `self::…`, a child module's name, a name a `use` bound) are
//! resolved to the file that defines what they name. A module path maps to its file
//! (`a/b.rs` or `a/b/mod.rs`); an item path to the deepest module file that exists, and from
//! there through `use` and `pub use` bindings (and globs) to the file that defines the item,
//! so a face `mod.rs` that only re-exports is looked through. `mod x;` is a declaration, not
//! an import; a `use` that binds a module adds nothing by itself: each use of that binding in
//! the code is followed instead.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// One file of `src/`: what it defines, binds and refers to.
#[derive(Debug, Default)]
pub struct File {
    /// Path below `src/`, with `/`.
    pub rel: String,
    /// Lines, inline test modules included.
    pub lines: usize,
    /// The module path (`["tickets", "flow"]`); empty for `lib.rs` and `main.rs`.
    module: Vec<String>,
    /// Names of the items defined at the top of the file (not `mod`: a module is its own file).
    defines: BTreeSet<String>,
    /// Names bound by `use` at the top of the file → the absolute path they name.
    bindings: BTreeMap<String, Vec<String>>,
    /// Modules glob-imported (`use x::*`), absolute.
    globs: Vec<Vec<String>>,
    /// Modules declared with `mod x;` or `mod x {` at the top level.
    children: BTreeSet<String>,
    /// Every reference found: (line, absolute path, how).
    refs: Vec<(usize, Vec<String>, How)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum How {
    Use,
    PubUse,
    Glob,
    Path,
}

/// An edge between two files, with where it was first seen.
#[derive(Debug, Clone)]
pub struct Edge {
    pub line: usize,
    pub how: How,
    pub path: String,
}

pub struct Graph {
    pub files: BTreeMap<String, File>,
    by_module: BTreeMap<Vec<String>, String>,
    /// from → to → first edge.
    pub edges: BTreeMap<String, BTreeMap<String, Edge>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep,
    Punct(char),
}

/// Tokens with their line: comments, strings and char literals dropped, lifetimes skipped.
fn tokenize(text: &str) -> Vec<(usize, Tok)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to].iter().filter(|c| **c == '\n').count();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i.min(chars.len()), &mut line);
        } else if (c == 'r' || c == 'b')
            && matches!(next, Some('#' | '"'))
            && raw_string_end(&chars, i).is_some()
        {
            let end = raw_string_end(&chars, i).unwrap_or(chars.len());
            count_lines(i, end, &mut line);
            i = end;
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            let start = i;
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            count_lines(start, i.min(chars.len()), &mut line);
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push((line, Tok::Ident(word)));
        } else if c == ':' && next == Some(':') {
            out.push((line, Tok::Sep));
            i += 2;
        } else {
            out.push((line, Tok::Punct(c)));
            i += 1;
        }
    }
    out
}

/// The end of a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i`, if one starts there.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(chars.len())
}

/// A path a `use` names, with the name it binds (`None` for a glob).
type UseEntry = (Vec<String>, Option<String>);

fn ident(tok: Option<&(usize, Tok)>) -> Option<&str> {
    match tok {
        Some((_, Tok::Ident(s))) => Some(s),
        _ => None,
    }
}

const DEFINING: [&str; 8] = [
    "fn", "struct", "enum", "trait", "type", "const", "static", "union",
];

/// Parses one `use` tree from `i` (after `use`) up to its `;`: the paths it names, each with
/// the name it binds (`None` for a glob). Returns the index after the `;`.
fn use_tree(
    toks: &[(usize, Tok)],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<UseEntry>,
) -> usize {
    let mut path = prefix;
    loop {
        match toks.get(i).map(|t| &t.1) {
            Some(Tok::Ident(s)) if s == "as" => {
                let alias = ident(toks.get(i + 1)).unwrap_or("_").to_owned();
                out.push((path.clone(), Some(alias)));
                return skip_to_end_of_entry(toks, i + 2);
            }
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
            }
            Some(Tok::Sep) => i += 1,
            Some(Tok::Punct('*')) => {
                out.push((path.clone(), None));
                return skip_to_end_of_entry(toks, i + 1);
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.1) {
                        Some(Tok::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => i += 1,
                        None => return i,
                        _ => {
                            i = use_tree(toks, i, path.clone(), out);
                        }
                    }
                }
                return skip_to_end_of_entry(toks, i);
            }
            _ => {
                if let Some(last) = path.last().cloned() {
                    if last == "self" {
                        path.pop();
                        let name = path.last().cloned();
                        out.push((path, name));
                    } else {
                        out.push((path, Some(last)));
                    }
                }
                return i;
            }
        }
    }
}

fn skip_to_end_of_entry(toks: &[(usize, Tok)], i: usize) -> usize {
    // An entry ends at `,`, `}` or `;`; whatever stands between (nothing, normally) is skipped.
    let mut j = i;
    while let Some((_, t)) = toks.get(j) {
        if matches!(t, Tok::Punct(',' | '}' | ';')) {
            return j;
        }
        j += 1;
    }
    j
}

/// The module path of a file below `src/`.
fn module_of(rel: &str) -> Vec<String> {
    if rel == "lib.rs" || rel == "main.rs" {
        return Vec::new();
    }
    let stem = rel.trim_end_matches(".rs");
    let stem = stem.strip_suffix("/mod").unwrap_or(stem);
    stem.split('/').map(str::to_owned).collect()
}

/// The absolute path a written path names, seen from `context` (the module the code is in);
/// `None` for another crate's path.
fn absolute(
    written: &[String],
    context: &[String],
    file: &File,
    in_main: bool,
) -> Option<Vec<String>> {
    let first = written.first()?.as_str();
    let mut rest = &written[1..];
    let mut base: Vec<String> = match first {
        "crate" => Vec::new(),
        "unitrack" if in_main => Vec::new(),
        "self" => context.to_vec(),
        "super" => {
            let mut up = context.to_vec();
            up.pop();
            while rest.first().map(String::as_str) == Some("super") {
                up.pop();
                rest = &rest[1..];
            }
            up
        }
        name if context.len() == file.module.len() && file.children.contains(name) => {
            let mut m = context.to_vec();
            m.push(name.to_owned());
            m
        }
        name if file.bindings.contains_key(name) => file.bindings[name].clone(),
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

fn parse(rel: &str, text: &str) -> File {
    let toks = tokenize(text);
    let module = module_of(rel);
    let in_main = rel == "main.rs";
    let mut file = File {
        rel: rel.to_owned(),
        lines: text.lines().count(),
        module: module.clone(),
        ..File::default()
    };
    // First pass: definitions and top-level child modules.
    let mut depth = 0usize;
    for (k, (_, t)) in toks.iter().enumerate() {
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth = depth.saturating_sub(1),
            Tok::Ident(w) if depth == 0 && DEFINING.contains(&w.as_str()) => {
                if let Some(name) = ident(toks.get(k + 1)) {
                    file.defines.insert(name.to_owned());
                }
            }
            Tok::Ident(w) if depth == 0 && w == "mod" => {
                if let Some(name) = ident(toks.get(k + 1)) {
                    file.children.insert(name.to_owned());
                }
            }
            Tok::Ident(w) if depth == 0 && w == "macro_rules" => {
                if let Some(name) = ident(toks.get(k + 2)) {
                    file.defines.insert(name.to_owned());
                }
            }
            _ => {}
        }
    }
    // Second pass: `use` trees (with the inline module they sit in) and paths in code.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut uses: Vec<(usize, Vec<String>, Vec<UseEntry>, bool)> = Vec::new();
    let mut paths: Vec<(usize, Vec<String>, Vec<String>)> = Vec::new();
    while i < toks.len() {
        let (line, tok) = &toks[i];
        let context: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        match tok {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                i += 1;
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(name), Some((_, Tok::Punct('{')))) =
                    (ident(toks.get(i + 1)), toks.get(i + 2))
                {
                    inline.push((name.to_owned(), depth));
                }
                i += 2;
            }
            Tok::Ident(w) if w == "use" => {
                let public = matches!(toks.get(i.wrapping_sub(1)), Some((_, Tok::Ident(p))) if p == "pub")
                    || matches!(toks.get(i.wrapping_sub(1)), Some((_, Tok::Punct(')'))));
                let mut entries = Vec::new();
                let end = use_tree(&toks, i + 1, Vec::new(), &mut entries);
                uses.push((*line, context, entries, public));
                i = end + 1;
            }
            Tok::Ident(_) if !matches!(toks.get(i.wrapping_sub(1)), Some((_, Tok::Sep))) => {
                let mut written = Vec::new();
                let mut j = i;
                while let Some(word) = ident(toks.get(j)) {
                    written.push(word.to_owned());
                    if toks.get(j + 1).map(|t| &t.1) == Some(&Tok::Sep)
                        && ident(toks.get(j + 2)).is_some()
                    {
                        j += 2;
                    } else {
                        break;
                    }
                }
                if written.len() > 1 {
                    paths.push((*line, context, written));
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    // Bindings first (a path in code may use a name bound further down).
    for (_, context, entries, _) in &uses {
        if context.len() != module.len() {
            continue;
        }
        for (written, name) in entries {
            let Some(abs) = absolute(written, context, &file, in_main) else {
                continue;
            };
            match name {
                Some(name) => {
                    file.bindings.insert(name.clone(), abs);
                }
                None => file.globs.push(abs),
            }
        }
    }
    for (line, context, entries, public) in &uses {
        for (written, name) in entries {
            let Some(abs) = absolute(written, context, &file, in_main) else {
                continue;
            };
            let how = match (name, public) {
                (None, _) => How::Glob,
                (Some(_), true) => How::PubUse,
                (Some(_), false) => How::Use,
            };
            file.refs.push((*line, abs, how));
        }
    }
    for (line, context, written) in &paths {
        if let Some(abs) = absolute(written, context, &file, in_main) {
            file.refs.push((*line, abs, How::Path));
        }
    }
    file
}

impl Graph {
    pub fn read(src: &Path) -> Graph {
        let mut rels = Vec::new();
        collect(src, src, &mut rels);
        let mut files = BTreeMap::new();
        let mut by_module = BTreeMap::new();
        for rel in rels {
            let text = fs::read_to_string(src.join(&rel)).unwrap();
            let file = parse(&rel, &text);
            if rel != "main.rs" {
                by_module.insert(file.module.clone(), rel.clone());
            }
            files.insert(rel, file);
        }
        let mut graph = Graph {
            files,
            by_module,
            edges: BTreeMap::new(),
        };
        let mut edges: BTreeMap<String, BTreeMap<String, Edge>> = BTreeMap::new();
        for (rel, file) in &graph.files {
            for (line, abs, how) in &file.refs {
                let Some((target, exact_module)) = graph.resolve(abs, 0) else {
                    continue;
                };
                // A `use` binding a module is followed where the binding is used.
                if exact_module && *how != How::Glob && *how != How::Path {
                    continue;
                }
                // A glob of a module that defines nothing (a face) imports only what it
                // re-exports; those names are resolved where they are used.
                if *how == How::Glob && graph.files[&target].defines.is_empty() {
                    continue;
                }
                if &target == rel || !graph.files.contains_key(&target) {
                    continue;
                }
                edges
                    .entry(rel.clone())
                    .or_default()
                    .entry(target)
                    .or_insert(Edge {
                        line: *line,
                        how: *how,
                        path: abs.join("::"),
                    });
            }
        }
        graph.edges = edges;
        graph
    }

    /// The file that defines what `abs` names, and whether `abs` is a module itself.
    fn resolve(&self, abs: &[String], hops: usize) -> Option<(String, bool)> {
        let mut len = abs.len();
        let file = loop {
            if let Some(rel) = self.by_module.get(&abs[..len]) {
                break rel;
            }
            if len == 0 {
                return None;
            }
            len -= 1;
        };
        let rest = &abs[len..];
        let Some(name) = rest.first() else {
            return Some((file.clone(), true));
        };
        let here = &self.files[file];
        if hops > 8 || here.defines.contains(name) {
            return Some((file.clone(), false));
        }
        if let Some(target) = here.bindings.get(name) {
            let mut next = target.clone();
            next.extend(rest[1..].iter().cloned());
            if next != abs
                && let Some(found) = self.resolve(&next, hops + 1)
            {
                return Some(found);
            }
        }
        for glob in &here.globs {
            let Some(source) = self.by_module.get(glob) else {
                continue;
            };
            let source = &self.files[source];
            if source.defines.contains(name) || source.bindings.contains_key(name) {
                let mut next = glob.clone();
                next.extend(rest.iter().cloned());
                if next != abs {
                    return self.resolve(&next, hops + 1);
                }
            }
        }
        Some((file.clone(), false))
    }

    /// Every import circle: strongly connected sets of files, each shown by its shortest
    /// circles (one through each file of the set, without repeats).
    pub fn circles(&self) -> Vec<Vec<String>> {
        let mut found: Vec<Vec<String>> = Vec::new();
        for set in self.strongly_connected() {
            if set.len() < 2 {
                continue;
            }
            let mut seen = BTreeSet::new();
            for start in &set {
                let Some(circle) = self.shortest_circle(start, &set) else {
                    continue;
                };
                let mut key = circle.clone();
                key.sort();
                if seen.insert(key) {
                    found.push(circle);
                }
            }
        }
        found
    }

    fn shortest_circle(&self, start: &str, set: &BTreeSet<String>) -> Option<Vec<String>> {
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(at) = queue.pop_front() {
            for to in self.edges.get(at).into_iter().flat_map(|e| e.keys()) {
                if !set.contains(to) {
                    continue;
                }
                if to == start {
                    let mut chain = vec![at.to_owned()];
                    let mut back = at;
                    while back != start {
                        back = previous[back];
                        chain.push(back.to_owned());
                    }
                    chain.reverse();
                    return Some(chain);
                }
                if !previous.contains_key(to.as_str()) {
                    previous.insert(to, at);
                    queue.push_back(to);
                }
            }
        }
        None
    }

    /// Tarjan's algorithm, iterative enough for a source tree.
    fn strongly_connected(&self) -> Vec<BTreeSet<String>> {
        struct State<'a> {
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            sets: Vec<BTreeSet<String>>,
        }
        fn visit<'a>(graph: &'a Graph, v: &'a str, s: &mut State<'a>) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in graph.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(graph, w, s);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut set = BTreeSet::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    set.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                s.sets.push(set);
            }
        }
        let mut state = State {
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            sets: Vec::new(),
        };
        for v in self.files.keys() {
            if !state.index.contains_key(v.as_str()) {
                visit(self, v, &mut state);
            }
        }
        state.sets
    }

    /// A circle as `a.rs:12 (use b::X) → b.rs:3 (a::f) → a.rs`: where each file names the next.
    pub fn show_circle(&self, circle: &[String]) -> String {
        let mut text = String::new();
        for (k, from) in circle.iter().enumerate() {
            let to = &circle[(k + 1) % circle.len()];
            let edge = &self.edges[from][to];
            let how = match edge.how {
                How::PubUse => "pub use ",
                How::Use | How::Glob => "use ",
                How::Path => "",
            };
            text.push_str(&format!("{from}:{} ({how}{}) → ", edge.line, edge.path));
        }
        text.push_str(&circle[0]);
        text
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy();
            out.push(rel.replace('\\', "/"));
        }
    }
}
