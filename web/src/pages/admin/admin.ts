// The administration pages' plain logic: which roles a person may give,
// what an API key's allowlist and expiry become in the request, and the
// command that enrolls a bridge.
import type { Schemas } from "../../api/client";
import { shellWord } from "../../ui/files";

type Role = Schemas["Role"];

/** Every role, most powerful first (as the API's enum lists them). */
export const ROLES: Role[] = [
  "SUPER_ADMIN", "ADMIN", "LAB_DIRECTOR", "LAB_MANAGER", "SENIOR_SCIENTIST", "SCIENTIST", "TECHNICIAN",
  "QUALITY_ASSURANCE", "COMPLIANCE_OFFICER", "COLLABORATOR", "VIEWER", "GUEST",
];

/** The roles `actor` may give: only a super admin gives the super admin role. */
export function assignableRoles(actor: Role): Role[] {
  return actor === "SUPER_ADMIN" ? ROLES : ROLES.filter((r) => r !== "SUPER_ADMIN");
}

/**
 * An allowlist as typed (one address or CIDR block a line, or separated by
 * commas or spaces) as the list the API takes; the API checks each entry.
 */
export function allowlist(text: string): string[] {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/** The end of the local day `date` (`2027-03-31`) as an instant, or null for none. */
export function endOfDay(date: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return null;
  const at = new Date(`${date}T23:59:59`);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

/** Where a key stands: revoked, expired, or active. */
export function keyStanding(key: Pick<Schemas["ApiKey"], "isActive" | "expiresAt">, now = Date.now()): "active" | "revoked" | "expired" {
  if (!key.isActive) return "revoked";
  if (key.expiresAt && Date.parse(key.expiresAt) <= now) return "expired";
  return "active";
}

/**
 * The command that enrolls a bridge with `token` against `origin`: the
 * token in the environment, where other users of the machine cannot read
 * it from the process list.
 */
export function enrollCommand(origin: string, token: string): string {
  return `EDGE_BRIDGE_JOIN_TOKEN=${shellWord(token)} edge-bridge enroll --url ${shellWord(origin)}`;
}
