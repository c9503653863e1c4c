/**
 * Provisioning as BullMQ jobs on latscope-provision: `provision` makes one server run an
 * observer (check, install the bundle, configure, start under the supervisor, wait for its first
 * heartbeat), and the repeatable `health` job provisions again a running server whose observer
 * went silent (the supervisor on the server restarts a dead observer by itself; this is for a
 * supervisor or server that is gone). A refused host key, a failed login or a server that cannot
 * run an observer does not get better by trying again: those fail at once, an unreachable
 * server is retried with backoff.
 */
import { Queue, QueueEvents, UnrecoverableError, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Deployment, Server } from '../conf/deployment.js';
import { KEEP_JOBS, RETRY, type FeatureJobs } from '../lib/jobs.js';
import { QUEUES, QUEUE_PREFIX } from '../protocol/redis.js';
import { buildBundle, type Bundle } from './bundle.js';
import { connectServer, ProvisionError, RemoteServer } from './remote.js';
import { SshError } from './ssh.js';
import { latestHeartbeats, waitForHeartbeat, type ServerStates, type ServerStatus } from './state.js';
import { entryVerifier } from './observer-users.js';
import type { EntryVerifier } from '../protocol/entry-mac.js';

export interface ProvisionOptions {
  acceptNewHostKeys: boolean;
  /** Provisioning jobs run at once per worker process. */
  concurrency: number;
  /** Milliseconds to wait for a new observer's first heartbeat. */
  healthTimeoutMs: number;
  /** Milliseconds without a heartbeat after which the health job provisions a server again. */
  silentMs: number;
}

/** How long `manager` waits for all servers to be provisioned (retries included). */
const PROVISION_DEADLINE_MS = 180_000;
const JOB_OPTS = { ...RETRY, removeOnComplete: 1000, removeOnFail: 1000 };

export class Provisioner {
  private bundle?: Bundle;
  /** With observer users, only heartbeats signed by their node count. */
  private readonly verify: EntryVerifier | undefined;

  constructor(
    private readonly d: Deployment,
    private readonly redis: Redis,
    private readonly states: ServerStates,
    private readonly connection: ConnectionOptions,
    /** Fingerprint of the conf: a worker only provisions for the conf it was started with. */
    private readonly confId: string,
    private readonly o: ProvisionOptions,
  ) {
    this.verify = entryVerifier(d);
  }

  /** The provision and health jobs, for the manager's queue wiring. */
  jobs(): FeatureJobs {
    return {
      queue: QUEUES.provision,
      concurrency: this.o.concurrency,
      run: (job: Job) => (job.name === 'health' ? this.health() : this.provisionJob(job)),
      schedules: [{ id: 'health', everyMs: 5000, name: 'health', opts: KEEP_JOBS }],
    };
  }

  /** Queues one provisioning job per server and waits for all of them; returns the final states. */
  async provisionAll(): Promise<Map<string, ServerStatus>> {
    const q = new Queue(QUEUES.provision, { connection: this.connection, prefix: QUEUE_PREFIX });
    const events = new QueueEvents(QUEUES.provision, { connection: this.connection, prefix: QUEUE_PREFIX });
    try {
      await events.waitUntilReady();
      events.setMaxListeners(this.d.servers.length + 10); // one waiter per server
      const run = Date.now();
      for (const s of this.d.servers) await this.states.set(s.hostname, 'queued');
      const jobs = await q.addBulk(this.d.servers.map((s) => ({ name: 'provision', data: { server: s.hostname, conf: this.confId }, opts: { jobId: `provision-${s.hostname}-${run}`, ...JOB_OPTS } })));
      // bounded: a job no worker takes (all of them busy or gone) must not hold the operator forever
      await Promise.all(jobs.map((j) => Promise.race([j.waitUntilFinished(events).catch(() => {}), new Promise((r) => setTimeout(r, PROVISION_DEADLINE_MS).unref())])));
      const states = await this.states.all();
      for (const s of this.d.servers) {
        const st = states.get(s.hostname);
        if (st && !['running', 'failed'].includes(st.state))
          states.set(s.hostname, await this.states.set(s.hostname, 'failed', `provisioning did not finish within ${PROVISION_DEADLINE_MS / 1000} s (last state ${st.state})`));
      }
      return states;
    } finally {
      await events.close();
      await q.close();
    }
  }

