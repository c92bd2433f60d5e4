/**
 * The part of KCIDB's I/O schema v5.0 that `report --kcidb` writes, as a JSON Schema (draft
 * 2020-12 keywords): written for the rig from the schema kcidb-io publishes (kcidb_io/schema/
 * v05_00.py), keeping its required properties, its id, origin and test-path patterns, its status
 * words and its `additionalProperties: false`. Properties the rig never writes are left out, so
 * a file with one of them fails here although KCIDB would take it.
 */
const ORIGIN = '^[a-z0-9_]+$';
const ID = '^[a-z0-9_]+:[^\\u0000]*$';
const TEXT = { type: 'string', pattern: '^[^\\u0000]*$' } as const;
const id = { type: 'string', pattern: ID } as const;
const origin = { type: 'string', pattern: ORIGIN } as const;
const time = { type: 'string', format: 'date-time' } as const;

export const KCIDB_STATUSES = ['FAIL', 'ERROR', 'MISS', 'PASS', 'DONE', 'SKIP'] as const;
const status = { enum: [...KCIDB_STATUSES] } as const;
const misc = { type: 'object' } as const;

export const KCIDB_V5_SCHEMA = {
  $id: 'https://dmemfs-rig.invalid/kcidb-v5.0-subset.json',
  title: 'kcidb v5.0 (the part dmemfs-rig writes)',
  type: 'object',
  required: ['version'],
  additionalProperties: false,
  properties: {
    version: {
      type: 'object',
      required: ['major'],
      additionalProperties: false,
      properties: { major: { type: 'integer', const: 5 }, minor: { type: 'integer', minimum: 0, maximum: 0 } },
    },
    checkouts: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'origin'],
        additionalProperties: false,
        properties: {
          id,
          origin,
          tree_name: TEXT,
          git_commit_name: TEXT,
          patchset_hash: { type: 'string', pattern: '^$|^[0-9a-f]{64}$' },
          message_id: { type: 'string', format: 'email' },
          comment: TEXT,
          start_time: time,
          valid: { type: 'boolean' },
          misc,
        },
      },
    },
    builds: {
      type: 'array',
      items: {
        type: 'object',
        required: ['checkout_id', 'id', 'origin'],
        additionalProperties: false,
        properties: {
          checkout_id: id,
          id,
          origin,
          comment: TEXT,
          start_time: time,
          duration: { type: 'number' },
          architecture: { type: 'string', pattern: '^[a-z0-9_]*$' },
          compiler: TEXT,
          config_name: TEXT,
          status,
          misc,
        },
      },
    },
    tests: {
      type: 'array',
      items: {
        type: 'object',
        required: ['build_id', 'id', 'origin'],
        additionalProperties: false,
        properties: {
          build_id: id,
          id,
          origin,
          environment: {
            type: 'object',
            additionalProperties: false,
            properties: { comment: TEXT, misc },
          },
          path: { type: 'string', pattern: '^([a-zA-Z0-9_-]+(\\.[a-zA-Z0-9_-]+)*)?$' },
          comment: TEXT,
          log_excerpt: { type: 'string', pattern: '^[^\\u0000]*$', maxLength: 16384 },
          status,
          number: {
            type: 'object',
            required: ['value'],
            additionalProperties: false,
            properties: { value: { type: 'number' }, unit: TEXT, prefix: { enum: ['metric', 'binary'] } },
          },
          start_time: time,
          duration: { type: 'number' },
          misc,
        },
      },
    },
    issues: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'version', 'origin'],
        additionalProperties: false,
        properties: {
          id,
          version: { type: 'integer', minimum: 0 },
          origin,
          report_subject: TEXT,
          culprit: {
            type: 'object',
            additionalProperties: false,
            properties: { code: { type: 'boolean' }, tool: { type: 'boolean' }, harness: { type: 'boolean' } },
          },
          comment: TEXT,
          misc,
        },
      },
    },
    incidents: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'origin', 'issue_id', 'issue_version'],
        additionalProperties: false,
        properties: {
          id,
          origin,
          issue_id: id,
          issue_version: { type: 'integer', minimum: 0 },
          build_id: id,
          test_id: id,
          present: { type: 'boolean' },
          comment: TEXT,
          misc,
        },
      },
    },
  },
} as const;
