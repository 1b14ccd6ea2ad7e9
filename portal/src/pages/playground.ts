// Playground: a birth chart from a form — the SVG wheel, the JSON, the reading, and the curl
// command that makes the same call.

import { api } from "../api";
import { currentTheme } from "../theme";
import { busy, field, h, replace, statusArea } from "../ui";

const HOUSE_SYSTEMS = [
  "placidus",
  "koch",
  "porphyry",
  "regiomontanus",
  "campanus",
  "equal",
  "whole_sign",
  "alcabitius",
  "morinus",
];
const AYANAMSAS = ["lahiri", "fagan_bradley", "krishnamurti", "raman"];

interface Reading {
  title: string;
  sections: { key: string; title: string; paragraphs: string[]; items: { title: string; paragraphs: string[] }[] }[];
}

/** A shell-quoted string (single quotes, the inner ones escaped). */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export async function playgroundPage(main: HTMLElement, signal: AbortSignal): Promise<void> {
  const status = statusArea();
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"];
  const zoneList = h("datalist", { id: "zones" }, ...zones.map((zone) => h("option", { value: zone })));
  const name = h("input", { name: "name", value: "Ada", maxlength: 200 });
  const date = h("input", { type: "date", name: "date", required: true, value: "1990-05-17" });
  const time = h("input", { type: "time", name: "time", required: true, value: "14:30" });
  const zone = h("input", {
    name: "timezone",
    list: "zones",
    required: true,
    value: "Europe/London",
    autocomplete: "off",
  });
  const latitude = h("input", { type: "number", name: "latitude", min: -90, max: 90, step: "any", required: true, value: "51.5074" });
  const longitude = h("input", { type: "number", name: "longitude", min: -180, max: 180, step: "any", required: true, value: "-0.1278" });
  const houses = h("select", { name: "house_system" }, ...HOUSE_SYSTEMS.map((s) => h("option", { value: s }, s.replace("_", " "))));
  const zodiac = h("select", { name: "zodiac" }, h("option", { value: "tropical" }, "tropical"), h("option", { value: "sidereal" }, "sidereal"));
  const ayanamsa = h("select", { name: "ayanamsa", disabled: true }, ...AYANAMSAS.map((a) => h("option", { value: a }, a.replace("_", " "))));
  zodiac.addEventListener("change", () => {
    ayanamsa.disabled = zodiac.value !== "sidereal";
  });
  const submit = h("button", { type: "submit" }, "Draw the chart");
  const form = h(
    "form",
    { class: "card grid-form", "aria-labelledby": "birth-title" },
    h("h2", { id: "birth-title" }, "Birth data"),
    field("Name (optional)", name),
    field("Date", date),
    field("Local time", time),
    field("Time zone (IANA)", zone, "e.g. Europe/London; the offset on that date is applied."),
    zoneList,
    field("Latitude (°, north +)", latitude),
    field("Longitude (°, east +)", longitude),
    field("House system", houses),
    field("Zodiac", zodiac),
    field("Ayanamsa (sidereal only)", ayanamsa),
    submit,
  );

  const wheel = h("figure", { class: "wheel" });
  const reading = h("section", { class: "card", "aria-labelledby": "reading-title" });
  const json = h("pre", { class: "json", tabindex: 0, "aria-label": "The chart as JSON" });
  const curl = h("pre", { class: "curl", tabindex: 0, "aria-label": "curl command" });

  // The wheel's object URL, given back when the next wheel or another page replaces it.
  let wheelUrl: string | null = null;
  const release = () => {
    if (wheelUrl) URL.revokeObjectURL(wheelUrl);
    wheelUrl = null;
  };
  signal.addEventListener("abort", release);

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(submit, status, async () => {
      const body: Record<string, unknown> = {
        datetime: `${date.value}T${time.value}`,
        timezone: zone.value.trim(),
        latitude: Number(latitude.value),
        longitude: Number(longitude.value),
        house_system: houses.value,
        zodiac: zodiac.value,
      };
      if (name.value.trim()) body.name = name.value.trim();
      if (zodiac.value === "sidereal") body.ayanamsa = ayanamsa.value;
      // One chart call with the wheel embedded (in the page's theme), one reading call.
      const [chart, text] = await Promise.all([
        api<Record<string, unknown>>("POST", `/v1/charts?include=svg&theme=${currentTheme()}`, body),
        api<Reading>("POST", "/v1/readings", body),
      ]);
      const { svg, ...rest } = chart;
      release();
      wheelUrl = URL.createObjectURL(new Blob([String(svg)], { type: "image/svg+xml" }));
      const image = h("img", {
        src: wheelUrl,
        alt: `The chart wheel of ${name.value.trim() || "this birth"}`,
        width: 480,
        height: 480,
      });
      replace(wheel, image, h("figcaption", {}, "The SVG wheel (?format=svg alone, or ?include=svg in the JSON)"));
      json.textContent = JSON.stringify(rest, null, 2);
      replace(
        reading,
        h("h2", { id: "reading-title" }, text.title),
        ...text.sections.map((section) =>
          h(
            "details",
            {},
            h("summary", {}, section.title),
            ...section.paragraphs.map((p) => h("p", {}, p)),
            ...section.items.map((item) =>
              h("div", { class: "reading-item" }, h("h3", {}, item.title), ...item.paragraphs.map((p) => h("p", {}, p))),
            ),
          ),
        ),
      );
      curl.textContent =
        `curl -s -X POST ${location.origin}/v1/charts \\\n` +
        `  -H "x-api-key: $ORRERY_API_KEY" -H 'content-type: application/json' \\\n` +
        `  -d ${shellQuote(JSON.stringify(body))}`;
    });
  });

  main.append(
    form,
    status,
    h(
      "div",
      { class: "results" },
      h("section", { class: "card", "aria-labelledby": "wheel-title" }, h("h2", { id: "wheel-title" }, "Wheel"), wheel),
      h("section", { class: "card", "aria-labelledby": "curl-title" }, h("h2", { id: "curl-title" }, "The same call with curl"), curl),
      reading,
      h("section", { class: "card", "aria-labelledby": "json-title" }, h("h2", { id: "json-title" }, "JSON"), json),
    ),
  );
}
