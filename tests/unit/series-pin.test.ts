/** `series pin`: a revision's patch ids written as a definition the rig then knows by name. */
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EDITS } from '../../kernel/edits.js';
import { pinSeries } from '../../kernel/series-pin.js';
import { parseSeries, readMbox, seriesDefinition, verifySeries, type SeriesDefinition } from '../../kernel/series.js';
import { editedMbox, readFixture, REBASED_MBOX, writeTemp } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'rig-pin-'));
const mbox = writeTemp('fixed.mbox', editedMbox(readFixture(REBASED_MBOX()), EDITS['get_dmem_pfn-pdnode']));

t.test('a changed series pinned: its own ids, and it verifies against them', async (t) => {
  const { path, def } = await pinSeries(mbox, 'rfc-v2-fixed-35', dir);
  t.equal(path, join(dir, 'rfc-v2-fixed-35.json'));
  const onDisk = JSON.parse(readFileSync(path, 'utf8')) as SeriesDefinition;
  t.same(onDisk, def);
  t.equal(def.total, 37);
  t.equal(def.subjectPrefix, 'RFC V2 5.10.223');
  t.match(def.description, /Nearest pinned series then: rfc-v2-on-debian-5\.10\.223/);
  const pinned = seriesDefinition('rfc-v2-on-debian-5.10.223');
  const differ = def.patches.filter((p, i) => p.patchId !== pinned.patches[i]!.patchId).map((p) => p.number);
  t.same(differ, [35], 'only 35/37 has a new patch id');
  t.equal(verifySeries(await parseSeries(readMbox(mbox)), def).ok, true, 'the mbox is intact against its pin');
});

t.test('a name taken, or not a name: refused, nothing written', async (t) => {
  await t.rejects(pinSeries(mbox, 'rfc-v2-fixed-35', dir), { kind: 'exists', message: /already exists/ });
  await t.rejects(pinSeries(mbox, '../evil', dir), { kind: 'bad-name', message: /not valid/ });
  t.same(readdirSync(dir), ['rfc-v2-fixed-35.json'], 'no other file, no temporary left');
  t.notOk(existsSync(join(dir, '..', 'evil.json')));
});
