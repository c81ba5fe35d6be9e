// Builds the console into a temporary folder and fails if that differs from the build committed in
// the Python package (graph/server/static/console/): the committed files are what the sources give.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('..', import.meta.url));
const committed = join(here, '..', '..', 'graph', 'server', 'static', 'console');
const built = mkdtempSync(join(tmpdir(), 'udt-console-'));

function files(root) {
  const found = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else found.set(relative(root, path), readFileSync(path));
    }
  };
  walk(root);
  return found;
}

try {
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn', '--outDir', built, '--emptyOutDir'], { cwd: here, stdio: 'inherit' });
  const want = files(built);
  const have = files(committed);
  const problems = [];
  for (const [name, bytes] of want) {
    if (!have.has(name)) problems.push(`missing from the committed build: ${name}`);
    else if (!bytes.equals(have.get(name))) problems.push(`differs from the sources' build: ${name}`);
  }
  for (const name of have.keys()) if (!want.has(name)) problems.push(`committed but not built from the sources: ${name}`);
  if (problems.length) {
    console.error(`${problems.join('\n')}\nRebuild it: npm run build (in frontend/console), and commit graph/server/static/console/.`);
    process.exit(1);
  }
  console.log(`the committed console build matches the sources (${want.size} files)`);
} finally {
  rmSync(built, { recursive: true, force: true });
}
