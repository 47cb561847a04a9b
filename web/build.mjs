// Bundles the page and its worker with esbuild into OUT (make web):
//   node build.mjs OUT TABLES.json
// TABLES.json holds the facts shared with llaf's Python side (llaf/web.py),
// imported by the sources as "llaf-tables".
import * as esbuild from "esbuild";
import { copyFileSync } from "node:fs";
import { resolve } from "node:path";

const [out, tables] = process.argv.slice(2);
const llafTables = {
  name: "llaf-tables",
  setup(build) {
    build.onResolve({ filter: /^llaf-tables$/ }, () => ({ path: resolve(tables) }));
  },
};

await esbuild.build({
  entryPoints: { page: "src/page.js", engine: "src/engine.js" },
  bundle: true,
  format: "esm",
  target: "es2022",
  outdir: out,
  // The Futhark module is loaded at run time from beside the bundle: it
  // finds its .wasm file and starts its own thread workers relative to itself.
  external: ["./llm.mjs"],
  plugins: [llafTables],
  logLevel: "warning",
});
for (const file of ["index.html", "style.css"]) copyFileSync(`src/${file}`, `${out}/${file}`);
