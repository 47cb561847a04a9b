// Bundles markdown.js with marked and DOMPurify into llaf/static/markdown.js,
// minified, with the versions that went into it in its first line (checked
// against package-lock.json by tests/test_web.py). `node build.mjs --check`
// builds in memory and fails if the committed bundle differs.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const version = (pkg) => JSON.parse(readFileSync(here(`node_modules/${pkg}/package.json`), "utf8")).version;
const versions = { marked: version("marked"), dompurify: version("dompurify"), esbuild: esbuild.version };
const outfile = here("../llaf/static/markdown.js");
const check = process.argv.includes("--check");

const result = await esbuild.build({
  entryPoints: [here("markdown.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "eof",
  define: { MARKED_VERSION: JSON.stringify(versions.marked) },
  banner: {
    js: `/* llaf chat page: marked ${versions.marked}, dompurify ${versions.dompurify}, built by esbuild ` +
      `${versions.esbuild} (cd page && npm ci && npm run build) */`,
  },
  outfile,
  write: !check,
});
if (check) {
  const built = result.outputFiles[0].text;
  if (built !== readFileSync(outfile, "utf8")) {
    console.error(`${outfile} differs from a fresh build: run make page`);
    process.exit(1);
  }
  console.log(`${outfile} matches a fresh build`);
}
