//! Enforces the declared layer order between the top-level modules of `src/`: a module may
//! import only modules in strictly lower layers (never its own layer's siblings, never higher
//! ones), so the dependency graph stays a stack and a refactor cannot quietly add a cycle.
//! Layers are numbered from 0 at the bottom; a new top-level module must be placed in `LAYERS`.
//!
//! Cost: it reads the `.rs` files under `src/` as text (comments, literals and test code
//! stripped) and needs no compilation of the crate and no dependencies; it runs in milliseconds.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const LAYERS: &[&[&str]] = &[
    &["clock", "deadline", "splitmix", "data"], // time helpers; the request deadline; a seedable generator; input data readers and the generator
    &["bundle"],                                // the trained model bundle: read, write, validate
    &["retrieval", "bandit"], // candidate generation (types, indexes, sources, merge); the contextual bandit
    &["catalogue"],           // the runtime catalogue: change records and the overlay over a bundle
    &["ranking"],             // the one feature definition, the ranker, blend and top-n
    &["pipeline"],            // the request pipeline: fan-out under a deadline, the fallback chain
    &["train", "feedback"],   // offline training; the feedback log, attribution, online history
    &["eval", "state"],       // offline evaluation; live state shared through Redis (or embedded)
    &["server"],              // the HTTP edge
    &["config"],              // assembles every layer's config section; file/env layering
];

/// An identifier (or number), `::`, or one punctuation character, with its 1-based line.
#[derive(Clone)]
struct Token {
    text: String,
    line: usize,
}

/// One `.rs` file under `src/`, tokenized with comments, literals and `#[cfg(test)]` items gone.
struct SourceFile {
    rel: PathBuf,
    module: Vec<String>,
    text: String,
    tokens: Vec<Token>,
    test_only: bool,
    test_mods: Vec<String>,
    mods: Vec<String>,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Blanks comments and string/char literals (keeping newlines, so line numbers survive).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        if let Some(end) = literal_or_comment_end(&c, i) {
            out.extend(c[i..end].iter().map(|&ch| blank(ch)));
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// If a comment, string or char literal starts at `i`, the index just past its end.
fn literal_or_comment_end(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let find = |from: usize, pat: &[char]| {
        (from..c.len())
            .find(|&k| c[k..].starts_with(pat))
            .map_or(c.len(), |k| k + pat.len())
    };
    match (at(i), at(i + 1)) {
        ('/', '/') => Some((i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len())),
        ('/', '*') => {
            let (mut depth, mut k) = (0, i);
            while k < c.len() {
                if c[k..].starts_with(&['/', '*']) {
                    depth += 1;
                    k += 2;
                } else if c[k..].starts_with(&['*', '/']) {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        return Some(k);
                    }
                } else {
                    k += 1;
                }
            }
            Some(c.len())
        }
        ('"', _) => {
            let mut k = i + 1;
            while k < c.len() && c[k] != '"' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            Some((k + 1).min(c.len()))
        }
        ('\'', '\\') => Some(find(i + 3, &['\''])),
        ('\'', _) if at(i + 2) == '\'' => Some(i + 3),
        ('r', '#' | '"') => {
            let before = at(i.wrapping_sub(1));
            let prefix_ok = !is_ident_char(before)
                || (matches!(before, 'b' | 'c') && !is_ident_char(at(i.wrapping_sub(2))));
            let hashes = (i + 1..c.len()).take_while(|&k| c[k] == '#').count();
            if !prefix_ok || at(i + 1 + hashes) != '"' {
                return None; // an identifier ending in `r`, or a raw identifier like `r#type`
            }
            let close: Vec<char> = format!("\"{}", "#".repeat(hashes)).chars().collect();
            Some(find(i + 2 + hashes, &close))
        }
        _ => None,
    }
}

fn tokenize(stripped: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut chars = stripped.chars().peekable();
    while let Some(ch) = chars.next() {
        line += usize::from(ch == '\n');
        if ch.is_whitespace() {
            continue;
        }
        let mut text = ch.to_string();
        if is_ident_char(ch) {
            while let Some(next) = chars.next_if(|&c| is_ident_char(c)) {
                text.push(next);
            }
        } else if ch == ':' && chars.next_if_eq(&':').is_some() {
            text.push(':');
        }
        tokens.push(Token { text, line });
    }
    tokens
}

fn text(tokens: &[Token], k: usize) -> &str {
    tokens.get(k).map_or("", |t| t.text.as_str())
}

fn starts_with(tokens: &[Token], k: usize, pattern: &[&str]) -> bool {
    pattern.iter().zip(k..).all(|(p, n)| text(tokens, n) == *p)
}

/// Index of the bracket closing the one opened at `open`.
fn matching_close(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 {
            return k;
        }
    }
    tokens.len()
}

