//! The import rules of ARCHITECTURE.md, checked on the source text: the pure core (`spec`, `plan`)
//! does no I/O, only the command line may start the built-in Personalize, and modules do not import
//! each other in a circle.
//!
//! The check reads every `src/**.rs` file (test modules and test-only files excluded), collects the
//! paths it names (`use` lines and inline `crate::a::b` paths alike, `{..}` groups expanded,
//! `super::`/`self::` resolved) and maps each to the deepest module that exists. It is a text scan, not
//! name resolution: a path reached through a local alias (`use super::work; work::run()`) is not seen,
//! which errs on the side of missing an arrow, never of inventing one.
//!
//! The same files are held to a length limit: no non-test function over [`MAX_FN_LINES`] lines but
//! the declarative tables (and, for now, the functions named in [`LONG_FUNCTIONS_ALLOWED`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path below the crate root, e.g. `["store", "model"]`; the root itself is `[]`.
type Module = Vec<String>;

/// One non-test source file and what it names.
struct Source {
    module: Module,
    /// Every path named, with `crate`/`super`/`self` resolved: crate paths start with `crate`,
    /// others with their external root (`tokio`, `std`, ...).
    paths: Vec<Vec<String>>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a file defines: `src/store/model.rs` is `store::model`, `src/store/mod.rs` is `store`.
/// `main.rs` and `cli/` belong to the binary, whose crate root holds `cli`; for the rules the binary's
/// `cli` is treated as a top-level module beside the library's.
fn module_of(file: &Path) -> Module {
    let rel = file.strip_prefix(src_dir()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with comments and the contents of string and char literals removed, every newline kept
/// (so line numbers stay true): a string becomes `""` (raw and byte strings too), a char literal
/// disappears, lifetimes (`'a`) pass through.
fn blank_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let newlines = |from: &[char], out: &mut String| {
        out.extend(from.iter().filter(|c| **c == '\n'));
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident_char(chars[i - 1]);
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if next == Some('*') => {
                let start = i;
                i += 2;
                while i < chars.len() && !(chars[i - 1] == '*' && chars[i] == '/') {
                    i += 1;
                }
                newlines(&chars[start..i.min(chars.len())], &mut out);
                i += 1;
                continue;
            }
            // r"..", r#".."#, br#".."#: no escapes; ends at the quote followed by as many hashes.
            'r' if (!prev_ident
                || (i >= 1 && chars[i - 1] == 'b' && (i < 2 || !is_ident_char(chars[i - 2]))))
                && matches!(next, Some('"') | Some('#')) =>
            {
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) != Some(&'"') {
                    out.push(c);
                    i += 1;
                    continue;
                }
                let start = i;
                i += hashes + 2;
                while i < chars.len()
                    && !(chars[i] == '"'
                        && chars[i + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes)
                {
                    i += 1;
                }
                newlines(&chars[start..i.min(chars.len())], &mut out);
                out.push_str("\"\"");
                i += hashes + 1;
                continue;
            }
            '"' => {
                let start = i;
                i += 1;
                let mut escaped = false;
                while i < chars.len() && (chars[i] != '"' || escaped) {
                    escaped = chars[i] == '\\' && !escaped;
                    i += 1;
                }
                newlines(&chars[start..i.min(chars.len())], &mut out);
                out.push_str("\"\"");
                i += 1;
                continue;
            }
            // A char literal such as '"' or '{' would confuse the scan; lifetimes ('a) pass through.
            '\'' => match (next, chars.get(i + 2).copied()) {
                (Some('\\'), _) => {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                    continue;
                }
                (Some(_), Some('\'')) => {
                    i += 3;
                    continue;
                }
                _ => out.push(c),
            },
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// The text without comments and string literals, cut at the first top-level `#[cfg(test)]` item
/// that is an inline module (the `mod tests { .. }` at the end of a file).
fn code_of(text: &str) -> String {
    let out = blank_literals(text);
    let mut kept = String::new();
    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_end() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.starts_with("mod ") && next.trim_end().ends_with('{'))
        {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Child modules a file declares as test-only (`#[cfg(test)] mod tests;`).
fn test_only_children(code: &str) -> Vec<String> {
    let lines: Vec<&str> = code.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "#[cfg(test)]")
        .filter_map(|w| {
            let rest = w[1].strip_prefix("pub ").unwrap_or(w[1]);
            let name = rest.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses the path tree that starts at `s` (after its first segment and `::`): segments, `{..}`
/// groups, `*`, `self`. Returns every leaf path.
fn expand(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        // Split the group at top-level commas.
        let mut depth = 0;
        let mut end = inner.len();
        let mut items = Vec::new();
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = i;
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[start..end]);
        return items
            .into_iter()
            .filter(|i| !i.trim().is_empty())
            .flat_map(expand)
            .collect();
    }
    let ident: String = s.chars().take_while(|&c| is_ident_char(c)).collect();
    if ident.is_empty() {
        return vec![Vec::new()];
    }
    let rest = &s[ident.len()..];
    let rest_trim = rest.trim_start();
    if let Some(after) = rest_trim.strip_prefix("::") {
        expand(after)
            .into_iter()
            .map(|mut tail| {
                tail.insert(0, ident.clone());
                tail
            })
            .collect()
    } else if ident == "self" {
        vec![Vec::new()]
    } else {
        vec![vec![ident]]
    }
}

/// Every path the code names, resolved against `module`.
fn paths_in(code: &str, module: &Module, crate_aliases: &[&str]) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        let starts_word = is_ident_char(c) && (i == 0 || !is_ident_char(bytes[i - 1] as char));
        let after_colons = i >= 2 && &code[i - 2..i] == "::";
        if !starts_word || after_colons {
            i += 1;
            continue;
        }
        let word: String = code[i..].chars().take_while(|&c| is_ident_char(c)).collect();
        let after = &code[i + word.len()..];
        if !after.starts_with("::") || word.starts_with(|c: char| c.is_ascii_uppercase()) {
            i += word.len();
            continue;
        }
        for tail in expand(&after[2..]) {
            let resolved: Vec<String> = match word.as_str() {
                w if w == "crate" || crate_aliases.contains(&w) => tail,
                "self" => module.iter().cloned().chain(tail).collect(),
                "super" => {
                    let mut base = module.clone();
                    base.pop();
                    let mut tail = tail.into_iter().peekable();
                    while tail.peek().is_some_and(|s| s == "super") {
                        tail.next();
                        base.pop();
                    }
                    base.into_iter().chain(tail).collect()
                }
                _ => {
                    found.push(std::iter::once(word.clone()).chain(tail).collect());
                    continue;
                }
            };
            found.push(std::iter::once("crate".to_string()).chain(resolved).collect());
        }
        i += word.len() + 2 + path_len(&after[2..]);
    }
    found
}

/// The length of the path tree at the start of `s`: segments, `::`, `{..}` groups, `*`.
fn path_len(s: &str) -> usize {
    let mut depth = 0usize;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if is_ident_char(c) || c == ':' || c == '*' => {}
            ',' | ' ' | '\n' if depth > 0 => {}
            _ if depth == 0 => break,
            _ => {}
        }
        end = i + c.len_utf8();
    }
    end
}

/// Every non-test file of `src/` (files of test-only modules left out), with its module and text.
fn product_files() -> Vec<(PathBuf, Module, String)> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files.sort();
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = fs::read_to_string(&f).expect("readable source");
            (f, text)
        })
        .collect();
    let mut test_only: BTreeSet<Module> = BTreeSet::new();
    for (file, text) in &texts {
        let module = module_of(file);
        for child in test_only_children(&code_of(text)) {
            let mut m = module.clone();
            m.push(child);
            test_only.insert(m);
        }
    }
    texts
        .into_iter()
        .filter_map(|(file, text)| {
            let module = module_of(&file);
            (!test_only.iter().any(|t| module.starts_with(t))).then_some((file, module, text))
        })
        .collect()
}

