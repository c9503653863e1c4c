/** `latscope cleanup`: remove BPF attachments that dead latscope processes left in this kernel. */
import { Command } from 'commander';
import { sweepLeftovers } from '../native/leftovers.js';

export function cleanupCommand(): Command {
  return new Command('cleanup')
    .description('remove netlink XDP programs and tc filters left by latscope processes that died (kernel links go with their process)')
    .action(() => {
      const removed = sweepLeftovers();
      console.log(removed.length ? `removed: ${removed.join(', ')}` : 'nothing left behind');
    });
}
