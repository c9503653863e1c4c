/**
 * JSON Schemas of the conf files, for editor completion and checks (docs/schema/*.schema.json):
 * made from the zod schemas the loader itself uses (zod-to-json-schema), with each key's doc
 * comment from conf/schema.ts as its description, so the two cannot drift apart. A unit test
 * checks that the files in docs/schema are what this makes.
 * Usage: node dist/scripts/conf-schemas.js [ROOT]: writes ROOT/docs/schema/*.schema.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { CONF_FILES } from '../conf/deployment.js';

export const SCHEMA_DIR = join('docs', 'schema');
export const schemaFileOf = (confFile: string): string => confFile.replace(/\.yaml$/, '.schema.json');

type JsonSchema = { properties?: Record<string, JsonSchema>; items?: JsonSchema; description?: string; [k: string]: unknown };

/**
 * The doc comment of every key of every z.object({...}) literal in conf/schema.ts, by the name
 * of the exported constant it is built in and the key: "pingInfo.port" -> "UDP port the ...".
 */
function keyComments(root: string): Map<string, string> {
  const file = join(root, 'conf', 'schema.ts');
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = new Map<string, string>();
  const visit = (node: ts.Node, owner: string | undefined) => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name)) owner = node.name.text;
    if (owner && ts.isPropertyAssignment(node) && ts.isIdentifier(node.name) && ts.isObjectLiteralExpression(node.parent)) {
      const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
      const text = docs.map((d) => ts.getTextOfJSDocComment(d.comment) ?? '').join(' ').replace(/\s+/g, ' ').trim();
      if (text) out.set(`${owner}.${node.name.text}`, text);
    }
    ts.forEachChild(node, (c) => visit(c, owner));
  };
  visit(src, undefined);
  return out;
}

/** The exported constant of conf/schema.ts that a conf file's schema is (by identity). */
async function schemaNames(): Promise<Map<unknown, string>> {
  const mod = (await import('../conf/schema.js')) as Record<string, unknown>;
  return new Map(Object.entries(mod).map(([name, v]) => [v, name]));
}

/** Every conf file's JSON Schema, by file name in docs/schema. */
export async function confJsonSchemas(root: string): Promise<Map<string, string>> {
  const comments = keyComments(root);
  const names = await schemaNames();
  const out = new Map<string, string>();
  for (const [file, { schema, required }] of Object.entries(CONF_FILES)) {
    const owner = names.get(schema);
    const js = zodToJsonSchema(schema, { target: 'jsonSchema7', effectStrategy: 'input', $refStrategy: 'none' }) as JsonSchema;
    for (const [key, prop] of Object.entries(js.properties ?? {})) {
      const d = owner && comments.get(`${owner}.${key}`);
      if (d && !prop.description) prop.description = d;
    }
    const doc = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      title: file,
      description: `latscope ${file}${required ? '' : ' (optional)'}: see conf/examples/${file} for a commented example. Made from conf/schema.ts by scripts/conf-schemas.ts.`,
      ...Object.fromEntries(Object.entries(js).filter(([k]) => k !== '$schema')),
    };
    out.set(schemaFileOf(file), JSON.stringify(doc, null, 2) + '\n');
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const schemas = await confJsonSchemas(root);
  mkdirSync(join(root, SCHEMA_DIR), { recursive: true });
  for (const [name, text] of schemas) writeFileSync(join(root, SCHEMA_DIR, name), text);
  console.log(`conf schemas: ${[...schemas.keys()].join(', ')} in ${SCHEMA_DIR}`);
}
