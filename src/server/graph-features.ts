/**
 * The feature stores of the server's transcoders (`serve --transcoders DIR`), for the Graph
 * view's node pane: `glassbox clt features DIR` writes one store per layer at
 * DIR/features/layer-L (src/sae/clt/features.ts). They are opened once at start with
 * `FeatureStoreReader` (each page is a fixed number of small positioned reads, whatever the
 * store's size) and each is checked against the transcoders: built for that layer, with that
 * width, from the same weights (the digest its features.json holds). A store of other
 * transcoders, or a set with a layer missing, is refused at start, naming the file and the field.
 *
 * - `GET /api/graph/features/:layer/:feature`  one feature's page (`FeaturePageResult`, the shape
 *   the Feature view reads), 404 when the server has no stores
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { checkTranscoderStore, featureStoreDir, layerWeightsDigest } from '../sae/clt/features.js';
import type { TracingTranscoders } from '../sae/clt/types.js';
import { FEATURES_JSON, FeatureStoreReader } from '../sae/features/index.js';
import { HttpError } from './errors.js';
import { storePageResult } from './features.js';
import type { Ctx } from './handlers.js';
import type { FeaturePageResult, GraphFeatureParams } from './schemas.js';

/** The opened per-layer stores of a transcoder set (index = layer). */
export class TranscoderFeatureStores {
  private constructor(
    private readonly readers: readonly FeatureStoreReader[],
    private readonly dir: string,
  ) {}

  /** Whether DIR/features holds any store (then `open` needs the loaded transcoders, for their digests). */
  static present(dir: string): boolean {
    return existsSync(dirname(featureStoreDir(dir, 0)));
  }

  /**
   * The stores of the transcoders `tc` in `dir`, or null when DIR/features holds none. Every
   * layer must have one (a partial set is refused), each checked with `checkTranscoderStore`.
   */
  static open(dir: string, tc: TracingTranscoders): TranscoderFeatureStores | null {
    const present = Array.from({ length: tc.nLayers }, (_, l) => existsSync(join(featureStoreDir(dir, l), FEATURES_JSON)));
    if (!present.some(Boolean)) return null;
    const missing = present.findIndex((p) => !p);
    if (missing >= 0)
      throw new Error(
        `${join(featureStoreDir(dir, missing), FEATURES_JSON)}: not found, but other layers have feature stores; rebuild them all with 'glassbox clt features ${dir}'`,
      );
    const readers: FeatureStoreReader[] = [];
    try {
      for (let l = 0; l < tc.nLayers; l++) {
        const storeDir = featureStoreDir(dir, l);
        const reader = FeatureStoreReader.open(storeDir);
        readers.push(reader);
        checkTranscoderStore(reader.meta, tc, l, join(storeDir, FEATURES_JSON), layerWeightsDigest(tc, l));
      }
    } catch (e) {
      for (const r of readers) r.close();
      throw e;
    }
    return new TranscoderFeatureStores(readers, dir);
  }

  get layers(): number {
    return this.readers.length;
  }

  /** Feature `feature` of layer `layer`'s page; 404 naming the range for a layer or feature out of range. */
  page(ctx: Ctx, layer: number, feature: number): FeaturePageResult {
    const reader = this.readers[layer];
    if (!reader) throw new HttpError(404, `no layer ${layer}: the transcoders have layers 0..${this.readers.length - 1}`);
    const d = reader.meta.sae.d_sae;
    if (!(feature >= 0 && feature < d))
      throw new HttpError(404, `feature ${feature} is out of range: layer ${layer} of the transcoders has ${d} features (0..${d - 1})`);
    return storePageResult(ctx, reader.page(feature), reader.meta, {
      sae: `${this.dir} layer ${layer}`,
      feature,
      dSae: d,
      explanation: null,
    });
  }

  close(): void {
    for (const r of this.readers) r.close();
  }
}

/** Adds GET /api/graph/features/:layer/:feature (404 without stores). */
export function registerGraphFeatureRoutes(
  app: FastifyInstance,
  ctx: Ctx,
  stores: TranscoderFeatureStores | null,
  schema: { params: object },
): void {
  app.get<{ Params: GraphFeatureParams }>('/api/graph/features/:layer/:feature', { schema }, async (req) => {
    if (!stores)
      throw new HttpError(
        404,
        "this server has no feature stores for transcoder features: build them with 'glassbox clt features DIR' and start it with serve --transcoders DIR",
      );
    return stores.page(ctx, Number(req.params.layer), Number(req.params.feature));
  });
  app.addHook('onClose', async () => stores?.close());
}
