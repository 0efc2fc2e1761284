import type { ReactNode } from "react";
import { NavLink, useNavigate } from "react-router";
import { session } from "../auth/session";
import { useMe, type Permission } from "../auth/useSession";

/** The main navigation; an entry shows only to those whose role has one of its permissions (any role: none listed). */
const NAV: { to: string; label: string; end?: boolean; anyOf: Permission[] }[] = [
  { to: "/", label: "Instruments", end: true, anyOf: ["instruments:view"] },
  { to: "/runs", label: "Runs", anyOf: ["runs:view"] },
  { to: "/monitoring", label: "Monitoring", anyOf: ["instruments:view"] },
  { to: "/audit", label: "Audit", anyOf: ["audit:view"] },
  { to: "/admin", label: "Administration", anyOf: ["users:manage", "keys:manage"] },
  { to: "/playground", label: "API", anyOf: [] },
];

/** The frame of every signed-in page: the product, the navigation, the user. */
export function Shell({ children }: { children: ReactNode }) {
  const me = useMe();
  const navigate = useNavigate();
  // Forgets the session at once and goes to the sign-in page; the server's
  // side ends in the background. Nothing navigates when that answers: the
  // user may already be on another page (a race the browser tests caught).
  const signOut = () => {
    void session.logout();
    navigate("/sign-in");
  };
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">
          <img src="/favicon.svg" alt="" width="24" height="24" />
          Antevus
        </span>
        <nav aria-label="Main">
          {NAV.filter((entry) => me.data && (entry.anyOf.length === 0 || entry.anyOf.some((p) => me.data.permissions.includes(p)))).map((entry) => (
            <NavLink key={entry.to} to={entry.to} end={entry.end}>
              {entry.label}
            </NavLink>
          ))}
        </nav>
        <div className="who">
          {me.data && (
            <NavLink to="/profile" className="me" title={`${me.data.email}: your profile`}>
              {me.data.name} · <span className="muted">{me.data.organization.name}</span>
            </NavLink>
          )}
          <button type="button" className="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
