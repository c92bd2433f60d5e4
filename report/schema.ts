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
const expectation: Schema = {
  type: 'object',
  required: ['op'],
  description:
    'what the value is held to: eq/le/ge value, between min..max, approx (relative), within ' + '(absolute), is, oneOf',
  properties: {
    op: { enum: ['eq', 'le', 'ge', 'between', 'approx', 'within', 'is', 'oneOf'] },
    value: { type: ['number', 'string', 'boolean'] },
    min: num,
    max: num,
    tolerance: num,
    abs: num,
    values: { type: 'array' },
  },
  additionalProperties: false,
};
const kernelReport: Schema = {
  type: 'object',
  required: ['kind', 'title', 'excerpt'],
  properties: { kind: str, title: str, excerpt: str },
};
const measurement: Schema = {
  type: 'object',
  required: ['value', 'unit'],
  description:
    'A measured value; with an expectation, ok says whether it was met; skipped: the reason it could not be ' +
    'taken (never a pass).',
  properties: {
    value: { type: ['number', 'string', 'boolean', 'null'] },
    unit: str,
    expected: expectation,
    ok: { type: 'boolean' },
    note: str,
    why: { type: 'string', description: 'why the expectation is what it is' },
    evidence: { type: 'string', description: 'text a known-failure signature may match' },
    reports: { type: 'array', items: kernelReport, description: 'kernel reports this measurement claimed' },
    skipped: str,
    tries: { type: 'number', minimum: 1, description: 'how often the step behind it was tried in this run' },
  },
  additionalProperties: false,
};
const signatureCheck: Schema = {
  type: 'object',
  required: ['id', 'title', 'measurements', 'reproduced', 'detail'],
  description: 'a known-failure signature the judge checked: reproduced, or no longer reproduces (false)',
  properties: {
    id: str,
    title: str,
    measurements: { type: 'array', items: str },
    reproduced: { type: 'boolean' },
    outcome: { enum: ['reproduced', 'fixed', 'not-rechecked', 'not-seen', 'different'] },
    detail: str,
    cured: { type: 'array', items: str },
    unchecked: {
      type: 'array',
      items: {
        type: 'object',
        required: ['measurement', 'reason'],
        properties: { measurement: str, reason: str },
        additionalProperties: false,
      },
    },
    rate: {
      type: 'object',
      required: ['hits', 'tries', 'needed'],
      properties: { hits: num, tries: num, needed: { type: ['number', 'null'] } },
      additionalProperties: false,
    },
    culprit: {
      type: 'object',
      required: ['number', 'title', 'patches'],
      description: 'the first patch at which it reproduces on this series (scenarios/culprits.json, `culprits`)',
      properties: { number: num, title: str, patches: num, presentFrom: { type: 'boolean' } },
      additionalProperties: false,
    },
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
    schemaVersion: { const: 2 },
    rig: { type: 'object', required: ['version'], properties: { version: str, commit: { type: ['string', 'null'] } } },
    profile: { type: 'string', description: 'kernel profile name (kernel/profiles/<name>.json)' },
    kernel: {
      type: 'object',
      description:
        'provenance and hashes of the kernel under test: build key, config sha256, release; patches: per-patch ' +
        'verify and apply results',
    },
    series: {
      type: 'object',
      description:
        'the series applied: where it came from, whether it is a pinned one, and patch by patch against the ' +
        'nearest pinned series (identical, context-only, content-changed, new, missing; both patch ids)',
      required: ['name', 'pinned', 'origin', 'counts', 'patches'],
      properties: {
        name: str,
        pinned: { type: 'boolean' },
        origin: {
          type: 'object',
          required: ['kind', 'path', 'sha256'],
          properties: { kind: { enum: ['profile', 'mbox', 'message-id', 'git-range'] }, path: str, sha256: str },
        },
        nearest: { type: ['string', 'null'] },
        counts: { type: 'object' },
        patches: {
          type: 'array',
          items: {
            type: 'object',
            required: ['number', 'title', 'kind'],
            properties: {
              number: { type: 'integer' },
              title: str,
              kind: { enum: ['identical', 'context-only', 'content-changed', 'new', 'missing'] },
              patchId: str,
              pinnedPatchId: str,
            },
          },
        },
      },
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
    prepareSeconds: {
      type: 'number',
      minimum: 0,
      description: 'seconds spent building or fetching the kernel and the images, apart from the scenarios',
    },
    jobs: { type: 'integer', minimum: 1, description: 'workers the run had (run --jobs)' },
    shard: {
      type: 'object',
      description: 'the shard of a partitioned run (run --shard K/N): its place and the scenarios of every shard',
      required: ['index', 'count', 'plan'],
      properties: {
        index: { type: 'integer', minimum: 1 },
        count: { type: 'integer', minimum: 1 },
        plan: { type: 'array', items: { type: 'array', items: str } },
      },
      additionalProperties: false,
    },
    merged: {
      type: 'array',
      description: 'the shard bundles this bundle was merged from (report --merge), in shard order',
      items: {
        type: 'object',
        required: ['index', 'bundle', 'seconds'],
        properties: { index: { type: 'integer', minimum: 1 }, bundle: str, seconds: { type: 'number', minimum: 0 } },
        additionalProperties: false,
      },
    },
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
          restarts: {
            type: 'array',
            items: str,
            description: 'boots that stalled and were booted again: the reason and the stalled console',
          },
          consoleFlood: { ...str, description: 'a guest that flooded its console: what the bounds dropped' },
          hostKey: { ...str, description: "fingerprint of the boot's SSH host key, made by the rig and pinned" },
          quietest: {
            type: 'object',
            required: ['seconds', 'command'],
            properties: { seconds: { type: 'number' }, command: str },
            description: 'the longest time a command and the console were both quiet on this boot',
          },
        },
      },
    },
    scenarios: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'title', 'status', 'measurements', 'signatures', 'evidence', 'seconds', 'boots'],
        properties: {
          id: str,
          title: str,
          status: { enum: ['pass', 'fail', 'skip', 'known-failure'] },
          reason: str,
          measurements: { type: 'object', additionalProperties: measurement },
          signatures: { type: 'array', items: signatureCheck },
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

/** The value's type against the schema's: an error, or undefined when it fits. */
function typeError(schema: Schema, value: unknown, path: string): string | undefined {
  if (!schema.type) return undefined;
  const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
  const t = typeOf(value);
  if (allowed.includes(t) || (t === 'integer' && allowed.includes('number'))) return undefined;
  return `${path}: expected ${allowed.join('|')}, got ${t}`;
}

function scalarErrors(schema: Schema, value: unknown, path: string): string[] {
  const errors: string[] = [];
  if (schema.const !== undefined && value !== schema.const)
    errors.push(`${path}: must be ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'number' && schema.minimum !== undefined && value < schema.minimum)
    errors.push(`${path}: ${value} < ${schema.minimum}`);
  return errors;
}

function objectErrors(schema: Schema, obj: Record<string, unknown>, path: string): string[] {
  const errors: string[] = [];
  for (const r of schema.required ?? []) if (!(r in obj)) errors.push(`${path}: missing ${r}`);
  for (const [k, v] of Object.entries(obj)) {
    const sub = schema.properties?.[k];
    if (sub) errors.push(...validate(sub, v, `${path}.${k}`));
    else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property ${k}`);
    else if (typeof schema.additionalProperties === 'object')
      errors.push(...validate(schema.additionalProperties, v, `${path}.${k}`));
  }
  return errors;
}

/** Errors as "path: problem"; empty when the value conforms. */
export function validate(schema: Schema, value: unknown, path = '$'): string[] {
  const wrongType = typeError(schema, value, path);
  const errors = scalarErrors(schema, value, path);
  if (wrongType) return [...errors, wrongType];
  if (value && typeof value === 'object' && !Array.isArray(value))
    errors.push(...objectErrors(schema, value as Record<string, unknown>, path));
  if (Array.isArray(value) && schema.items)
    value.forEach((v, i) => errors.push(...validate(schema.items!, v, `${path}[${i}]`)));
  return errors;
}
