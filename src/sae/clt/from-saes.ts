/**
 * Per-layer transcoders (one `Sae` with a transcoder architecture per layer, as `glassbox sae
 * train` writes them) seen as `TracingTranscoders` with `crossLayer` false, so circuit tracing
 * runs on them exactly as on a cross-layer transcoder.
 */
import type { Tensor } from '../../tensor/index.js';
import { layerOf } from '../../model/hook-names.js';
import type { Sae } from '../sae.js';
import type { TracingActivation, TracingTranscoders } from './types.js';

/** The SAELens transcoder architectures and the feature activation each one has. */
const ACTIVATIONS: Record<string, TracingActivation> = {
  transcoder: 'relu',
  skip_transcoder: 'relu',
  jumprelu_transcoder: 'jumprelu',
  jumprelu_skip_transcoder: 'jumprelu',
};

/**
 * Wraps `saes` (saes[l] is layer l's transcoder) as TracingTranscoders. Refused, naming the
 * transcoder and the field: a non-transcoder architecture, a layer out of order, an output hook
 * other than `blocks.l.hook_mlp_out`, input normalisation or decoder-norm rescaling (their
 * features are not linear in the input as attribution assumes), mixed widths or activations.
 * `where` names the source (a directory) in errors.
 */
export function transcodersFromSaes(saes: readonly Sae[], where = 'transcodersFromSaes'): TracingTranscoders {
  if (saes.length === 0) throw new Error(`${where}: no transcoders given (one per layer is needed)`);
  const first = saes[0]!;
  const activation = ACTIVATIONS[first.cfg.architecture];
  saes.forEach((sae, l) => {
    const at = `${where}: transcoder ${l} (${sae.cfg.hook_name ?? 'no hook_name'})`;
    const arch = sae.cfg.architecture;
    if (!sae.isTranscoder || ACTIVATIONS[arch] === undefined)
      throw new Error(`${at}: architecture '${arch}' is not a transcoder (expected one of ${Object.keys(ACTIVATIONS).join(', ')})`);
    if (ACTIVATIONS[arch] !== activation)
      throw new Error(
        `${at}: architecture '${arch}' has ${ACTIVATIONS[arch]} features, transcoder 0 has ${activation}; mixed activations are not supported`,
      );
    if (sae.cfg.hook_name === null || layerOf(sae.cfg.hook_name) !== l)
      throw new Error(`${at}: hook_name must be a hook point of layer ${l} (the transcoders are one per layer, in order)`);
    const out = sae.cfg.hook_name_out ?? null;
    if (out !== `blocks.${l}.hook_mlp_out`) throw new Error(`${at}: hook_name_out is '${out}', expected 'blocks.${l}.hook_mlp_out'`);
    if (sae.cfg.normalize_activations !== 'none')
      throw new Error(
        `${at}: normalize_activations '${sae.cfg.normalize_activations}' is not supported for tracing (features must be affine in the input)`,
      );
    if (sae.cfg.rescale_acts_by_decoder_norm)
      throw new Error(`${at}: rescale_acts_by_decoder_norm is not supported for tracing (fold the decoder norms into the weights first)`);
    if (sae.cfg.reshape_activations !== 'none')
      throw new Error(`${at}: reshape_activations '${sae.cfg.reshape_activations}' is not supported`);
    if (sae.dIn !== first.dIn || sae.dOut !== first.dOut)
      throw new Error(`${at}: d_in ${sae.dIn} / d_out ${sae.dOut} differ from transcoder 0's ${first.dIn} / ${first.dOut}`);
  });
  const p = (l: number, name: string): Tensor => {
    const sae = saes[l];
    if (!sae) throw new Error(`${where}: layer ${l} is out of range (0..${saes.length - 1})`);
    const t = sae.params[name];
    if (!t) throw new Error(`${where}: transcoder ${l} has no parameter '${name}'`);
    return t;
  };
  const threshold = (l: number): Tensor | null => (activation === 'jumprelu' ? p(l, 'threshold').relu() : null);
  const wSkip = (l: number): Tensor | null => saes[l]?.params.W_skip ?? null;
  const tc: TracingTranscoders = {
    nLayers: saes.length,
    dIn: first.dIn,
    dOut: first.dOut,
    widths: saes.map((s) => s.dSae),
    activation: activation!,
    crossLayer: false,
    inputHook: (l) => saes[l]!.cfg.hook_name!,
    outputHook: (l) => saes[l]!.cfg.hook_name_out!,
    wEnc: (l) => p(l, 'W_enc'),
    bEnc: (l) => p(l, 'b_enc'),
    threshold,
    wDec: (s, t) => {
      if (s !== t) throw new Error(`${where}: per-layer transcoders have no decoder from layer ${s} into layer ${t}`);
      return p(s, 'W_dec');
    },
    bDec: (t) => p(t, 'b_dec'),
    wSkip,
    encode: (l, x) => {
      const pre = x.matmul(p(l, 'W_enc')).add(p(l, 'b_enc'));
      const th = threshold(l);
      return th ? pre.relu().mul(pre.gt(th).cast(pre.dtype)) : pre.relu();
    },
    decode: (t, acts, skipInput) => {
      const a = acts[t];
      if (!a) throw new Error(`${where}: decode(${t}) needs the activations of layer ${t}`);
      let y = a.matmul(p(t, 'W_dec')).add(p(t, 'b_dec'));
      const skip = wSkip(t);
      if (skip && skipInput) y = y.add(skipInput.matmul(skip.transpose()));
      return y;
    },
  };
  return tc;
}
