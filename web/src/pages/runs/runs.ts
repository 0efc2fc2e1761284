// The run pages' plain logic: the filters as the address holds them, and
// how long a run took.
import type { Schemas } from "../../api/client";

export const RUN_STATUSES: Schemas["RunStatus"][] = ["pending", "running", "completed", "failed", "aborted"];

export interface RunFilters {
  instrumentId: string;
  status: Schemas["RunStatus"] | "";
  operatorId: string;
  /** A start-time window, as dates (`2026-12-01`), local days. */
  from: string;
  to: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The filters in `params`; anything malformed is left out rather than sent. */
export function runFilters(params: URLSearchParams): RunFilters {
  const get = (name: string) => params.get(name) ?? "";
  const status = get("status");
  return {
    instrumentId: UUID.test(get("instrumentId")) ? get("instrumentId") : "",
    status: (RUN_STATUSES as string[]).includes(status) ? (status as Schemas["RunStatus"]) : "",
    operatorId: UUID.test(get("operatorId")) ? get("operatorId") : "",
    from: DATE.test(get("from")) ? get("from") : "",
    to: DATE.test(get("to")) ? get("to") : "",
  };
}

/** "42 s", "12 min", "3 h 5 min"; "—" before it started; running ones up to now. */
export function duration(startedAt: string | null | undefined, completedAt: string | null | undefined, now = Date.now()): string {
  if (!startedAt) return "—";
  const end = completedAt ? Date.parse(completedAt) : now;
  const seconds = Math.max(0, Math.round((end - Date.parse(startedAt)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ""}`;
}
