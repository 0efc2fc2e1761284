//! Checks of the model layer and the routes, read from the shared crate's
//! sources (`cargo xtask layers` prints them with the module graph):
//!
//! - SQL naming a table (or a function) of the migrations appears only in
//!   `shared/src/model/`;
//! - every model function that reaches the database (takes a `Db` or builds
//!   a `Statement`) takes a `Scope`, except the listed lookups that happen
//!   before the organization is known;
//! - each `Scope` constructor is used only where it may be;
//! - route modules do not import each other, and no reply is built with
//!   `json!`;
//! - a route declares the mail and the object storage its module uses, and
//!   nothing it does not use.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};

use crate::layers::sources;
#[cfg(test)]
use crate::util::root;

/// Model functions that reach the database without a scope: the lookups
/// before the organization is known, and the system-wide work. Each is
/// named for what it looks up.
pub const UNSCOPED: &[&str] = &[
    // An audit event names its own organization (none: the system chain).
    "insert",
    "insert_if_changed",
    "insert_if_changed_where",
    "insert_per_change",
    // Before anyone is authenticated: an API key by its prefix, an account
    // by its e-mail (unique across organizations), a refresh, reset or
    // invitation token by its hash. Each of these and the two below calls
    // one of migrations V15's and V16's SECURITY DEFINER functions (the tables are
    // under row-level security).
    "by_prefix",
    "account_for_login",
    "account_for_reset",
    "rotate_refresh_token",
    "refresh_token_state",
    "use_reset_token",
    "reset_token_owner",
    "accept",
    "invitation_for",
    // The mail sender's claim on due messages of every organization and of
    // none, and its record of each delivery (V19).
    "claim_due",
    "record_delivery",
    // A signup before its organization exists: the request, found by its
    // token's hash, and its confirmation (V19).
    "request_signup",
    "signup_request_for",
    "confirm_signup",
    // The scheduled retention job: the organizations due, and the sweep of
    // what belongs to none (V20).
    "claim_retention_due",
    "finish_retention",
    "purge_expired_signup_requests",
    "purge_unowned_mail",
    // A bridge's join token by its hash: the token is its only credential.
    "join_token_by_hash",
    // System-wide: idle rate-limit state keyed by address (no
    // organization's), V16's definer.
    "purge_idle_addresses",
    // The watch: what is due to publish in every organization (V28).
    "due_for_watch",
];

/// Where each `Scope` constructor may be called (paths under
/// `shared/src/`, a folder for all its files).
pub const SCOPE_CONSTRUCTORS: &[(&str, &[&str])] = &[
    ("authenticated", &["auth/"]),
    ("bridge", &["live/", "routes/bridge_enroll.rs"]),
    (
        "account",
        &[
            "routes/auth_",
            "routes/signing_in.rs",
            "routes/users.rs",
            "auth/",
        ],
    ),
    ("recorded", &["audit/"]),
    (
        "scheduled",
        &["routes/job_retention.rs", "webhook/", "watch.rs"],
    ),
];

/// Whether `name` is a route's module (each function's name, `-` as `_`).
fn is_route_module(name: &str) -> bool {
    shared::routes::ROUTES
        .iter()
        .any(|route| route.function.replace('-', "_") == name)
}

/// A finding: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.what)
    }
}

/// The tables and functions the migrations create.
pub fn schema_names(root: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut tables = Vec::new();
    let mut functions = Vec::new();
    for file in fs::read_dir(root.join("infra/migrations"))? {
        let text = fs::read_to_string(file?.path())?;
        for line in text.lines() {
            let line = line.trim();
            let name = |rest: &str| {
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
                    .to_owned()
            };
            if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                tables.push(name(rest.trim_start_matches("IF NOT EXISTS ")));
            } else if let Some(rest) = line
                .strip_prefix("CREATE FUNCTION ")
                .or_else(|| line.strip_prefix("CREATE OR REPLACE FUNCTION "))
            {
                functions.push(name(rest));
            }
        }
    }
    for list in [&mut tables, &mut functions] {
        list.retain(|n| !n.is_empty());
        list.sort();
        list.dedup();
    }
    Ok((tables, functions))
}

