// Light and dark themes: the system's choice until the reader picks one (kept in localStorage,
// which holds nothing else).

import { h } from "./ui";

const THEME_ITEM = "orrery.theme";
type Theme = "light" | "dark";

export function currentTheme(): Theme {
  const chosen = localStorage.getItem(THEME_ITEM);
  if (chosen === "light" || chosen === "dark") return chosen;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function applyTheme(): void {
  document.documentElement.dataset.theme = currentTheme();
}

/** A toggle button with a fixed name, "Dark theme", pressed while the dark theme is on. */
export function themeToggle(): HTMLButtonElement {
  const button = h("button", { type: "button", class: "secondary", "aria-pressed": "false" }, "Dark theme");
  const label = () => {
    button.setAttribute("aria-pressed", String(currentTheme() === "dark"));
  };
  button.addEventListener("click", () => {
    localStorage.setItem(THEME_ITEM, currentTheme() === "dark" ? "light" : "dark");
    applyTheme();
    label();
    window.dispatchEvent(new Event("orrery:theme"));
  });
  label();
  return button;
}

/** A CSS custom property's value on the page (chart colours follow the theme). */
export function cssColor(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
