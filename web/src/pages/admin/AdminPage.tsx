import { Navigate, NavLink, Outlet } from "react-router";
import { useMe, type Permission } from "../../auth/useSession";
import { NotPermitted } from "../../auth/RequirePermission";
import { Problem } from "../../ui/Problem";

/** The administration sections, each shown to those whose role has its permission. */
export const SECTIONS: { to: string; label: string; permission: Permission }[] = [
  { to: "/admin/users", label: "Users", permission: "users:manage" },
  { to: "/admin/api-keys", label: "API keys", permission: "keys:manage" },
  { to: "/admin/bridges", label: "Bridges", permission: "keys:manage" },
];

/** `/admin`: the frame of the administration pages, with their tabs. */
export function AdminPage() {
  const me = useMe();
  if (me.isPending) return <p role="status">Loading…</p>;
  if (me.isError) return <Problem error={me.error} title="Your permissions could not be loaded" />;
  const sections = SECTIONS.filter((s) => me.data.permissions.includes(s.permission));
  if (sections.length === 0) return <NotPermitted permission="users:manage" role={me.data.role} />;
  return (
    <section className="page" aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      <nav className="tabs" aria-label="Administration">
        {sections.map((s) => <NavLink key={s.to} to={s.to}>{s.label}</NavLink>)}
      </nav>
      <Outlet />
    </section>
  );
}

/** `/admin` itself: the first section the user may open. */
export function AdminIndex() {
  const me = useMe();
  const first = SECTIONS.find((s) => me.data?.permissions.includes(s.permission));
  return first ? <Navigate to={first.to} replace /> : null;
}
