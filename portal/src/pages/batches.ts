// Batches: submit JSON Lines (pasted or uploaded), watch the batch's progress live on the
// real-time WebSocket (with a status poll as the safety net), download the results.

import { all, api, call, realtimeToken, realtimeUrl } from "../api";
import { busy, download, field, h, notice, replace, statusArea, table, when } from "../ui";

interface Counts {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
}

interface Batch {
  id: string;
  status: string;
  counts: Counts;
  created_at: string;
  finished_at: string | null;
  eta_seconds: number | null;
}

type BatchEvent = Partial<Batch> & { id?: string };

const FINISHED = ["completed", "partially_succeeded", "failed", "cancelled", "expired"];
const BATCH_EVENTS = ["batch.progress", "batch.completed", "batch.failed", "batch.cancelled", "batch.expired"];
const POLL_MS = 3000;

const SAMPLE = [
  { custom_id: "ada", operation: "chart", body: { datetime: "1990-05-17T14:30", timezone: "Europe/London", latitude: 51.5074, longitude: -0.1278 } },
  { custom_id: "ada-reading", operation: "reading", body: { datetime: "1990-05-17T14:30", timezone: "Europe/London", latitude: 51.5074, longitude: -0.1278 } },
  { custom_id: "grace", operation: "chart", body: { datetime: "1985-12-09T08:15", timezone: "America/New_York", latitude: 40.7128, longitude: -74.006 } },
]
  .map((item) => JSON.stringify(item))
  .join("\n");

/** The account's batch events, live: a WebSocket subscribed to the batch event types before a
 * batch is submitted. Each batch's newest event is kept, so one that arrives before the
 * submission's answer names the batch is not lost. */
class LiveBatches {
  private latest = new Map<string, BatchEvent>();
  private listener: ((event: BatchEvent) => void) | null = null;

  private constructor(private socket: WebSocket) {}

  /** Opens and subscribes; `null` if that fails within 5 s (the poll then carries progress). */
  static async open(signal: AbortSignal): Promise<LiveBatches | null> {
    try {
      const [url, token] = await Promise.all([realtimeUrl(), realtimeToken()]);
      if (signal.aborted) return null;
      const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
      const live = new LiveBatches(socket);
      signal.addEventListener("abort", () => socket.close());
      return await new Promise((resolve) => {
        const timer = window.setTimeout(() => {
          socket.close();
          resolve(null);
        }, 5000);
        socket.addEventListener("open", () => {
          socket.send(JSON.stringify({ action: "subscribe", types: BATCH_EVENTS }));
        });
        socket.addEventListener("message", (message) => {
          let frame: { type?: string; event?: { data?: BatchEvent } };
          try {
            frame = JSON.parse(String(message.data));
          } catch {
            return;
          }
          if (frame.type === "subscribed") {
            window.clearTimeout(timer);
            resolve(live);
          } else if (frame.type === "event" && frame.event?.data?.id) {
            live.latest.set(frame.event.data.id, frame.event.data);
            live.listener?.(frame.event.data);
          }
        });
        socket.addEventListener("error", () => {
          window.clearTimeout(timer);
          resolve(null);
        });
      });
    } catch {
      return null;
    }
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Calls `listener` with `id`'s newest event so far, if any, and with every later one. */
  follow(id: string, listener: (event: BatchEvent) => void): void {
    this.listener = (event) => {
      if (event.id === id) listener(event);
    };
    const seen = this.latest.get(id);
    if (seen) listener(seen);
  }

  unfollow(): void {
    this.listener = null;
  }
}

/** The progress card of one batch, updated in place (its download button keeps focus; only a
 * change of status is announced). */
class Progress {
  readonly element: HTMLElement;
  private bar: HTMLProgressElement;
  private statusLine: HTMLElement;
  private countsLine: HTMLElement;
  private shown: Batch;

  constructor(batch: Batch, save: (id: string) => Promise<void>, status: Element) {
    this.shown = batch;
    this.bar = h("progress", { max: batch.counts.total, value: 0, "aria-label": `Items settled of ${batch.id}` });
    this.statusLine = h("strong", { class: "batch-status" });
    this.countsLine = h("span", {});
    const download = h("button", { type: "button" }, "Download results");
    download.addEventListener("click", () => busy(download, status, () => save(batch.id)));
    this.element = h(
      "section",
      { class: "card", "aria-labelledby": "progress-title" },
      h("h2", { id: "progress-title" }, `Batch ${batch.id}`),
      this.bar,
      h("p", {}, h("span", { "aria-live": "polite" }, this.statusLine), " · ", this.countsLine),
      download,
    );
    this.show(batch, "submission");
  }

  /** Shows `batch`; `source` says where the news came from (the socket, the poll). */
  show(batch: Batch, source: string): void {
    this.shown = batch;
    const { total, completed, failed, cancelled } = batch.counts;
    const done = completed + failed + cancelled;
    this.bar.max = total;
    this.bar.value = done;
    if (this.statusLine.textContent !== batch.status) this.statusLine.textContent = batch.status;
    const eta = !FINISHED.includes(batch.status) && batch.eta_seconds ? ` · about ${batch.eta_seconds} s left` : "";
    this.countsLine.textContent = `${done} of ${total} settled (${completed} completed, ${failed} failed, ${cancelled} cancelled)${eta}`;
    this.element.dataset.batchStatus = batch.status;
    this.element.dataset.source = source;
  }

