/**
 * Text a peer chose (site ids, devices and versions from Hellos, certificate names, reasons and error
 * details from the coordinator) on its way to the operator's terminal. A terminal obeys escape
 * sequences (erase a line, move the cursor, set the window title) and a few Unicode characters reorder
 * or hide text, so a participant or a compromised coordinator could rewrite what the operator reads.
 * Every string of that kind the CLI prints goes through `terminalSafe`; --json output through `jsonSafe`.
 */

/** Control characters (C0 with newline and tab, DEL, C1), format characters (bidi overrides, zero-width) and line separators. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/**
 * `text` with every unsafe character written as \u{hex}; printable text passes unchanged. With
 * `keepNewlines`, "\n" stays (multi-line messages), every other unsafe character is still escaped.
 */
export function terminalSafe(text: string, options: { readonly keepNewlines?: boolean } = {}): string {
  return text.replace(UNSAFE, (character) => (options.keepNewlines === true && character === '\n' ? character : `\\u{${(character.codePointAt(0) ?? 0).toString(16)}}`));
}

/**
 * JSON text (JSON.stringify's output) with the unsafe characters JSON.stringify leaves raw (DEL, C1,
 * format characters, line separators) written as \uXXXX escapes: still the same JSON value.
 */
export function jsonSafe(json: string): string {
  return json.replace(UNSAFE, (character) =>
    Array.from({ length: character.length }, (_, index) => `\\u${character.charCodeAt(index).toString(16).padStart(4, '0')}`).join(''),
  );
}
