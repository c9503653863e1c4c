/**
 * OpenSSH's patterns (ssh_config(5) PATTERNS), shared by known_hosts and the ssh config: `*`
 * matches any run of characters, `?` one, over the whole text; in a pattern list a negated
 * pattern (`!pat`) that matches excludes the name whatever else matches.
 */

/** A pattern as a regular expression over the whole text (`flags` 'i' for host names). */
export function globRegExp(pattern: string, flags = ''): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, flags);
}

/** Whether a host name matches a pattern list: some pattern matches and no negated one does (without case). */
export function matchesPatternList(patterns: readonly string[], name: string): boolean {
  let hit = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globRegExp(p.slice(1), 'i').test(name)) return false;
    } else if (globRegExp(p, 'i').test(name)) hit = true;
  }
  return hit;
}