fn sources() -> Vec<Source> {
    product_files()
        .into_iter()
        .map(|(_, module, text)| {
            // The binary names the library by its crate name.
            let paths = paths_in(&code_of(&text), &module, &["personalize_ops"]);
            Source { module, paths }
        })
        .collect()
}

/// All modules that have a file.
fn modules(sources: &[Source]) -> BTreeSet<Module> {
    sources.iter().map(|s| s.module.clone()).collect()
}

/// The deepest existing module a crate path points into.
fn target(path: &[String], known: &BTreeSet<Module>) -> Option<Module> {
    let inner = &path[1..];
    (1..=inner.len())
        .rev()
        .map(|n| inner[..n].to_vec())
        .find(|m| known.contains(m))
}

/// Arrows between modules: `from` names something inside `to` (neither inside the other).
fn arrows(sources: &[Source]) -> BTreeSet<(Module, Module)> {
    let known = modules(sources);
    let mut out = BTreeSet::new();
    for s in sources {
        for p in s.paths.iter().filter(|p| p[0] == "crate") {
            if let Some(t) = target(p, &known)
                && !t.starts_with(&s.module)
                && !s.module.starts_with(&t)
            {
                out.insert((s.module.clone(), t));
            }
        }
    }
    out
}

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// The arrows between the children of `parent` (arrows from or into deeper modules lifted to the
/// child that holds them).
fn sibling_graph(
    arrows: &BTreeSet<(Module, Module)>,
    parent: &[String],
) -> BTreeMap<String, BTreeSet<String>> {
    let depth = parent.len();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in arrows {
        if from.len() > depth && to.len() > depth && from.starts_with(parent) && to.starts_with(parent) {
            let (a, b) = (&from[depth], &to[depth]);
            if a != b {
                graph.entry(a.clone()).or_default().insert(b.clone());
            }
        }
    }
    graph
}

