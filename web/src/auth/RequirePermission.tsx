import type { ReactNode } from "react";
import { Link } from "react-router";
import { roleLabel } from "../pages/format";
import { Problem } from "../ui/Problem";
import { useMe, type Permission } from "./useSession";

/**
 * A page only some roles may use: while `/api/auth/me` answers, a loading
 * line; without the permission, a page that says so plainly (the API
 * would refuse the same request with 403).
 */
export function RequirePermission({ permission, children }: { permission: Permission; children: ReactNode }) {
  const me = useMe();
  if (me.isPending) return <p role="status">Loading…</p>;
  if (me.isError) return <Problem error={me.error} title="Your permissions could not be loaded" />;
  if (!me.data.permissions.includes(permission)) return <NotPermitted permission={permission} role={me.data.role} />;
  return <>{children}</>;
}

export function NotPermitted({ permission, role }: { permission: Permission; role: string }) {
  return (
    <section className="page narrow" aria-labelledby="not-permitted-title">
      <h1 id="not-permitted-title">Not permitted</h1>
      <p>
        Your role ({roleLabel(role)}) does not include <code>{permission}</code>, which this page needs. An administrator can
        change your role if your work requires it.
      </p>
      <Link to="/">Back to the instruments</Link>
    </section>
  );
}
