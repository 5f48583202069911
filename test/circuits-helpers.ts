/**
 * Shared helpers of the circuit-tracing tests: random per-layer transcoders, a hand-built
 * cross-layer transcoder, and a brute-force oracle of edges in the frozen replacement model.
 */
import { PRNG, randn, tensor, type Tensor } from '../src/tensor/index.js';
import type { HookedTransformer, HookList } from '../src/model/hooked.js';
import { Sae } from '../src/sae/sae.js';
import { transcodersFromSaes } from '../src/sae/clt/from-saes.js';
import type { TracingTranscoders } from '../src/sae/clt/types.js';
import { nodeLayout, nodeAt, type Graph } from '../src/circuits/graph.js';
import { frozenHooks, skipPath, type ReplacementContext } from '../src/circuits/replacement.js';
import { logitVectors } from '../src/circuits/attribute.js';

interface PltOptions {
  width?: number;
  inputKind?: 'ln2' | 'resid_mid' | 'resid_pre';
  skip?: boolean;
  jumprelu?: boolean;
}

/** Random transcoders, one per layer, reading `inputKind` and writing hook_mlp_out; about half the features fire. */
export function randomPlt(model: HookedTransformer, seed: number, options: PltOptions = {}): TracingTranscoders {
  return transcodersFromSaes(randomPltSaes(model, seed, options), `random transcoders (seed ${seed})`);
}

/** The Sae objects of `randomPlt`. */
export function randomPltSaes(model: HookedTransformer, seed: number, options: PltOptions = {}): Sae[] {
  const d = model.cfg.dModel;
  const width = options.width ?? 12;
  const rng = new PRNG(seed);
  const arch = `${options.jumprelu ? 'jumprelu_' : ''}${options.skip ? 'skip_' : ''}transcoder`;
  return Array.from({ length: model.cfg.nLayers }, (_, l) => {
    const kind = options.inputKind ?? 'ln2';
    const hook = kind === 'ln2' ? `blocks.${l}.ln2.hook_normalized` : `blocks.${l}.hook_${kind}`;
    const sae = Sae.create(
      { architecture: arch, d_in: d, d_sae: width, d_out: d, hook_name: hook, hook_name_out: `blocks.${l}.hook_mlp_out` },
      { seed: seed + l },
    );
    const p = { ...sae.params };
    p.W_enc = randn([d, width], { rng }).mul(1 / Math.sqrt(d));
    p.b_enc = randn([width], { rng }).mul(0.1);
    p.W_dec = randn([width, d], { rng }).mul(0.3);
    p.b_dec = randn([d], { rng }).mul(0.1);
    if (options.skip) p.W_skip = randn([d, d], { rng }).mul(0.05);
    if (options.jumprelu) p.threshold = randn([width], { rng }).mul(0.05).abs();
    return sae.withParams(p);
  });
}

/** A hand-built cross-layer transcoder: ReLU features of layer s decode into every layer t >= s. */
export function randomClt(model: HookedTransformer, seed: number, width = 10): TracingTranscoders {
  const d = model.cfg.dModel;
  const L = model.cfg.nLayers;
  const rng = new PRNG(seed);
  const wEnc = Array.from({ length: L }, () => randn([d, width], { rng }).mul(1 / Math.sqrt(d)));
  const bEnc = Array.from({ length: L }, () => randn([width], { rng }).mul(0.1));
  const wDec = Array.from({ length: L }, () => Array.from({ length: L }, () => randn([width, d], { rng }).mul(0.2)));
  const bDec = Array.from({ length: L }, () => randn([d], { rng }).mul(0.1));
  const dec = (s: number, t: number): Tensor => {
    if (t < s) throw new Error(`no decoder from ${s} into ${t}`);
    return wDec[s]![t]!;
  };
  return {
    nLayers: L,
    dIn: d,
    dOut: d,
    widths: new Array<number>(L).fill(width),
    activation: 'relu',
    crossLayer: true,
    inputHook: (l) => `blocks.${l}.hook_resid_mid`,
    outputHook: (l) => `blocks.${l}.hook_mlp_out`,
    wEnc: (l) => wEnc[l]!,
    bEnc: (l) => bEnc[l]!,
    threshold: () => null,
    wDec: dec,
    bDec: (t) => bDec[t]!,
    wSkip: () => null,
    encode: (l, x) => x.matmul(wEnc[l]!).add(bEnc[l]!).relu(),
    decode: (t, acts) => {
      let y = bDec[t]!;
      for (let s = 0; s <= t; s++) y = acts[s]!.matmul(dec(s, t)).add(y);
      return y;
    },
  };
}

