/** Shard 1 of 2 of the scenarios, for real: see tests/helpers/scenario-file.ts. */
import { scenarioFile } from '../helpers/scenario-file.js';

await scenarioFile(1);
