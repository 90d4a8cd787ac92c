// Small glob matcher for config lists (disk names, interface names, cgroup paths): `*` matches
// within one path segment, `**` across segments, `?` one character, `[abc]` a class. Compiled once
// per pattern; matching is a RegExp test, done at discovery time, never per tick per file.

export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close === -1) re += '\\[';
      else {
        const body = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** True when `name` matches any of the compiled patterns. */
export function matchesAny(patterns: readonly RegExp[], name: string): boolean {
  for (const p of patterns) if (p.test(name)) return true;
  return false;
}
