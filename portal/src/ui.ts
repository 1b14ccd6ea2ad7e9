// Small DOM helpers: the portal builds its pages from plain elements.

type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | EventListener | null | undefined>;

/** An element with attributes (`on…` are listeners, `true` is an empty attribute) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

let nextId = 0;
/** A unique element id. */
export function uid(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled control: the label names it for screen readers and the click target. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || uid("field");
  control.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { id: hintId, class: "hint" }, hint) : null,
  );
}

/** Shows a result or an error in a status area, which reads it out (an error at once). */
export function notice(target: Element, message: string, kind: "ok" | "error" = "ok"): void {
  target.setAttribute("aria-live", kind === "error" ? "assertive" : "polite");
  replace(target, h("p", { class: `notice ${kind}` }, message));
}

/** A status line that announces changes (one live region; its notices carry no role). */
export function statusArea(): HTMLElement {
  return h("div", { class: "status-area", "aria-live": "polite", "aria-atomic": "true" });
}

/** Runs `action` with the button disabled, reporting a failure in `status`. */
export async function busy(
  button: HTMLButtonElement,
  status: Element,
  action: () => Promise<void>,
): Promise<void> {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await action();
  } catch (error) {
    notice(status, error instanceof Error ? error.message : String(error), "error");
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** A date in the reader's locale and zone, or a dash. */
export function when(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

/** A secret shown once, with a button that copies it. */
export function shownOnce(label: string, secret: string): HTMLElement {
  const id = uid("secret");
  const status = statusArea();
  const copy = h("button", { type: "button", class: "secondary" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      notice(status, "Copied to the clipboard.");
    } catch {
      notice(status, "Copy failed: select the text and copy it by hand.", "error");
    }
  });
  return h(
    "div",
    { class: "once", role: "group", "aria-labelledby": `${id}-label` },
    h("p", { id: `${id}-label` }, h("strong", {}, label), " — shown this once: store it now."),
    h("code", { class: "secret", "data-secret": true, tabindex: 0 }, secret),
    copy,
    status,
  );
}

/** A table with a caption and header cells, inside a wrapper that scrolls on narrow screens. */
export function table(caption: string, headers: string[], rows: Child[][]): HTMLElement {
  return h(
    "div",
    { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, ...headers.map((text) => h("th", { scope: "col" }, text)))),
      h(
        "tbody",
        {},
        ...(rows.length
          ? rows.map((cells) => h("tr", {}, ...cells.map((cell) => h("td", {}, cell))))
          : [h("tr", {}, h("td", { colspan: headers.length }, "None yet."))]),
      ),
    ),
  );
}

/** Saves text as a file the browser downloads. */
export function download(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
