/**
 * The JSON Schemas in docs/schema are what scripts/conf-schemas.ts makes from the zod schemas
 * (regenerate with: node dist/scripts/conf-schemas.js), one per conf file, with every key the
 * loader takes, unknown keys refused, and each key's doc comment as its description.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { schemaProblems } from '../helpers/schema.js';
import { join } from 'node:path';
import { projectRoot } from '../../lib/paths.js';
import { CONF_FILES } from '../../conf/deployment.js';
import { confJsonSchemas, SCHEMA_DIR, schemaFileOf } from '../../scripts/conf-schemas.js';

test('docs/schema holds the current JSON Schema of every conf file', async () => {
  const made = await confJsonSchemas(projectRoot);
  assert.deepEqual([...made.keys()].sort(), Object.keys(CONF_FILES).map(schemaFileOf).sort());
  for (const [name, text] of made) assert.equal(readFileSync(join(projectRoot, SCHEMA_DIR, name), 'utf8'), text, `${name} is stale: run node dist/scripts/conf-schemas.js`);
});

test('a schema names every key, refuses unknown ones, and carries the doc comments', async () => {
  const ping = JSON.parse((await confJsonSchemas(projectRoot)).get('ping_info.schema.json')!);
  assert.equal(ping.additionalProperties, false, 'a wrong key is refused, as the loader does');
  for (const k of ['port', 'eth', 'mode', 'probers', 'rate_limit', 'key', 'key_file', 'key_env']) assert.ok(ping.properties[k], k);
  assert.deepEqual(ping.properties.mode.enum, ['auto', 'native', 'generic', 'user-space']);
  assert.equal(ping.properties.port.default, 5005);
  assert.match(ping.properties.port.description, /UDP port the responder answers on/);
  const redis = JSON.parse((await confJsonSchemas(projectRoot)).get('redis_info.schema.json')!);
  assert.match(redis.properties.observer_users.description, /Redis user of its own/);
  assert.ok(redis.properties.tls.properties.ca_file, 'nested objects are laid out too');
});

test('every commented example in conf/examples passes its schema; a wrong type does not', async () => {
  for (const file of Object.keys(CONF_FILES)) {
    const example = join(projectRoot, 'conf', 'examples', file);
    if (!existsSync(example)) continue;
    assert.deepEqual(schemaProblems(`schema/${schemaFileOf(file)}`, parse(readFileSync(example, 'utf8')) ?? {}), [], file);
  }
  assert.match(schemaProblems('schema/ping_info.schema.json', { eth: 'eth0', port: 'five' }).join('; '), /\.port: a string, expected integer/);
});
