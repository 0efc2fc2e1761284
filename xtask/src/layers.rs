//! The layers of the shared crate, and a reader of its module graph.
//!
//! Every `crate::` path in `shared/src` (in `use` lines, inline, and
//! `$crate::` in macros; `super::` where it leaves a top-level module) is an
//! edge from the file's top-level module to the one it names. A module may
//! name only modules of lower layers ([`LAYERS`], bottom up); a test fails
//! on any other edge. `cargo xtask layers` prints the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context as _, bail};
use proc_macro2::{Delimiter, TokenStream, TokenTree};

use crate::util::root;

/// The shared crate's top-level modules, bottom up: each may use only the
/// layers before its own.
pub const LAYERS: &[&[&str]] = &[
    &["error", "body"],
    &["envelope", "web"],
    &["config", "platform", "domain"],
    &["ctx"],
    &["db"],
    &["request"],
    &["model"],
    &["ratelimit", "mail", "storage"],
    &["auth"],
    &["audit"],
    &["live", "retention", "watch", "webhook"],
    &["routes"],
    &["openapi"],
];

/// Items of the crate root (re-exports and exported macros) and the module
/// each comes from.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("params", "db"),
    ("API_VERSION", "envelope"),
    ("Reply", "envelope"),
    ("ApiError", "error"),
    ("Body", "body"),
    ("ErrorCode", "error"),
    ("FieldError", "error"),
    ("Config", "config"),
    ("Secret", "config"),
    ("Ctx", "ctx"),
    ("FetchError", "platform"),
    ("Platform", "platform"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// One use of another module: `from` names `to` in `file`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub file: PathBuf,
}

