/**
 * A vega-lite spec to SVG, in Node, without a browser or native code: compiled by vega-lite,
 * run by a headless vega View (renderer "none") and serialized by its SVG renderer.
 */
import * as vega from 'vega';
import { compile } from 'vega-lite';
import type { Spec } from './specs.js';

export async function renderSvg(spec: Spec): Promise<string> {
  const vg = compile(spec as never).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
