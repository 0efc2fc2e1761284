// Editing an instrument under optimistic concurrency: what the form
// changed, the body that sends it, and, when someone else changed the
// instrument first (412), what they changed beside it.
import type { Schemas } from "../../api/client";

type Instrument = Schemas["Instrument"];

/** The instrument's editable fields, flat: `name`, …, `configuration.<field>`. */
export type Flat = Record<string, unknown>;

export const TOP_FIELDS = ["name", "location", "model", "serialNumber", "firmware"] as const;

export function flatten(instrument: Instrument): Flat {
  const out: Flat = {};
  for (const key of TOP_FIELDS) out[key] = instrument[key] ?? null;
  for (const [key, value] of Object.entries((instrument.configuration ?? {}) as Record<string, unknown>)) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) out[`configuration.${key}`] = value;
  }
  return out;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The fields whose value in `form` differs from `base`. */
export function changes(base: Flat, form: Flat): Flat {
  const out: Flat = {};
  for (const key of new Set([...Object.keys(base), ...Object.keys(form)])) {
    if (!same(base[key], form[key])) out[key] = form[key] ?? null;
  }
  return out;
}

/**
 * The `PUT` body for `mine` over `current`: top-level fields as they are;
 * the configuration whole (the API replaces it), the current one with
 * my fields changed, so what the form does not show (QC thresholds) stays.
 */
export function patchBody(current: Instrument, mine: Flat): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  let configuration: Record<string, unknown> | null = null;
  for (const [key, value] of Object.entries(mine)) {
    if (key.startsWith("configuration.")) {
      configuration ??= { ...((current.configuration ?? {}) as Record<string, unknown>) };
      const field = key.slice("configuration.".length);
      if (value === null || value === undefined) delete configuration[field];
      else configuration[field] = value;
    } else {
      body[key] = value;
    }
  }
  if (configuration) body.configuration = configuration;
  return body;
}

export interface Conflict {
  field: string;
  /** What the edit started from. */
  was: unknown;
  /** What it is now, after the other change. */
  now: unknown;
  /** What this edit wants, if it touches the field. */
  mine?: unknown;
}

/** What changed between `base` and `latest`, with my value beside each field both of us changed. */
export function conflicts(base: Flat, latest: Flat, mine: Flat): Conflict[] {
  const theirs = changes(base, latest);
  return Object.keys(theirs)
    .sort()
    .map((field) => ({ field, was: base[field] ?? null, now: latest[field] ?? null, ...(field in mine ? { mine: mine[field] } : {}) }));
}
