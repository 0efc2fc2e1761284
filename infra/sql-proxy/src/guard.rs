//! Statements the proxy will not run for a caller: those that control the
//! transaction or change the session. On a pooled connection they would
//! outlive the request (a lone `BEGIN` leaves the next caller inside a
//! transaction, a `SET ROLE` runs the next caller's SQL as someone else),
//! and inside a batch a `COMMIT` would break its atomicity.
//!
//! The proxy prepares every statement (PostgreSQL's extended protocol), so a
//! query is one statement: its leading keywords decide. What a function
//! changes through SQL (`set_config(…, false)`) is undone by the pool's
//! clean recycling instead.

const TRANSACTION: &str = "transaction control statements are not supported: \
                           send the statements as one batch (a transaction) instead";
const SESSION: &str = "statements that change the session are not supported: \
                       the connection is shared (use SET LOCAL inside a batch)";

/// Why `query` is refused, or `None` when it may run.
pub fn refusal(query: &str) -> Option<&'static str> {
    let mut words = Words { rest: query }.map(str::to_ascii_lowercase);
    match words.next()?.as_str() {
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "savepoint" | "release" => {
            Some(TRANSACTION)
        }
        // A session's own prepared statements would outlive it, and
        // `DEALLOCATE ALL` or `DISCARD` would drop the pool's statement cache.
        "prepare" if words.next().as_deref() == Some("transaction") => Some(TRANSACTION),
        "prepare" | "deallocate" | "discard" | "reset" | "listen" | "unlisten" => Some(SESSION),
        "set" => match words.next().as_deref() {
            Some("local") => None,
            Some("transaction") => Some(TRANSACTION),
            _ => Some(SESSION),
        },
        _ => None,
    }
}

/// The words of a statement's start, past whitespace and comments.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let trimmed = self.rest.trim_start();
            if let Some(after) = trimmed.strip_prefix("--") {
                self.rest = after.split_once('\n').map_or("", |(_, r)| r);
            } else if let Some(after) = trimmed.strip_prefix("/*") {
                self.rest = skip_block_comment(after);
            } else {
                self.rest = trimmed;
                break;
            }
        }
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(word)
    }
}

/// What follows a block comment whose opening `/*` is already consumed
/// (PostgreSQL's block comments nest).
fn skip_block_comment(mut text: &str) -> &str {
    let mut depth = 1;
    while depth > 0 {
        let open = text.find("/*");
        let Some(close) = text.find("*/") else {
            return "";
        };
        match open {
            Some(open) if open < close => {
                depth += 1;
                text = &text[open + 2..];
            }
            _ => {
                depth -= 1;
                text = &text[close + 2..];
            }
        }
    }
    text
}

/// The statement's command tag verb (`SELECT`, `INSERT`, …).
pub fn command_of(query: &str) -> String {
    Words { rest: query }
        .next()
        .map(str::to_ascii_uppercase)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_control_is_refused() {
        for query in [
            "BEGIN",
            "begin isolation level serializable",
            "START TRANSACTION",
            "commit",
            "END",
            "ROLLBACK",
            "abort",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "ROLLBACK TO SAVEPOINT a",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "PREPARE TRANSACTION 'x'",
            "COMMIT PREPARED 'x'",
            "  -- a comment\n /* and /* a nested */ one */ Commit",
        ] {
            assert!(
                refusal(query).is_some_and(|why| why.contains("transaction")),
                "{query}"
            );
        }
    }

    #[test]
    fn session_changes_are_refused() {
        for query in [
            "SET search_path = public",
            "set role postgres",
            "SET SESSION AUTHORIZATION postgres",
            "SET SESSION statement_timeout = 0",
            "RESET ALL",
            "reset role",
            "DISCARD ALL",
            "DEALLOCATE ALL",
            "PREPARE q AS SELECT 1",
            "LISTEN jobs",
            "UNLISTEN *",
        ] {
            assert!(
                refusal(query).is_some_and(|why| why.contains("session")),
                "{query}"
            );
        }
    }

    #[test]
    fn ordinary_statements_run() {
        for query in [
            "SELECT 1",
            "select set_config('app.organization_id', $1, true)",
            "SET LOCAL app.organization_id = 'x'",
            "INSERT INTO settings (name) VALUES ('begin')",
            "WITH begin AS (SELECT 1) SELECT * FROM begin",
            "UPDATE t SET role = 'x'",
            "/* begin */ SELECT 1",
            "-- commit\nSELECT 1",
            "beginning_of_time()",
            "",
            "   ",
        ] {
            assert_eq!(refusal(query), None, "{query}");
        }
    }

    #[test]
    fn an_unterminated_comment_hides_nothing() {
        assert_eq!(refusal("/* BEGIN"), None);
        assert_eq!(
            command_of("/* x */ /* y /* z */ */ insert into t"),
            "INSERT"
        );
    }

    #[test]
    fn command_is_first_keyword() {
        assert_eq!(command_of("select 1"), "SELECT");
        assert_eq!(command_of("  -- hi\n/* x */ INSERT INTO t"), "INSERT");
        assert_eq!(command_of(""), "");
    }
}
