/**
 * Holds attachments until killed, for the SIGKILL test: XDP and tc as kernel links, plus a
 * legacy (netlink) XDP program and tc filter, in the named test host's namespace.
 * Usage: attach-holder.js NETNS IFACE. Prints {"ready":true, progIds} when attached.
 */
import { BpfObject, inNetns } from '../../native/addon.js';
import { testObject } from './fixtures.js';

const [netns, iface] = process.argv.slice(2) as [string, string];
const obj = BpfObject.open(testObject('hook_kinds'));
inNetns(netns, () => {
  obj.attachXdp('xdp_count', iface, 'generic', { legacy: true });
  obj.attachTc('tc_ingress_count', iface, 'ingress', { legacy: true });
  obj.attachTc('tc_egress_count', iface, 'egress');
});
const progIds = Object.fromEntries(['xdp_count', 'tc_ingress_count', 'tc_egress_count'].map((p) => [p, obj.programStats(p).id]));
console.log(JSON.stringify({ ready: true, progIds }));
setInterval(() => {}, 1000);
