/**
 * Writes dist/observer-bundle.json, the list of what the observer bundle holds, from the
 * observer's import graph (lib/observer-bundle.ts); exits 1 naming every import that cannot be
 * bundled, so the build fails. Usage: node dist/scripts/bundle-manifest.js [ROOT]
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleManifest, MANIFEST_PATH } from '../lib/observer-bundle.js';

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  try {
    const m = bundleManifest(root);
    writeFileSync(join(root, MANIFEST_PATH), JSON.stringify(m, null, 2) + '\n');
    console.log(`observer bundle: ${m.modules.length} modules, packages ${m.packages.map((p) => relative('node_modules', p)).join(' ')}`);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
