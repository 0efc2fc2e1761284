// The one way the app talks to the API: openapi-fetch over the types
// openapi-typescript generates from docs/openapi.json (src/api/schema.d.ts,
// never edited by hand). The access token is added here, from memory; a
// reply of AUTH_TOKEN_EXPIRED refreshes once and retries.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { session } from "../auth/session";

export type Schemas = components["schemas"];
export type ErrorEnvelope = Schemas["ErrorEnvelope"];

/** A refusal or failure as the API reported it (or as the network did). */
export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: { field: string; message: string }[];
  readonly requestId: string | undefined;
  readonly retryAfterSecs: number | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    details: { field: string; message: string }[] = [],
    requestId?: string,
    retryAfterSecs?: number,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.retryAfterSecs = retryAfterSecs;
  }

  /** The message for `field`, if the API named one. */
  forField(field: string): string | undefined {
    return this.details.find((d) => d.field === field)?.message;
  }
}

const auth: Middleware = {
  async onRequest({ request }) {
    // A logout still on its way would clear the cookie a new login sets.
    await session.settled();
    const token = session.accessToken();
    if (token && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${token}`);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(auth);

/** Reads a failure envelope (or a network failure) into an ApiFailure. */
export async function failureOf(response: Response | undefined, error: unknown): Promise<ApiFailure> {
  const status = response?.status ?? 0;
  const envelope = error as Partial<ErrorEnvelope> | undefined;
  const retry = Number(response?.headers.get("Retry-After") ?? "");
  if (envelope?.error) {
    return new ApiFailure(
      status,
      envelope.error.code,
      envelope.error.message,
      envelope.error.details ?? [],
      envelope.metadata?.requestId,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  }
  if (status === 0) {
    return new ApiFailure(0, "NETWORK", "The server could not be reached. Check the connection and try again.");
  }
  return new ApiFailure(
    status,
    "UNEXPECTED",
    `The server answered ${status} without an explanation.`,
    [],
    response?.headers.get("X-Request-Id") ?? undefined,
  );
}

type Result<T> = { data?: { data: T } | T; error?: unknown; response: Response };

/**
 * The `data` of a successful envelope, or throws the ApiFailure. A call
 * whose token expired is refreshed and tried again once.
 */
export async function call<T>(request: () => Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await request();
    if (result.response.status === 401 && (result.error as ErrorEnvelope | undefined)?.error?.code === "AUTH_TOKEN_EXPIRED") {
      if (await session.refresh()) result = await request();
    }
  } catch (cause) {
    if (cause instanceof ApiFailure) throw cause;
    throw await failureOf(undefined, cause);
  }
  if (result.error !== undefined || !result.response.ok) {
    throw await failureOf(result.response, result.error);
  }
  const body = result.data as { data: T };
  return body.data;
}

type RawResult<T> = { data?: T; error?: unknown; response: Response };

/**
 * A request whose answer is not an envelope (a file): its data and the
 * response, for its headers; the same refresh-once and failures as `call`.
 */
export async function callRaw<T>(request: () => Promise<RawResult<T>>): Promise<{ data: T; response: Response }> {
  let result: RawResult<T>;
  try {
    result = await request();
    if (result.response.status === 401 && (result.error as ErrorEnvelope | undefined)?.error?.code === "AUTH_TOKEN_EXPIRED") {
      if (await session.refresh()) result = await request();
    }
  } catch (cause) {
    if (cause instanceof ApiFailure) throw cause;
    throw await failureOf(undefined, cause);
  }
  if (result.error !== undefined || !result.response.ok || result.data === undefined) {
    throw await failureOf(result.response, result.error);
  }
  return { data: result.data, response: result.response };
}
