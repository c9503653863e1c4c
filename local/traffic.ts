/**
 * Known traffic for the demo and the kernel tests, run inside a test host (`ip netns exec NS node traffic.js MODE ...`):
 *   udp ADDR PORT COUNT             send COUNT small datagrams
 *   tcp-server PORT CONNS           echo every byte back; exit after CONNS connections closed
 *   tcp-client ADDR PORT MESSAGES   send MESSAGES 100-byte messages, each after the last echo
 *   tcp-sink PORT CONNS             read and count every byte; exit after CONNS connections closed
 *   tcp-send ADDR PORT BYTES CHUNK [PAUSE_MS]
 *                                   send BYTES bytes in writes of CHUNK bytes (PAUSE_MS apart), then close
 *   tcp-pingpong ADDR PORT SECONDS [PAUSE_MS]
 *                                   100-byte messages, each after the last echo (and PAUSE_MS), for SECONDS
 *   tcp-serve-for PORT SECONDS      echo every byte back to any number of clients, for SECONDS
 *   tcp-flood ADDR PORT SECONDS     send as fast as the path takes, for SECONDS
 *   tcp-from ADDR PORT LPORT,...    a connection from each local port at once, 1000 bytes on each, then close
 * Prints one JSON line with what it did.
 */
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const deadline = setTimeout(() => {
  console.error(`traffic ${mode}: timed out`);
  process.exit(3);
}, mode === 'tcp-serve-for' || mode === 'tcp-pingpong' || mode === 'tcp-flood' ? (Number(process.argv[mode === 'tcp-serve-for' ? 4 : 5]) + 30) * 1000 : 30_000);

/** Counts every byte (and echoes it back if `echo`); exits after `conns` connections closed. */
function serve(port: number, conns: number, echo: boolean): void {
  let closed = 0;
  let bytes = 0;
  const server = net.createServer((c) => {
    c.on('data', (d) => {
      bytes += d.length;
      if (echo) c.write(d);
    });
    c.on('close', () => {
      if (++closed === conns) {
        server.close();
        console.log(JSON.stringify({ connections: closed, bytes }));
      }
    });
  });
  server.listen(port, () => console.log(JSON.stringify({ listening: port })));
}

async function main(): Promise<void> {
  if (mode === 'udp') {
    const [addr, port, count] = [args[0]!, Number(args[1]), Number(args[2])];
    const s = dgram.createSocket('udp4');
    for (let i = 0; i < count; i++) await new Promise<void>((r) => s.send(Buffer.alloc(32, i), port, addr, () => r()));
    s.close();
    console.log(JSON.stringify({ sent: count }));
  } else if (mode === 'tcp-from') {
    const [addr, port, locals] = [args[0]!, Number(args[1]), args[2]!.split(',').map(Number)];
    const conns = await Promise.all(
      locals.map(async (localPort) => {
        const c = net.connect({ host: addr, port, localPort });
        await new Promise<void>((r, j) => c.once('connect', r).once('error', j));
        await new Promise<void>((r) => c.write(Buffer.alloc(1000), () => r()));
        return c;
      }),
    );
    await new Promise((r) => setTimeout(r, 200)); // every flow open at once
    await Promise.all(conns.map((c) => new Promise<void>((r) => c.end(r))));
    console.log(JSON.stringify({ connections: conns.length }));
  } else if (mode === 'tcp-server' || mode === 'tcp-sink') {
    serve(Number(args[0]), Number(args[1]), mode === 'tcp-server');
  } else if (mode === 'tcp-client') {
    const [addr, port, messages] = [args[0]!, Number(args[1]), Number(args[2])];
    const c = net.connect({ host: addr, port });
    await new Promise<void>((r, j) => c.once('connect', r).once('error', j));
    c.setNoDelay(true);
    let got = 0;
    for (let i = 0; i < messages; i++) {
      c.write(Buffer.alloc(100, i));
      const want = (i + 1) * 100;
      while (got < want) got += ((await new Promise<Buffer>((r) => c.once('data', r))) as Buffer).length;
    }
    c.end();
    await new Promise((r) => c.once('close', r));
    console.log(JSON.stringify({ messages, echoed: got }));
  } else if (mode === 'tcp-send') {
    const [addr, port, total, chunk, pauseMs] = [args[0]!, Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4] ?? 0)];
    const c = net.connect({ host: addr, port });
    await new Promise<void>((r, j) => c.once('connect', r).once('error', j));
    const block = Buffer.alloc(chunk, 0x5a);
    for (let sent = 0; sent < total; sent += chunk) {
      const part = Math.min(chunk, total - sent);
      if (!c.write(part === chunk ? block : block.subarray(0, part))) await new Promise((r) => c.once('drain', r));
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    const sport = c.localPort;
    c.end();
    await new Promise((r) => c.once('close', r));
    console.log(JSON.stringify({ sent: total, sport }));
  } else if (mode === 'tcp-pingpong') {
    const [addr, port, seconds, pauseMs] = [args[0]!, Number(args[1]), Number(args[2]), Number(args[3] ?? 0)];
    const c = net.connect({ host: addr, port });
    await new Promise<void>((r, j) => c.once('connect', r).once('error', j));
    c.setNoDelay(true);
    const until = Date.now() + seconds * 1000;
    let got = 0, messages = 0;
    while (Date.now() < until) {
      c.write(Buffer.alloc(100, messages));
      const want = ++messages * 100;
      while (got < want) got += ((await new Promise<Buffer>((r) => c.once('data', r))) as Buffer).length;
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    const sport = c.localPort;
    c.end();
    await new Promise((r) => c.once('close', r));
    console.log(JSON.stringify({ messages, echoed: got, sport }));
  } else if (mode === 'tcp-serve-for') {
    const [port, seconds] = [Number(args[0]), Number(args[1])];
    let bytes = 0;
    const server = net.createServer((c) => {
      c.setNoDelay(true);
      c.on('data', (d) => {
        bytes += d.length;
        c.write(d);
      });
      c.on('error', () => {});
    });
    server.listen(port, () => console.log(JSON.stringify({ listening: port })));
    await new Promise((r) => setTimeout(r, seconds * 1000));
    server.close();
    console.log(JSON.stringify({ bytes }));
    process.exit(0);
  } else if (mode === 'tcp-flood') {
    const [addr, port, seconds] = [args[0]!, Number(args[1]), Number(args[2])];
    const c = net.connect({ host: addr, port });
    await new Promise<void>((r, j) => c.once('connect', r).once('error', j));
    const block = Buffer.alloc(65536, 0x5a);
    const until = Date.now() + seconds * 1000;
    let sent = 0;
    while (Date.now() < until) {
      if (!c.write(block)) await new Promise((r) => c.once('drain', r));
      sent += block.length;
    }
    c.destroy();
    console.log(JSON.stringify({ sent }));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().then(
  () => clearTimeout(deadline),
  (e) => {
    console.error(`traffic ${mode}: ${(e as Error).message}`);
    process.exit(2);
  },
);
