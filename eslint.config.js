// Lint rules for the rig: typescript-eslint's recommended set, plus limits that keep functions
// small enough to read (the anchors: syzkaller's function-length limit, zx's 5-line median).
// Formatting itself is prettier's job (.prettierrc.json); max-len catches what prettier cannot
// wrap (long strings and comments).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Each folder, and the folders it may not import (the later layers). */
const LAYERS = [
  ['core', ['vm', 'images', 'kernel', 'scenarios', 'runner', 'report', 'scripts']],
  ['vm', ['images', 'kernel', 'scenarios', 'runner', 'report', 'scripts']],
  ['images', ['vm', 'kernel', 'scenarios', 'runner', 'report', 'scripts']],
  ['kernel', ['vm', 'images', 'scenarios', 'runner', 'report', 'scripts']],
  ['scenarios', ['runner', 'report', 'scripts']],
  ['report', ['runner', 'scripts']],
  ['runner', ['scripts']],
];

/** Host processes start in core/exec.ts only (run, tryRun, runSync, spawnStreaming, startProcess). */
const SPAWN_MESSAGE = 'start host processes through core/exec.ts (run, tryRun, runSync, spawnStreaming, startProcess)';
const SPAWNERS = ['node:child_process', 'child_process', 'execa'].map((name) => ({ name, message: SPAWN_MESSAGE }));

/** Scenarios see a guest through vm/guest-handle.ts (which a fake can implement), never QEMU's Guest class. */
const GUEST_CLASS = [
  {
    group: ['../vm/guest.js', '../../vm/guest.js'],
    message:
      'scenarios use the GuestHandle of vm/guest-handle.ts, not the Guest class (a fake must be able to stand in)',
  },
];

/** The back arrows a folder may not import, as no-restricted-imports patterns. */
const backArrows = (dir, forbidden) => [
  {
    group: forbidden.flatMap((f) => [`../${f}/*`, `../../${f}/*`]),
    message: `${dir}/ may not import ${forbidden.join(', ')}/: the layers import one way`,
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tap/**', 'out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
      complexity: ['error', { max: 15 }],
      'max-depth': ['error', 4],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The layers import one way (README "Where things live"): profile -> kernel artifacts -> images
  // -> machine spec -> guest -> scenario results -> bundle -> report. A back arrow fails the lint.
  // And no process is started but through core/exec.ts.
  ...LAYERS.map(([dir, forbidden]) => ({
    files: [`${dir}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: SPAWNERS, patterns: [...backArrows(dir, forbidden), ...(dir === 'scenarios' ? GUEST_CLASS : [])] },
      ],
    },
  })),
  { files: ['scripts/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: SPAWNERS }] } },
  {
    files: ['core/exec.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: backArrows('core', LAYERS[0][1]) }] },
  },
  {
    // Tests are lists of cases: a long test file body is a table, not a function to split.
    files: ['tests/**/*.ts'],
    rules: { 'max-lines-per-function': 'off', complexity: 'off' },
  },
);
