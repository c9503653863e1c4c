/**
 * The stream stage's checkpoints (analyzer/stream/stage.ts): per records stream, the last entry
 * whose records are in the results and the records still waiting for their other end, written in
 * the same transaction as the results they go with, so a worker that dies is replayed from here
 * and nothing is counted twice.
 */
import { migration } from '../migration.js';

export const m007 = migration(7, 'stream analysis checkpoints', 'analyzer', [
  `CREATE TABLE IF NOT EXISTS stream_checkpoints (
    stream VARCHAR(128) NOT NULL COMMENT 'the Redis records stream (one per shard)',
    last_id VARCHAR(40) NOT NULL COMMENT 'the last stream entry id whose records are in the results',
    waiting LONGBLOB NULL COMMENT 'internal: the records still waiting for their other end (server id, since, row line)',
    waiting_records INT UNSIGNED NOT NULL DEFAULT 0,
    records BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'records analyzed from this stream in all',
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (stream)
  ) ENGINE=InnoDB COMMENT='where the stream analysis of each records stream stands (committed with its results)'`,
]);
