// Builds the portal into dist/: app.js and app.css (uPlot's styles included), and index.html.
// The output is committed (orrery-local embeds it, so running the API needs no Node); the test
// command runs this again and fails if dist/ changed, so dist/ always matches src/.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";

// `node build.mjs [outdir]`: dist/ unless told (the test command builds elsewhere to compare).
const outdir = process.argv[2] ?? "dist";
await mkdir(outdir, { recursive: true });
await build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  outdir,
  legalComments: "eof",
  logLevel: "warning",
});
await copyFile("static/index.html", path.join(outdir, "index.html"));
