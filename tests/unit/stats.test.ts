/** core/stats.ts: the one median of `bench boot`, `bench build` and `bench run`. */
import t from 'tap';
import { median } from '../../core/stats.js';

t.equal(median([3]), 3);
t.equal(median([5, 1, 3]), 3, 'odd count: the middle one, whatever the order');
t.equal(median([4, 1, 3, 2]), 2.5, 'even count: the mean of the two middle ones (bench run took the lower, 2)');
t.equal(median([10, 10.4]), 10.2);
t.throws(() => median([]), RangeError, 'no values: no median');