/// The strongly connected components with more than one member (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}

/// Modules every layer may use, because they use nothing of the crate themselves.
const LEAVES: &[&str] = &["object_url", "locks"];

/// External crates and std modules that do I/O (or run it).
fn does_io(path: &[String]) -> bool {
    let root = path[0].as_str();
    let io_crates = [
        "tokio",
        "tokio_util",
        "futures",
        "axum",
        "http",
        "rusqlite",
        "aws_config",
        "async_trait",
    ];
    io_crates.contains(&root)
        || root.starts_with("aws_")
        || (root == "std"
            && path
                .get(1)
                .is_some_and(|m| ["fs", "net", "process", "thread", "env", "io"].contains(&m.as_str())))
}

#[test]
fn the_pure_core_does_no_io_and_imports_only_itself() {
    let mut offences = Vec::new();
    for s in sources()
        .iter()
        .filter(|s| matches!(s.module.first().map(String::as_str), Some("spec" | "plan")))
    {
        let allowed: &[&str] = if s.module[0] == "spec" {
            &["spec"]
        } else {
            &["spec", "plan"]
        };
        for p in &s.paths {
            if p[0] == "crate" {
                if let Some(top) = p.get(1)
                    && !allowed.contains(&top.as_str())
                    && !LEAVES.contains(&top.as_str())
                {
                    offences.push(format!("{} names {}", show(&s.module), p.join("::")));
                }
            } else if does_io(p) {
                offences.push(format!("{} names {}", show(&s.module), p.join("::")));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the pure core reaches outside itself:\n{}",
        offences.join("\n")
    );
}

/// Fails with `rule` and the offending arrows when any arrow between top-level modules matches
/// `breaks`, which gets the top-level module of each end.
fn assert_no_arrow(rule: &str, breaks: impl Fn(&str, &str) -> bool) {
    let offences: Vec<String> = arrows(&sources())
        .into_iter()
        .filter(|(from, to)| breaks(from[0].as_str(), to[0].as_str()))
        .map(|(from, to)| format!("{} -> {}", show(&from), show(&to)))
        .collect();
    assert!(offences.is_empty(), "{rule}:\n{}", offences.join("\n"));
}

#[test]
fn only_the_command_line_starts_the_built_in_personalize() {
    assert_no_arrow("product modules import the emulator", |from, to| {
        to == "emulator" && !matches!(from, "cli" | "emulator")
    });
}

#[test]
fn the_built_in_personalize_depends_only_on_the_core_and_the_object_store_port() {
    assert_no_arrow("the emulator reaches into the product", |from, to| {
        from == "emulator" && !matches!(to, "emulator" | "spec" | "objects") && !LEAVES.contains(&to)
    });
}

#[test]
fn the_leaves_import_nothing_of_the_crate() {
    assert_no_arrow("a leaf module imports", |from, _| LEAVES.contains(&from));
}

#[test]
fn modules_do_not_import_each_other_in_a_circle() {
    let arrows = arrows(&sources());
    let parents: BTreeSet<Module> = arrows
        .iter()
        .flat_map(|(from, to)| {
            let a = (0..from.len()).map(|n| from[..n].to_vec());
            let b = (0..to.len()).map(|n| to[..n].to_vec());
            a.chain(b).collect::<Vec<_>>()
        })
        .collect();
    let mut found = Vec::new();
    for parent in &parents {
        for cycle in cycles(&sibling_graph(&arrows, parent)) {
            let names: Vec<&str> = cycle.iter().map(String::as_str).collect();
            found.push((show(parent), names.join(", ")));
        }
    }
    let report: Vec<String> = found.iter().map(|(p, c)| format!("in {p}: {{{c}}}")).collect();
    assert!(
        report.is_empty(),
        "modules import each other in a circle:\n{}\narrows:\n{}",
        report.join("\n"),
        arrows
            .iter()
            .map(|(f, t)| format!("{} -> {}", show(f), show(t)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The checker itself: a scan that found nothing would pass every rule.
#[test]
fn the_scan_sees_known_arrows() {
    let arrows = arrows(&sources());
    let has = |from: &str, to: &str| {
        arrows
            .iter()
            .any(|(f, t)| show(f) == from && show(t).starts_with(to))
    };
    assert!(has("plan::decide", "spec"), "plan::decide -> spec not seen");
    assert!(has("daemon", "store"), "daemon -> store not seen");
    assert!(has("cli::local", "emulator"), "cli::local -> emulator not seen");
    let code = code_of("use crate::a::{b::{self, C}, d};\nlet s = \"crate::x::y\"; // crate::z\n");
    let paths = paths_in(&code, &vec!["m".to_string()], &[]);
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(shown, ["crate::a::b", "crate::a::b::C", "crate::a::d"]);
    let paths = paths_in("use super::x::Y;", &vec!["m".to_string(), "n".to_string()], &[]);
    assert_eq!(paths[0].join("::"), "crate::m::x::Y");
}

/// The longest a non-test function in `src/` may be: lines from its `fn` line to its closing brace.
/// Longer ones hide several steps; split them at their seams (per resource kind, per step).
const MAX_FN_LINES: usize = 80;

/// Functions allowed to be longer: (file under `src/`, function, why). Only declarative tables
/// belong here for good. The others are being split by engineers working in parallel (session of
/// 2026-12-05, issues 13 and 14); the test fails once one of them is short, so whoever lands the
/// split removes its line here.
const LONG_FUNCTIONS_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "metrics/dashboard.rs",
        "dashboard",
        "declarative: the CloudWatch dashboard, one JSON literal of its widgets",
    ),
    (
        "daemon/turn.rs",
        "pass_loop",
        "being split with the announcement work (issue 13, engineer \"dup\")",
    ),
    (
        "intake/handler.rs",
        "read_and_record",
        "being split with the intake work (issue 13, engineer \"dup\")",
    ),
];

/// One function of a file: its name, the line of its `fn` (1-based) and its length in lines.
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

/// The end (exclusive) of the item starting at `from`: after its `{ .. }` block, or after its `;`
/// when it has none; brackets and parentheses before the block (attributes, signatures) are passed.
fn item_end(chars: &[char], from: usize) -> usize {
    let mut depth = 0i32;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ';' if depth == 0 => return i + 1,
            '{' if depth == 0 => return matching_brace(chars, i) + 1,
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// The index of the `}` closing the `{` at `open` (the end of the text if it is never closed).
fn matching_brace(chars: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    chars.len().saturating_sub(1)
}

/// Every function with a body in `text` (methods in `impl` blocks and functions nested in other
/// functions included), leaving out every item marked `#[cfg(test)]` (test modules, test-only
/// functions) and functions without a body (trait declarations). `fn(..)` pointer types are no
/// functions.
fn functions(text: &str) -> Vec<Function> {
    let chars: Vec<char> = blank_literals(text).chars().collect();
    let line_of = |i: usize| chars[..i].iter().filter(|c| **c == '\n').count() + 1;
    let at = |i: usize, word: &str| {
        word.chars()
            .enumerate()
            .all(|(k, w)| chars.get(i + k) == Some(&w))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if at(i, "#[cfg(test)]") {
            i = item_end(&chars, i + "#[cfg(test)]".len());
            continue;
        }
        let word_start = i == 0 || !is_ident_char(chars[i - 1]);
        if word_start && at(i, "fn") && chars.get(i + 2).is_some_and(|c| c.is_whitespace()) {
            let name_start = (i + 2..chars.len())
                .find(|&k| !chars[k].is_whitespace())
                .unwrap_or(chars.len());
            let name: String = chars[name_start..]
                .iter()
                .take_while(|c| is_ident_char(**c))
                .collect();
            if !name.is_empty() {
                let end = item_end(&chars, name_start);
                if chars.get(end - 1) == Some(&'}') {
                    out.push(Function {
                        name,
                        line: line_of(i),
                        lines: line_of(end - 1) - line_of(i) + 1,
                    });
                }
            }
            // Not past the body: functions nested in it are functions too.
            i += 2;
            continue;
        }
        i += 1;
    }
    out
}

#[test]
fn no_function_is_longer_than_its_limit() {
    let mut long = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for (file, _, text) in product_files() {
        let rel = file
            .strip_prefix(src_dir())
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        for f in functions(&text).into_iter().filter(|f| f.lines > MAX_FN_LINES) {
            match LONG_FUNCTIONS_ALLOWED
                .iter()
                .find(|(path, name, _)| *path == rel && *name == f.name)
            {
                Some(entry) => {
                    allowed_seen.insert(*entry);
                }
                None => long.push(format!("{rel}:{} {} ({} lines)", f.line, f.name, f.lines)),
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {MAX_FN_LINES} lines; split them at their natural seams:\n{}",
        long.join("\n")
    );
    let stale: Vec<String> = LONG_FUNCTIONS_ALLOWED
        .iter()
        .filter(|e| !allowed_seen.contains(*e))
        .map(|(path, name, _)| format!("{path} {name}"))
        .collect();
    assert!(
        stale.is_empty(),
        "allowed to be long but no longer is (or is gone): remove from LONG_FUNCTIONS_ALLOWED:\n{}",
        stale.join("\n")
    );
}

/// The function scan itself, on text made to trip it: impl blocks, a nested function, a raw string
/// and a char literal holding braces, a test-only function and module, a trait declaration, and a
/// function pointer type.
#[test]
fn the_function_scan_measures_what_it_should() {
    let text = r###"
struct S;
impl S {
    pub(crate) async fn method(&self) -> u8 {
        let _ = r#"{ { {"#;
        let _ = '{';
        fn nested<'a>(x: &'a str) -> &'a str {
            x
        }
        1
    }

    #[cfg(test)]
    fn only_for_tests() {
        {
        }
    }
}
trait T {
    fn declared(&self);
    fn defaulted(&self) -> fn(u8) -> u8 { |x| x }
}
/* fn commented() { } */
const fn konst() -> &'static str { "}" }
#[cfg(test)]
mod tests {
    fn helper() {
    }
}
fn last(
    a: [u8; 2],
) where
    u8: Copy,
{
}
"###;
    let found: Vec<(String, usize, usize)> = functions(text)
        .into_iter()
        .map(|f| (f.name, f.line, f.lines))
        .collect();
    let expected = [
        ("method", 4, 8),
        ("nested", 7, 3),
        ("defaulted", 21, 1),
        ("konst", 24, 1),
        ("last", 30, 6),
    ];
    let expected: Vec<(String, usize, usize)> =
        expected.iter().map(|(n, l, c)| (n.to_string(), *l, *c)).collect();
    assert_eq!(found, expected);
    // The limit is checked on this tree: the scan finds the functions of a known file.
    let teardown = fs::read_to_string(src_dir().join("reconcile/teardown.rs")).expect("readable");
    let names: Vec<String> = functions(&teardown).into_iter().map(|f| f.name).collect();
    for name in ["teardown_pass", "inventory_inner", "delete_one", "destroy"] {
        assert!(names.iter().any(|n| n == name), "{name} not found: {names:?}");
    }
}