fn relative(root: &Path, file: &Path) -> PathBuf {
    file.strip_prefix(root.join("shared/src"))
        .unwrap_or(file)
        .to_path_buf()
}

fn tokens(file: &Path) -> anyhow::Result<TokenStream> {
    let text = fs::read_to_string(file)?;
    TokenStream::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn line(span: Span) -> usize {
    span.start().line
}

/// The string literals of `tokens`, outside doc comments, with their lines.
fn strings(tokens: TokenStream, out: &mut Vec<(usize, String)>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        match &trees[i] {
            // `#[doc = "..."]` (and `#![doc ...]`): prose, not SQL.
            TokenTree::Punct(p) if p.as_char() == '#' => {
                let mut j = i + 1;
                if matches!(trees.get(j), Some(TokenTree::Punct(p)) if p.as_char() == '!') {
                    j += 1;
                }
                if let Some(TokenTree::Group(group)) = trees.get(j)
                    && group.delimiter() == Delimiter::Bracket
                {
                    let is_doc = group
                        .stream()
                        .into_iter()
                        .next()
                        .is_some_and(|t| matches!(&t, TokenTree::Ident(w) if *w == "doc"));
                    if !is_doc {
                        strings(group.stream(), out);
                    }
                    i = j + 1;
                    continue;
                }
                i += 1;
            }
            TokenTree::Group(group) => {
                strings(group.stream(), out);
                i += 1;
            }
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                if text.starts_with('"') || text.starts_with("r\"") || text.starts_with("r#") {
                    out.push((line(literal.span()), text));
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// Whether `text` names `name` as SQL does after `FROM`, `JOIN`, `INTO`,
/// `UPDATE` or `TABLE`, or calls it.
fn names_in_sql(text: &str, name: &str, function: bool) -> bool {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    if function {
        return text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].trim_start().chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && after == Some('(')
        });
    }
    words.windows(2).any(|pair| {
        matches!(pair[0], "FROM" | "JOIN" | "INTO" | "UPDATE" | "TABLE") && pair[1] == name
    })
}

/// SQL naming a table or function of the migrations outside `model/`.
pub fn sql_outside_model(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let (tables, functions) = schema_names(root)?;
    anyhow::ensure!(
        tables.len() >= 20,
        "only {} tables read from the migrations",
        tables.len()
    );
    let src = root.join("shared/src");
    let mut findings = Vec::new();
    for file in sources(&src)? {
        let rel = relative(root, &file);
        if rel.starts_with("model") {
            continue;
        }
        let mut found = Vec::new();
        strings(tokens(&file)?, &mut found);
        for (line, text) in found {
            for table in &tables {
                if names_in_sql(&text, table, false) {
                    findings.push(Finding {
                        file: rel.clone(),
                        line,
                        what: format!("SQL names the table {table}"),
                    });
                }
            }
            for function in &functions {
                if names_in_sql(&text, function, true) {
                    findings.push(Finding {
                        file: rel.clone(),
                        line,
                        what: format!("SQL calls the function {function}"),
                    });
                }
            }
        }
    }
    findings.sort();
    findings.dedup();
    Ok(findings)
}

/// Hand-written organization filters (`organization_id = $n`) outside
/// `model/`.
pub fn organization_filters_outside_model(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let src = root.join("shared/src");
    let mut findings = Vec::new();
    for file in sources(&src)? {
        let rel = relative(root, &file);
        if rel.starts_with("model") {
            continue;
        }
        let mut found = Vec::new();
        strings(tokens(&file)?, &mut found);
        for (line, text) in found {
            let squeezed: String = text.split_whitespace().collect();
            if squeezed.contains("organization_id=$") {
                findings.push(Finding {
                    file: rel.clone(),
                    line,
                    what: "a hand-written organization filter".into(),
                });
            }
        }
    }
    Ok(findings)
}

/// A function's name, where its name stands, its parameter list and what
/// follows up to its body (the return type).
struct Signature {
    name: String,
    line: usize,
    params: TokenStream,
    returns: Vec<TokenTree>,
}

/// The `pub fn` / `pub async fn` signatures in `tokens`, at any depth
/// (inside `impl` blocks too).
fn signatures(tokens: TokenStream, out: &mut Vec<Signature>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        if let TokenTree::Group(group) = tree {
            signatures(group.stream(), out);
            continue;
        }
        let TokenTree::Ident(word) = tree else {
            continue;
        };
        if *word != "fn" {
            continue;
        }
        // `pub fn`, `pub async fn`, `pub(crate) fn`...
        let public = trees[..i]
            .iter()
            .rev()
            .take(3)
            .any(|t| matches!(t, TokenTree::Ident(w) if *w == "pub"));
        let Some(TokenTree::Ident(name)) = trees.get(i + 1) else {
            continue;
        };
        if !public {
            continue;
        }
        let params = trees[i + 2..].iter().find_map(|t| match t {
            TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis => Some(g),
            _ => None,
        });
        let Some(params) = params else {
            continue;
        };
        let after: Vec<TokenTree> = trees[i + 2..]
            .iter()
            .skip_while(
                |t| !matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis),
            )
            .skip(1)
            .take_while(|t| !matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace))
            .cloned()
            .collect();
        out.push(Signature {
            name: name.to_string(),
            line: line(name.span()),
            params: params.stream(),
            returns: after,
        });
    }
}

