// Usage: each quota class used against its limit today (with the reset and the projected
// exhaustion), usage over time as a chart by hour or day, latency percentiles and error rate.
// Everything from the analytics API.

import uPlot from "uplot";

import { api } from "../api";
import { cssColor } from "../theme";
import { field, h, replace, table, when } from "../ui";

interface DayTotals {
  units: number;
  requests: number;
  errors: number;
  error_rate: number;
  rate_limited: number;
}

interface Headroom {
  class: string;
  limit: number;
  used: number;
  remaining: number;
  resets_at: string;
  projected_exhaustion_at: string | null;
}

interface Summary {
  today: DayTotals;
  yesterday: DayTotals;
  top_endpoints: { endpoint: string; requests: number; units: number }[];
  quotas: Headroom[];
}

interface UsageRow {
  period: string;
  units: number;
  requests: number;
  "2xx": number;
  "4xx": number;
  "429": number;
  "5xx": number;
}

interface Percentiles {
  count: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  cache_hits: number;
  cache_misses: number;
}

interface Latency extends Percentiles {
  endpoints: (Percentiles & { endpoint: string })[];
}

const percent = (value: number) => `${(value * 100).toFixed(1)} %`;
const ms = (value: number | null) => (value === null ? "—" : `${value.toFixed(1)} ms`);

