import { useEffect, useState, useSyncExternalStore, type ReactNode } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call, type Schemas } from "../api/client";

export type Permission = Schemas["Permission"];
import { session } from "./session";

/** The signed-in user as the session holds them (null when signed out). */
export function useSession() {
  const user = useSyncExternalStore(session.subscribe, session.user);
  return { user };
}

/** `/api/auth/me`: the caller's profile and permissions. */
export function useMe() {
  const { user } = useSession();
  return useQuery({
    queryKey: ["me", user?.id],
    enabled: user !== null,
    queryFn: () => call(() => api.GET("/api/auth/me")),
    staleTime: 60_000,
  });
}

/** Whether the caller may use `permission` (false until /me has answered). */
export function useCan(permission: Permission): boolean {
  const me = useMe();
  return me.data?.permissions.includes(permission) ?? false;
}

/**
 * Restores a login after a reload (the refresh cookie) before the app
 * renders, and drops every cached answer when the user signs out, so the
 * back button shows nothing of the last session.
 */
export function SessionGate({ children }: { children: ReactNode }) {
  const [ready, setReady] = useState(false);
  const client = useQueryClient();
  useEffect(() => {
    void session.refresh().finally(() => setReady(true));
  }, []);
  useEffect(
    () =>
      session.subscribe(() => {
        if (!session.user()) client.clear();
      }),
    [client],
  );
  useInactivityLogout();
  if (!ready) {
    return (
      <div className="splash" role="status" aria-live="polite">
        Loading Antevus…
      </div>
    );
  }
  return <>{children}</>;
}

/** Minutes without input before the app signs out (Part 11 session control). */
export const INACTIVITY_MINUTES = Number(import.meta.env.VITE_INACTIVITY_MINUTES ?? 15);

function useInactivityLogout() {
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      if (!session.user()) return;
      timer = setTimeout(() => {
        if (session.user()) {
          sessionStorage.setItem("antevus.signedOut", "inactivity");
          void session.logout();
        }
      }, INACTIVITY_MINUTES * 60_000);
    };
    const events = ["pointerdown", "keydown", "wheel", "touchstart"] as const;
    for (const name of events) window.addEventListener(name, arm, { passive: true });
    const unsubscribe = session.subscribe(arm);
    arm();
    return () => {
      clearTimeout(timer);
      unsubscribe();
      for (const name of events) window.removeEventListener(name, arm);
    };
  }, []);
}
