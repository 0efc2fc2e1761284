import type { ReactNode } from "react";
import { NavLink, useNavigate } from "react-router";
import { session } from "../auth/session";
import { useMe } from "../auth/useSession";

/** The frame of every signed-in page: the product, the navigation, the user. */
export function Shell({ children }: { children: ReactNode }) {
  const me = useMe();
  const navigate = useNavigate();
  const signOut = async () => {
    await session.logout();
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
          <NavLink to="/" end>
            Instruments
          </NavLink>
        </nav>
        <div className="who">
          {me.data && (
            <NavLink to="/profile" className="me" title={`${me.data.email}: your profile`}>
              {me.data.name} · <span className="muted">{me.data.organization.name}</span>
            </NavLink>
          )}
          <button type="button" className="secondary" onClick={() => void signOut()}>
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
