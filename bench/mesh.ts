/**
 * bench/mesh: clocks solved over a probe mesh against the star (the manager probing every server,
 * one way), side by side on the same simulated rounds (timesync/simulate.ts): p99 error against
 * the truth, the share of errors within their stated bound, and the time of one solve for 1,000
 * servers (issue 26). The model's figures are printed with the results: a stamping bias common to
 * every probe, each pair's path asymmetry, the noise left after a round's filter.
 *
 * Not built yet: the same comparison on the testbed's hosts (the observers' own probes).
 *
 *   node dist/bench/mesh.js [--servers 1000] [--rounds 5] [--bias-ns 300] [--asymmetry-ns 40]
 */
import { numberArg, median, quantile } from './common.js';
import { solveMesh } from '../timesync/mesh.js';
import { simulateRound, type FleetModel } from '../timesync/simulate.js';

const servers = numberArg('servers', 1000);
const rounds = numberArg('rounds', 5);
const model: Omit<FleetModel, 'seed'> = {
  servers,
  biasNs: numberArg('bias-ns', 300),
  asymmetryNs: numberArg('asymmetry-ns', 40),
  noiseNs: numberArg('noise-ns', 20),
  oneWayNs: 20_000,
  anchors: numberArg('anchors', 4),
};

const meshErr: number[] = [], starErr: number[] = [], solveMs: number[] = [];
let covered = 0, total = 0, edges = 0, rejected = 0;
for (let r = 0; r < rounds; r++) {
  const round = simulateRound({ ...model, seed: 1000 + r });
  edges = round.mesh.length;
  const t0 = process.hrtime.bigint();
  const mesh = solveMesh(round.mesh);
  solveMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  rejected += mesh.rejected.length;
  const star = solveMesh(round.star);
  for (const [n, truth] of round.truth) {
    const m = mesh.clocks.get(n)!;
    const e = Math.abs(m.offsetNs - truth);
    meshErr.push(e);
    starErr.push(Math.abs(star.clocks.get(n)!.offsetNs - truth));
    total++;
    if (e <= m.boundNs) covered++;
  }
}
const p99 = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.99);
const result = {
  bench: 'mesh',
  simulated: true,
  servers,
  rounds,
  model,
  edgesPerRound: edges,
  starP99ErrorNs: +p99(starErr).toFixed(1),
  meshP99ErrorNs: +p99(meshErr).toFixed(1),
  boundCoverage: covered / total,
  [`solve${servers}Ms`]: +median(solveMs).toFixed(1),
  rejectedEdges: rejected,
  testbed: 'not built yet',
};
console.log(JSON.stringify(result));
console.log(
  `mesh (simulated, ${servers} servers, ${rounds} rounds, ${edges} edges a round; bias ${model.biasNs} ns, asymmetry ${model.asymmetryNs} ns, noise ${model.noiseNs} ns): ` +
    `p99 error star ${result.starP99ErrorNs} ns, mesh ${result.meshP99ErrorNs} ns (x${(result.starP99ErrorNs / result.meshP99ErrorNs).toFixed(1)}); bound coverage ${(result.boundCoverage * 100).toFixed(2)}%; ` +
    `solve ${median(solveMs).toFixed(1)} ms (median); edges set aside ${rejected}; the testbed comparison is not built yet`,
);
