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

const FINISHED = ["completed", "partially_succeeded", "failed", "cancelled", "expired"];

const SAMPLE = [
  { custom_id: "ada", operation: "chart", body: { datetime: "1990-05-17T14:30", timezone: "Europe/London", latitude: 51.5074, longitude: -0.1278 } },
  { custom_id: "ada-reading", operation: "reading", body: { datetime: "1990-05-17T14:30", timezone: "Europe/London", latitude: 51.5074, longitude: -0.1278 } },
  { custom_id: "grace", operation: "chart", body: { datetime: "1985-12-09T08:15", timezone: "America/New_York", latitude: 40.7128, longitude: -74.006 } },
]
  .map((item) => JSON.stringify(item))
  .join("\n");

/** The account's batch events, live: a WebSocket subscribed to the batch event types, opened
 * before a batch is submitted so that none of its events is missed; `null` if it cannot open
 * (the status poll then carries the progress alone). */
async function openLive(onBatch: (data: Partial<Batch> & { id?: string }) => void): Promise<WebSocket | null> {
  try {
    const [url, token] = await Promise.all([realtimeUrl(), realtimeToken()]);
    const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    return await new Promise((resolve) => {
      const timer = window.setTimeout(() => {
        socket.close();
        resolve(null);
      }, 5000);
      socket.addEventListener("open", () => {
        socket.send(
          JSON.stringify({
            action: "subscribe",
            types: ["batch.progress", "batch.completed", "batch.failed", "batch.cancelled", "batch.expired"],
          }),
        );
      });
      socket.addEventListener("message", (message) => {
        const frame = JSON.parse(String(message.data)) as {
          type: string;
          event?: { data?: Partial<Batch> & { id?: string } };
        };
        if (frame.type === "subscribed") {
          window.clearTimeout(timer);
          resolve(socket);
        } else if (frame.type === "event" && frame.event?.data) {
          onBatch(frame.event.data);
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

/** Follows one batch: its events on the live socket, and a status poll every few seconds as
 * the safety net (a dropped socket, a missed frame). Returns how to stop. */
function follow(batch: Batch, show: (batch: Batch) => void, live: { target: string | null; update: ((batch: Batch) => void) | null }): () => void {
  let stopped = false;
  let timer: number | undefined;
  const stop = () => {
    stopped = true;
    live.target = null;
    live.update = null;
    window.clearTimeout(timer);
  };
  const update = (next: Batch) => {
    if (stopped) return;
    show(next);
    if (FINISHED.includes(next.status)) stop();
  };
  live.target = batch.id;
  live.update = update;
  const poll = async () => {
    if (stopped) return;
    try {
      update(await api<Batch>("GET", `/v1/batches/${batch.id}`));
    } catch {
      // The next poll tries again.
    }
    if (!stopped) timer = window.setTimeout(() => void poll(), 3000);
  };
  timer = window.setTimeout(() => void poll(), 3000);
  return stop;
}

export async function batchesPage(main: HTMLElement): Promise<void> {
  const status = statusArea();
  const progress = h("div", { "aria-live": "polite" });
  const list = h("div", {});
  const lines = h("textarea", { name: "lines", rows: 8, spellcheck: "false", required: true });
  const file = h("input", { type: "file", name: "file", accept: ".jsonl,.ndjson,.json,application/x-ndjson" });
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (chosen) lines.value = await chosen.text();
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

  let stopFollowing: (() => void) | null = null;
  // The batch being followed, and what its live events update.
  const live: { target: string | null; update: ((batch: Batch) => void) | null } = {
    target: null,
    update: null,
  };
  let socket: WebSocket | null = null;
  let latest: Batch | null = null;
  const onBatch = (data: Partial<Batch> & { id?: string }) => {
    if (data.id && data.id === live.target && data.counts && data.status && latest) {
      live.update?.({ ...latest, ...data } as Batch);
    }
  };
  const results = async (id: string) => {
    const response = await call("GET", `/v1/batches/${id}/results`);
    download(`${id}-results.jsonl`, await response.blob());
  };
  const show = (batch: Batch) => {
    const done = batch.counts.completed + batch.counts.failed + batch.counts.cancelled;
    const finished = FINISHED.includes(batch.status);
    const save = h("button", { type: "button" }, "Download results");
    save.addEventListener("click", () => busy(save, status, () => results(batch.id)));
    replace(
      progress,
      h(
        "section",
        { class: "card", "aria-labelledby": "progress-title", "data-batch-status": batch.status },
        h("h2", { id: "progress-title" }, `Batch ${batch.id}`),
        h("progress", { max: batch.counts.total, value: done, "aria-label": `Items settled of ${batch.id}` }),
        h(
          "p",
          {},
          h("strong", { class: "batch-status" }, batch.status),
          ` · ${done} of ${batch.counts.total} settled (${batch.counts.completed} completed, ${batch.counts.failed} failed, ${batch.counts.cancelled} cancelled)`,
          !finished && batch.eta_seconds ? ` · about ${batch.eta_seconds} s left` : "",
        ),
        save,
      ),
    );
    if (finished) void refresh();
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, status, async () => {
      const text = lines.value.trim();
      const body = text.startsWith("{\"requests\"") ? text : `${text}\n`;
      const contentType = text.startsWith("{\"requests\"") ? "application/json" : "application/x-ndjson";
      if (!socket || socket.readyState !== WebSocket.OPEN) socket = await openLive(onBatch);
      const batch = await api<Batch>("POST", "/v1/batches", body, { contentType });
      notice(status, `Submitted ${batch.id}: ${batch.counts.total} items.`);
      stopFollowing?.();
      latest = batch;
      show(batch);
      stopFollowing = follow(batch, (next) => {
        latest = next;
        show(next);
      }, live);
      await refresh();
    });
  });

  const refresh = async () => {
    const batches = await all<Batch>("/v1/batches?limit=10", 1);
    replace(
      list,
      table(
        "Recent batches",
        ["Batch", "Status", "Items", "Created", "Finished", "Results"],
        batches.map((batch) => {
          const save = h("button", { type: "button", class: "secondary" }, "Download");
          save.setAttribute("aria-label", `Download the results of ${batch.id}`);
          save.addEventListener("click", () => busy(save, status, () => results(batch.id)));
          return [
            h("code", {}, batch.id),
            batch.status,
            `${batch.counts.completed + batch.counts.failed}/${batch.counts.total}`,
            when(batch.created_at),
            when(batch.finished_at),
            save,
          ];
        }),
      ),
    );
  };

  main.append(form, status, progress, h("section", { class: "card" }, list));
  await refresh();
  window.addEventListener(
    "hashchange",
    () => {
      stopFollowing?.();
      socket?.close();
    },
    { once: true },
  );
}