fn mentions(tokens: impl IntoIterator<Item = TokenTree>, word: &str) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(w) => w == word,
        TokenTree::Group(g) => mentions(g.stream(), word),
        _ => false,
    })
}

/// Model functions that reach the database without taking a scope and are
/// not in [`UNSCOPED`].
pub fn unscoped_model_functions(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let src = root.join("shared/src/model");
    let mut findings = Vec::new();
    if !src.exists() {
        // A checkout from before the model layer (`layers --root`).
        return Ok(findings);
    }
    for file in sources(&src)? {
        let rel = relative(root, &file);
        let mut found = Vec::new();
        signatures(tokens(&file)?, &mut found);
        for signature in found {
            let reaches = mentions(signature.params.clone(), "Db")
                || mentions(signature.returns.clone(), "Statement");
            let scoped = mentions(signature.params.clone(), "Scope")
                || mentions(signature.params.clone(), "self");
            if reaches && !scoped && !UNSCOPED.contains(&signature.name.as_str()) {
                findings.push(Finding {
                    file: rel.clone(),
                    line: signature.line,
                    what: format!(
                        "{} reaches the database without a Scope (and is not in UNSCOPED)",
                        signature.name
                    ),
                });
            }
        }
    }
    Ok(findings)
}

/// `Scope::<constructor>(` calls outside the places [`SCOPE_CONSTRUCTORS`]
/// allows.
pub fn misplaced_scopes(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let src = root.join("shared/src");
    let mut findings = Vec::new();
    for file in sources(&src)? {
        let rel = relative(root, &file);
        if rel.starts_with("model") {
            continue;
        }
        let text = rel.to_string_lossy().replace('\\', "/");
        let mut calls = Vec::new();
        paths_after(tokens(&file)?, "Scope", &mut calls);
        for (line, constructor) in calls {
            let allowed = SCOPE_CONSTRUCTORS
                .iter()
                .find(|(name, _)| *name == constructor)
                .is_some_and(|(_, places)| places.iter().any(|p| text.starts_with(p)));
            if !allowed {
                findings.push(Finding {
                    file: rel.clone(),
                    line,
                    what: format!("Scope::{constructor} is not allowed here"),
                });
            }
        }
    }
    Ok(findings)
}

