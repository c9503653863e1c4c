/**
 * A vega-lite spec to SVG, in Node, without a browser or native code: compiled by vega-lite,
 * run by a headless vega View (renderer "none") and serialized by its SVG renderer. Each mark
 * with a tooltip gets its text as an SVG <title> too, so a browser shows it on hover in the
 * static SVG (vega writes it only as aria-label).
 */
import * as vega from 'vega';
import { compile } from 'vega-lite';
import type { Spec } from './specs.js';

export async function renderSvg(spec: Spec): Promise<string> {
  const vg = compile(spec as never).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    return withHoverTitles(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/** A <title> child, from its aria-label, for every mark element vega wrote as self-closing. */
export function withHoverTitles(svg: string): string {
  return svg.replace(/<(path|rect|circle|line)( aria-label="([^"]*)" role="graphics-symbol"[^>]*?)\/>/g, '<$1$2><title>$3</title></$1>');
}
