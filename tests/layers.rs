//! The crate's import table (docs/ARCHITECTURE.md), checked: every `crate::...` path under
//! `src/` must name a module on its own floor or below, and a module on its own floor only when
//! the table lists it as an allowed neighbour. A new top-level module must be given a floor here
//! (and in the document) before it can be used.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Floors, bottom to top, and the top-level modules on each.
const FLOORS: &[(u8, &[&str])] = &[
    (1, &["domain"]),
    (
        2,
        &[
            "config",
            "egress",
            "outbound",
            "processing",
            "ratelimit",
            "search",
        ],
    ),
    (3, &["store"]),
    (4, &["service"]),
    (5, &["error", "telemetry", "extract", "metrics"]),
    (6, &["state"]),
    (7, &["auth", "routes", "mcp", "openapi", "console"]),
    (8, &["app", "cli"]),
];

/// Imports allowed between two modules of the same floor (importer, imported). Any other
/// same-floor import is a forbidden neighbour.
const NEIGHBOURS: &[(&str, &str)] = &[
    ("outbound", "config"),
    ("egress", "outbound"),
    ("processing", "outbound"),
    ("ratelimit", "outbound"),
    ("telemetry", "error"),
    ("extract", "error"),
    ("metrics", "error"),
    ("routes", "auth"),
    ("routes", "openapi"),
    ("mcp", "auth"),
    ("console", "auth"),
    ("cli", "app"),
];

fn floor_of(module: &str) -> Option<u8> {
    FLOORS
        .iter()
        .find(|(_, modules)| modules.contains(&module))
        .map(|(floor, _)| *floor)
}

/// One import that breaks the table.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    line: usize,
    imported: String,
    why: String,
}

/// The top-level modules a source text names through `crate::`, with their line numbers.
/// Comments are skipped; `use crate::{a, b::c}` names `a` and `b`.
fn crate_imports(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_group: Option<usize> = None;
    for (index, raw) in source.lines().enumerate() {
        let line_number = index + 1;
        let line = strip_comment(raw);
        if let Some(depth) = in_group.as_mut() {
            collect_group_names(line, depth, line_number, &mut found);
            if *depth == 0 {
                in_group = None;
            }
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let preceded_by_ident = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let after = &rest[at + "crate::".len()..];
            if preceded_by_ident {
                rest = after;
                continue;
            }
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 1;
                collect_group_names(group, &mut depth, line_number, &mut found);
                if depth > 0 {
                    in_group = Some(depth);
                }
                break;
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((line_number, name));
            }
            rest = after;
        }
    }
    found
}

/// Names at depth 1 of a `use crate::{...}` group, tracking the brace depth across lines.
fn collect_group_names(
    text: &str,
    depth: &mut usize,
    line_number: usize,
    found: &mut Vec<(usize, String)>,
) {
    let mut expecting_name = *depth == 1;
    let mut name = String::new();
    for c in text.chars() {
        match c {
            '{' => {
                *depth += 1;
                expecting_name = false;
            }
            '}' => {
                *depth = depth.saturating_sub(1);
                if *depth == 0 {
                    break;
                }
            }
            ',' if *depth == 1 => {
                expecting_name = true;
                name.clear();
            }
            c if expecting_name && (c.is_alphanumeric() || c == '_') => name.push(c),
            c if expecting_name && !name.is_empty() && !c.is_whitespace() => {
                found.push((line_number, std::mem::take(&mut name)));
                expecting_name = false;
            }
            _ => {}
        }
    }
    if expecting_name && !name.is_empty() {
        found.push((line_number, name));
    }
}

/// The code of a line without its `//` comment (a `//` inside a string literal is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut previous = '\0';
    for (at, c) in line.char_indices() {
        match c {
            '"' if previous != '\\' => in_string = !in_string,
            '/' if !in_string && previous == '/' => return &line[..at - 1],
            _ => {}
        }
        previous = c;
    }
    line
}

/// The violations in one file of top-level module `module`.
fn check_source(file: &str, module: &str, source: &str) -> Vec<Violation> {
    let Some(own_floor) = floor_of(module) else {
        return vec![Violation {
            file: file.to_string(),
            line: 0,
            imported: module.to_string(),
            why: format!("module `{module}` has no floor in the import table"),
        }];
    };
    let mut violations = Vec::new();
    for (line, imported) in crate_imports(source) {
        if imported == module {
            continue;
        }
        let why = match floor_of(&imported) {
            None => Some(format!("`{imported}` has no floor in the import table")),
            Some(floor) if floor > own_floor => Some(format!(
                "floor {own_floor} `{module}` imports floor {floor} `{imported}`"
            )),
            Some(floor) if floor == own_floor && !NEIGHBOURS.contains(&(module, &imported)) => {
                Some(format!(
                    "`{module}` may not import its neighbour `{imported}` (floor {floor})"
                ))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            violations.push(Violation {
                file: file.to_string(),
                line,
                imported,
                why,
            });
        }
    }
    violations
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_its_floor_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut modules = BTreeSet::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The crate root declares the modules and the binary reaches the library by name.
        if top == "lib" || top == "main" {
            continue;
        }
        modules.insert(top.clone());
        let source = std::fs::read_to_string(path).unwrap();
        violations.extend(check_source(&relative.display().to_string(), &top, &source));
    }
    assert!(
        modules.len() >= 10,
        "the walk found too few modules: {modules:?}"
    );
    assert!(
        violations.is_empty(),
        "imports that break the table in docs/ARCHITECTURE.md:\n{}",
        violations
            .iter()
            .map(|v| format!("  {}:{}: {}", v.file, v.line, v.why))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_domain_file_that_imports_the_http_error_is_refused() {
    let source = "use serde::Serialize;\nuse crate::error::ApiError;\n";
    let violations = check_source("domain/goals.rs", "domain", source);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].line, 2);
    assert_eq!(
        violations[0].why,
        "floor 1 `domain` imports floor 5 `error`"
    );
}

#[test]
fn grouped_and_inline_paths_are_read_and_comments_are_not() {
    let source = "\
use crate::{
    domain::time,
    store::{Store, StoreError},
};
// crate::app is only mentioned here
fn f() { let _ = crate::routes::api; let url = \"http://x\"; } // crate::cli
";
    let names: Vec<String> = crate_imports(source).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["domain", "store", "routes"]);
}

#[test]
fn a_forbidden_neighbour_and_an_unknown_module_are_refused() {
    let neighbour = check_source("ratelimit/mod.rs", "ratelimit", "use crate::processing::X;");
    assert_eq!(
        neighbour[0].why,
        "`ratelimit` may not import its neighbour `processing` (floor 2)"
    );
    let unknown = check_source("gadgets.rs", "gadgets", "");
    assert_eq!(
        unknown[0].why,
        "module `gadgets` has no floor in the import table"
    );
    assert!(check_source("routes/x.rs", "routes", "use crate::auth::Caller;").is_empty());
}
