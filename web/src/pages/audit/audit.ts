// The audit pages' plain logic: the filters as the address holds them and
// as the API takes them, a chain verification in words, and reading an
// export's manifest and digest.
import type { Schemas } from "../../api/client";

export const SEVERITIES: Schemas["Severity"][] = ["INFO", "WARNING", "ERROR", "CRITICAL"];
export const OUTCOMES: Schemas["AuditOutcome"][] = ["SUCCESS", "FAILURE", "DENIED"];

/** The kinds of record events are about (`recordType`), as the catalogue names them. */
export const RECORD_TYPES = [
  "api_key", "bridge", "bridge_join_token", "instrument", "instrument_command", "invitation",
  "maintenance", "retention", "run", "session", "user",
];

export interface AuditFilters {
  userId: string;
  eventType: string;
  severity: Schemas["Severity"] | "";
  outcome: Schemas["AuditOutcome"] | "";
  recordType: string;
  recordId: string;
  /** Local days, `2026-12-01`. */
  from: string;
  to: string;
  q: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The filters in `params`: malformed ones are left out rather than sent. */
export function auditFilters(params: URLSearchParams): AuditFilters {
  const get = (name: string) => (params.get(name) ?? "").trim();
  const severity = get("severity").toUpperCase();
  const outcome = get("outcome").toUpperCase();
  return {
    userId: UUID.test(get("userId")) ? get("userId") : "",
    eventType: /^[A-Za-z0-9_]{1,100}$/.test(get("eventType")) ? get("eventType").toUpperCase() : "",
    severity: (SEVERITIES as string[]).includes(severity) ? (severity as Schemas["Severity"]) : "",
    outcome: (OUTCOMES as string[]).includes(outcome) ? (outcome as Schemas["AuditOutcome"]) : "",
    recordType: /^[a-z_]{1,100}$/.test(get("recordType")) ? get("recordType") : "",
    recordId: UUID.test(get("recordId")) ? get("recordId") : "",
    from: DATE.test(get("from")) ? get("from") : "",
    to: DATE.test(get("to")) ? get("to") : "",
    q: get("q").slice(0, 200),
  };
}

/** The filters as the API's query (`/api/audit/events` and `/api/audit/export` take the same). */
export function auditQuery(f: AuditFilters): Record<string, string> {
  const query: Record<string, string> = {};
  if (f.userId) query.userId = f.userId;
  if (f.eventType) query.eventType = f.eventType;
  if (f.severity) query.severity = f.severity;
  if (f.outcome) query.outcome = f.outcome;
  if (f.recordType) query.recordType = f.recordType;
  if (f.recordId) query.recordId = f.recordId;
  if (f.from) query.from = new Date(`${f.from}T00:00:00`).toISOString();
  if (f.to) query.to = new Date(`${f.to}T23:59:59.999`).toISOString();
  if (f.q) query.q = f.q;
  return query;
}

const BREAKS: Record<Schemas["BreakReason"], string> = {
  missing: "an event is missing",
  reordered: "events are out of order",
  modified: "an event was changed after it was recorded",
  bad_signature: "an event's signature does not verify",
  unknown_key: "an event is signed with a key this deployment does not know",
  truncated: "the chain ends before its last signed checkpoint",
  checkpoint_mismatch: "the chain differs from a signed checkpoint of it",
};

/** What a verification found, in plain words: a headline and a tone. */
export function verdict(v: Schemas["ChainVerification"]): { tone: "good" | "bad" | "info"; headline: string; detail: string } {
  const n = (x: number) => x.toLocaleString("en-US");
  if (v.failure) {
    return {
      tone: "bad",
      headline: `The audit trail is broken at event #${n(v.failure.sequence)}: ${BREAKS[v.failure.reason] ?? v.failure.reason}.`,
      detail: `${v.failure.detail} Events before it (${n(v.events)}) verified. Report this to your quality unit: the trail cannot be relied on from that event on.`,
    };
  }
  if (!v.complete) {
    return { tone: "info", headline: `Checked ${n(v.events)} events so far…`, detail: `Up to event #${n(v.verifiedToSequence)}.` };
  }
  if (v.events === 0) {
    return { tone: "info", headline: "The audit trail has no events yet.", detail: "Nothing to verify." };
  }
  const legacy = v.legacyEvents > 0 ? ` ${n(v.legacyEvents)} of them were recorded before signing began: chained, not signed.` : "";
  const checkpoints = v.checkpointsChecked > 0
    ? ` ${n(v.checkpointsChecked)} signed checkpoint${v.checkpointsChecked === 1 ? "" : "s"} agreed.`
    : "";
  return {
    tone: "good",
    headline: `The audit trail is intact: all ${n(v.events)} events from #${n(v.fromSequence)} to #${n(v.verifiedToSequence)} verify.`,
    detail: `Each event's content, signature and link to the one before are as they were recorded.${checkpoints}${legacy}`,
  };
}

/**
 * A JSON Lines export split into the part its manifest covers and the
 * manifest (its last line), or the error that ended it early.
 */
export function splitExport(bytes: Uint8Array): { body: Uint8Array; trailer: unknown } {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0x0a) end--;
  let start = end;
  while (start > 0 && bytes[start - 1] !== 0x0a) start--;
  const last = new TextDecoder().decode(bytes.subarray(start, end));
  let trailer: unknown = null;
  try {
    trailer = JSON.parse(last);
  } catch {
    trailer = null;
  }
  return { body: bytes.subarray(0, start), trailer };
}

/** A CSV export's manifest, from its `Antevus-Manifest` header (base64url JSON). */
export function headerManifest(value: string | null): Schemas["Manifest"] | null {
  if (!value) return null;
  try {
    const base64 = value.trim().replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const json = new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
    return JSON.parse(json) as Schemas["Manifest"];
  } catch {
    return null;
  }
}

/** The values an event changed: each field with its old and new value (JSON text). */
export function changes(oldValues: unknown, newValues: unknown): { field: string; before: string; after: string }[] {
  const o = (oldValues && typeof oldValues === "object" ? oldValues : {}) as Record<string, unknown>;
  const n = (newValues && typeof newValues === "object" ? newValues : {}) as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(o), ...Object.keys(n)])].sort();
  const show = (v: unknown) => (v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v));
  return fields.map((field) => ({ field, before: show(o[field]), after: show(n[field]) }));
}
