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

export function themeToggle(): HTMLButtonElement {
  const button = h("button", { type: "button", class: "secondary", "aria-pressed": "false" });
  const label = () => {
    const dark = currentTheme() === "dark";
    button.textContent = dark ? "Light theme" : "Dark theme";
    button.setAttribute("aria-pressed", String(dark));
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
