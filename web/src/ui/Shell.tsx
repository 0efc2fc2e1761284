import type { ReactNode } from "react";
import { NavLink, useNavigate } from "react-router";
import { session } from "../auth/session";
import { useMe, type Permission } from "../auth/useSession";

/** The main navigation; an entry shows only to those whose role has its permission. */
const NAV: { to: string; label: string; permission: Permission }[] = [
  { to: "/", label: "Instruments", permission: "instruments:view" },
  { to: "/runs", label: "Runs", permission: "runs:view" },
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
          {NAV.filter((entry) => me.data?.permissions.includes(entry.permission)).map((entry) => (
            <NavLink key={entry.to} to={entry.to} end>
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
