// What an instrument's readings chart draws, as plain data: the history
// buckets of `GET /api/v1/instruments/{id}/readings`, the live readings
// that arrived since, and the instrument's own limits for the metric,
// read from its configuration through the type's schema (`x-limit`).
import type { Schemas } from "../../api/client";

export type ReadingMetric = Schemas["ReadingMetric"];
export type LiveReading = Schemas["LiveReading"];

export type RangeName = "hour" | "day" | "week";

/** The ranges a chart offers: how far back, and the bucket that keeps it to a few hundred points. */
export const RANGES: Record<RangeName, { label: string; seconds: number; bucket: string }> = {
  hour: { label: "Last hour", seconds: 3600, bucket: "30s" },
  day: { label: "Last 24 hours", seconds: 86_400, bucket: "10m" },
  week: { label: "Last 7 days", seconds: 604_800, bucket: "1h" },
};

/** One horizontal line on a chart: a setpoint or an alarm limit. */
export interface Limit {
  label: string;
  value: number;
  kind: "setpoint" | "high" | "low";
}

interface LimitSchema {
  title?: string;
  "x-limit"?: { metric?: string; kind?: string };
}

/**
 * The limits drawn on `metric`'s chart: each configuration field the type's
 * schema marks with `x-limit` for this metric, that the instrument has a
 * numeric value for.
 */
export function limitsFor(schema: unknown, configuration: unknown, metric: string): Limit[] {
  const properties = (schema as { properties?: Record<string, LimitSchema> } | null)?.properties ?? {};
  const values = (configuration ?? {}) as Record<string, unknown>;
  const limits: Limit[] = [];
  for (const [name, property] of Object.entries(properties)) {
    const mark = property["x-limit"];
    const value = values[name];
    if (mark?.metric !== metric || typeof value !== "number") continue;
    const kind = mark.kind === "high" || mark.kind === "low" ? mark.kind : "setpoint";
    limits.push({ label: property.title ?? name, value, kind });
  }
  return limits;
}

/** uPlot's columns: time (seconds), average, minimum, maximum, then one per limit. */
export type Columns = [number[], (number | null)[], (number | null)[], (number | null)[], ...(number | null)[][]];

/**
 * The chart's columns for one metric: the history's buckets, then the live
 * readings newer than the last bucket (each its own point), then a
 * constant column per limit (so it shows in the legend and the scale).
 */
export function columns(history: ReadingMetric | undefined, live: LiveReading[], limits: Limit[]): Columns {
  const t: number[] = [];
  const avg: (number | null)[] = [];
  const min: (number | null)[] = [];
  const max: (number | null)[] = [];
  for (const point of history?.points ?? []) {
    t.push(Date.parse(point.t) / 1000);
    avg.push(point.avg);
    min.push(point.min);
    max.push(point.max);
  }
  const after = t.length > 0 ? t[t.length - 1]! : -Infinity;
  const fresh = live
    .map((reading) => ({ at: Date.parse(reading.recordedAt) / 1000, value: reading.value }))
    .filter((reading) => reading.at > after)
    .sort((a, b) => a.at - b.at);
  for (const reading of fresh) {
    t.push(reading.at);
    avg.push(reading.value);
    min.push(reading.value);
    max.push(reading.value);
  }
  return [t, avg, min, max, ...limits.map((limit) => t.map(() => limit.value))];
}

/** A sentence for screen readers and the chart's caption: the latest value, the range, the limits. */
export function summary(metric: string, data: Columns, unit: string | null | undefined, limits: Limit[], range: string): string {
  const values = data[1].filter((v): v is number => v !== null);
  const u = unit ? ` ${unit}` : "";
  if (values.length === 0) return `${metric}: no readings in the ${range.toLowerCase()}.`;
  const lows = data[2].filter((v): v is number => v !== null);
  const highs = data[3].filter((v): v is number => v !== null);
  const latest = values[values.length - 1]!;
  const parts = [
    `${metric}: latest ${format(latest)}${u}`,
    `from ${format(Math.min(...lows))} to ${format(Math.max(...highs))}${u} in the ${range.toLowerCase()}`,
  ];
  for (const limit of limits) parts.push(`${limit.label.replace(/\s*\([^)]*\)$/, "").toLowerCase()} ${format(limit.value)}${u}`);
  return parts.join("; ") + ".";
}

/** A reading as the pages show it: integers as they are, others to two places (one from 100). */
export function format(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 2);
}

/**
 * Keeps the live readings of one instrument per metric, newest last, at
 * most `cap` each; a reading no newer than the metric's last is dropped
 * (a polled latest value seen again).
 */
export function appendLive(
  current: Record<string, LiveReading[]>,
  readings: LiveReading[],
  cap = 2000,
): Record<string, LiveReading[]> {
  const next = { ...current };
  for (const reading of readings) {
    const before = next[reading.metric] ?? [];
    const last = before[before.length - 1];
    if (last && Date.parse(last.recordedAt) >= Date.parse(reading.recordedAt)) continue;
    const list = [...before, reading];
    next[reading.metric] = list.length > cap ? list.slice(list.length - cap) : list;
  }
  return next;
}
