/**
 * The join key of the two ends of a path (packets.flow_id, written by the observers), and every
 * address of every server (connect_info address and other_address), so the analyzer can tell
 * which server a flow's end is.
 */
import { migration } from '../migration.js';

export const m003 = migration(3, 'flow ids, server addresses', 'ingest', [
    `ALTER TABLE packets ADD COLUMN IF NOT EXISTS flow_id BIGINT UNSIGNED NOT NULL DEFAULT 0
       COMMENT '52-bit hash of the flow in the direction of the data (protocol/records.ts flowId): the same on sender and receiver' AFTER dport`,
    `ALTER TABLE packets MODIFY dev_ns BIGINT UNSIGNED NULL COMMENT 'at the first device it crossed (every crossing is in hops)'`,
    `CREATE TABLE IF NOT EXISTS server_addresses (
      address VARCHAR(45) NOT NULL COMMENT 'an address of the server: connect_info address or one of its other_address',
      server_id INT UNSIGNED NOT NULL,
      PRIMARY KEY (address)
    ) ENGINE=InnoDB COMMENT='which server an address belongs to (the analyzer names flow ends by it)'`,
]);
