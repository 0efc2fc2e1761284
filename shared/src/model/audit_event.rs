//! `audit_events`: the trail's rows. Events are built, hashed and signed by
//! `crate::audit`; the statements that store them are here. The database's
//! insert trigger puts each on its organization's chain (migration V8). An
//! event names its own organization (none for the system chain), so these
//! builders take no scope.

use crate::domain::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

pub const COLUMNS: &str = "id, organization_id, user_id, event_type, severity, action, outcome, record_type, \
                       record_id, old_values, new_values, metadata, ip_address, user_agent, request_id, reason, \
                       created_at, content_hash, signature, key_id, session_id";

/// The value expressions of the event's columns, the first parameter being
/// `$first`.
fn placeholders(first: usize) -> String {
    let forms = [
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}::jsonb",
        "{}::jsonb",
        "{}::jsonb",
        "{}::inet",
        "{}",
        "{}",
        "{}",
        "{}::timestamptz",
        "decode({}, 'hex')",
        "decode({}, 'hex')",
        "{}",
        "{}",
    ];
    forms
        .iter()
        .enumerate()
        .map(|(i, form)| form.replace("{}", &format!("${}", first + i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statements publishing the events an audit event derives
/// (`publications`, parameter `$param`: `[{type, version, payload}]`) once
/// the CTE `recorded` stored it (`RETURNING id, organization_id,
/// created_at`): each event, and a delivery of it for every enabled webhook
/// of the organization subscribed to its type (row-level security keeps
/// them to the transaction's organization). Nothing when nothing was
/// recorded.
fn publishing(param: usize) -> String {
    let events = format!(
        "jsonb_to_recordset(${param}::jsonb) AS p(type text, version integer, payload jsonb)"
    );
    format!(
        "published AS (INSERT INTO events (organization_id, event_type, version, audit_event_id, data, occurred_at) \
           SELECT r.organization_id, p.type, p.version, r.id, p.payload -> 'data', r.created_at \
           FROM recorded r CROSS JOIN {events} WHERE r.organization_id IS NOT NULL \
           RETURNING id, organization_id, event_type), \
         queued AS (INSERT INTO webhook_deliveries (organization_id, webhook_id, event_id, event_type, payload, next_attempt_at) \
           SELECT e.organization_id, w.id, e.id, e.event_type, p.payload, now() \
           FROM published e JOIN {events} ON p.type = e.event_type \
           JOIN webhooks w ON w.organization_id = e.organization_id AND w.is_active \
                          AND w.events @> jsonb_build_array(e.event_type) \
           RETURNING 1)"
    )
}

/// Stores one event (`values` in the order of [`COLUMNS`]) and publishes
/// what it derives (`publications`, see [`publishing`]).
pub fn insert(values: Vec<Value>, publications: Option<Value>) -> Statement {
    let Some(publications) = publications else {
        return statement(
            format!(
                "INSERT INTO audit_events ({COLUMNS}) VALUES ({})",
                placeholders(1)
            ),
            values,
        );
    };
    let mut params = values;
    params.push(publications);
    let param = params.len();
    statement(
        format!(
            "WITH recorded AS (INSERT INTO audit_events ({COLUMNS}) VALUES ({}) \
               RETURNING id, organization_id, created_at), {} \
             SELECT count(*) AS published FROM published",
            placeholders(1),
            publishing(param)
        ),
        params,
    )
}

/// Makes `change` and stores the event only if it changed a row; returns
/// the changed rows.
pub fn insert_if_changed(
    change: Statement,
    values: Vec<Value>,
    publications: Option<Value>,
) -> Statement {
    insert_if_changed_where(change, values, "true", publications)
}

/// Makes `change` and stores the event only if a changed row has the
/// boolean column `flag` true; returns the changed rows.
pub fn insert_if_changed_where(
    change: Statement,
    values: Vec<Value>,
    flag: &'static str,
    publications: Option<Value>,
) -> Statement {
    let offset = change.params.len();
    let mut params = change.params;
    params.extend(values);
    let published = publications.map(|p| {
        params.push(p);
        format!(
            " RETURNING id, organization_id, created_at), {}",
            publishing(params.len())
        )
    });
    statement(
        format!(
            "WITH changed AS ({}), recorded AS (INSERT INTO audit_events ({COLUMNS}) SELECT {} \
             WHERE EXISTS (SELECT 1 FROM changed WHERE {flag}){} SELECT * FROM changed",
            change.query,
            placeholders(offset + 1),
            published.as_deref().unwrap_or(")")
        ),
        params,
    )
}

/// Makes `change` and stores the event once per changed row (its
/// `record_id` from the row); returns the `record_id`s.
pub fn insert_per_change(
    change: Statement,
    values: Vec<Value>,
    publications: Option<Value>,
) -> Statement {
    let offset = change.params.len();
    let mut params = change.params;
    params.extend(values);
    let Some(publications) = publications else {
        return statement(
            format!(
                "WITH changed AS ({}) INSERT INTO audit_events ({COLUMNS}) SELECT {} FROM changed RETURNING record_id",
                change.query,
                placeholders(offset + 1)
            ),
            params,
        );
    };
    params.push(publications);
    statement(
        format!(
            "WITH changed AS ({}), recorded AS (INSERT INTO audit_events ({COLUMNS}) SELECT {} FROM changed \
               RETURNING id, organization_id, created_at, record_id), {} \
             SELECT record_id FROM recorded",
            change.query,
            placeholders(offset + 1),
            publishing(params.len())
        ),
        params,
    )
}

/// The `SELECT` list that reads an event with every field its chain covers (`audit::export::ExportedEvent`) from `audit_events`.
pub const CHAIN_COLUMNS: &str = "sequence, id, organization_id AS \"organizationId\", user_id AS \"userId\", \
     event_type AS \"eventType\", severity, action, outcome, record_type AS \"recordType\", \
     record_id AS \"recordId\", old_values AS \"oldValues\", new_values AS \"newValues\", reason, metadata, \
     host(ip_address) AS \"ipAddress\", user_agent AS \"userAgent\", request_id AS \"requestId\", \
     session_id AS \"sessionId\", created_at AS \"createdAt\", \
     encode(previous_hash, 'hex') AS \"previousHash\", encode(hash, 'hex') AS hash, \
     encode(content_hash, 'hex') AS \"contentHash\", encode(signature, 'hex') AS signature, \
     key_id AS \"keyId\"";

/// The filters of the audit trail's list and export.
#[derive(Debug, Default)]
pub struct Filters {
    pub user_id: Option<uuid::Uuid>,
    pub event_type: Option<String>,
    pub severity: Option<String>,
    pub outcome: Option<String>,
    pub record_type: Option<String>,
    pub record_id: Option<uuid::Uuid>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Text in the action, matched literally and case-insensitively.
    pub text: Option<String>,
}

/// The filters as SQL over `audit_events`: `$1` the chain, `$2..=$10` the
/// filters ([`Filters::params`]).
const FILTER_SQL: &str = "chain_id = $1 \
       AND ($2::uuid IS NULL OR user_id = $2) \
       AND ($3::text IS NULL OR event_type = $3) \
       AND ($4::text IS NULL OR severity = $4) \
       AND ($5::text IS NULL OR outcome = $5) \
       AND ($6::text IS NULL OR record_type = $6) \
       AND ($7::uuid IS NULL OR record_id = $7) \
       AND ($8::timestamptz IS NULL OR created_at >= $8) \
       AND ($9::timestamptz IS NULL OR created_at <= $9) \
       AND ($10::text IS NULL OR action ILIKE $10)";

impl Filters {
    /// `$1..=$10` of [`FILTER_SQL`] for `scope`'s chain.
    fn params(&self, scope: &Scope) -> Vec<Value> {
        params![
            scope.organization_id(),
            self.user_id,
            self.event_type,
            self.severity,
            self.outcome,
            self.record_type,
            self.record_id,
            self.from,
            self.to,
            self.text.as_deref().map(contains_pattern),
        ]
    }

    /// The filters given, for an export's manifest.
    pub fn describe(&self) -> Value {
        let time = |t: &Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
        let mut out = serde_json::Map::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                out.insert(name.to_owned(), Value::String(value));
            }
        };
        put("userId", self.user_id.map(|u| u.to_string()));
        put("eventType", self.event_type.clone());
        put("severity", self.severity.clone());
        put("outcome", self.outcome.clone());
        put("recordType", self.record_type.clone());
        put("recordId", self.record_id.map(|u| u.to_string()));
        put("from", time(&self.from));
        put("to", time(&self.to));
        put("q", self.text.clone());
        Value::Object(out)
    }
}

/// `text` as a LIKE pattern matching it literally anywhere.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// An audit event as auditors read it.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Listed {
    pub id: uuid::Uuid,
    /// The event's position on the organization's chain.
    pub sequence: i64,
    /// A catalogued type (`docs/AUDIT_EVENTS.md`), or `CLIENT_<name>` for
    /// an event a client reported.
    pub event_type: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::audit::Severity))]
    pub severity: String,
    pub action: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::audit::Outcome))]
    pub outcome: String,
    pub user_id: Option<uuid::Uuid>,
    /// The user's name as their account has it now; none when the event
    /// has no user or the account is gone.
    pub user_name: Option<String>,
    /// The user's e-mail address as their account has it now.
    pub user_email: Option<String>,
    /// The kind of record the event is about.
    pub record_type: Option<String>,
    pub record_id: Option<uuid::Uuid>,
    /// The changed fields before.
    pub old_values: Option<Value>,
    /// The changed fields after.
    pub new_values: Option<Value>,
    pub reason: Option<String>,
    /// Free-form context, with personal and health data redacted.
    pub metadata: Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: Timestamp,
    /// The event's chain hash, hex.
    pub hash: String,
    /// The key that signed it.
    pub key_id: String,
}