/// `head::x` occurrences in `tokens`: `(line, x)`.
fn paths_after(tokens: TokenStream, head: &str, out: &mut Vec<(usize, String)>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(group) => paths_after(group.stream(), head, out),
            TokenTree::Ident(word) if *word == head => {
                if let (
                    Some(TokenTree::Punct(a)),
                    Some(TokenTree::Punct(b)),
                    Some(TokenTree::Ident(next)),
                ) = (trees.get(i + 1), trees.get(i + 2), trees.get(i + 3))
                    && a.as_char() == ':'
                    && b.as_char() == ':'
                {
                    out.push((line(next.span()), next.to_string()));
                }
            }
            _ => {}
        }
    }
}

/// `tokens` without the bodies of inline modules (`mod tests { ... }`),
/// where `super` names the file's own module.
fn outside_inline_modules(tokens: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut kept = Vec::new();
    for (i, tree) in trees.iter().enumerate() {
        let inline_module = matches!(tree, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace)
            && i >= 2
            && matches!(&trees[i - 2], TokenTree::Ident(w) if *w == "mod");
        if !inline_module {
            kept.push(tree.clone());
        }
    }
    kept.into_iter().collect()
}

/// Route modules naming another route module (`super::<route>`).
pub fn cross_route_imports(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let dir = root.join("shared/src/routes");
    let mut findings = Vec::new();
    for file in sources(&dir)? {
        if file.file_name().is_some_and(|n| n == "mod.rs") {
            continue;
        }
        let rel = relative(root, &file);
        let own = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut uses = Vec::new();
        paths_after(outside_inline_modules(tokens(&file)?), "super", &mut uses);
        for (line, name) in uses {
            if name != own && is_route_module(&name) {
                findings.push(Finding {
                    file: rel.clone(),
                    line,
                    what: format!("imports the route module {name}"),
                });
            }
        }
    }
    Ok(findings)
}

/// Route modules whose needs differ from what their route declares: a
/// module that sends mail (`mail::send_due`), reaches object storage (`s3`) or
/// issues access tokens (`token_reply`) must declare it, and one that
/// declares it must do it; one that declares no database must not reach it
/// (`db`) (each function is allowed only the origins and secrets it uses).
pub fn undeclared_needs(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let dir = root.join("shared/src/routes");
    let mut findings = Vec::new();
    for route in shared::routes::ROUTES {
        let module = route.function.replace('-', "_");
        let mut files = vec![dir.join(format!("{module}.rs"))];
        if dir.join(&module).is_dir() {
            files.extend(sources(&dir.join(&module))?);
        }
        let (mut mail, mut s3, mut tokens_issued, mut db) = (false, false, false, false);
        for file in files.iter().filter(|f| f.is_file()) {
            let code = outside_inline_modules(tokens(file)?);
            let mut uses = Vec::new();
            paths_after(code.clone(), "mail", &mut uses);
            // Queueing (sealing into the outbox) is not sending.
            mail |= uses.iter().any(|(_, name)| name == "send_due");
            s3 |= mentions(code.clone(), "s3");
            tokens_issued |= mentions(code.clone(), "token_reply");
            db |= mentions(code, "db");
        }
        let file = relative(root, &files[0]);
        for (what, used, declared) in [
            ("mail", mail, route.attrs.mail),
            ("object_storage", s3, route.attrs.object_storage),
            ("issues_tokens", tokens_issued, route.attrs.issues_tokens),
            // Every route but those that declare none reaches the database
            // through `ctx.db()`, often in a helper: only a route without
            // the database is held to not mentioning it.
            ("database", db || route.attrs.database, route.attrs.database),
        ] {
            if used != declared {
                findings.push(Finding {
                    file: file.clone(),
                    line: 1,
                    what: format!(
                        "{}: `{what}: {declared}` in the route table, but the module {} it",
                        route.function,
                        if used { "does" } else { "does not do" }
                    ),
                });
            }
        }
    }
    Ok(findings)
}