const CFG_TEST: &[&str] = &["#", "[", "cfg", "(", "test", ")", "]"];
const ITEM_KEYWORDS: &str =
    "mod use fn impl struct enum union const static type trait let unsafe async extern macro_rules";

/// The end of the item following a `#[cfg(test)]` that ends at `after`; records the names of
/// `#[cfg(test)] mod name;` / `mod name { .. }` in `test_mods`. Non-items (fields, ..) are kept.
fn test_item_end(tokens: &[Token], after: usize, test_mods: &mut Vec<String>) -> usize {
    let mut k = after;
    while starts_with(tokens, k, &["#", "["]) {
        k = matching_close(tokens, k + 1) + 1;
    }
    if text(tokens, k) == "pub" {
        k += 1;
        if text(tokens, k) == "(" {
            k = matching_close(tokens, k) + 1;
        }
    }
    if text(tokens, k) == "mod" && matches!(text(tokens, k + 2), ";" | "{") {
        test_mods.push(text(tokens, k + 1).to_string()); // its directory holds test code too
        if text(tokens, k + 2) == ";" {
            return k + 3;
        }
    }
    if !ITEM_KEYWORDS.split(' ').any(|w| w == text(tokens, k)) {
        return after;
    }
    let mut depth = 0usize;
    for (end, t) in tokens.iter().enumerate().skip(k) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" => depth = depth.saturating_sub(1),
            "}" if depth == 0 => return end, // the enclosing block ends: keep its `}`
            "}" if depth == 1 => return end + 1,
            "}" => depth -= 1,
            ";" if depth == 0 => return end + 1,
            _ => {}
        }
    }
    tokens.len()
}

/// Reads and parses one file: strips it, drops `#[cfg(test)]` items, notes `mod` declarations.
fn parse(src: &Path, rel: PathBuf) -> SourceFile {
    let body = fs::read_to_string(src.join(&rel)).expect("readable source file");
    let tokens = tokenize(&strip(&body));
    let test_only = starts_with(&tokens, 0, &["#", "!"]) && starts_with(&tokens, 2, &CFG_TEST[1..]);
    let (mut kept, mut test_mods, mut i) = (Vec::new(), Vec::new(), 0);
    while i < tokens.len() {
        if starts_with(&tokens, i, CFG_TEST) {
            i = test_item_end(&tokens, i + CFG_TEST.len(), &mut test_mods);
        } else {
            kept.push(tokens[i].clone());
            i += 1;
        }
    }
    let tokens = kept;
    let mods = (0..tokens.len())
        .filter(|&k| text(&tokens, k) == "mod" && text(&tokens, k + 2) == ";")
        .map(|k| text(&tokens, k + 1).to_string())
        .collect();
    SourceFile {
        module: module_path(&rel),
        rel,
        text: body,
        tokens,
        test_only,
        test_mods,
        mods,
    }
}

/// The module path of a file relative to `src/`: `retrieval/cf.rs` is `[retrieval, cf]`,
/// `retrieval/mod.rs` and `retrieval.rs` are `[retrieval]`, `lib.rs` and `main.rs` are `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last);
        let root = parts.is_empty() && (stem == "lib" || stem == "main");
        if stem != "mod" && !root {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The modules named right after a path reaches the crate root at `k`: `x` or `{a, x::Y, w::{..}}`.
fn root_segments(tokens: &[Token], k: usize, out: &mut Vec<(String, usize)>) {
    let is_module = |t: &Token| t.text.starts_with(is_ident_char) && t.text != "self";
    if text(tokens, k) != "{" {
        if let Some(t) = tokens.get(k).filter(|t| is_module(t)) {
            out.push((t.text.clone(), t.line));
        }
        return;
    }
    let (mut depth, mut first) = (0usize, true);
    for t in &tokens[k..=matching_close(tokens, k).min(tokens.len() - 1)] {
        match t.text.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "," if depth == 1 => first = true,
            _ if depth == 1 && first && is_module(t) => {
                out.push((t.text.clone(), t.line));
                first = false;
            }
            _ if depth == 1 => first = false,
            _ => {}
        }
    }
}

