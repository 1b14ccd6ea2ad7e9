// The Orrery developer portal: sign in with an API key, then the pages below, one per hash
// route (#/usage, #/keys, …). Everything goes through the public API (api.ts).

import "uplot/dist/uPlot.min.css";
import "./styles.css";

import { ApiError, api, session } from "./api";
import { field, h, notice, replace, statusArea } from "./ui";
import { batchesPage } from "./pages/batches";
import { keysPage } from "./pages/keys";
import { playgroundPage } from "./pages/playground";
import { usagePage } from "./pages/usage";
import { webhooksPage } from "./pages/webhooks";
import { applyTheme, themeToggle } from "./theme";

/** A page draws itself into `main`; `signal` aborts when the reader leaves it (sockets, timers
 * and listeners it started end then). */
interface Page {
  path: string;
  title: string;
  render: (main: HTMLElement, signal: AbortSignal) => Promise<void>;
}

const PAGES: Page[] = [
  { path: "usage", title: "Usage", render: usagePage },
  { path: "keys", title: "Keys", render: keysPage },
  { path: "webhooks", title: "Webhooks", render: webhooksPage },
  { path: "batches", title: "Batches", render: batchesPage },
  { path: "playground", title: "Playground", render: playgroundPage },
];

const root = document.getElementById("app") as HTMLElement;

function currentPage(): Page {
  const path = location.hash.replace(/^#\/?/, "");
  return PAGES.find((page) => page.path === path) ?? PAGES[0];
}

function header(active: Page | null): HTMLElement {
  const nav = active
    ? h(
        "nav",
        { "aria-label": "Portal" },
        h(
          "ul",
          {},
          ...PAGES.map((page) =>
            h(
              "li",
              {},
              h(
                "a",
                { href: `#/${page.path}`, "aria-current": page === active ? "page" : null },
                page.title,
              ),
            ),
          ),
        ),
      )
    : null;
  const signOut = active
    ? h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () => {
            session.signOut();
            history.replaceState(null, "", location.pathname);
            void render();
          },
        },
        "Sign out",
      )
    : null;
  return h(
    "header",
    { class: "top" },
    h("p", { class: "brand" }, h("span", { "aria-hidden": "true" }, "☉ "), "Orrery"),
    nav,
    h("div", { class: "actions" }, themeToggle(), signOut),
  );
}

function signIn(): HTMLElement {
  const input = h("input", {
    type: "password",
    name: "api-key",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
    placeholder: "orr_live_…",
  });
  const status = statusArea();
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card sign-in" },
    h("h1", {}, "Developer portal"),
    h(
      "p",
      {},
      "Sign in with an API key of your account. It stays in this tab only (session storage) and is sent to the API, never put in a URL.",
    ),
    field("API key", input),
    submit,
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    session.signIn(key);
    submit.disabled = true;
    try {
      // Any authenticated call proves the key. A 403 is a valid key without the analytics
      // scope: signed in, and the pages say what its scopes do not allow.
      try {
        await api("GET", "/v1/analytics/summary");
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 403)) throw error;
      }
      if (!location.hash) history.replaceState(null, "", "#/usage");
      await render();
    } catch (error) {
      session.signOut();
      const message =
        error instanceof ApiError && error.status === 401
          ? `That key was refused: ${error.message}`
          : error instanceof Error
            ? error.message
            : String(error);
      notice(status, message, "error");
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

let leaving: AbortController | null = null;

async function render(): Promise<void> {
  leaving?.abort();
  const here = new AbortController();
  leaving = here;
  applyTheme();
  if (!session.key()) {
    document.title = "Sign in · Orrery developer portal";
    replace(root, header(null), h("main", { id: "main", tabindex: -1 }, signIn()));
    return;
  }
  const page = currentPage();
  document.title = `${page.title} · Orrery developer portal`;
  const heading = h("h1", { tabindex: -1 }, page.title);
  const main = h("main", { id: "main", tabindex: -1 }, heading);
  replace(root, header(page), main);
  // A new page: focus its heading at once, so keyboard and screen reader users start there.
  if (navigated) heading.focus();
  navigated = false;
  try {
    await page.render(main, here.signal);
  } catch (error) {
    if (here.signal.aborted) return;
    if (error instanceof ApiError && error.status === 401) {
      session.signOut();
      await render();
      return;
    }
    const status = statusArea();
    main.append(status);
    notice(status, error instanceof Error ? error.message : String(error), "error");
  }
}

let navigated = false;
window.addEventListener("hashchange", () => {
  navigated = true;
  void render();
});
// The skip link jumps to the content without changing the route.
document.addEventListener("click", (event) => {
  const link = (event.target as Element | null)?.closest?.("a.skip");
  if (link) {
    event.preventDefault();
    document.getElementById("main")?.focus();
  }
});
// A failure nothing else caught still reaches the reader, not only the console.
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  const main = document.getElementById("main");
  if (!main) return;
  const status = statusArea();
  main.append(status);
  const reason = event.reason;
  notice(status, reason instanceof Error ? reason.message : String(reason), "error");
});
void render();