/// The organization's events matching `filters`, newest first, before
/// sequence `before` (all when none).
pub async fn list<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    filters: &Filters,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Listed>, DbError> {
    let mut values = filters.params(scope);
    values.extend(params![before, limit]);
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT id, sequence, event_type, severity, action, outcome, user_id, \
                       (SELECT u.name FROM users u WHERE u.id = audit_events.user_id \
                          AND u.organization_id = audit_events.organization_id) AS user_name, \
                       (SELECT u.email FROM users u WHERE u.id = audit_events.user_id \
                          AND u.organization_id = audit_events.organization_id) AS user_email, \
                       record_type, record_id, \
                       old_values, new_values, reason, metadata, host(ip_address) AS ip_address, user_agent, request_id, \
                       created_at, encode(hash, 'hex') AS hash, key_id \
                     FROM audit_events WHERE {FILTER_SQL} AND ($11::int8 IS NULL OR sequence < $11) \
                     ORDER BY sequence DESC LIMIT $12"
                ),
                values,
            ),
        )
        .await
}

/// The organization's events matching `filters` after sequence `after`,
/// oldest first, with every field the chain covers ([`CHAIN_COLUMNS`]): at
/// most `limit`, and no more than about `max_bytes` (at least one).
pub async fn export_page<T: DeserializeOwned, P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    filters: &Filters,
    after: i64,
    limit: i64,
    max_bytes: i64,
) -> Result<Vec<T>, DbError> {
    let mut values = filters.params(scope);
    values.extend(params![after, limit, max_bytes]);
    let inner = format!(
        "SELECT e.*, {ROW_BYTES} AS row_bytes FROM audit_events e WHERE {FILTER_SQL} AND e.sequence > $11 \
         ORDER BY e.sequence LIMIT $12"
    );
    scope
        .fetch_all(db, statement(within_bytes(&inner, "$13"), values))
        .await
}

