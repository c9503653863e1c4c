/** Tries to load a BPF object and prints the error as JSON: run as an unprivileged user. */
import { BpfObject, BpfError } from '../../native/addon.js';
import { testObject } from './fixtures.js';

try {
  BpfObject.open(testObject('hook_kinds')).close();
  console.log(JSON.stringify({ loaded: true }));
} catch (e) {
  const err = e as BpfError;
  console.log(JSON.stringify({ loaded: false, name: err.name, code: err.code, message: err.message }));
}
