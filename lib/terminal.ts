// Text from places an attacker may control (a guest's /proc files, container names and labels,
// interface names) must not drive a terminal: an ESC or C1 sequence in a name would change colours,
// set the window title or clear the screen of whoever runs `strata run`. Every name the agent takes
// from such a place goes through `cleanName`/`isCleanName`, and everything written to a terminal
// through `printable`. The common case (clean text) costs one regex test and no copy.

/**
 * C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and bidi overrides
 * (they reorder or break what a terminal or a log viewer shows).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE_ALL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// Whole escape sequences, so that their parameters ("]0;title", "[31m") do not show as text:
// CSI (ESC [ or C1 0x9b ... final byte), OSC/DCS/PM/APC/SOS strings up to BEL or ST, and
// two-byte ESC sequences.
const SEQUENCES =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]?|(?:\u001b[\]P^_X]|[\u0090\u009d-\u009f])[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)?|\u001b[ -~]?/g;

/** True when `s` has a control character (C0, DEL, C1) or a bidi/line-separator format character. */
export function hasControlChars(s: string): boolean {
  return UNSAFE.test(s);
}

/** `s` without escape sequences and control characters, fit for a terminal (`s` itself when clean). */
export function printable(s: string): string {
  if (!UNSAFE.test(s)) return s;
  return s.replace(SEQUENCES, '').replace(UNSAFE_ALL, '');
}

/** A name is clean when it is at most `maxLength` UTF-16 units long and has no control characters. */
export function isCleanName(s: string, maxLength: number): boolean {
  return s.length <= maxLength && !UNSAFE.test(s);
}

/** `s` made clean: control characters and escape sequences removed, cut to `maxLength`. */
export function cleanName(s: string, maxLength: number): string {
  const p = printable(s);
  return p.length <= maxLength ? p : p.slice(0, maxLength);
}
