/**
 * Writes every graph as an SVG file and the self-contained report.html into a folder; renders
 * from prepared view models only (analyzer/report.ts loads them).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Report, Series } from '../analyzer/report.js';
import { allSpecs } from './specs.js';
import { renderSvg } from './render.js';
import { reportHtml, type Collection, type GraphFile } from './html.js';

/** How to read each graph (also the README's). */
export const READING: Record<string, { title: string; reading: string }> = {
  breakdown: { title: 'Where the time goes between servers', reading: 'Each pair has two bars: the segments\' medians, and their means over the slowest 1% of paths. A segment that is much longer in the second bar is where the tail comes from. The black mark on the wire is its clock bound: a wire delay is only known to within it.' },
  tail: { title: 'Who holds the tail', reading: 'Each segment\'s share of the tail\'s mean delay: the shares add up to 100%. The widest one holds the tail.' },
  matrix: { title: 'Server to server', reading: 'Read a row from left to right: the p99 one-way delay from that sender to each receiver. A hot column is a slow receiver (or the link into it), a hot row a slow sender; grey means no sampled traffic.' },
  'one-way-over-time': { title: 'One-way delay over time', reading: 'The median per window with its clock bound as a band, the p99 dashed. A band wider than the line\'s movement means the clocks, not the network, limit what can be said.' },
  'layer-cdf': { title: 'Delay distribution of each layer', reading: 'One panel per segment: how many packets took at most that long. A curve far to the right, or a long flat tail, is the layer to look at.' },
  'kernel-heatmap': { title: 'Every segment, from the kernel', reading: 'The in-kernel histograms count every segment, not only the samples: time across, delay bucket up (each one twice the one below), colour the number of segments. A band that rises is a layer slowing down.' },
  'mesh-matrix': { title: 'Probe mesh: one-way delay between servers', reading: 'From the probe mesh alone, with no application traffic: read a row from left to right, the median one-way delay from that server to each other. A hot cell whose mirror is cool is one direction of a path slowed (a queue, a shaped or congested link); hot both ways is distance or load on both.' },
  'mesh-over-time': { title: 'Probe mesh over time', reading: 'Each mesh round\'s one-way delay for the slowest directions, with the clock bound as a band: a step up is when a path slowed.' },
  flows: { title: 'Flows', reading: 'Throughput and the share of retransmitted samples of the slowest flows, per window: a throughput drop with retransmissions is loss, without them a slow reader or a full window.' },
};

export async function writeGraphs(r: Report, s: Series, outDir: string, c: Collection = {}): Promise<{ files: string[]; html: string }> {
  mkdirSync(outDir, { recursive: true });
  const graphs: GraphFile[] = [];
  const files: string[] = [];
  for (const [name, spec] of Object.entries(allSpecs(r, s))) {
    const svg = await renderSvg(spec);
    const file = join(outDir, `${name}.svg`);
    writeFileSync(file, svg);
    files.push(file);
    graphs.push({ name, svg, ...READING[name]! });
  }
  const html = join(outDir, 'report.html');
  writeFileSync(html, reportHtml(r, graphs, c));
  return { files, html };
}