/// Every top-level module a file names via `crate::` or via `super::` climbing to the root.
fn references(file: &SourceFile) -> Vec<(String, usize)> {
    let tokens = &file.tokens;
    let (mut out, mut depth, mut inline_mods) = (Vec::new(), 0usize, Vec::new());
    for (i, t) in tokens.iter().enumerate() {
        match t.text.as_str() {
            "{" => {
                depth += 1;
                if i >= 2 && text(tokens, i - 2) == "mod" {
                    inline_mods.push(depth);
                }
            }
            "}" => {
                if inline_mods.last() == Some(&depth) {
                    inline_mods.pop();
                }
                depth = depth.saturating_sub(1);
            }
            "crate" if text(tokens, i + 1) == "::" => root_segments(tokens, i + 2, &mut out),
            "super" if i == 0 || text(tokens, i - 1) != "::" => {
                let (mut k, mut climbs) = (i, 0);
                while starts_with(tokens, k, &["super", "::"]) {
                    climbs += 1;
                    k += 2;
                }
                if climbs > 0 && climbs == file.module.len() + inline_mods.len() {
                    root_segments(tokens, k, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

fn rust_files(dir: &Path, src: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() && path != src.join("bin") {
            rust_files(&path, src, out); // src/bin/ holds separate binary crates
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(src).expect("under src").to_path_buf());
        }
    }
}

/// Checks the tree under `src` against `layers`; returns one line per violation.
fn check(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |m: &str| layers.iter().position(|layer| layer.contains(&m));
    let mut rels = Vec::new();
    rust_files(src, src, &mut rels);
    let files: Vec<SourceFile> = rels.into_iter().map(|rel| parse(src, rel)).collect();
    let child = |f: &SourceFile, name: &str| [f.module.as_slice(), &[name.to_string()]].concat();
    let test_paths: Vec<Vec<String>> = files
        .iter()
        .flat_map(|f| f.test_mods.iter().map(move |m| child(f, m)))
        .collect();
    let declared: BTreeSet<Vec<String>> = files
        .iter()
        .flat_map(|f| f.mods.iter().map(move |m| child(f, m)))
        .collect();
    let is_test = |f: &SourceFile| {
        let test_name = f
            .module
            .last()
            .is_some_and(|m| m == "tests" || m.ends_with("_tests"));
        f.test_only
            || test_paths.iter().any(|p| f.module.starts_with(p))
            || (test_name && !declared.contains(&f.module))
    };
    let live: Vec<&SourceFile> = files
        .iter()
        .filter(|f| !f.module.is_empty() && !is_test(f))
        .collect();
    let top: BTreeSet<&str> = live.iter().map(|f| f.module[0].as_str()).collect();
    let mut problems: Vec<String> = top
        .iter()
        .filter(|m| layer_of(m).is_none())
        .map(|m| format!("module `{m}` is not placed in LAYERS (src/{m}.rs or src/{m}/)"))
        .collect();
    for file in live {
        let from = file.module[0].as_str();
        let Some(i) = layer_of(from) else { continue };
        for (to, line) in references(file) {
            if let Some(j) = layer_of(&to)
                && to != from
                && j >= i
            {
                problems.push(format!(
                    "{}:{line}: `{}` -- {from} (layer {i}) imports {to} (layer {j})",
                    Path::new("src").join(&file.rel).display(),
                    file.text.lines().nth(line - 1).unwrap_or("").trim(),
                ));
            }
        }
    }
    problems.dedup();
    problems
}

#[test]
fn src_respects_the_declared_layers() {
    let root = option_env!("CARGO_MANIFEST_DIR").map_or_else(
        || std::env::current_dir().expect("current directory"),
        PathBuf::from,
    );
    let src = root.join("src");
    assert!(src.is_dir(), "no src/ under {}", root.display());
    let problems = check(&src, LAYERS);
    assert!(
        problems.is_empty(),
        "{} layer violation(s); a module may import only strictly lower layers (see LAYERS):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A temp dir removed on drop, so fixtures clean up even when an assertion fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const FIXTURE_LAYERS: &[&[&str]] = &[&["low"], &["mid", "side"], &["high"]];
const MID_HIGH: &str = "mid (layer 1) imports high (layer 2)";
const FIXTURE_BASE: &str = "== lib.rs
pub mod low; pub mod mid; pub mod side; pub mod high;
== low.rs
pub fn f() {}
== side.rs
pub struct S;
== high.rs
use crate::{low, mid::g};
pub fn h() { crate::side::S; }
== mid.rs
use crate::low::f;
pub fn g() { f() }
";

/// Checks a fake crate against `FIXTURE_LAYERS`: `FIXTURE_BASE` (a clean tree) with the files
/// of `spec` (a `== path` line starts each file, as in `FIXTURE_BASE`) written over it.
fn run(spec: &str) -> Vec<String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("recserve-layers-{}-{n}", std::process::id()));
    let dir = TempDir(dir);
    let mut files: Vec<(&str, String)> = Vec::new();
    for line in FIXTURE_BASE.lines().chain(spec.lines()) {
        if let Some(path) = line.strip_prefix("== ") {
            files.push((path, String::new()));
        } else {
            let body = &mut files.last_mut().expect("a spec starts with `== path`").1;
            body.extend([line, "\n"]);
        }
    }
    for (path, body) in files {
        let path = dir.0.join("src").join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("create fixture dir");
        fs::write(path, body).expect("write fixture file");
    }
    check(&dir.0.join("src"), FIXTURE_LAYERS)
}

/// Asserts exactly one violation, at `at` (`src/path:line:`), whose message contains `what`.
fn assert_one(found: &[String], at: &str, what: &str) {
    let ok = found.len() == 1 && found[0].starts_with(at) && found[0].contains(what);
    assert!(ok, "expected one at {at} ({what}), got {found:#?}");
}

#[test]
fn clean_tree_passes() {
    let found = run("== mid.rs
mod b;
use crate::low;
pub fn g() { low::f() }
== mid/b.rs
use super::g;
use super::super::low::f;
use super::super::{low, mid};
");
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn use_crate_upward_fails() {
    let found = run("== mid.rs\nuse crate::low::f;\nuse crate::high::h;\n");
    assert_one(&found, "src/mid.rs:2:", MID_HIGH);
}

#[test]
fn nested_use_group_fails() {
    let found = run("== mid.rs\nuse crate::{\n    low,\n    high::{h, H},\n};\n");
    assert_one(&found, "src/mid.rs:3:", MID_HIGH);
}

#[test]
fn inline_path_in_expression_fails() {
    let found = run("== mid.rs\npub fn g() -> u32 {\n    crate::high::h() + 1\n}\n");
    assert_one(&found, "src/mid.rs:2:", MID_HIGH);
}

#[test]
fn pub_use_reexport_fails() {
    let found = run("== mid.rs\npub use crate::high::H;\n");
    assert_one(&found, "src/mid.rs:1:", MID_HIGH);
    let found = run("== mid.rs\npub(crate) use crate::{high};\n");
    assert_one(&found, "src/mid.rs:1:", MID_HIGH);
}

#[test]
fn super_super_leaving_the_module_fails() {
    let found = run("== mid.rs\npub mod b;\n== mid/b.rs\nuse super::super::high::h;\n");
    assert_one(&found, "src/mid/b.rs:1:", MID_HIGH);
    let found = run("== mid.rs\npub mod b;\n== mid/b.rs\nuse super::super::{low, high};\n");
    assert_one(&found, "src/mid/b.rs:1:", MID_HIGH);
    let found = run("== mid.rs\nmod inner {\n    use super::super::high::h;\n}\n");
    assert_one(&found, "src/mid.rs:2:", MID_HIGH);
}

#[test]
fn upward_import_in_inline_test_module_is_allowed() {
    let found = run("== mid.rs
#[cfg(test)]
mod tests {
    mod support;
    use crate::high::h;
    fn t() { if true { h() } }
}
#[cfg(test)]
use crate::high::H;
pub fn after_the_test_module() { crate::high::h() }
== mid/tests/support.rs
use crate::high::H;
");
    assert_one(&found, "src/mid.rs:9:", MID_HIGH);
}

#[test]
fn upward_import_in_test_module_file_is_allowed() {
    let found = run("== mid.rs
#[cfg(test)]
mod tests;
mod only_in_tests;
== mid/only_in_tests.rs
#![cfg(test)]
use crate::high::h;
== mid/tests.rs
mod helpers;
use crate::high::h;
== mid/tests/helpers.rs
use crate::high::H;
== mid/undeclared_tests.rs
use crate::high::H;
");
    assert_eq!(found, Vec::<String>::new());
    let found = run("== mid.rs\nmod tests;\n== mid/tests.rs\nuse crate::high::h;\n");
    assert_one(&found, "src/mid/tests.rs:1:", MID_HIGH);
}

#[test]
fn comments_and_literals_are_not_imports() {
    let found = run(r##"== mid.rs
//! Mentions `crate::high` in a doc comment.
/* block crate::high /* nested crate::high */ still a comment crate::high */
/// See [`crate::high::h`].
pub fn g<'a>(x: &'a str) -> &'a str {
    let _ = "use crate::high::h; \" still a string crate::high";
    let _ = r#"crate::high " crate::high"#;
    let _ = (b'"', '"', '\'', '\u{1F600}', b"crate::high", br"crate::high");
    x // crate::high
}
use crate::high::h;
"##);
    assert_one(&found, "src/mid.rs:10:", MID_HIGH);
}

#[test]
fn same_layer_sibling_import_fails() {
    let found = run("== mid.rs\nuse crate::side::S;\n");
    assert_one(
        &found,
        "src/mid.rs:1:",
        "mid (layer 1) imports side (layer 1)",
    );
}

#[test]
fn unlisted_top_level_module_fails() {
    let found = run("== extra/mod.rs\nuse crate::low::f;\n");
    let expected = "module `extra` is not placed in LAYERS (src/extra.rs or src/extra/)";
    assert_eq!(found, [expected]);
}
