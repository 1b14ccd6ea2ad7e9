// The public API, called with the owner's key. The key lives in sessionStorage only: it is
// sent in the `x-api-key` header, never put in a URL or a cookie, and is gone when the tab
// closes.

const KEY_ITEM = "orrery.api-key";

export const session = {
  key(): string | null {
    return sessionStorage.getItem(KEY_ITEM);
  },
  signIn(key: string): void {
    sessionStorage.setItem(KEY_ITEM, key);
  },
  signOut(): void {
    sessionStorage.removeItem(KEY_ITEM);
  },
};

/** An RFC 9457 problem the API answered with. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: { field: string; message: string }[];
  /** Invalid items of a list (a batch), each with its index, custom_id and field errors. */
  items?: { index: number; custom_id?: string | null; errors: { field: string; message: string }[] }[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(describe(status, problem));
  }
}

function describe(status: number, problem: Problem): string {
  const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`);
  const items = (problem.items ?? []).slice(0, 5).map((item) => {
    const which = item.custom_id ? `${item.custom_id} (line ${item.index + 1})` : `line ${item.index + 1}`;
    return `${which}: ${item.errors.map((e) => `${e.field} ${e.message}`).join(", ")}`;
  });
  const more = (problem.items?.length ?? 0) > 5 ? ` … and ${problem.items!.length - 5} more` : "";
  const detail = problem.detail ?? problem.title ?? `HTTP ${status}`;
  if (items.length) return `${detail} ${items.join("; ")}${more}`;
  return fields.length > 1 ? `${detail} ${fields.join("; ")}` : detail;
}

export interface CallOptions {
  /** A body sent as is, with this content type (JSON bodies are serialised otherwise). */
  contentType?: string;
  accept?: string;
}

/** Calls the API and returns the raw response; a non-2xx answer throws its problem. */
export async function call(
  method: string,
  path: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<Response> {
  const key = session.key();
  if (!key) {
    throw new ApiError(401, { detail: "Sign in with an API key first." });
  }
  const headers: Record<string, string> = { "x-api-key": key };
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    if (options.contentType) {
      headers["content-type"] = options.contentType;
      payload = body as BodyInit;
    } else {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  if (options.accept) {
    headers["accept"] = options.accept;
  }
  const response = await fetch(path, { method, headers, body: payload });
  if (!response.ok) {
    let problem: Problem = {};
    try {
      problem = (await response.json()) as Problem;
    } catch {
      problem = { detail: `${response.status} ${response.statusText}` };
    }
    throw new ApiError(response.status, problem);
  }
  return response;
}

/** Calls the API and parses its JSON answer. */
export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<T> {
  const response = await call(method, path, body, options);
  if (response.status === 204) {
    return undefined as T;
  }
  return (await response.json()) as T;
}

/** A list answer: `{data, next_cursor}`. */
export interface List<T> {
  data: T[];
  next_cursor?: string | null;
}

/** Every page of a list (the portal's lists are short: keys, endpoints, recent batches). */
export async function all<T>(path: string, pages = 5): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null | undefined;
  for (let page = 0; page < pages; page++) {
    const separator = path.includes("?") ? "&" : "?";
    const url = cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path;
    const list = await api<List<T>>("GET", url);
    items.push(...list.data);
    cursor = list.next_cursor;
    if (!cursor) break;
  }
  return items;
}

/** Where the real-time WebSocket is: the configured host (AWS), else this page's host. */
export async function realtimeUrl(): Promise<string> {
  try {
    const response = await fetch("/portal/config.json");
    if (response.ok) {
      const config = (await response.json()) as { realtime_url?: string | null };
      if (config.realtime_url) return config.realtime_url;
    }
  } catch {
    // Fall through to this host.
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/v1/realtime`;
}

/** Mints a short-lived real-time token (the key itself never goes in a URL). */
export async function realtimeToken(): Promise<string> {
  const minted = await api<{ token: string }>("POST", "/v1/realtime/tokens", {});
  return minted.token;
}