/// String literals that spell a catalogued audit event type outside the
/// catalogue (`audit/catalogue.rs`): events name their type by the enum.
pub fn event_type_literals(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let names: Vec<String> = shared::audit::EventType::ALL
        .iter()
        .map(|t| format!("\"{}\"", t.as_str()))
        .collect();
    let src = root.join("shared/src");
    let mut findings = Vec::new();
    for file in sources(&src)? {
        let rel = relative(root, &file);
        if rel.ends_with("audit/catalogue.rs") {
            continue;
        }
        let mut found = Vec::new();
        strings(tokens(&file)?, &mut found);
        for (line, text) in found {
            if names.contains(&text) {
                findings.push(Finding {
                    file: rel.clone(),
                    line,
                    what: format!("the audit event type {text} spelled as a string"),
                });
            }
        }
    }
    Ok(findings)
}

/// `Reply::...(json!(...))`: replies built from untyped JSON.
pub fn json_replies(root: &Path) -> anyhow::Result<Vec<Finding>> {
    let dir = root.join("shared/src/routes");
    let mut findings = Vec::new();
    for file in sources(&dir)? {
        let rel = relative(root, &file);
        let mut found = Vec::new();
        json_reply_calls(tokens(&file)?, &mut found);
        for line in found {
            findings.push(Finding {
                file: rel.clone(),
                line,
                what: "a reply built with json!".into(),
            });
        }
    }
    Ok(findings)
}

fn json_reply_calls(tokens: TokenStream, out: &mut Vec<usize>) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(group) => json_reply_calls(group.stream(), out),
            TokenTree::Ident(word) if *word == "Reply" => {
                if let (Some(TokenTree::Ident(constructor)), Some(TokenTree::Group(args))) =
                    (trees.get(i + 3), trees.get(i + 4))
                    && matches!(
                        constructor.to_string().as_str(),
                        "ok" | "created" | "with_status"
                    )
                    && mentions(args.stream(), "json")
                {
                    out.push(line(constructor.span()));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(findings: &[Finding]) -> String {
        findings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn sql_is_recognised() {
        assert!(names_in_sql(
            "SELECT id FROM instruments WHERE",
            "instruments",
            false
        ));
        assert!(names_in_sql("UPDATE runs SET", "runs", false));
        assert!(!names_in_sql("the runs of an instrument", "runs", false));
        assert!(!names_in_sql("SELECT * FROM runs_view", "runs", false));
        assert!(names_in_sql(
            "SELECT audit_retention_purge ($1)",
            "audit_retention_purge",
            true
        ));
        assert!(!names_in_sql(
            "audit_retention_purge is",
            "audit_retention_purge",
            true
        ));
    }

    #[test]
    fn strings_skip_doc_comments() {
        let mut found = Vec::new();
        strings(
            TokenStream::from_str("/// SELECT * FROM runs\nconst Q: &str = \"UPDATE runs\";")
                .expect("tokens"),
            &mut found,
        );
        assert_eq!(found.len(), 1);
        assert!(found[0].1.contains("UPDATE runs"));
    }

    #[test]
    fn no_sql_outside_the_model_layer() {
        let findings = sql_outside_model(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }

    #[test]
    fn no_organization_filter_outside_the_model_layer() {
        let findings = organization_filters_outside_model(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }

    #[test]
    fn model_functions_take_the_scope() {
        let findings = unscoped_model_functions(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }

    #[test]
    fn scopes_are_built_only_where_allowed() {
        let findings = misplaced_scopes(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }

    #[test]
    fn route_modules_do_not_import_each_other() {
        let findings = cross_route_imports(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }

    #[test]
    fn audit_event_types_are_named_by_the_enum() {
        let findings = event_type_literals(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }

    #[test]
    fn routes_declare_the_mail_and_storage_they_use() {
        let findings = undeclared_needs(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }

    #[test]
    fn replies_are_named_types() {
        let findings = json_replies(&root()).expect("sources");
        assert!(findings.is_empty(), "{}", show(&findings));
    }
}
