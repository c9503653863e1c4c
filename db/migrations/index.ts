/** Every migration, in order. A feature that needs a table adds the next number here. */
import type { Migration } from '../migration.js';
import { m001 } from './001_clock_offsets.js';
import { m002 } from './002_collection.js';
import { m003 } from './003_flow_ids_addresses.js';
import { m004 } from './004_analysis.js';
import { m005 } from './005_retention.js';
import { m006 } from './006_host.js';
import { m007 } from './007_stream.js';
import { m008 } from './008_spike_time.js';
import { m009 } from './009_mesh.js';
import { m010 } from './010_mesh_edge_time.js';
import { m011 } from './011_mesh_settled.js';
import { m012 } from './012_stream_waiting_parts.js';

export const MIGRATIONS: Migration[] = [m001, m002, m003, m004, m005, m006, m007, m008, m009, m010, m011, m012];