export async function usagePage(main: HTMLElement, signal: AbortSignal): Promise<void> {
  const summary = await api<Summary>("GET", "/v1/analytics/summary");
  main.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "quotas-title" },
      h("h2", { id: "quotas-title" }, "Today's quotas"),
      h(
        "ul",
        { class: "quotas" },
        ...summary.quotas.map((quota) => {
          const share = quota.limit ? Math.min(quota.used / quota.limit, 1) : 0;
          const label = `${quota.class}: ${quota.used} of ${quota.limit} used`;
          return h(
            "li",
            { class: "quota" },
            h("span", { class: "quota-name" }, quota.class),
            h("progress", { max: quota.limit, value: quota.used, "aria-label": label }),
            h("span", {}, `${quota.used} / ${quota.limit} (${percent(share)})`),
            h(
              "small",
              {},
              `resets ${when(quota.resets_at)}`,
              quota.projected_exhaustion_at
                ? ` · runs out ${when(quota.projected_exhaustion_at)} at today's pace`
                : "",
            ),
          );
        }),
      ),
      h(
        "dl",
        { class: "totals" },
        h("div", {}, h("dt", {}, "Requests today"), h("dd", {}, summary.today.requests)),
        h(
          "div",
          {},
          h("dt", {}, "Error rate today"),
          h("dd", { "data-error-rate": true }, percent(summary.today.error_rate)),
        ),
        h("div", {}, h("dt", {}, "Rate limited (429)"), h("dd", {}, summary.today.rate_limited)),
        h("div", {}, h("dt", {}, "Requests yesterday"), h("dd", {}, summary.yesterday.requests)),
      ),
    ),
  );

  const granularity = h(
    "select",
    { name: "granularity" },
    h("option", { value: "hour" }, "By hour, last 24 hours"),
    h("option", { value: "day" }, "By day, last 14 days"),
  );
  const chart = h("div", { class: "chart", role: "img", "aria-label": "Usage over time" });
  const rows = h("div", {});
  main.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "usage-title" },
      h("h2", { id: "usage-title" }, "Usage over time"),
      field("Period", granularity),
      chart,
      rows,
    ),
  );
  let plot: uPlot | null = null;
  signal.addEventListener("abort", () => plot?.destroy());
  // Draws may overlap (a quick change of period, a theme switch): only the latest shows.
  let drawn = 0;
  const drawUsage = async () => {
    const turn = ++drawn;
    const hourly = granularity.value === "hour";
    const now = new Date();
    // Whole hours (UTC days for daily series), ending with the current one.
    const unit = hourly ? 3_600_000 : 86_400_000;
    const to = new Date(Math.floor(now.getTime() / unit) * unit + unit);
    const from = new Date(to.getTime() - (hourly ? 24 : 14) * unit);
    const query = new URLSearchParams({
      from: from.toISOString().replace(/\.\d{3}Z$/, "Z"),
      to: to.toISOString().replace(/\.\d{3}Z$/, "Z"),
      granularity: granularity.value,
    });
    const usage = await api<{ data: UsageRow[] }>("GET", `/v1/analytics/usage?${query}`);
    if (turn !== drawn || signal.aborted) return;
    // One point per period of the range, zero where nothing was used (the API lists only
    // periods with use).
    const step = hourly ? 3600 : 86_400;
    const byPeriod = new Map(usage.data.map((row) => [Date.parse(row.period) / 1000, row]));
    const points = [];
    for (let at = from.getTime() / 1000; at < to.getTime() / 1000; at += step) {
      const row = byPeriod.get(at);
      points.push({
        at,
        units: row?.units ?? 0,
        requests: row?.requests ?? 0,
        errors: row ? row["4xx"] + row["5xx"] : 0,
      });
    }
    plot?.destroy();
    const data: uPlot.AlignedData = [
      points.map((p) => p.at),
      points.map((p) => p.requests),
      points.map((p) => p.units),
      points.map((p) => p.errors),
    ];
    const axis = cssColor("--muted");
    const grid = cssColor("--border");
    plot = new uPlot(
      {
        width: chartWidth(),
        height: 240,
        series: [
          {},
          { label: "Requests", stroke: cssColor("--accent"), width: 2 },
          { label: "Units", stroke: cssColor("--accent-2"), width: 2 },
          { label: "Errors (4xx, 5xx)", stroke: cssColor("--danger"), width: 2 },
        ],
        axes: [
          { stroke: axis, grid: { stroke: grid } },
          { stroke: axis, grid: { stroke: grid } },
        ],
      },
      data,
      chart,
    );
    replace(
      rows,
      h(
        "details",
        {},
        h("summary", {}, "The numbers"),
        table(
          "Usage by period",
          ["Period", "Requests", "Units", "2xx", "4xx", "429", "5xx"],
          usage.data.map((row) => [
            when(row.period),
            row.requests,
            row.units,
            row["2xx"],
            row["4xx"],
            row["429"],
            row["5xx"],
          ]),
        ),
      ),
    );
  };
  const chartWidth = () => Math.max(200, Math.min(chart.clientWidth || 640, 960));
  const redraw = () => drawUsage().catch(() => undefined);
  granularity.addEventListener("change", redraw, { signal });
  window.addEventListener("orrery:theme", redraw, { signal });
  window.addEventListener("resize", () => plot?.setSize({ width: chartWidth(), height: 240 }), { signal });
  await drawUsage();

  const since = new Date(Date.now() - 24 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z");
  const latency = await api<Latency>("GET", `/v1/analytics/latency?from=${since}`);
  main.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "latency-title" },
      h("h2", { id: "latency-title" }, "Latency, last 24 hours"),
      table(
        "Latency percentiles by endpoint",
        ["Endpoint", "Requests", "p50", "p90", "p95", "p99", "Cache hits"],
        [
          ["All", latency.count, ms(latency.p50_ms), ms(latency.p90_ms), ms(latency.p95_ms), ms(latency.p99_ms), latency.cache_hits],
          ...latency.endpoints.map((e) => [
            e.endpoint,
            e.count,
            ms(e.p50_ms),
            ms(e.p90_ms),
            ms(e.p95_ms),
            ms(e.p99_ms),
            e.cache_hits,
          ]),
        ],
      ),
      h(
        "p",
        { class: "hint" },
        "Top endpoints today: ",
        summary.top_endpoints.map((e) => `${e.endpoint} (${e.requests})`).join(", ") || "none",
      ),
    ),
  );
}