  private server(name: string): Server {
    const s = this.d.servers.find((x) => x.hostname === name);
    if (!s) throw new UnrecoverableError(`${name}: not in connect_info.yaml`);
    return s;
  }

  private provisionJob(job: Job): Promise<string> {
    if (job.data.conf !== this.confId)
      // retried: another worker, started with the same conf as the manager that queued it, takes it
      throw new Error(`${job.data.server}: this worker's conf (${this.d.dir}) differs from the one the job was queued with: run every manager worker with the same conf folder`);
    return this.provision(job.data.server as string);
  }

  /** Provisions one server: check, install, configure, start, wait for its first heartbeat. */
  async provision(name: string): Promise<string> {
    const s = this.server(name);
    this.bundle ??= buildBundle();
    await this.states.set(name, 'connecting', `${s.username}@${s.sshHost}:${s.port}${s.jumps.length ? ` via ${s.jumps.map((j) => `${j.username}@${j.host}:${j.port}`).join(', ')}` : ''}`);
    let remote: RemoteServer | undefined;
    try {
      remote = new RemoteServer(await connectServer(this.d, s, this.o.acceptNewHostKeys), s);
      await this.states.set(name, 'installing');
      await remote.check(this.bundle);
      const sent = await remote.install(this.bundle);
      await remote.configure(this.d);
      await this.states.set(name, 'starting', sent ? `bundle ${this.bundle.hash} uploaded, ${(sent / 1e6).toFixed(1)} MB` : `bundle ${this.bundle.hash} already there`);
      const since = Date.now();
      const pid = await remote.start();
      const hb = await waitForHeartbeat(this.redis, name, since, this.o.healthTimeoutMs, this.verify);
      if (!hb) {
        const st = await remote.state().catch(() => undefined);
        throw new ProvisionError(name, 'NO_HEARTBEAT', `the observer sent no heartbeat within ${this.o.healthTimeoutMs} ms (${st ? `restarts ${st.restarts}, last ${st.lastExit ?? 'none'}` : 'its supervisor is gone'}); see ${s.installDir}/observer.log on the server`);
      }
      await this.states.set(name, 'running', `observer pid ${hb.pid}`, pid);
      return 'running';
    } catch (e) {
      await this.states.set(name, 'failed', (e as Error).message.replace(new RegExp(`^${name}: `), ''));
      if (e instanceof ProvisionError || (e instanceof SshError && e.code !== 'UNREACHABLE')) throw new UnrecoverableError((e as Error).message);
      throw e;
    } finally {
      remote?.close();
    }
  }

  /** The health job: a running server whose observer went silent is provisioned again. */
  private async health(): Promise<string[]> {
    const states = await this.states.all();
    const beats = await latestHeartbeats(this.redis, Date.now() - this.o.silentMs, this.verify);
    const silent = [...states].filter(([n, st]) => st.state === 'running' && Date.now() - st.atMs > this.o.silentMs && !beats.has(n)).map(([n]) => n);
    if (!silent.length) return [];
    const q = new Queue(QUEUES.provision, { connection: this.connection, prefix: QUEUE_PREFIX });
    try {
      for (const n of silent) {
        await this.states.set(n, 'queued', `no heartbeat for ${this.o.silentMs / 1000} s: provisioning again`);
        await q.add('provision', { server: n, conf: this.confId }, { jobId: `provision-${n}-health-${Date.now()}`, ...JOB_OPTS });
      }
    } finally {
      await q.close();
    }
    return silent;
  }
}
