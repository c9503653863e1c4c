/**
 * The stream checkpoint's waiting records in parts: one value held them all, and a backlog that
 * left many records waiting made that value larger than MariaDB's max_allowed_packet, so the
 * checkpoint could not be written. Each part now stays far below it (analyzer/store.ts
 * WAITING_PART_BYTES), in as many rows as it takes.
 */
import { migration } from '../migration.js';

export const m012 = migration(12, 'stream checkpoint waiting records in parts', 'analyzer', [
  `CREATE TABLE IF NOT EXISTS stream_waiting (
    stream VARCHAR(128) NOT NULL COMMENT 'the Redis records stream (stream_checkpoints.stream)',
    part INT UNSIGNED NOT NULL COMMENT 'the order of the parts',
    records INT UNSIGNED NOT NULL COMMENT 'records in this part',
    body LONGBLOB NOT NULL COMMENT 'internal: records waiting for their other end, a line each (server id, since, row line)',
    PRIMARY KEY (stream, part)
  ) ENGINE=InnoDB COMMENT='the records each stream checkpoint holds waiting (written with it)'`,
  // what a checkpoint held in one value moves to its first part (the server copies it: no packet limit)
  `INSERT IGNORE INTO stream_waiting (stream, part, records, body)
    SELECT stream, 0, waiting_records, waiting FROM stream_checkpoints WHERE waiting IS NOT NULL AND LENGTH(waiting) > 0`,
  `UPDATE stream_checkpoints SET waiting = NULL WHERE waiting IS NOT NULL`,
  `ALTER TABLE stream_checkpoints MODIFY waiting LONGBLOB NULL COMMENT 'unused since migration 12 (stream_waiting holds the waiting records)'`,
]);