/**
 * Brute-force edges into the graph's target rows: in the frozen replacement model, remove one
 * source node's contribution per batch row (a feature's decoder writes, an error, a token
 * embedding) and read every target's value; the model is affine in the contributions, so
 * value(all) - value(without s) is the edge s -> t. Returns [n * n] like the adjacency.
 */
export function bruteForceAdjacency(ctx: ReplacementContext, g: Graph): Float32Array {
  const { model, transcoders: tc, nPos } = ctx;
  const L = tc.nLayers;
  const d = model.cfg.dModel;
  const layout = nodeLayout(g);
  const n = layout.n;
  const sources = layout.logitStart; // features, errors, tokens
  const B = sources + 1; // the last row removes nothing
  // Per row and layer, the MLP output's constant part [B, pos, d]; per row the embedding scale [B, pos, 1].
  const base = ctx.mlpOut.map((m, t) => {
    const skip = skipPath(tc, t, ctx.inputs[t]!);
    return (skip ? m.sub(skip) : m).dataSync() as Float32Array;
  });
  const mlpConst = Array.from({ length: L }, (_, t) => {
    const out = new Float32Array(B * nPos * d);
    for (let b = 0; b < B; b++) out.set(base[t]!, b * nPos * d);
    return out;
  });
  const embedKeep = new Float32Array(B * nPos).fill(1);
  const errs = ctx.errors.map((e) => e.dataSync() as Float32Array);
  for (let s = 0; s < sources; s++) {
    const node = nodeAt(g, s, layout);
    if (node.kind === 'feature') {
      const targets = tc.crossLayer ? Array.from({ length: L - node.layer }, (_, j) => node.layer + j) : [node.layer];
      for (const t of targets) {
        const row = tc.wDec(node.layer, t).slice([node.feature]).dataSync() as Float32Array;
        for (let c = 0; c < d; c++) mlpConst[t]![(s * nPos + node.pos) * d + c]! -= node.activation * row[c]!;
      }
    } else if (node.kind === 'error') {
      for (let c = 0; c < d; c++) mlpConst[node.layer]![(s * nPos + node.pos) * d + c]! -= errs[node.layer]![node.pos * d + c]!;
    } else if (node.kind === 'token') embedKeep[s * nPos + node.pos] = 0;
  }
  const stash: Tensor[] = [];
  const hooks: HookList = [
    ...frozenHooks(ctx),
    ['hook_embed', (x: Tensor) => x.mul(tensor(embedKeep, [B, nPos, 1]))],
    ...Array.from({ length: L }, (_, l) => [tc.inputHook(l), (x: Tensor) => void (stash[l] = x)] as const),
    ...Array.from(
      { length: L },
      (_, t) =>
        [
          tc.outputHook(t),
          () => {
            const c = tensor(mlpConst[t]!, [B, nPos, d]);
            const skip = skipPath(tc, t, stash[t]!);
            return skip ? c.add(skip) : c;
          },
        ] as const,
    ),
  ];
  const inputNames = Array.from({ length: L }, (_, l) => tc.inputHook(l));
  const toks = tensor(Array.from({ length: B }, () => ctx.tokens).flat(), [B, nPos], 'int64');
  const { cache } = model.hooked(toks, { hooks, cache: [...new Set([...inputNames, 'ln_final.hook_normalized'])] });
  const pre = inputNames.map((name, l) => cache.get(name).matmul(tc.wEnc(l)).add(tc.bEnc(l)).dataSync() as Float32Array);
  const y = cache.get('ln_final.hook_normalized').dataSync() as Float32Array;
  const { vectors } = logitVectors(model, g.logitTokens);
  const value = (t: number, b: number): number => {
    const node = nodeAt(g, t, layout);
    if (node.kind === 'feature') {
      const w = tc.widths[node.layer]!;
      return pre[node.layer]![(b * nPos + node.pos) * w + node.feature]!;
    }
    const v = vectors[(node as { rank: number }).rank]!;
    let s = 0;
    for (let c = 0; c < d; c++) s += v[c]! * y[(b * nPos + nPos - 1) * d + c]!;
    return s;
  };
  const out = new Float32Array(n * n);
  const targets = [
    ...Array.from({ length: layout.nFeatures }, (_, i) => i),
    ...Array.from({ length: layout.nLogits }, (_, i) => layout.logitStart + i),
  ];
  for (const t of targets) {
    const full = value(t, sources);
    for (let s = 0; s < sources; s++) out[t * n + s] = full - value(t, s);
  }
  return out;
}
