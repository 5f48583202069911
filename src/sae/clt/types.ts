/**
 * The contract between transcoders and circuit tracing. A `TracingTranscoders` replaces every MLP
 * of a model: at each layer l its encoder reads one hook point (`inputHook(l)`, e.g.
 * `blocks.l.ln2.hook_normalized` or `blocks.l.hook_resid_mid`) and its features write into the
 * MLP outputs (`outputHook(t)`, `blocks.t.hook_mlp_out`). A cross-layer transcoder (CLT; Ameisen
 * et al. 2025) lets a feature of layer s write to every layer t >= s; a set of per-layer
 * transcoders (PLT) is the case where it writes to t = s only (`crossLayer` false).
 *
 * Attribution reads the parameters directly (encoder rows, decoder rows, thresholds), because an
 * attribution graph is built from them, not from a black-box encode/decode; `encode` / `decode`
 * are the reference forward pass that the replacement model and the tests use.
 */
import type { Tensor } from '../../tensor/index.js';

/** The activation of a transcoder's features. */
export type TracingActivation = 'relu' | 'jumprelu' | 'topk';

export interface TracingTranscoders {
  /** Number of layers covered; layer l's features are indexed 0..widths[l]-1. */
  readonly nLayers: number;
  /** Width of the encoder input (d_model for residual / normalised inputs). */
  readonly dIn: number;
  /** Width of a decoder output (d_model). */
  readonly dOut: number;
  /** Features per layer, [nLayers]. */
  readonly widths: readonly number[];
  readonly activation: TracingActivation;
  /** For 'topk': features kept per token and layer. */
  readonly k?: number;
  /** True for a CLT (features of layer s write to layers s..nLayers-1), false for a PLT set. */
  readonly crossLayer: boolean;
  /** The hook point layer l's encoder reads. */
  inputHook(layer: number): string;
  /** The hook point layer t's decoders write (replacing the MLP's output there). */
  outputHook(layer: number): string;
  /** Encoder of layer l: W_enc [dIn, widths[l]]. */
  wEnc(layer: number): Tensor;
  /** Encoder bias of layer l: [widths[l]]. */
  bEnc(layer: number): Tensor;
  /** JumpReLU thresholds of layer l: [widths[l]] (null for relu / topk). */
  threshold(layer: number): Tensor | null;
  /**
   * Decoder from source layer s's features into target layer t's output: [widths[s], dOut].
   * Defined for t >= s when `crossLayer`, for t = s otherwise; throws elsewhere.
   */
  wDec(source: number, target: number): Tensor;
  /** Output bias of target layer t: [dOut] (summed over sources' biases where a format keeps several). */
  bDec(target: number): Tensor;
  /** Optional linear skip path of layer l, W_skip [dOut, dIn] (output += x W_skip^T), or null. */
  wSkip(layer: number): Tensor | null;
  /** Feature activations of layer l: x [..., dIn] -> [..., widths[l]]. */
  encode(layer: number, x: Tensor): Tensor;
  /**
   * Reconstruction of target layer t's MLP output from the activations of every layer's features
   * (`acts[s]` [..., widths[s]] for s <= t; later entries are ignored), plus bDec(t) and the skip
   * path of layer t's input when given: [..., dOut].
   */
  decode(target: number, acts: readonly Tensor[], skipInput?: Tensor): Tensor;
}
