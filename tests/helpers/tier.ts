/**
 * What `npm test` keeps of the slow cases, and what only a full run takes: `DMEMFS_RIG_TEST_FULL=1
 * npm test` runs every case; without it, a case beyond the one representative of its kind is a
 * skip that says where it runs (the nightly's legs, or the full run), so the summary lists it.
 */
export const FULL = process.env.DMEMFS_RIG_TEST_FULL === '1';

/** `skip:` for a case only the full run takes; `where` says what covers it otherwise. */
export function fullOnly(where: string): string | false {
  return FULL ? false : `in the full run only (DMEMFS_RIG_TEST_FULL=1 npm test): ${where}`;
}