  get batch(): Batch {
    return this.shown;
  }
}

/** Every result line of a batch, following `?after=` until a page brings nothing new (a page is
 * capped in size on AWS). */
async function allResults(id: string): Promise<Blob> {
  const parts: string[] = [];
  let after: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query: string = after ? `?after=${encodeURIComponent(after)}` : "";
    const text = await (await call("GET", `/v1/batches/${id}/results${query}`)).text();
    const lines = text.split("\n").filter((line) => line.trim());
    if (!lines.length) break;
    parts.push(...lines);
    const last = JSON.parse(lines[lines.length - 1]) as { cursor?: string };
    if (!last.cursor || last.cursor === after) break;
    after = last.cursor;
  }
  return new Blob([parts.map((line) => `${line}\n`).join("")], { type: "application/x-ndjson" });
}

/** JSON (`{"requests": [...]}`) or JSON Lines, by what the text parses as. */
function batchBody(text: string): { body: string; contentType: string } {
  try {
    const whole = JSON.parse(text) as unknown;
    if (whole && typeof whole === "object" && !Array.isArray(whole) && "requests" in whole) {
      return { body: text, contentType: "application/json" };
    }
  } catch {
    // Not one JSON value: JSON Lines.
  }
  return { body: `${text}\n`, contentType: "application/x-ndjson" };
}

export async function batchesPage(main: HTMLElement, signal: AbortSignal): Promise<void> {
  const status = statusArea();
  const progressArea = h("div", {});
  const list = h("div", {});
  const lines = h("textarea", { name: "lines", rows: 8, spellcheck: "false", required: true });
  const file = h("input", { type: "file", name: "file", accept: ".jsonl,.ndjson,.json,application/x-ndjson" });
  file.addEventListener("change", () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    chosen
      .text()
      .then((text) => {
        lines.value = text;
      })
      .catch((error: unknown) => notice(status, `Could not read the file: ${String(error)}`, "error"));
  });
  const sample = h("button", { type: "button", class: "secondary" }, "Fill in a sample");
  sample.addEventListener("click", () => {
    lines.value = SAMPLE;
    lines.focus();
  });
  const submit = h("button", { type: "submit" }, "Submit batch");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-batch-title" },
    h("h2", { id: "new-batch-title" }, "New batch"),
    field(
      "Items, one JSON object a line",
      lines,
      'Each line: {"custom_id": …, "operation": "chart" | "reading" | …, "body": {…}}. Up to 10,000 items.',
    ),
    field("Or upload a JSON Lines file", file),
    h("div", { class: "row-actions" }, sample, submit),
  );

  const save = async (id: string) => download(`${id}-results.jsonl`, await allResults(id));
  let live: LiveBatches | null = null;
  let poll: number | undefined;
  signal.addEventListener("abort", () => window.clearTimeout(poll));

  const follow = (progress: Progress) => {
    const id = progress.batch.id;
    const finish = () => {
      live?.unfollow();
      window.clearTimeout(poll);
      refresh().catch(() => undefined);
    };
    live?.follow(id, (event) => {
      if (!event.counts || !event.status || signal.aborted) return;
      progress.show({ ...progress.batch, ...event } as Batch, "socket");
      if (FINISHED.includes(progress.batch.status)) finish();
    });
    // The safety net: a dropped socket or a missed frame still ends in the right state.
    const tick = async () => {
      if (signal.aborted || FINISHED.includes(progress.batch.status)) return;
      try {
        progress.show(await api<Batch>("GET", `/v1/batches/${id}`), "poll");
      } catch {
        // The next tick tries again.
      }
      if (FINISHED.includes(progress.batch.status)) finish();
      else poll = window.setTimeout(() => void tick(), POLL_MS);
    };
    if (FINISHED.includes(progress.batch.status)) finish();
    else poll = window.setTimeout(() => void tick(), POLL_MS);
  };

  form.addEventListener(
    "submit",
    (event) => {
      event.preventDefault();
      void busy(submit, status, async () => {
        const text = lines.value.trim();
        if (!text) throw new Error("Paste or upload at least one item.");
        if (!live?.open) live = await LiveBatches.open(signal);
        const { body, contentType } = batchBody(text);
        const batch = await api<Batch>("POST", "/v1/batches", body, { contentType });
        live?.unfollow();
        window.clearTimeout(poll);
        notice(status, `Submitted ${batch.id}: ${batch.counts.total} items.`);
        const progress = new Progress(batch, save, status);
        replace(progressArea, progress.element);
        follow(progress);
        await refresh();
      });
    },
    { signal },
  );

  const refresh = async () => {
    const batches = await all<Batch>("/v1/batches?limit=10", 1);
    if (signal.aborted) return;
    replace(
      list,
      table(
        "Recent batches",
        ["Batch", "Status", "Items", "Created", "Finished", "Results"],
        batches.map((batch) => {
          const button = h("button", { type: "button", class: "secondary" }, "Download");
          button.setAttribute("aria-label", `Download the results of ${batch.id}`);
          button.addEventListener("click", () => busy(button, status, () => save(batch.id)));
          return [
            h("code", {}, batch.id),
            batch.status,
            `${batch.counts.completed + batch.counts.failed}/${batch.counts.total}`,
            when(batch.created_at),
            when(batch.finished_at),
            button,
          ];
        }),
      ),
    );
  };

  main.append(form, status, progressArea, h("section", { class: "card" }, list));
  await refresh();
}
