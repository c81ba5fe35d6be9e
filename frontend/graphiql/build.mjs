// Copies GraphiQL's prebuilt browser files out of the pinned npm packages into the
// Python package (graph/server/static/graphiql), with their licence texts and a manifest of
// versions and sha384 integrity, so the page needs no CDN and `pip install` needs no node.
// `node build.mjs --check` fails when the committed files differ from what npm gives.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const out = join(here, "..", "..", "graph", "server", "static", "graphiql");
const check = process.argv.includes("--check");

// In the order the page loads them: the explorer needs the globals React and GraphiQL.
const ASSETS = [
  { file: "react.production.min.js", pkg: "react", path: "umd/react.production.min.js" },
  { file: "react-dom.production.min.js", pkg: "react-dom", path: "umd/react-dom.production.min.js" },
  { file: "graphiql.min.css", pkg: "graphiql", path: "graphiql.min.css" },
  { file: "graphiql.min.js", pkg: "graphiql", path: "graphiql.min.js" },
  { file: "plugin-explorer.css", pkg: "@graphiql/plugin-explorer", path: "dist/style.css" },
  { file: "plugin-explorer.umd.js", pkg: "@graphiql/plugin-explorer", path: "dist/index.umd.js" },
];
// Bundled inside the files above without a module path of their own to find them by.
const ALSO_BUNDLED = ["graphiql-explorer", "@graphiql/react", "@graphiql/toolkit", "codemirror-graphql", "graphql-language-service"];

/** Every installed copy of a package, nested or not, as [dir, version]. */
function installed(name, root = modules, found = []) {
  const dir = join(root, name);
  if (existsSync(join(dir, "package.json"))) found.push([dir, JSON.parse(readFileSync(join(dir, "package.json"))).version]);
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const sub = join(root, entry.name);
    if (entry.name.startsWith("@")) {
      for (const scoped of readdirSync(sub)) {
        const nested = join(sub, scoped, "node_modules");
        if (existsSync(nested)) installed(name, nested, found);
      }
    } else if (existsSync(join(sub, "node_modules"))) {
      installed(name, join(sub, "node_modules"), found);
    }
  }
  return found;
}

function licenceText(name) {
  const [dir, version] = installed(name)[0] ?? [];
  if (!dir) throw new Error(`${name} is bundled but not installed: add it to devDependencies for its licence`);
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
  const meta = JSON.parse(readFileSync(join(dir, "package.json")));
  const text = file ? readFileSync(join(dir, file), "utf8").trim() : `(no licence file in the package; package.json says "${meta.license}")`;
  return `${"=".repeat(78)}\n${name}@${version} (${meta.license})\n${"=".repeat(78)}\n${text}\n`;
}

/** The npm packages webpack bundled into a file, by the module paths it keeps. */
function bundledPackages(text) {
  const names = new Set();
  for (const m of text.matchAll(/"(?:\.\.\/)+node_modules\/((?:@[^/"]+\/)?[^/"]+)\//g)) names.add(m[1]);
  return names;
}

const files = {};
const licensed = new Set();
for (const asset of ASSETS) {
  const [dir, version] = installed(asset.pkg)[0];
  const bytes = readFileSync(join(dir, asset.path));
  files[asset.file] = {
    package: asset.pkg,
    version,
    from: asset.path,
    integrity: "sha384-" + createHash("sha384").update(bytes).digest("base64"),
    bytes,
  };
  licensed.add(asset.pkg);
  if (asset.file.endsWith(".js")) for (const name of bundledPackages(bytes.toString("utf8"))) licensed.add(name);
}
for (const name of ALSO_BUNDLED) licensed.add(name);

const manifest = {
  comment: "Built by frontend/graphiql/build.mjs from the npm packages below; served at /graphiql-assets in this order.",
  files: Object.entries(files).map(([file, f]) => ({ file, package: f.package, version: f.version, from: f.from, integrity: f.integrity })),
};
const outputs = {
  "manifest.json": JSON.stringify(manifest, null, 2) + "\n",
  "THIRD_PARTY_LICENSES.txt": [...licensed].sort().map(licenceText).join("\n"),
  ...Object.fromEntries(Object.entries(files).map(([file, f]) => [file, f.bytes])),
};

if (check) {
  const differ = Object.entries(outputs).filter(([file, body]) => {
    const path = join(out, file);
    return !existsSync(path) || !readFileSync(path).equals(Buffer.from(body));
  });
  for (const [file] of differ) console.error(`differs from npm's build: graph/server/static/graphiql/${file}`);
  process.exit(differ.length ? 1 : 0);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const [file, body] of Object.entries(outputs)) writeFileSync(join(out, file), body);
for (const f of manifest.files) console.log(`${f.file}  ${f.package}@${f.version}  ${f.integrity}`);
