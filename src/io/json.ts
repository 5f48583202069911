/** A JSON object from text, or an error naming `where` (a file) and the problem. No file system: also used in browsers. */
export function parseJsonObject(text: string, where: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: expected a JSON object`);
  return v as Record<string, unknown>;
}
