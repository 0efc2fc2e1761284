//! The SQL-over-HTTP wire format of Neon's serverless driver, shared by the
//! client ([`super::Db`]) and the proxy (`infra/sql-proxy`).
//!
//! - `POST /sql` with header `Neon-Connection-String: postgres://user:pass@host/db`
//! - body `{"query": "... $1", "params": [...]}` or, for one transaction,
//!   `{"queries": [{...}, ...]}` (headers `Neon-Batch-Isolation-Level`,
//!   `Neon-Batch-Read-Only`, `Neon-Batch-Deferrable`)
//! - reply `{"command", "rowCount", "rows", "fields", "rowAsArray"}`, a batch
//!   `{"results": [...]}`
//! - a Postgres error is 400 with `{"message", "code", "detail", ...}`; a reply
//!   over the proxy's cap is 507.
//!
//! Values: `NULL` is `null`; booleans, 2- and 4-byte integers and floats are
//! JSON scalars; `json`/`jsonb` are JSON; arrays are JSON arrays; everything
//! else (int8, numeric, uuid, timestamps, text) is its PostgreSQL text form.
//! With `Neon-Raw-Text-Output: true` every non-null value is its text form.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const CONNECTION_STRING: &str = "neon-connection-string";
pub const RAW_TEXT_OUTPUT: &str = "neon-raw-text-output";
pub const ARRAY_MODE: &str = "neon-array-mode";
pub const BATCH_ISOLATION_LEVEL: &str = "neon-batch-isolation-level";
pub const BATCH_READ_ONLY: &str = "neon-batch-read-only";
pub const BATCH_DEFERRABLE: &str = "neon-batch-deferrable";

/// One statement with its positional parameters (`$1`, `$2`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub query: String,
    #[serde(default)]
    pub params: Vec<Value>,
}

/// Several statements run as one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub queries: Vec<Statement>,
}

/// A request body: one statement or a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SqlRequest {
    Batch(Batch),
    Single(Statement),
}

/// Column description, as the `pg` driver reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    pub name: String,
    #[serde(rename = "dataTypeID")]
    pub data_type_id: u32,
    #[serde(rename = "tableID", default)]
    pub table_id: u32,
    #[serde(rename = "columnID", default)]
    pub column_id: i16,
    #[serde(default)]
    pub data_type_size: i16,
    #[serde(default)]
    pub data_type_modifier: i32,
    #[serde(default = "text_format")]
    pub format: String,
}

fn text_format() -> String {
    "text".to_owned()
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult {
    pub command: String,
    pub row_count: Option<u64>,
    pub rows: Vec<Value>,
    pub fields: Vec<Field>,
    #[serde(default)]
    pub row_as_array: bool,
}

/// The result of a batch, one entry per statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    pub results: Vec<QueryResult>,
}

/// An error reply. For Postgres errors `code` is the SQLSTATE.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "dataType")]
    pub data_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "where")]
    pub where_: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "internalPosition"
    )]
    pub internal_position: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "internalQuery"
    )]
    pub internal_query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routine: Option<String>,
}

/// Transaction isolation of a batch (`Neon-Batch-Isolation-Level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    ReadUncommitted,
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl IsolationLevel {
    pub fn header_value(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "ReadUncommitted",
            IsolationLevel::ReadCommitted => "ReadCommitted",
            IsolationLevel::RepeatableRead => "RepeatableRead",
            IsolationLevel::Serializable => "Serializable",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted,
            IsolationLevel::RepeatableRead,
            IsolationLevel::Serializable,
        ]
        .into_iter()
        .find(|level| level.header_value().eq_ignore_ascii_case(value.trim()))
    }

    pub fn sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "READ UNCOMMITTED",
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Serializable => "SERIALIZABLE",
        }
    }
}
