/** One schema change: numbered, named, owned by the feature whose tables it makes. */
export interface Migration {
  version: number;
  name: string;
  /** The feature that owns these tables. */
  owner: string;
  /** Statements, each idempotent (IF NOT EXISTS), run in order. */
  up: string[];
}

export const migration = (version: number, name: string, owner: string, up: string[]): Migration => ({ version, name, owner, up });
