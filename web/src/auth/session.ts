// The signed-in session. The access token lives in this module's memory
// only (never in storage a script could read later); the refresh token
// stays in its httpOnly cookie, which only /api/auth/* receives. The
// session refreshes itself a minute before the access token expires and,
// after a reload, once at start.

import type { components } from "../api/schema";

export type SessionUser = components["schemas"]["TokenUser"];
type TokenAnswer = components["schemas"]["TokenReply"];

type Listener = () => void;

let token: string | null = null;
let user: SessionUser | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | null = null;
let loggingOut: Promise<void> | null = null;
const listeners = new Set<Listener>();

function notify() {
  for (const listener of listeners) listener();
}

function schedule(expiresIn: number) {
  clearTimeout(timer);
  // A minute early, but never sooner than half the lifetime.
  const seconds = Math.max(expiresIn - 60, expiresIn / 2);
  timer = setTimeout(() => void session.refresh(), seconds * 1000);
}

export const session = {
  accessToken: () => token,
  user: () => user,

  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },

  /** Takes the tokens of a sign-in, a second factor or a refresh. */
  accept(answer: TokenAnswer) {
    token = answer.accessToken;
    user = answer.user;
    schedule(answer.expiresIn);
    notify();
  },

  /** Forgets the session here (the server's side is ended by logout). */
  clear() {
    clearTimeout(timer);
    token = null;
    user = null;
    notify();
  },

  /**
   * Trades the refresh cookie for new tokens; false when there is no
   * live login (then the session is cleared). Concurrent callers share
   * one request: a refresh token is spent by its first use.
   */
  refresh(): Promise<boolean> {
    refreshing ??= (async () => {
      try {
        const response = await fetch("/api/auth/refresh", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: "{}",
        });
        if (!response.ok) {
          session.clear();
          return false;
        }
        const body = (await response.json()) as { data: TokenAnswer };
        session.accept(body.data);
        return true;
      } catch {
        return false;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  },

  /**
   * Ends the login: forgotten here at once, ended on the server in the
   * background. Until the server answered, `settled()` waits, so a sign-in
   * straight after cannot have its new cookie cleared by the old logout.
   */
  logout(): Promise<void> {
    const current = token;
    session.clear();
    if (!current) return Promise.resolve();
    const ending = fetch("/api/auth/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: { Authorization: `Bearer ${current}`, "Content-Type": "application/json" },
      body: "{}",
    })
      .then(() => undefined)
      .catch(() => undefined)
      .finally(() => {
        if (loggingOut === ending) loggingOut = null;
      });
    loggingOut = ending;
    return ending;
  },

  /** Resolves once no logout is on its way. */
  settled(): Promise<void> {
    return loggingOut ?? Promise.resolve();
  },
};
