/**
 * The results.json schema (JSON Schema, draft 2020-12 subset), written into every bundle as
 * results.schema.json, and a small validator for exactly the keywords it uses (type,
 * required, properties, additionalProperties, items, enum, const, minimum) so that tests and
 * `report --validate` need no extra package.
 */
type Schema = {
  type?: string | string[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  description?: string;
  $schema?: string;
  $id?: string;
  title?: string;
};

const str: Schema = { type: 'string' };
const num: Schema = { type: 'number' };
const comparison: Schema = {
  type: 'object',
  required: ['op', 'value'],
  properties: {
    op: { enum: ['eq', 'le', 'ge', 'approx', 'is'] },
    value: { type: ['number', 'string', 'boolean'] },
    tolerance: num,
  },
};
const measurement: Schema = {
  type: 'object',
  required: ['value', 'unit'],
  description: 'A measured value; with an expectation, ok says whether it was met.',
  properties: {
    value: { type: ['number', 'string', 'boolean', 'null'] },
    unit: str,
    expected: comparison,
    ok: { type: 'boolean' },
    note: str,
  },
  additionalProperties: false,
};

export const RESULTS_SCHEMA: Schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://dmemfs-rig.invalid/results.schema.json',
  title: 'dmemfs-rig run results (results.json)',
  type: 'object',
  required: [
    'schemaVersion',
    'rig',
    'profile',
    'kernel',
    'images',
    'accel',
    'qemu',
    'startedAt',
    'seconds',
    'boots',
    'scenarios',
  ],
  properties: {
    schemaVersion: { const: 1 },
    rig: { type: 'object', required: ['version'], properties: { version: str, commit: { type: ['string', 'null'] } } },
    profile: { type: 'string', description: 'kernel profile name (kernel/profiles/<name>.json)' },
    kernel: {
      type: 'object',
      description:
        'provenance and hashes of the kernel under test: build key, config sha256, release; patches: per-patch verify and apply results',
    },
    images: {
      type: 'object',
      description: 'L1 image key (sha256 of its inputs), package count, helpers key, L2 payload hashes',
    },
    accel: {
      type: 'object',
      required: ['accel', 'reason'],
      properties: { accel: { enum: ['kvm', 'tcg'] }, reason: str },
    },
    qemu: { type: 'object', required: ['binary', 'version'], properties: { binary: str, version: str } },
    startedAt: str,
    seconds: { type: 'number', minimum: 0 },
    boots: {
      type: 'array',
      items: {
        type: 'object',
        required: ['scenario', 'name', 'guest', 'request', 'qemu', 'bootSeconds'],
        properties: {
          scenario: str,
          name: str,
          guest: str,
          request: { type: 'object', required: ['kernel', 'role', 'nodeMiB', 'append'] },
          qemu: {
            type: 'object',
            required: ['binary', 'args'],
            properties: { binary: str, args: { type: 'array', items: str } },
          },
          console: { type: ['string', 'null'], description: 'console log in the bundle, relative path' },
          bootSeconds: { type: ['number', 'null'] },
        },
      },
    },
    scenarios: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'title', 'status', 'measurements', 'evidence', 'seconds', 'boots'],
        properties: {
          id: str,
          title: str,
          status: { enum: ['pass', 'fail', 'skip', 'known-failure'] },
          reason: str,
          measurements: { type: 'object', additionalProperties: measurement },
          evidence: {
            type: 'array',
            items: { type: 'object', required: ['label', 'text'], properties: { label: str, text: str } },
          },
          seconds: { type: 'number', minimum: 0 },
          boots: { type: 'array', items: str },
        },
        additionalProperties: false,
      },
    },
  },
};

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Errors as "path: problem"; empty when the value conforms. */
export function validate(schema: Schema, value: unknown, path = '$'): string[] {
  const errors: string[] = [];
  if (schema.const !== undefined && value !== schema.const)
    errors.push(`${path}: must be ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (schema.type) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!allowed.includes(t) && !(t === 'integer' && allowed.includes('number'))) {
      errors.push(`${path}: expected ${allowed.join('|')}, got ${t}`);
      return errors;
    }
  }
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum)
    errors.push(`${path}: ${value} < ${schema.minimum}`);
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!(r in obj)) errors.push(`${path}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      const sub = schema.properties?.[k];
      if (sub) errors.push(...validate(sub, v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property ${k}`);
      else if (typeof schema.additionalProperties === 'object')
        errors.push(...validate(schema.additionalProperties, v, `${path}.${k}`));
    }
  }
  if (Array.isArray(value) && schema.items)
    value.forEach((v, i) => errors.push(...validate(schema.items!, v, `${path}[${i}]`)));
  return errors;
}
