// Webhooks: the account's endpoints; register one (event types from the catalogue), send a
// test, read the delivery log, replay dead-lettered deliveries, rotate the signing secret.

import { all, api } from "../api";
import { busy, field, h, notice, replace, shownOnce, statusArea, table, when } from "../ui";

interface EventTypeInfo {
  name: string;
  description: string;
  activity: boolean;
}

interface Endpoint {
  id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: string | null;
  created_at: string;
}

interface Created extends Endpoint {
  secret: string;
}

interface TestDelivery {
  success: boolean;
  status: number | null;
  latency_ms: number;
  error_detail?: string | null;
}

interface Attempt {
  at: string;
  event_type: string;
  attempt: number;
  outcome: string;
  status: number | null;
  latency_ms: number;
  error_detail: string | null;
}

export async function webhooksPage(main: HTMLElement): Promise<void> {
  const status = statusArea();
  const revealed = h("div", {});
  const list = h("div", {});
  const catalogue = await api<EventTypeInfo[]>("GET", "/v1/webhooks/event-types");

  const url = h("input", {
    type: "url",
    name: "url",
    required: true,
    placeholder: "https://example.com/hooks/orrery",
  });
  const description = h("input", { name: "description", maxlength: 500 });
  const boxes = catalogue.map((type) =>
    h("input", { type: "checkbox", name: "event_type", value: type.name }),
  );
  const create = h("button", { type: "submit" }, "Register endpoint");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-hook-title" },
    h("h2", { id: "new-hook-title" }, "New endpoint"),
    field("URL", url, "HTTPS; deliveries are signed (Standard Webhooks)."),
    field("Description (optional)", description),
    h(
      "fieldset",
      { class: "types" },
      h("legend", {}, "Event types (none ticked: every type)"),
      ...boxes.map((box, index) =>
        h(
          "label",
          { class: "check type" },
          box,
          h(
            "span",
            {},
            ` ${box.value}`,
            h("small", { class: "hint" }, ` — ${catalogue[index].description}`),
          ),
        ),
      ),
    ),
    create,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(create, status, async () => {
      const created = await api<Created>("POST", "/v1/webhooks", {
        url: url.value.trim(),
        description: description.value.trim() || null,
        event_types: boxes.filter((b) => b.checked).map((b) => b.value),
      });
      form.reset();
      await refresh();
      replace(revealed, shownOnce(`Signing secret of ${created.url}`, created.secret));
      notice(status, `Registered ${created.url}.`);
    });
  });

  const deliveries = async (endpoint: Endpoint, into: HTMLElement) => {
    const attempts = await api<{ data: Attempt[] }>(
      "GET",
      `/v1/webhooks/${endpoint.id}/deliveries?limit=20`,
    );
    replace(
      into,
      table(
        `Deliveries to ${endpoint.url}`,
        ["At", "Event", "Attempt", "Outcome", "Status", "Latency"],
        attempts.data.map((a) => [
          when(a.at),
          a.event_type,
          a.attempt,
          a.outcome,
          a.status ?? a.error_detail ?? "—",
          `${a.latency_ms} ms`,
        ]),
      ),
    );
  };

  const controls = (endpoint: Endpoint): HTMLElement => {
    const log = h("div", { class: "log" });
    const test = h("button", { type: "button" }, "Send test");
    test.setAttribute("aria-label", `Send a test event to ${endpoint.url}`);
    test.addEventListener("click", () =>
      busy(test, status, async () => {
        const result = await api<TestDelivery>("POST", `/v1/webhooks/${endpoint.id}/test`);
        notice(
          status,
          result.success
            ? `Test delivered: HTTP ${result.status} in ${result.latency_ms} ms.`
            : `Test not delivered: ${result.status ?? result.error_detail ?? "no answer"}.`,
          result.success ? "ok" : "error",
        );
        await deliveries(endpoint, log);
      }),
    );
    const show = h("button", { type: "button", class: "secondary" }, "Delivery log");
    show.setAttribute("aria-label", `Delivery log of ${endpoint.url}`);
    show.addEventListener("click", () => busy(show, status, () => deliveries(endpoint, log)));
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
    const since = h("input", {
      type: "date",
      name: "since",
      required: true,
      // Dead letters are kept 14 days.
      min: day(13),
      max: day(0),
      "aria-label": `Replay dead-lettered deliveries to ${endpoint.url} since`,
      value: day(1),
    });
    const replay = h("button", { type: "button", class: "secondary" }, "Replay");
    replay.setAttribute("aria-label", `Replay failed deliveries to ${endpoint.url}`);
    replay.addEventListener("click", () =>
      busy(replay, status, async () => {
        if (!since.value || !since.checkValidity()) {
          throw new Error(`Choose a day from ${since.min} to ${since.max} to replay from.`);
        }
        const replayed = await api<{ replayed: number }>(
          "POST",
          `/v1/webhooks/${endpoint.id}/replay`,
          { since: `${since.value}T00:00:00Z` },
        );
        notice(status, `Queued ${replayed.replayed} dead-lettered deliveries again.`);
      }),
    );
    const rotate = h("button", { type: "button", class: "secondary" }, "Rotate secret");
    rotate.setAttribute("aria-label", `Rotate the signing secret of ${endpoint.url}`);
    rotate.addEventListener("click", () =>
      busy(rotate, status, async () => {
        const secrets = await api<{ secret: string; previous_secret_expires_at: string | null }>(
          "POST",
          `/v1/webhooks/${endpoint.id}/rotate-secret`,
        );
        replace(revealed, shownOnce(`New signing secret of ${endpoint.url}`, secrets.secret));
        notice(
          status,
          `Rotated: the previous secret also signs until ${when(secrets.previous_secret_expires_at)}.`,
        );
      }),
    );
    return h("div", { class: "row-actions" }, test, show, since, replay, rotate, log);
  };

  const refresh = async () => {
    const endpoints = await all<Endpoint>("/v1/webhooks?limit=20");
    replace(
      list,
      table(
        "Webhook endpoints",
        ["URL", "Event types", "State", "Actions"],
        endpoints.map((e) => [
          h("code", {}, e.url),
          e.event_types.length ? e.event_types.join(", ") : "every type",
          e.enabled ? "enabled" : `disabled${e.disabled_reason ? `: ${e.disabled_reason}` : ""}`,
          controls(e),
        ]),
      ),
    );
  };

  main.append(form, status, revealed, h("section", { class: "card" }, list));
  await refresh();
}