/// Roughly what one event weighs in a reply: its values, metadata and
/// action as text, and a kilobyte for the rest.
const ROW_BYTES: &str = "(octet_length(coalesce(e.old_values::text, '')) + octet_length(coalesce(e.new_values::text, '')) \
     + octet_length(coalesce(e.metadata::text, '')) + octet_length(e.action) + 1024)";

/// The events `inner` selects (`e.*, <ROW_BYTES> AS row_bytes` of
/// `audit_events e`, in sequence order, limited) up to where they pass
/// the byte budget in parameter `budget` (always the first), with every
/// field the chain covers.
fn within_bytes(inner: &str, budget: &str) -> String {
    format!(
        "SELECT {CHAIN_COLUMNS} FROM (\
           SELECT w.*, sum(w.row_bytes) OVER (ORDER BY w.sequence) - w.row_bytes AS bytes_before \
           FROM ({inner}) w) page \
         WHERE bytes_before < {budget} ORDER BY sequence"
    )
}

/// Events of the organization's chain from sequence `from` (up to `to`),
/// in order, with every field the chain covers: at most `limit`, and no
/// more than about `max_bytes` (at least one); none past the end.
pub async fn chain_page<T: DeserializeOwned, P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    from: i64,
    to: Option<i64>,
    limit: i64,
    max_bytes: i64,
) -> Result<Vec<T>, DbError> {
    let inner = format!(
        "SELECT e.*, {ROW_BYTES} AS row_bytes FROM audit_events e \
         WHERE e.chain_id = $1 AND e.sequence >= $2 AND ($3::int8 IS NULL OR e.sequence <= $3) \
         ORDER BY e.sequence LIMIT $4"
    );
    scope
        .fetch_all(
            db,
            statement(
                within_bytes(&inner, "$5"),
                params![scope.organization_id(), from, to, limit, max_bytes],
            ),
        )
        .await
}

/// A position in a chain: sequence and hash (hex).
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub sequence: i64,
    pub hash: String,
}

/// The last event of the organization's chain that retention may remove
/// (older than `days`, after the current start, never the head).
pub async fn expired_prefix_end<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    days: i64,
) -> Result<Option<Link>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT sequence, encode(hash, 'hex') AS hash FROM audit_events \
                 WHERE chain_id = $1 \
                   AND sequence < (SELECT sequence FROM audit_chain_heads WHERE chain_id = $1) \
                   AND sequence > coalesce((SELECT sequence FROM audit_retention_horizons WHERE chain_id = $1), 0) \
                   AND sequence < coalesce((SELECT min(sequence) FROM audit_events WHERE chain_id = $1 \
                                              AND created_at >= now() - make_interval(days => $2::int)), \
                                           9223372036854775807) \
                 ORDER BY sequence DESC LIMIT 1",
                params![scope.organization_id(), days as i32],
            ),
        )
        .await
}

