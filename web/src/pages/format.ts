// Wording and dates as the pages show them.

const STATUS_LABELS: Record<string, string> = {
  online: "Online",
  offline: "Offline",
  running: "Running",
  idle: "Idle",
  maintenance: "Maintenance",
  error: "Error",
  calibrating: "Calibrating",
  pending: "Pending",
  completed: "Completed",
  failed: "Failed",
  aborted: "Aborted",
  complete: "Complete",
};

export function statusLabel(status: string): string {
  return STATUS_LABELS[status] ?? status.charAt(0).toUpperCase() + status.slice(1);
}

/** "12 s ago", "5 min ago", "3 h ago", "2 days ago"; "in 4 days" for the future. */
export function relativeTime(iso: string, now: number = Date.now()): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text =
    s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : s < 86_400 ? `${Math.floor(s / 3600)} h` : `${Math.floor(s / 86_400)} days`;
  if (s < 5) return "just now";
  return future ? `in ${text}` : `${text} ago`;
}

export const DUE_SOON_DAYS = 14;

/** A due-date badge: overdue, due soon, or none when far away or unknown. */
export function dueBadge(
  dueAt: string | null | undefined,
  overdue: boolean,
  what: string,
  now: number = Date.now(),
): { label: string; tone: "bad" | "warn" } | null {
  if (!dueAt) return null;
  const days = (Date.parse(dueAt) - now) / 86_400_000;
  if (overdue || days < 0) return { label: `${what} overdue`, tone: "bad" };
  if (days <= DUE_SOON_DAYS) return { label: `${what} due in ${Math.max(1, Math.ceil(days))} days`, tone: "warn" };
  return null;
}

/** "compressorDutyPercent" -> "Compressor duty percent"; "temperature" -> "Temperature". */
export function metricLabel(metric: string): string {
  const words = metric
    .replace(/_/g, " ")
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** "LAB_MANAGER" as people say it: "Lab manager". */
export function roleLabel(role: string): string {
  const words = role.toLowerCase().split("_");
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
