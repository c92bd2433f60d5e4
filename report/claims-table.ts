/**
 * The claims the scenarios declare (ScenarioDefinition.claims), as Markdown: each measurement with
 * its unit, what it is held to and why. docs/scenarios.md holds it (`npm run rig -- docs`).
 */
import { describeExpectation } from '../core/results.js';
import { SCENARIOS } from '../scenarios/catalog.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();

export function claimsMarkdown(): string {
  const rows = ['| scenario | measurement | unit | held to | why |', '|---|---|---|---|---|'];
  for (const s of SCENARIOS)
    for (const [name, c] of Object.entries(s.claims ?? {})) {
      if (!c) continue;
      const held = c.expect ? cell(describeExpectation(c.expect)) : 'recorded';
      rows.push(`| \`${s.id}\` | \`${name}\` | ${c.unit ?? ''} | ${held} | ${cell(c.why ?? '')} |`);
    }
  return rows.join('\n');
}