/// Removes the organization's chain up to `through` (a signed checkpoint
/// must name it, and only events older than `days`: the database's
/// `audit_retention_purge` enforces both and the seven-year floor);
/// returns `n`, the events removed.
pub fn purge_through(scope: &Scope, days: i64, through: i64) -> Statement {
    statement(
        "SELECT audit_retention_purge($1, $2::int, $3) AS n",
        params![scope.organization_id(), days as i32, through],
    )
}

/// Deletes the organization's published events older than `days` (their
/// webhook deliveries go with them); returns `n`, how many.
pub fn purge_events(scope: &Scope, days: i64) -> Statement {
    statement(
        "WITH gone AS (DELETE FROM events WHERE organization_id = $1 \
           AND occurred_at < now() - make_interval(days => $2::int) RETURNING 1) \
         SELECT count(*) AS n FROM gone",
        params![scope.organization_id(), days as i32],
    )
}

/// How many `ACCESS_DENIED` events the organization's user `user_id` had
/// in the last `minutes`.
pub async fn recent_denials<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    user_id: uuid::Uuid,
    minutes: i64,
) -> Result<i64, DbError> {
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let n: Option<N> = scope
        .fetch_optional(
            db,
            statement(
                "SELECT count(*) AS n FROM audit_events WHERE user_id = $2 AND organization_id = $1 \
                    AND event_type = 'ACCESS_DENIED' AND created_at > now() - make_interval(mins => $3::int)",
                params![scope.organization_id(), user_id, minutes as i32],
            ),
        )
        .await?;
    Ok(n.map_or(0, |n| n.n))
}

/// The chain's head.
pub async fn head<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Option<Link>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT sequence, encode(hash, 'hex') AS hash FROM audit_chain_heads WHERE chain_id = $1",
                params![scope.organization_id()],
            ),
        )
        .await
}

/// Where the chain starts after retention removed its beginning, if it did.
pub async fn horizon<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Option<Link>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT sequence, encode(hash, 'hex') AS hash FROM audit_retention_horizons WHERE chain_id = $1",
                params![scope.organization_id()],
            ),
        )
        .await
}

/// A signed checkpoint of the chain.
#[derive(Debug, Deserialize)]
pub struct Checkpoint {
    pub sequence: i64,
    pub hash: String,
    pub signature: String,
    pub key_id: String,
    pub created_at: Timestamp,
}

/// The chain's checkpoints from sequence `from` (up to `to`), in order.
pub async fn checkpoints<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    from: i64,
    to: Option<i64>,
) -> Result<Vec<Checkpoint>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT sequence, encode(hash, 'hex') AS hash, encode(signature, 'hex') AS signature, key_id, created_at \
                 FROM audit_checkpoints WHERE chain_id = $1 AND sequence >= $2 AND ($3::int8 IS NULL OR sequence <= $3) \
                 ORDER BY sequence",
                params![scope.organization_id(), from, to],
            ),
        )
        .await
}

/// The chain's latest checkpoint.
pub async fn latest_checkpoint<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
) -> Result<Option<Checkpoint>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT sequence, encode(hash, 'hex') AS hash, encode(signature, 'hex') AS signature, key_id, created_at \
                 FROM audit_checkpoints WHERE chain_id = $1 ORDER BY sequence DESC LIMIT 1",
                params![scope.organization_id()],
            ),
        )
        .await
}

/// A checkpoint to record: the chain's event `sequence` had `hash`, signed
/// with key `key_id`.
pub struct NewCheckpoint<'a> {
    pub id: uuid::Uuid,
    pub sequence: i64,
    pub hash: &'a [u8],
    pub signature: &'a [u8],
    pub key_id: &'a str,
}

/// Records a checkpoint (once per position).
pub fn insert_checkpoint(scope: &Scope, checkpoint: &NewCheckpoint<'_>) -> Statement {
    statement(
        "INSERT INTO audit_checkpoints (id, organization_id, chain_id, sequence, hash, signature, key_id) \
         VALUES ($1, $2, $2, $3, decode($4, 'hex'), decode($5, 'hex'), $6) ON CONFLICT (chain_id, sequence) DO NOTHING",
        params![
            checkpoint.id,
            scope.organization_id(),
            checkpoint.sequence,
            hex::encode(checkpoint.hash),
            hex::encode(checkpoint.signature),
            checkpoint.key_id,
        ],
    )
}
