// Keys: the account's API keys; create one (scopes, mode, expiry; the key shown once with a
// copy button), rotate with a grace period, revoke.

import { all, api, session } from "../api";
import { busy, field, h, notice, replace, shownOnce, statusArea, table, when } from "../ui";

interface KeyView {
  id: string;
  name: string;
  prefix: string;
  mode: "live" | "test";
  scopes: string[];
  status: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  replaced_by: string | null;
  usage_today: Record<string, number>;
}

interface CreatedKey extends KeyView {
  key: string;
}

const SCOPES = ["charts", "readings", "batches", "events", "webhooks", "analytics", "keys"];

export async function keysPage(main: HTMLElement): Promise<void> {
  const status = statusArea();
  const revealed = h("div", {});
  const list = h("div", {});

  const refresh = async () => {
    const keys = await all<KeyView>("/v1/api-keys?limit=50");
    replace(
      list,
      table(
        "API keys",
        ["Name", "Key", "Mode", "Scopes", "Status", "Last used", "Today", "Actions"],
        keys.map((key) => [
          key.name,
          h("code", { class: "nowrap" }, `${key.prefix}…`),
          key.mode,
          key.scopes.join(", "),
          key.replaced_by ? `${key.status} (rotated)` : key.status,
          when(key.last_used_at),
          Object.entries(key.usage_today)
            .map(([cls, n]) => `${cls} ${n}`)
            .join(", ") || "0",
          key.status === "active" ? actions(key) : "—",
        ]),
      ),
    );
  };

  /** Whether `key` is the one this portal is signed in with (its prefix starts the key). */
  const current = (key: KeyView) => session.key()?.startsWith(key.prefix) ?? false;

  const actions = (key: KeyView): HTMLElement => {
    const grace = h(
      "select",
      { name: "grace", "aria-label": `Grace period for rotating ${key.name}` },
      h("option", { value: "0" }, "no grace"),
      h("option", { value: "3600" }, "1 hour grace"),
      h("option", { value: "86400", selected: true }, "24 hours grace"),
      h("option", { value: "604800" }, "7 days grace"),
    );
    const rotate = h("button", { type: "button", class: "secondary" }, "Rotate");
    rotate.setAttribute("aria-label", `Rotate ${key.name}`);
    rotate.addEventListener("click", () =>
      busy(rotate, status, async () => {
        const created = await api<CreatedKey>("POST", `/v1/api-keys/${key.id}/rotate`, {
          grace_seconds: Number(grace.value),
        });
        if (current(key)) session.signIn(created.key);
        await refresh();
        replace(revealed, shownOnce(`New key for ${created.name}`, created.key));
        notice(
          status,
          current(key) || session.key() === created.key
            ? `Rotated ${key.name}, the key this portal uses: it now signs in with the new one.`
            : `Rotated ${key.name}: the old key keeps working for the grace period.`,
        );
      }),
    );
    const revoke = h("button", { type: "button", class: "danger" }, "Revoke");
    revoke.setAttribute("aria-label", `Revoke ${key.name}`);
    revoke.addEventListener("click", () => {
      const warning = current(key)
        ? `Revoke ${key.name}? It is the key this portal is signed in with: you will be signed out.`
        : `Revoke ${key.name}? Requests with it are refused at once.`;
      if (!confirm(warning)) return;
      void busy(revoke, status, async () => {
        const signedInWithIt = current(key);
        await api("PATCH", `/v1/api-keys/${key.id}/revoke`);
        if (signedInWithIt) {
          session.signOut();
          location.reload();
          return;
        }
        await refresh();
        notice(status, `Revoked ${key.name}.`);
      });
    });
    // A key already rotated (in its grace period) is not rotated again: its successor is.
    return key.replaced_by
      ? h("div", { class: "row-actions" }, revoke)
      : h("div", { class: "row-actions" }, grace, rotate, revoke);
  };

  const name = h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const scopeBoxes = SCOPES.map((scope) =>
    h("input", { type: "checkbox", name: "scope", value: scope, checked: scope !== "keys" }),
  );
  const mode = h(
    "select",
    { name: "mode" },
    h("option", { value: "live" }, "live"),
    h("option", { value: "test" }, "test"),
  );
  const expires = h("input", { type: "date", name: "expires" });
  const create = h("button", { type: "submit" }, "Create key");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title" }, "New key"),
    field("Name", name),
    h(
      "fieldset",
      {},
      h("legend", {}, "Scopes"),
      ...scopeBoxes.map((box) =>
        h("label", { class: "check" }, box, ` ${box.value}`),
      ),
    ),
    field("Mode", mode, "Test keys are for development; live keys for production traffic."),
    field("Expires (optional)", expires, "The key stops working at the start of this day (UTC)."),
    create,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(create, status, async () => {
      const scopes = scopeBoxes.filter((box) => box.checked).map((box) => box.value);
      const body: Record<string, unknown> = { name: name.value, scopes, mode: mode.value };
      if (expires.value) body.expires_at = `${expires.value}T00:00:00Z`;
      const created = await api<CreatedKey>("POST", "/v1/api-keys", body);
      form.reset();
      await refresh();
      replace(revealed, shownOnce(`Key ${created.name}`, created.key));
      notice(status, `Created ${created.name}.`);
    });
  });

  main.append(form, status, revealed, h("section", { class: "card" }, list));
  await refresh();
}
