// The dashboard's live socket (GET /api/v1/live, protocol antevus.live.v1):
// subscribes to all of the organization's instruments (or some) and hands each
// message to the listener. Reconnects with exponential backoff and jitter
// (1 s doubling to 30 s); reports its state so the page can say when data
// is stale. A browser cannot set Authorization on a WebSocket: the access
// token goes as a second subprotocol, `bearer.<token>`.
import type { Schemas } from "../api/client";
import { session } from "../auth/session";

export type LiveState = "connecting" | "live" | "down" | "unavailable";

/** What the hub sends (`DashboardEvent` of the OpenAPI document). */
export type LiveMessage = Schemas["DashboardEvent"];
export type LiveReading = Schemas["LiveReading"];

export const PROTOCOL = "antevus.live.v1";
const MAX_BACKOFF_MS = 30_000;

/** The delay before reconnect attempt `attempt` (0-based), with jitter in [0.5, 1). */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(1000 * 2 ** attempt, MAX_BACKOFF_MS);
  return Math.floor(base * (0.5 + random() / 2));
}

export function liveUrl(location: Pick<Location, "protocol" | "host">): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/live`;
}

export interface LiveOptions {
  onMessage: (message: LiveMessage) => void;
  onState: (state: LiveState, since: Date) => void;
  /** False when the deployment has no WebSockets (the page polls instead). */
  available: boolean;
  /** Only these instruments (default: all of the organization's). */
  instrumentIds?: string[];
}

/** The first message on a socket: what it follows. */
export function subscription(instrumentIds: string[] | undefined): string {
  return JSON.stringify(instrumentIds ? { type: "subscribe", instrumentIds } : { type: "subscribe", all: true });
}

/** Opens the socket and keeps it open until the returned function is called. */
export function connectLive(options: LiveOptions): () => void {
  let socket: WebSocket | null = null;
  let attempt = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  if (!options.available) {
    options.onState("unavailable", new Date());
    return () => undefined;
  }

  const open = () => {
    if (stopped) return;
    const token = session.accessToken();
    if (!token) {
      options.onState("down", new Date());
      return;
    }
    options.onState("connecting", new Date());
    socket = new WebSocket(liveUrl(window.location), [PROTOCOL, `bearer.${token}`]);
    socket.onopen = () => {
      attempt = 0;
      socket?.send(subscription(options.instrumentIds));
      options.onState("live", new Date());
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      try {
        options.onMessage(JSON.parse(event.data) as LiveMessage);
      } catch {
        // A message we cannot read is dropped; the next status brings us up to date.
      }
    };
    socket.onclose = () => {
      socket = null;
      if (stopped) return;
      options.onState("down", new Date());
      const delay = backoff(attempt++);
      retry = setTimeout(() => {
        // The token may have expired while we were away.
        void session.refresh().finally(open);
      }, delay);
    };
  };
  open();

  return () => {
    stopped = true;
    clearTimeout(retry);
    socket?.close(1000, "page left");
  };
}
