/**
 * A log file that cannot fill a disk: past `maxBytes` it is renamed to FILE.1 (FILE.1 to
 * FILE.2, …), the oldest beyond `keep` is removed, and writing goes on in a new FILE. At most
 * (keep + 1) × maxBytes on disk, whatever a process prints.
 */
import { closeSync, existsSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

export class RotatingFile {
  private fd: number;
  private size: number;
  /** How many times the file was rotated. */
  rotations = 0;

  constructor(
    readonly path: string,
    readonly maxBytes = 10 << 20,
    readonly keep = 3,
  ) {
    this.fd = openSync(path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(data: string | Buffer): void {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.size > 0 && this.size + b.length > this.maxBytes) this.rotate();
    // a single write larger than the bound is cut to it
    const part = b.length > this.maxBytes ? b.subarray(b.length - this.maxBytes) : b;
    writeSync(this.fd, part);
    this.size += part.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    rmSync(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    if (this.keep > 0) renameSync(this.path, `${this.path}.1`);
    else rmSync(this.path, { force: true });
    this.fd = openSync(this.path, 'a', 0o640);
    this.size = 0;
    this.rotations++;
  }

  close(): void {
    closeSync(this.fd);
  }
}