/// The `.rs` files under `dir`, sorted.
pub fn sources(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The top-level module a file of `src` belongs to (`None` for `lib.rs`)
/// and how deep below `src` it is (`routes/runs.rs`: 2; `error.rs`: 1).
fn module_of(src: &Path, file: &Path) -> Option<(String, usize)> {
    let relative = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let first = parts.first()?;
    if parts.len() == 1 && first == "lib.rs" {
        return None;
    }
    let module = first.trim_end_matches(".rs").to_owned();
    // `m/mod.rs` is the module itself, like `m.rs`.
    let depth = if parts.last().is_some_and(|p| p == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((module, depth))
}

/// Every edge in the shared crate's sources.
pub fn edges(root: &Path) -> anyhow::Result<Vec<Edge>> {
    let src = root.join("shared/src");
    let mut edges = Vec::new();
    for file in sources(&src)? {
        let Some((module, depth)) = module_of(&src, &file) else {
            continue;
        };
        let text = fs::read_to_string(&file)?;
        let tokens =
            TokenStream::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let mut named = Vec::new();
        collect(tokens, depth, &mut named);
        for name in named {
            // A root item stands for its module; anything else is a module
            // (one missing from LAYERS is reported by `violations`).
            let to = match ROOT_ITEMS.iter().find(|(item, _)| *item == name) {
                Some((_, owner)) => (*owner).to_owned(),
                None => name,
            };
            if to != module {
                edges.push(Edge {
                    from: module.clone(),
                    to,
                    file: file.strip_prefix(root).unwrap_or(&file).to_path_buf(),
                });
            }
        }
    }
    edges.sort();
    edges.dedup();
    Ok(edges)
}

/// The edges that go against [`LAYERS`], and modules missing from it.
pub fn violations(edges: &[Edge]) -> Vec<String> {
    let mut problems = Vec::new();
    for edge in edges {
        match (layer_of(&edge.from), layer_of(&edge.to)) {
            (Some(from), Some(to)) if to < from => {}
            (Some(_), Some(_)) => problems.push(format!(
                "{} ({}) names {}, which is not in a lower layer",
                edge.from,
                edge.file.display(),
                edge.to
            )),
            (None, _) => problems.push(format!("module {} is not in LAYERS", edge.from)),
            (_, None) => problems.push(format!("module {} is not in LAYERS", edge.to)),
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// The first segments of the paths in `tokens` that leave the file's
/// top-level module: `crate::x`, `$crate::x`, `crate::{x, y}`, and
/// `super::x` climbing out of it (a file `depth` levels below `src`).
fn collect(tokens: TokenStream, depth: usize, out: &mut Vec<String>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        if let TokenTree::Group(group) = &trees[i] {
            collect(group.stream(), depth, out);
            i += 1;
            continue;
        }
        let TokenTree::Ident(ident) = &trees[i] else {
            i += 1;
            continue;
        };
        let word = ident.to_string();
        if word == "crate" && is_path_sep(&trees, i + 1) {
            if let Some(next) = trees.get(i + 3) {
                first_segments(next, out);
            }
            i += 3;
        } else if word == "super" && is_path_sep(&trees, i + 1) {
            // Count `super::super::...`.
            let mut ups = 1;
            let mut j = i + 3;
            while matches!(trees.get(j), Some(TokenTree::Ident(w)) if *w == "super")
                && is_path_sep(&trees, j + 1)
            {
                ups += 1;
                j += 3;
            }
            // A file `depth` below `src` reaches the crate root with
            // `depth` supers (its own module is `depth - 1` up).
            if ups >= depth
                && let Some(next) = trees.get(j)
            {
                first_segments(next, out);
            }
            i = j;
        } else {
            i += 1;
        }
    }
}

fn is_path_sep(trees: &[TokenTree], at: usize) -> bool {
    matches!(
        (trees.get(at), trees.get(at + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':'
    )
}

/// `x` of `x::...`, or each item's first segment of `{x, y::z}`.
fn first_segments(tree: &TokenTree, out: &mut Vec<String>) {
    match tree {
        TokenTree::Ident(ident) => out.push(ident.to_string()),
        TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => {
            let mut expect = true;
            for tree in group.stream() {
                match &tree {
                    TokenTree::Punct(p) if p.as_char() == ',' => expect = true,
                    TokenTree::Ident(ident) if expect => {
                        out.push(ident.to_string());
                        expect = false;
                    }
                    _ => expect = false,
                }
            }
        }
        _ => {}
    }
}

/// `cargo xtask layers`: the edges between the shared crate's modules, with
/// how many files make each, the model checks, and any edge that breaks the
/// layering; of this checkout, or of the one at `other` (to compare).
pub fn report(other: Option<&Path>, verbose: bool) -> anyhow::Result<()> {
    let here = root();
    let root = other.unwrap_or(&here);
    let edges = edges(root)?;
    let mut counts: BTreeMap<(String, String), BTreeSet<PathBuf>> = BTreeMap::new();
    for edge in &edges {
        counts
            .entry((edge.from.clone(), edge.to.clone()))
            .or_default()
            .insert(edge.file.clone());
    }
    println!("layers, bottom up:");
    for (i, layer) in LAYERS.iter().enumerate() {
        println!("  {i:>2}. {}", layer.join(", "));
    }
    println!("edges ({}):", counts.len());
    for ((from, to), files) in &counts {
        println!("  {from} -> {to} ({} files)", files.len());
    }
    let checks = [
        (
            "SQL naming a table outside model/",
            crate::model::sql_outside_model(root)?,
        ),
        (
            "organization filters outside model/",
            crate::model::organization_filters_outside_model(root)?,
        ),
        (
            "model functions without a Scope",
            crate::model::unscoped_model_functions(root)?,
        ),
        (
            "Scope constructors out of place",
            crate::model::misplaced_scopes(root)?,
        ),
        (
            "cross-route imports",
            crate::model::cross_route_imports(root)?,
        ),
        (
            "replies built with json!",
            crate::model::json_replies(root)?,
        ),
        (
            "routes using mail or object storage they do not declare (or the reverse)",
            crate::model::undeclared_needs(root)?,
        ),
        (
            "audit event types spelled as strings",
            crate::model::event_type_literals(root)?,
        ),
    ];
    for (what, findings) in &checks {
        println!("{what}: {}", findings.len());
        if verbose {
            for finding in findings {
                println!("  {finding}");
            }
        }
    }
    let problems = violations(&edges);
    if problems.is_empty() {
        println!("no edge goes against the layers");
        Ok(())
    } else {
        for problem in &problems {
            println!("  against the layers: {problem}");
        }
        bail!("{} edges go against the layers", problems.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(text: &str, depth: usize) -> Vec<String> {
        let mut out = Vec::new();
        collect(
            TokenStream::from_str(text).expect("tokens"),
            depth,
            &mut out,
        );
        out
    }

    #[test]
    fn paths_are_read_in_every_form() {
        assert_eq!(named("use crate::db::Db;", 1), ["db"]);
        assert_eq!(
            named("use crate::{auth::Principal, error};", 1),
            ["auth", "error"]
        );
        assert_eq!(named("fn f() { crate::audit::x(); }", 1), ["audit"]);
        assert_eq!(
            named("macro_rules! m { () => { $crate::ctx::Ctx } }", 1),
            ["ctx"]
        );
        // `super` inside a module stays there; from `m/x.rs` two climb out.
        assert!(named("use super::page;", 2).is_empty());
        assert_eq!(named("use super::super::routes::x;", 2), ["routes"]);
        // Text is not code.
        assert!(
            named(
                "/// see crate::routes\nconst A: &str = \"crate::routes\";",
                1
            )
            .is_empty()
        );
    }

    #[test]
    fn the_shared_crate_depends_one_way() {
        let edges = edges(&root()).expect("the shared crate's sources");
        assert!(!edges.is_empty(), "no edges read: the reader is broken");
        let problems = violations(&edges);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn an_edge_upwards_is_refused() {
        let up = Edge {
            from: "db".into(),
            to: "routes".into(),
            file: "shared/src/db/mod.rs".into(),
        };
        assert_eq!(violations(&[up]).len(), 1);
        let down = Edge {
            from: "routes".into(),
            to: "db".into(),
            file: "shared/src/routes/x.rs".into(),
        };
        assert!(violations(&[down]).is_empty());
    }
}
