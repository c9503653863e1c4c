/**
 * Holds a BPF object until a signal, for the exit-cleanup test. Usage: signal-holder.js MODE,
 * MODE one of: none (no handler of its own), once (a `once` SIGTERM handler registered before
 * the object is opened, that exits 0 after a short cleanup of its own). Prints {"ready":true,
 * "progId"} when loaded.
 */
import { BpfObject } from '../../native/addon.js';
import { testObject } from './fixtures.js';

if (process.argv[2] === 'once')
  process.once('SIGTERM', () => {
    setTimeout(() => {
      console.log(JSON.stringify({ handled: true }));
      process.exit(0);
    }, 200);
  });
const obj = BpfObject.open(testObject('hook_kinds'));
console.log(JSON.stringify({ ready: true, progId: obj.programStats('xdp_count').id }));
setInterval(() => {}, 1000);
