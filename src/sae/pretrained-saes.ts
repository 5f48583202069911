/**
 * The releases glassbox ships, in SAELens's `pretrained_saes.yaml` format (a map from release
 * name to `repo_id`, `model`, `conversion_func`, optional `config_overrides`, and `saes`: a list of
 * `{ id, path, l0?, neuronpedia?, norm_scaling_factor? }`). The entries are the public Hugging Face
 * repositories as SAELens lists them (repo ids, folder paths, Neuronpedia ids); the file is data,
 * kept as a string so it ships inside the compiled package.
 *
 * - `gpt2-small-res-jb`: SAELens layout (`{path}/cfg.json`, `sae_weights.safetensors`,
 *   `sparsity.safetensors`), GPT-2 small's residual stream before each block (and after the last).
 * - `gemma-scope-2b-pt-res[-canonical]`: Gemma Scope's `{path}/params.npz` (JumpReLU), Gemma 2 2B's
 *   residual stream after each block (the embedding SAEs are left out: they need a rescaling this
 *   loader does not do).
 * - `llama_scope_lxr_8x` / `llama_scope_lxr_32x`: Llama Scope's `{path}/hyperparams.json` and
 *   `{path}/checkpoints/final.safetensors`, Llama 3.1 8B's residual stream.
 */
export const BUILTIN_RELEASES_YAML = `
gpt2-small-res-jb:
  repo_id: jbloom/GPT2-Small-SAEs-Reformatted
  model: gpt2-small
  conversion_func: null
  config_overrides:
    model_from_pretrained_kwargs:
      center_writing_weights: true
  saes:
    - id: blocks.0.hook_resid_pre
      path: blocks.0.hook_resid_pre
      l0: 10
      neuronpedia: gpt2-small/0-res-jb
    - id: blocks.1.hook_resid_pre
      path: blocks.1.hook_resid_pre
      l0: 10
      neuronpedia: gpt2-small/1-res-jb
    - id: blocks.2.hook_resid_pre
      path: blocks.2.hook_resid_pre
      l0: 18
      neuronpedia: gpt2-small/2-res-jb
    - id: blocks.3.hook_resid_pre
      path: blocks.3.hook_resid_pre
      l0: 23
      neuronpedia: gpt2-small/3-res-jb
    - id: blocks.4.hook_resid_pre
      path: blocks.4.hook_resid_pre
      l0: 31
      neuronpedia: gpt2-small/4-res-jb
    - id: blocks.5.hook_resid_pre
      path: blocks.5.hook_resid_pre
      l0: 41
      neuronpedia: gpt2-small/5-res-jb
    - id: blocks.6.hook_resid_pre
      path: blocks.6.hook_resid_pre
      l0: 51
      neuronpedia: gpt2-small/6-res-jb
    - id: blocks.7.hook_resid_pre
      path: blocks.7.hook_resid_pre
      l0: 54
      neuronpedia: gpt2-small/7-res-jb
    - id: blocks.8.hook_resid_pre
      path: blocks.8.hook_resid_pre
      l0: 60
      neuronpedia: gpt2-small/8-res-jb
    - id: blocks.9.hook_resid_pre
      path: blocks.9.hook_resid_pre
      l0: 70
      neuronpedia: gpt2-small/9-res-jb
    - id: blocks.10.hook_resid_pre
      path: blocks.10.hook_resid_pre
      l0: 52
      neuronpedia: gpt2-small/10-res-jb
    - id: blocks.11.hook_resid_pre
      path: blocks.11.hook_resid_pre
      l0: 56
      neuronpedia: gpt2-small/11-res-jb
    - id: blocks.11.hook_resid_post
      path: blocks.11.hook_resid_post
      l0: 70
      neuronpedia: gpt2-small/12-res-jb
gemma-scope-2b-pt-res-canonical:
  repo_id: google/gemma-scope-2b-pt-res
  model: gemma-2-2b
  conversion_func: gemma_2
  saes:
    - id: layer_0/width_16k/canonical
      path: layer_0/width_16k/average_l0_105
      neuronpedia: gemma-2-2b/0-gemmascope-res-16k
    - id: layer_1/width_16k/canonical
      path: layer_1/width_16k/average_l0_102
      neuronpedia: gemma-2-2b/1-gemmascope-res-16k
    - id: layer_2/width_16k/canonical
      path: layer_2/width_16k/average_l0_141
      neuronpedia: gemma-2-2b/2-gemmascope-res-16k
    - id: layer_3/width_16k/canonical
      path: layer_3/width_16k/average_l0_59
      neuronpedia: gemma-2-2b/3-gemmascope-res-16k
    - id: layer_4/width_16k/canonical
      path: layer_4/width_16k/average_l0_124
      neuronpedia: gemma-2-2b/4-gemmascope-res-16k
    - id: layer_5/width_16k/canonical
      path: layer_5/width_16k/average_l0_68
      neuronpedia: gemma-2-2b/5-gemmascope-res-16k
    - id: layer_6/width_16k/canonical
      path: layer_6/width_16k/average_l0_70
      neuronpedia: gemma-2-2b/6-gemmascope-res-16k
    - id: layer_7/width_16k/canonical
      path: layer_7/width_16k/average_l0_69
      neuronpedia: gemma-2-2b/7-gemmascope-res-16k
    - id: layer_8/width_16k/canonical
      path: layer_8/width_16k/average_l0_71
      neuronpedia: gemma-2-2b/8-gemmascope-res-16k
    - id: layer_9/width_16k/canonical
      path: layer_9/width_16k/average_l0_73
      neuronpedia: gemma-2-2b/9-gemmascope-res-16k
    - id: layer_10/width_16k/canonical
      path: layer_10/width_16k/average_l0_77
      neuronpedia: gemma-2-2b/10-gemmascope-res-16k
    - id: layer_11/width_16k/canonical
      path: layer_11/width_16k/average_l0_80
      neuronpedia: gemma-2-2b/11-gemmascope-res-16k
    - id: layer_12/width_16k/canonical
      path: layer_12/width_16k/average_l0_82
      neuronpedia: gemma-2-2b/12-gemmascope-res-16k
    - id: layer_13/width_16k/canonical
      path: layer_13/width_16k/average_l0_84
      neuronpedia: gemma-2-2b/13-gemmascope-res-16k
    - id: layer_14/width_16k/canonical
      path: layer_14/width_16k/average_l0_84
      neuronpedia: gemma-2-2b/14-gemmascope-res-16k
    - id: layer_15/width_16k/canonical
      path: layer_15/width_16k/average_l0_78
      neuronpedia: gemma-2-2b/15-gemmascope-res-16k
    - id: layer_16/width_16k/canonical
      path: layer_16/width_16k/average_l0_78
      neuronpedia: gemma-2-2b/16-gemmascope-res-16k
    - id: layer_17/width_16k/canonical
      path: layer_17/width_16k/average_l0_77
      neuronpedia: gemma-2-2b/17-gemmascope-res-16k
    - id: layer_18/width_16k/canonical
      path: layer_18/width_16k/average_l0_74
      neuronpedia: gemma-2-2b/18-gemmascope-res-16k
    - id: layer_19/width_16k/canonical
      path: layer_19/width_16k/average_l0_73
      neuronpedia: gemma-2-2b/19-gemmascope-res-16k
    - id: layer_20/width_16k/canonical
      path: layer_20/width_16k/average_l0_71
      neuronpedia: gemma-2-2b/20-gemmascope-res-16k
    - id: layer_21/width_16k/canonical
      path: layer_21/width_16k/average_l0_70
      neuronpedia: gemma-2-2b/21-gemmascope-res-16k
    - id: layer_22/width_16k/canonical
      path: layer_22/width_16k/average_l0_72
      neuronpedia: gemma-2-2b/22-gemmascope-res-16k
    - id: layer_23/width_16k/canonical
      path: layer_23/width_16k/average_l0_75
      neuronpedia: gemma-2-2b/23-gemmascope-res-16k
    - id: layer_24/width_16k/canonical
      path: layer_24/width_16k/average_l0_73
      neuronpedia: gemma-2-2b/24-gemmascope-res-16k
    - id: layer_25/width_16k/canonical
      path: layer_25/width_16k/average_l0_116
      neuronpedia: gemma-2-2b/25-gemmascope-res-16k
    - id: layer_5/width_1m/canonical
      path: layer_5/width_1m/average_l0_114
      neuronpedia: gemma-2-2b/5-gemmascope-res-1m
    - id: layer_12/width_1m/canonical
      path: layer_12/width_1m/average_l0_107
      neuronpedia: gemma-2-2b/12-gemmascope-res-1m
    - id: layer_19/width_1m/canonical
      path: layer_19/width_1m/average_l0_88
      neuronpedia: gemma-2-2b/19-gemmascope-res-1m
    - id: layer_12/width_262k/canonical
      path: layer_12/width_262k/average_l0_121
      neuronpedia: gemma-2-2b/12-gemmascope-res-262k
    - id: layer_12/width_32k/canonical
      path: layer_12/width_32k/average_l0_76
      neuronpedia: gemma-2-2b/12-gemmascope-res-32k
    - id: layer_12/width_524k/canonical
      path: layer_12/width_524k/average_l0_115
      neuronpedia: gemma-2-2b/12-gemmascope-res-524k
    - id: layer_0/width_65k/canonical
      path: layer_0/width_65k/average_l0_73
      neuronpedia: gemma-2-2b/0-gemmascope-res-65k
    - id: layer_1/width_65k/canonical
      path: layer_1/width_65k/average_l0_121
      neuronpedia: gemma-2-2b/1-gemmascope-res-65k
    - id: layer_2/width_65k/canonical
      path: layer_2/width_65k/average_l0_77
      neuronpedia: gemma-2-2b/2-gemmascope-res-65k
    - id: layer_3/width_65k/canonical
      path: layer_3/width_65k/average_l0_89
      neuronpedia: gemma-2-2b/3-gemmascope-res-65k
    - id: layer_4/width_65k/canonical
      path: layer_4/width_65k/average_l0_89
      neuronpedia: gemma-2-2b/4-gemmascope-res-65k
    - id: layer_5/width_65k/canonical
      path: layer_5/width_65k/average_l0_105
      neuronpedia: gemma-2-2b/5-gemmascope-res-65k
    - id: layer_6/width_65k/canonical
      path: layer_6/width_65k/average_l0_107
      neuronpedia: gemma-2-2b/6-gemmascope-res-65k
    - id: layer_7/width_65k/canonical
      path: layer_7/width_65k/average_l0_107
      neuronpedia: gemma-2-2b/7-gemmascope-res-65k
    - id: layer_8/width_65k/canonical
      path: layer_8/width_65k/average_l0_111
      neuronpedia: gemma-2-2b/8-gemmascope-res-65k
    - id: layer_9/width_65k/canonical
      path: layer_9/width_65k/average_l0_118
      neuronpedia: gemma-2-2b/9-gemmascope-res-65k
    - id: layer_10/width_65k/canonical
      path: layer_10/width_65k/average_l0_128
      neuronpedia: gemma-2-2b/10-gemmascope-res-65k
    - id: layer_11/width_65k/canonical
      path: layer_11/width_65k/average_l0_70
      neuronpedia: gemma-2-2b/11-gemmascope-res-65k
    - id: layer_12/width_65k/canonical
      path: layer_12/width_65k/average_l0_72
      neuronpedia: gemma-2-2b/12-gemmascope-res-65k
    - id: layer_13/width_65k/canonical
      path: layer_13/width_65k/average_l0_75
      neuronpedia: gemma-2-2b/13-gemmascope-res-65k
    - id: layer_14/width_65k/canonical
      path: layer_14/width_65k/average_l0_73
      neuronpedia: gemma-2-2b/14-gemmascope-res-65k
    - id: layer_15/width_65k/canonical
      path: layer_15/width_65k/average_l0_127
      neuronpedia: gemma-2-2b/15-gemmascope-res-65k
    - id: layer_16/width_65k/canonical
      path: layer_16/width_65k/average_l0_128
      neuronpedia: gemma-2-2b/16-gemmascope-res-65k
    - id: layer_17/width_65k/canonical
      path: layer_17/width_65k/average_l0_125
      neuronpedia: gemma-2-2b/17-gemmascope-res-65k
    - id: layer_18/width_65k/canonical
      path: layer_18/width_65k/average_l0_116
      neuronpedia: gemma-2-2b/18-gemmascope-res-65k
    - id: layer_19/width_65k/canonical
      path: layer_19/width_65k/average_l0_115
      neuronpedia: gemma-2-2b/19-gemmascope-res-65k
    - id: layer_20/width_65k/canonical
      path: layer_20/width_65k/average_l0_114
      neuronpedia: gemma-2-2b/20-gemmascope-res-65k
    - id: layer_21/width_65k/canonical
      path: layer_21/width_65k/average_l0_111
      neuronpedia: gemma-2-2b/21-gemmascope-res-65k
    - id: layer_22/width_65k/canonical
      path: layer_22/width_65k/average_l0_116
      neuronpedia: gemma-2-2b/22-gemmascope-res-65k
    - id: layer_23/width_65k/canonical
      path: layer_23/width_65k/average_l0_123
      neuronpedia: gemma-2-2b/23-gemmascope-res-65k
    - id: layer_24/width_65k/canonical
      path: layer_24/width_65k/average_l0_124
      neuronpedia: gemma-2-2b/24-gemmascope-res-65k
    - id: layer_25/width_65k/canonical
      path: layer_25/width_65k/average_l0_93
      neuronpedia: gemma-2-2b/25-gemmascope-res-65k
gemma-scope-2b-pt-res:
  repo_id: google/gemma-scope-2b-pt-res
  model: gemma-2-2b
  conversion_func: gemma_2
  saes:
    - id: layer_0/width_16k/average_l0_105
      path: layer_0/width_16k/average_l0_105
      l0: 105
    - id: layer_0/width_16k/average_l0_13
      path: layer_0/width_16k/average_l0_13
      l0: 13
    - id: layer_0/width_16k/average_l0_226
      path: layer_0/width_16k/average_l0_226
      l0: 226
    - id: layer_0/width_16k/average_l0_25
      path: layer_0/width_16k/average_l0_25
      l0: 25
    - id: layer_0/width_16k/average_l0_46
      path: layer_0/width_16k/average_l0_46
      l0: 46
    - id: layer_1/width_16k/average_l0_10
      path: layer_1/width_16k/average_l0_10
      l0: 10
    - id: layer_1/width_16k/average_l0_102
      path: layer_1/width_16k/average_l0_102
      l0: 102
    - id: layer_1/width_16k/average_l0_20
      path: layer_1/width_16k/average_l0_20
      l0: 20
    - id: layer_1/width_16k/average_l0_250
      path: layer_1/width_16k/average_l0_250
      l0: 250
    - id: layer_1/width_16k/average_l0_40
      path: layer_1/width_16k/average_l0_40
      l0: 40
    - id: layer_2/width_16k/average_l0_13
      path: layer_2/width_16k/average_l0_13
      l0: 13
    - id: layer_2/width_16k/average_l0_141
      path: layer_2/width_16k/average_l0_141
      l0: 141
    - id: layer_2/width_16k/average_l0_142
      path: layer_2/width_16k/average_l0_142
      l0: 142
    - id: layer_2/width_16k/average_l0_24
      path: layer_2/width_16k/average_l0_24
      l0: 24
    - id: layer_2/width_16k/average_l0_304
      path: layer_2/width_16k/average_l0_304
      l0: 304
    - id: layer_2/width_16k/average_l0_53
      path: layer_2/width_16k/average_l0_53
      l0: 53
    - id: layer_3/width_16k/average_l0_14
      path: layer_3/width_16k/average_l0_14
      l0: 14
    - id: layer_3/width_16k/average_l0_142
      path: layer_3/width_16k/average_l0_142
      l0: 142
    - id: layer_3/width_16k/average_l0_28
      path: layer_3/width_16k/average_l0_28
      l0: 28
    - id: layer_3/width_16k/average_l0_315
      path: layer_3/width_16k/average_l0_315
      l0: 315
    - id: layer_3/width_16k/average_l0_59
      path: layer_3/width_16k/average_l0_59
      l0: 59
    - id: layer_4/width_16k/average_l0_124
      path: layer_4/width_16k/average_l0_124
      l0: 124
    - id: layer_4/width_16k/average_l0_125
      path: layer_4/width_16k/average_l0_125
      l0: 125
    - id: layer_4/width_16k/average_l0_17
      path: layer_4/width_16k/average_l0_17
      l0: 17
    - id: layer_4/width_16k/average_l0_281
      path: layer_4/width_16k/average_l0_281
      l0: 281
    - id: layer_4/width_16k/average_l0_31
      path: layer_4/width_16k/average_l0_31
      l0: 31
    - id: layer_4/width_16k/average_l0_60
      path: layer_4/width_16k/average_l0_60
      l0: 60
    - id: layer_5/width_16k/average_l0_143
      path: layer_5/width_16k/average_l0_143
      l0: 143
      neuronpedia: gemma-2-2b/5-gemmascope-res-16k__l0-143
    - id: layer_5/width_16k/average_l0_18
      path: layer_5/width_16k/average_l0_18
      l0: 18
      neuronpedia: gemma-2-2b/5-gemmascope-res-16k__l0-18
    - id: layer_5/width_16k/average_l0_309
      path: layer_5/width_16k/average_l0_309
      l0: 309
      neuronpedia: gemma-2-2b/5-gemmascope-res-16k__l0-309
    - id: layer_5/width_16k/average_l0_34
      path: layer_5/width_16k/average_l0_34
      l0: 34
      neuronpedia: gemma-2-2b/5-gemmascope-res-16k__l0-34
    - id: layer_5/width_16k/average_l0_68
      path: layer_5/width_16k/average_l0_68
      l0: 68
    - id: layer_6/width_16k/average_l0_144
      path: layer_6/width_16k/average_l0_144
      l0: 144
    - id: layer_6/width_16k/average_l0_19
      path: layer_6/width_16k/average_l0_19
      l0: 19
    - id: layer_6/width_16k/average_l0_301
      path: layer_6/width_16k/average_l0_301
      l0: 301
    - id: layer_6/width_16k/average_l0_36
      path: layer_6/width_16k/average_l0_36
      l0: 36
    - id: layer_6/width_16k/average_l0_70
      path: layer_6/width_16k/average_l0_70
      l0: 70
    - id: layer_7/width_16k/average_l0_137
      path: layer_7/width_16k/average_l0_137
      l0: 137
    - id: layer_7/width_16k/average_l0_20
      path: layer_7/width_16k/average_l0_20
      l0: 20
    - id: layer_7/width_16k/average_l0_285
      path: layer_7/width_16k/average_l0_285
      l0: 285
    - id: layer_7/width_16k/average_l0_36
      path: layer_7/width_16k/average_l0_36
      l0: 36
    - id: layer_7/width_16k/average_l0_69
      path: layer_7/width_16k/average_l0_69
      l0: 69
    - id: layer_8/width_16k/average_l0_142
      path: layer_8/width_16k/average_l0_142
      l0: 142
    - id: layer_8/width_16k/average_l0_20
      path: layer_8/width_16k/average_l0_20
      l0: 20
    - id: layer_8/width_16k/average_l0_301
      path: layer_8/width_16k/average_l0_301
      l0: 301
    - id: layer_8/width_16k/average_l0_37
      path: layer_8/width_16k/average_l0_37
      l0: 37
    - id: layer_8/width_16k/average_l0_71
      path: layer_8/width_16k/average_l0_71
      l0: 71
    - id: layer_9/width_16k/average_l0_151
      path: layer_9/width_16k/average_l0_151
      l0: 151
    - id: layer_9/width_16k/average_l0_21
      path: layer_9/width_16k/average_l0_21
      l0: 21
    - id: layer_9/width_16k/average_l0_340
      path: layer_9/width_16k/average_l0_340
      l0: 340
    - id: layer_9/width_16k/average_l0_37
      path: layer_9/width_16k/average_l0_37
      l0: 37
    - id: layer_9/width_16k/average_l0_73
      path: layer_9/width_16k/average_l0_73
      l0: 73
    - id: layer_10/width_16k/average_l0_166
      path: layer_10/width_16k/average_l0_166
      l0: 166
    - id: layer_10/width_16k/average_l0_21
      path: layer_10/width_16k/average_l0_21
      l0: 21
    - id: layer_10/width_16k/average_l0_39
      path: layer_10/width_16k/average_l0_39
      l0: 39
    - id: layer_10/width_16k/average_l0_395
      path: layer_10/width_16k/average_l0_395
      l0: 395
    - id: layer_10/width_16k/average_l0_77
      path: layer_10/width_16k/average_l0_77
      l0: 77
    - id: layer_11/width_16k/average_l0_168
      path: layer_11/width_16k/average_l0_168
      l0: 168
    - id: layer_11/width_16k/average_l0_22
      path: layer_11/width_16k/average_l0_22
      l0: 22
    - id: layer_11/width_16k/average_l0_393
      path: layer_11/width_16k/average_l0_393
      l0: 393
    - id: layer_11/width_16k/average_l0_41
      path: layer_11/width_16k/average_l0_41
      l0: 41
    - id: layer_11/width_16k/average_l0_80
      path: layer_11/width_16k/average_l0_80
      l0: 80
    - id: layer_12/width_16k/average_l0_176
      path: layer_12/width_16k/average_l0_176
      l0: 176
      neuronpedia: gemma-2-2b/12-gemmascope-res-16k__l0-176
    - id: layer_12/width_16k/average_l0_22
      path: layer_12/width_16k/average_l0_22
      l0: 22
      neuronpedia: gemma-2-2b/12-gemmascope-res-16k__l0-22
    - id: layer_12/width_16k/average_l0_41
      path: layer_12/width_16k/average_l0_41
      l0: 41
      neuronpedia: gemma-2-2b/12-gemmascope-res-16k__l0-41
    - id: layer_12/width_16k/average_l0_445
      path: layer_12/width_16k/average_l0_445
      l0: 445
      neuronpedia: gemma-2-2b/12-gemmascope-res-16k__l0-445
    - id: layer_12/width_16k/average_l0_82
      path: layer_12/width_16k/average_l0_82
      l0: 82
    - id: layer_13/width_16k/average_l0_173
      path: layer_13/width_16k/average_l0_173
      l0: 173
    - id: layer_13/width_16k/average_l0_23
      path: layer_13/width_16k/average_l0_23
      l0: 23
    - id: layer_13/width_16k/average_l0_403
      path: layer_13/width_16k/average_l0_403
      l0: 403
    - id: layer_13/width_16k/average_l0_43
      path: layer_13/width_16k/average_l0_43
      l0: 43
    - id: layer_13/width_16k/average_l0_83
      path: layer_13/width_16k/average_l0_83
      l0: 83
    - id: layer_13/width_16k/average_l0_84
      path: layer_13/width_16k/average_l0_84
      l0: 84
    - id: layer_14/width_16k/average_l0_173
      path: layer_14/width_16k/average_l0_173
      l0: 173
    - id: layer_14/width_16k/average_l0_23
      path: layer_14/width_16k/average_l0_23
      l0: 23
    - id: layer_14/width_16k/average_l0_388
      path: layer_14/width_16k/average_l0_388
      l0: 388
    - id: layer_14/width_16k/average_l0_43
      path: layer_14/width_16k/average_l0_43
      l0: 43
    - id: layer_14/width_16k/average_l0_83
      path: layer_14/width_16k/average_l0_83
      l0: 83
    - id: layer_14/width_16k/average_l0_84
      path: layer_14/width_16k/average_l0_84
      l0: 84
    - id: layer_15/width_16k/average_l0_150
      path: layer_15/width_16k/average_l0_150
      l0: 150
    - id: layer_15/width_16k/average_l0_23
      path: layer_15/width_16k/average_l0_23
      l0: 23
    - id: layer_15/width_16k/average_l0_308
      path: layer_15/width_16k/average_l0_308
      l0: 308
    - id: layer_15/width_16k/average_l0_41
      path: layer_15/width_16k/average_l0_41
      l0: 41
    - id: layer_15/width_16k/average_l0_78
      path: layer_15/width_16k/average_l0_78
      l0: 78
    - id: layer_16/width_16k/average_l0_154
      path: layer_16/width_16k/average_l0_154
      l0: 154
    - id: layer_16/width_16k/average_l0_23
      path: layer_16/width_16k/average_l0_23
      l0: 23
    - id: layer_16/width_16k/average_l0_335
      path: layer_16/width_16k/average_l0_335
      l0: 335
    - id: layer_16/width_16k/average_l0_42
      path: layer_16/width_16k/average_l0_42
      l0: 42
    - id: layer_16/width_16k/average_l0_78
      path: layer_16/width_16k/average_l0_78
      l0: 78
    - id: layer_17/width_16k/average_l0_150
      path: layer_17/width_16k/average_l0_150
      l0: 150
    - id: layer_17/width_16k/average_l0_23
      path: layer_17/width_16k/average_l0_23
      l0: 23
    - id: layer_17/width_16k/average_l0_304
      path: layer_17/width_16k/average_l0_304
      l0: 304
    - id: layer_17/width_16k/average_l0_42
      path: layer_17/width_16k/average_l0_42
      l0: 42
    - id: layer_17/width_16k/average_l0_77
      path: layer_17/width_16k/average_l0_77
      l0: 77
    - id: layer_18/width_16k/average_l0_138
      path: layer_18/width_16k/average_l0_138
      l0: 138
    - id: layer_18/width_16k/average_l0_23
      path: layer_18/width_16k/average_l0_23
      l0: 23
    - id: layer_18/width_16k/average_l0_280
      path: layer_18/width_16k/average_l0_280
      l0: 280
    - id: layer_18/width_16k/average_l0_40
      path: layer_18/width_16k/average_l0_40
      l0: 40
    - id: layer_18/width_16k/average_l0_74
      path: layer_18/width_16k/average_l0_74
      l0: 74
    - id: layer_19/width_16k/average_l0_137
      path: layer_19/width_16k/average_l0_137
      l0: 137
      neuronpedia: gemma-2-2b/19-gemmascope-res-16k__l0-137
    - id: layer_19/width_16k/average_l0_23
      path: layer_19/width_16k/average_l0_23
      l0: 23
      neuronpedia: gemma-2-2b/19-gemmascope-res-16k__l0-23
    - id: layer_19/width_16k/average_l0_279
      path: layer_19/width_16k/average_l0_279
      l0: 279
      neuronpedia: gemma-2-2b/19-gemmascope-res-16k__l0-279
    - id: layer_19/width_16k/average_l0_40
      path: layer_19/width_16k/average_l0_40
      l0: 40
      neuronpedia: gemma-2-2b/19-gemmascope-res-16k__l0-40
    - id: layer_19/width_16k/average_l0_73
      path: layer_19/width_16k/average_l0_73
      l0: 73
    - id: layer_20/width_16k/average_l0_139
      path: layer_20/width_16k/average_l0_139
      l0: 139
    - id: layer_20/width_16k/average_l0_22
      path: layer_20/width_16k/average_l0_22
      l0: 22
    - id: layer_20/width_16k/average_l0_294
      path: layer_20/width_16k/average_l0_294
      l0: 294
    - id: layer_20/width_16k/average_l0_38
      path: layer_20/width_16k/average_l0_38
      l0: 38
    - id: layer_20/width_16k/average_l0_71
      path: layer_20/width_16k/average_l0_71
      l0: 71
    - id: layer_21/width_16k/average_l0_139
      path: layer_21/width_16k/average_l0_139
      l0: 139
    - id: layer_21/width_16k/average_l0_22
      path: layer_21/width_16k/average_l0_22
      l0: 22
    - id: layer_21/width_16k/average_l0_301
      path: layer_21/width_16k/average_l0_301
      l0: 301
    - id: layer_21/width_16k/average_l0_38
      path: layer_21/width_16k/average_l0_38
      l0: 38
    - id: layer_21/width_16k/average_l0_70
      path: layer_21/width_16k/average_l0_70
      l0: 70
    - id: layer_22/width_16k/average_l0_147
      path: layer_22/width_16k/average_l0_147
      l0: 147
    - id: layer_22/width_16k/average_l0_21
      path: layer_22/width_16k/average_l0_21
      l0: 21
    - id: layer_22/width_16k/average_l0_349
      path: layer_22/width_16k/average_l0_349
      l0: 349
    - id: layer_22/width_16k/average_l0_38
      path: layer_22/width_16k/average_l0_38
      l0: 38
    - id: layer_22/width_16k/average_l0_72
      path: layer_22/width_16k/average_l0_72
      l0: 72
    - id: layer_23/width_16k/average_l0_157
      path: layer_23/width_16k/average_l0_157
      l0: 157
    - id: layer_23/width_16k/average_l0_21
      path: layer_23/width_16k/average_l0_21
      l0: 21
    - id: layer_23/width_16k/average_l0_38
      path: layer_23/width_16k/average_l0_38
      l0: 38
    - id: layer_23/width_16k/average_l0_404
      path: layer_23/width_16k/average_l0_404
      l0: 404
    - id: layer_23/width_16k/average_l0_74
      path: layer_23/width_16k/average_l0_74
      l0: 74
    - id: layer_23/width_16k/average_l0_75
      path: layer_23/width_16k/average_l0_75
      l0: 75
    - id: layer_24/width_16k/average_l0_158
      path: layer_24/width_16k/average_l0_158
      l0: 158
    - id: layer_24/width_16k/average_l0_20
      path: layer_24/width_16k/average_l0_20
      l0: 20
    - id: layer_24/width_16k/average_l0_38
      path: layer_24/width_16k/average_l0_38
      l0: 38
    - id: layer_24/width_16k/average_l0_457
      path: layer_24/width_16k/average_l0_457
      l0: 457
    - id: layer_24/width_16k/average_l0_73
      path: layer_24/width_16k/average_l0_73
      l0: 73
    - id: layer_25/width_16k/average_l0_116
      path: layer_25/width_16k/average_l0_116
      l0: 116
    - id: layer_25/width_16k/average_l0_16
      path: layer_25/width_16k/average_l0_16
      l0: 16
    - id: layer_25/width_16k/average_l0_28
      path: layer_25/width_16k/average_l0_28
      l0: 28
    - id: layer_25/width_16k/average_l0_285
      path: layer_25/width_16k/average_l0_285
      l0: 285
    - id: layer_25/width_16k/average_l0_55
      path: layer_25/width_16k/average_l0_55
      l0: 55
    - id: layer_5/width_1m/average_l0_114
      path: layer_5/width_1m/average_l0_114
      l0: 114
      neuronpedia: gemma-2-2b/5-gemmascope-res-1m__l0-114
    - id: layer_5/width_1m/average_l0_13
      path: layer_5/width_1m/average_l0_13
      l0: 13
      neuronpedia: gemma-2-2b/5-gemmascope-res-1m__l0-13
    - id: layer_5/width_1m/average_l0_21
      path: layer_5/width_1m/average_l0_21
      l0: 21
      neuronpedia: gemma-2-2b/5-gemmascope-res-1m__l0-21
    - id: layer_5/width_1m/average_l0_36
      path: layer_5/width_1m/average_l0_36
      l0: 36
      neuronpedia: gemma-2-2b/5-gemmascope-res-1m__l0-36
    - id: layer_5/width_1m/average_l0_63
      path: layer_5/width_1m/average_l0_63
      l0: 63
      neuronpedia: gemma-2-2b/5-gemmascope-res-1m__l0-63
    - id: layer_5/width_1m/average_l0_9
      path: layer_5/width_1m/average_l0_9
      l0: 9
      neuronpedia: gemma-2-2b/5-gemmascope-res-1m__l0-9
    - id: layer_12/width_1m/average_l0_107
      path: layer_12/width_1m/average_l0_107
      l0: 107
    - id: layer_12/width_1m/average_l0_19
      path: layer_12/width_1m/average_l0_19
      l0: 19
      neuronpedia: gemma-2-2b/12-gemmascope-res-1m__l0-19
    - id: layer_12/width_1m/average_l0_207
      path: layer_12/width_1m/average_l0_207
      l0: 207
      neuronpedia: gemma-2-2b/12-gemmascope-res-1m__l0-207
    - id: layer_12/width_1m/average_l0_26
      path: layer_12/width_1m/average_l0_26
      l0: 26
      neuronpedia: gemma-2-2b/12-gemmascope-res-1m__l0-26
    - id: layer_12/width_1m/average_l0_58
      path: layer_12/width_1m/average_l0_58
      l0: 58
      neuronpedia: gemma-2-2b/12-gemmascope-res-1m__l0-58
    - id: layer_12/width_1m/average_l0_73
      path: layer_12/width_1m/average_l0_73
      l0: 73
      neuronpedia: gemma-2-2b/12-gemmascope-res-1m__l0-73
    - id: layer_19/width_1m/average_l0_157
      path: layer_19/width_1m/average_l0_157
      l0: 157
      neuronpedia: gemma-2-2b/19-gemmascope-res-1m__l0-157
    - id: layer_19/width_1m/average_l0_16
      path: layer_19/width_1m/average_l0_16
      l0: 16
      neuronpedia: gemma-2-2b/19-gemmascope-res-1m__l0-16
    - id: layer_19/width_1m/average_l0_18
      path: layer_19/width_1m/average_l0_18
      l0: 18
      neuronpedia: gemma-2-2b/19-gemmascope-res-1m__l0-18
    - id: layer_19/width_1m/average_l0_29
      path: layer_19/width_1m/average_l0_29
      l0: 29
      neuronpedia: gemma-2-2b/19-gemmascope-res-1m__l0-29
    - id: layer_19/width_1m/average_l0_50
      path: layer_19/width_1m/average_l0_50
      l0: 50
      neuronpedia: gemma-2-2b/19-gemmascope-res-1m__l0-50
    - id: layer_19/width_1m/average_l0_88
      path: layer_19/width_1m/average_l0_88
      l0: 88
    - id: layer_12/width_262k/average_l0_11
      path: layer_12/width_262k/average_l0_11
      l0: 11
    - id: layer_12/width_262k/average_l0_121
      path: layer_12/width_262k/average_l0_121
      l0: 121
    - id: layer_12/width_262k/average_l0_21
      path: layer_12/width_262k/average_l0_21
      l0: 21
    - id: layer_12/width_262k/average_l0_243
      path: layer_12/width_262k/average_l0_243
      l0: 243
    - id: layer_12/width_262k/average_l0_36
      path: layer_12/width_262k/average_l0_36
      l0: 36
    - id: layer_12/width_262k/average_l0_67
      path: layer_12/width_262k/average_l0_67
      l0: 67
    - id: layer_12/width_32k/average_l0_12
      path: layer_12/width_32k/average_l0_12
      l0: 12
    - id: layer_12/width_32k/average_l0_155
      path: layer_12/width_32k/average_l0_155
      l0: 155
    - id: layer_12/width_32k/average_l0_22
      path: layer_12/width_32k/average_l0_22
      l0: 22
    - id: layer_12/width_32k/average_l0_360
      path: layer_12/width_32k/average_l0_360
      l0: 360
    - id: layer_12/width_32k/average_l0_40
      path: layer_12/width_32k/average_l0_40
      l0: 40
    - id: layer_12/width_32k/average_l0_76
      path: layer_12/width_32k/average_l0_76
      l0: 76
    - id: layer_12/width_524k/average_l0_115
      path: layer_12/width_524k/average_l0_115
      l0: 115
    - id: layer_12/width_524k/average_l0_22
      path: layer_12/width_524k/average_l0_22
      l0: 22
    - id: layer_12/width_524k/average_l0_227
      path: layer_12/width_524k/average_l0_227
      l0: 227
    - id: layer_12/width_524k/average_l0_29
      path: layer_12/width_524k/average_l0_29
      l0: 29
    - id: layer_12/width_524k/average_l0_46
      path: layer_12/width_524k/average_l0_46
      l0: 46
    - id: layer_12/width_524k/average_l0_65
      path: layer_12/width_524k/average_l0_65
      l0: 65
    - id: layer_12/width_131k/average_l0_12
      path: layer_12/width_131k/average_l0_12
      l0: 12
    - id: layer_12/width_131k/average_l0_129
      path: layer_12/width_131k/average_l0_129
      l0: 129
    - id: layer_12/width_131k/average_l0_20
      path: layer_12/width_131k/average_l0_20
      l0: 20
    - id: layer_12/width_131k/average_l0_264
      path: layer_12/width_131k/average_l0_264
      l0: 264
    - id: layer_12/width_131k/average_l0_36
      path: layer_12/width_131k/average_l0_36
      l0: 36
    - id: layer_12/width_131k/average_l0_67
      path: layer_12/width_131k/average_l0_67
      l0: 67
    - id: layer_0/width_65k/average_l0_11
      path: layer_0/width_65k/average_l0_11
      l0: 11
    - id: layer_0/width_65k/average_l0_17
      path: layer_0/width_65k/average_l0_17
      l0: 17
    - id: layer_0/width_65k/average_l0_27
      path: layer_0/width_65k/average_l0_27
      l0: 27
    - id: layer_0/width_65k/average_l0_43
      path: layer_0/width_65k/average_l0_43
      l0: 43
    - id: layer_0/width_65k/average_l0_73
      path: layer_0/width_65k/average_l0_73
      l0: 73
    - id: layer_1/width_65k/average_l0_121
      path: layer_1/width_65k/average_l0_121
      l0: 121
    - id: layer_1/width_65k/average_l0_16
      path: layer_1/width_65k/average_l0_16
      l0: 16
    - id: layer_1/width_65k/average_l0_30
      path: layer_1/width_65k/average_l0_30
      l0: 30
    - id: layer_1/width_65k/average_l0_54
      path: layer_1/width_65k/average_l0_54
      l0: 54
    - id: layer_1/width_65k/average_l0_9
      path: layer_1/width_65k/average_l0_9
      l0: 9
    - id: layer_2/width_65k/average_l0_11
      path: layer_2/width_65k/average_l0_11
      l0: 11
    - id: layer_2/width_65k/average_l0_169
      path: layer_2/width_65k/average_l0_169
      l0: 169
    - id: layer_2/width_65k/average_l0_20
      path: layer_2/width_65k/average_l0_20
      l0: 20
    - id: layer_2/width_65k/average_l0_37
      path: layer_2/width_65k/average_l0_37
      l0: 37
    - id: layer_2/width_65k/average_l0_77
      path: layer_2/width_65k/average_l0_77
      l0: 77
    - id: layer_3/width_65k/average_l0_13
      path: layer_3/width_65k/average_l0_13
      l0: 13
    - id: layer_3/width_65k/average_l0_193
      path: layer_3/width_65k/average_l0_193
      l0: 193
    - id: layer_3/width_65k/average_l0_23
      path: layer_3/width_65k/average_l0_23
      l0: 23
    - id: layer_3/width_65k/average_l0_42
      path: layer_3/width_65k/average_l0_42
      l0: 42
    - id: layer_3/width_65k/average_l0_89
      path: layer_3/width_65k/average_l0_89
      l0: 89
    - id: layer_4/width_65k/average_l0_14
      path: layer_4/width_65k/average_l0_14
      l0: 14
    - id: layer_4/width_65k/average_l0_177
      path: layer_4/width_65k/average_l0_177
      l0: 177
    - id: layer_4/width_65k/average_l0_25
      path: layer_4/width_65k/average_l0_25
      l0: 25
    - id: layer_4/width_65k/average_l0_46
      path: layer_4/width_65k/average_l0_46
      l0: 46
    - id: layer_4/width_65k/average_l0_89
      path: layer_4/width_65k/average_l0_89
      l0: 89
    - id: layer_5/width_65k/average_l0_105
      path: layer_5/width_65k/average_l0_105
      l0: 105
    - id: layer_5/width_65k/average_l0_17
      path: layer_5/width_65k/average_l0_17
      l0: 17
      neuronpedia: gemma-2-2b/5-gemmascope-res-65k__l0-17
    - id: layer_5/width_65k/average_l0_211
      path: layer_5/width_65k/average_l0_211
      l0: 211
      neuronpedia: gemma-2-2b/5-gemmascope-res-65k__l0-211
    - id: layer_5/width_65k/average_l0_29
      path: layer_5/width_65k/average_l0_29
      l0: 29
      neuronpedia: gemma-2-2b/5-gemmascope-res-65k__l0-29
    - id: layer_5/width_65k/average_l0_53
      path: layer_5/width_65k/average_l0_53
      l0: 53
      neuronpedia: gemma-2-2b/5-gemmascope-res-65k__l0-53
    - id: layer_6/width_65k/average_l0_107
      path: layer_6/width_65k/average_l0_107
      l0: 107
    - id: layer_6/width_65k/average_l0_17
      path: layer_6/width_65k/average_l0_17
      l0: 17
    - id: layer_6/width_65k/average_l0_208
      path: layer_6/width_65k/average_l0_208
      l0: 208
    - id: layer_6/width_65k/average_l0_30
      path: layer_6/width_65k/average_l0_30
      l0: 30
    - id: layer_6/width_65k/average_l0_56
      path: layer_6/width_65k/average_l0_56
      l0: 56
    - id: layer_7/width_65k/average_l0_107
      path: layer_7/width_65k/average_l0_107
      l0: 107
    - id: layer_7/width_65k/average_l0_18
      path: layer_7/width_65k/average_l0_18
      l0: 18
    - id: layer_7/width_65k/average_l0_203
      path: layer_7/width_65k/average_l0_203
      l0: 203
    - id: layer_7/width_65k/average_l0_31
      path: layer_7/width_65k/average_l0_31
      l0: 31
    - id: layer_7/width_65k/average_l0_57
      path: layer_7/width_65k/average_l0_57
      l0: 57
    - id: layer_8/width_65k/average_l0_111
      path: layer_8/width_65k/average_l0_111
      l0: 111
    - id: layer_8/width_65k/average_l0_19
      path: layer_8/width_65k/average_l0_19
      l0: 19
    - id: layer_8/width_65k/average_l0_213
      path: layer_8/width_65k/average_l0_213
      l0: 213
    - id: layer_8/width_65k/average_l0_33
      path: layer_8/width_65k/average_l0_33
      l0: 33
    - id: layer_8/width_65k/average_l0_59
      path: layer_8/width_65k/average_l0_59
      l0: 59
    - id: layer_9/width_65k/average_l0_118
      path: layer_9/width_65k/average_l0_118
      l0: 118
    - id: layer_9/width_65k/average_l0_19
      path: layer_9/width_65k/average_l0_19
      l0: 19
    - id: layer_9/width_65k/average_l0_240
      path: layer_9/width_65k/average_l0_240
      l0: 240
    - id: layer_9/width_65k/average_l0_34
      path: layer_9/width_65k/average_l0_34
      l0: 34
    - id: layer_9/width_65k/average_l0_61
      path: layer_9/width_65k/average_l0_61
      l0: 61
    - id: layer_10/width_65k/average_l0_128
      path: layer_10/width_65k/average_l0_128
      l0: 128
    - id: layer_10/width_65k/average_l0_20
      path: layer_10/width_65k/average_l0_20
      l0: 20
    - id: layer_10/width_65k/average_l0_265
      path: layer_10/width_65k/average_l0_265
      l0: 265
    - id: layer_10/width_65k/average_l0_36
      path: layer_10/width_65k/average_l0_36
      l0: 36
    - id: layer_10/width_65k/average_l0_66
      path: layer_10/width_65k/average_l0_66
      l0: 66
    - id: layer_11/width_65k/average_l0_134
      path: layer_11/width_65k/average_l0_134
      l0: 134
    - id: layer_11/width_65k/average_l0_21
      path: layer_11/width_65k/average_l0_21
      l0: 21
    - id: layer_11/width_65k/average_l0_273
      path: layer_11/width_65k/average_l0_273
      l0: 273
    - id: layer_11/width_65k/average_l0_37
      path: layer_11/width_65k/average_l0_37
      l0: 37
    - id: layer_11/width_65k/average_l0_70
      path: layer_11/width_65k/average_l0_70
      l0: 70
    - id: layer_12/width_65k/average_l0_141
      path: layer_12/width_65k/average_l0_141
      l0: 141
      neuronpedia: gemma-2-2b/12-gemmascope-res-65k__l0-141
    - id: layer_12/width_65k/average_l0_21
      path: layer_12/width_65k/average_l0_21
      l0: 21
      neuronpedia: gemma-2-2b/12-gemmascope-res-65k__l0-21
    - id: layer_12/width_65k/average_l0_297
      path: layer_12/width_65k/average_l0_297
      l0: 297
      neuronpedia: gemma-2-2b/12-gemmascope-res-65k__l0-297
    - id: layer_12/width_65k/average_l0_38
      path: layer_12/width_65k/average_l0_38
      l0: 38
      neuronpedia: gemma-2-2b/12-gemmascope-res-65k__l0-38
    - id: layer_12/width_65k/average_l0_72
      path: layer_12/width_65k/average_l0_72
      l0: 72
    - id: layer_13/width_65k/average_l0_142
      path: layer_13/width_65k/average_l0_142
      l0: 142
    - id: layer_13/width_65k/average_l0_22
      path: layer_13/width_65k/average_l0_22
      l0: 22
    - id: layer_13/width_65k/average_l0_288
      path: layer_13/width_65k/average_l0_288
      l0: 288
    - id: layer_13/width_65k/average_l0_40
      path: layer_13/width_65k/average_l0_40
      l0: 40
    - id: layer_13/width_65k/average_l0_74
      path: layer_13/width_65k/average_l0_74
      l0: 74
    - id: layer_13/width_65k/average_l0_75
      path: layer_13/width_65k/average_l0_75
      l0: 75
    - id: layer_14/width_65k/average_l0_144
      path: layer_14/width_65k/average_l0_144
      l0: 144
    - id: layer_14/width_65k/average_l0_21
      path: layer_14/width_65k/average_l0_21
      l0: 21
    - id: layer_14/width_65k/average_l0_284
      path: layer_14/width_65k/average_l0_284
      l0: 284
    - id: layer_14/width_65k/average_l0_40
      path: layer_14/width_65k/average_l0_40
      l0: 40
    - id: layer_14/width_65k/average_l0_73
      path: layer_14/width_65k/average_l0_73
      l0: 73
    - id: layer_15/width_65k/average_l0_127
      path: layer_15/width_65k/average_l0_127
      l0: 127
    - id: layer_15/width_65k/average_l0_21
      path: layer_15/width_65k/average_l0_21
      l0: 21
    - id: layer_15/width_65k/average_l0_240
      path: layer_15/width_65k/average_l0_240
      l0: 240
    - id: layer_15/width_65k/average_l0_38
      path: layer_15/width_65k/average_l0_38
      l0: 38
    - id: layer_15/width_65k/average_l0_68
      path: layer_15/width_65k/average_l0_68
      l0: 68
    - id: layer_16/width_65k/average_l0_128
      path: layer_16/width_65k/average_l0_128
      l0: 128
    - id: layer_16/width_65k/average_l0_21
      path: layer_16/width_65k/average_l0_21
      l0: 21
    - id: layer_16/width_65k/average_l0_244
      path: layer_16/width_65k/average_l0_244
      l0: 244
    - id: layer_16/width_65k/average_l0_38
      path: layer_16/width_65k/average_l0_38
      l0: 38
    - id: layer_16/width_65k/average_l0_69
      path: layer_16/width_65k/average_l0_69
      l0: 69
    - id: layer_17/width_65k/average_l0_125
      path: layer_17/width_65k/average_l0_125
      l0: 125
    - id: layer_17/width_65k/average_l0_21
      path: layer_17/width_65k/average_l0_21
      l0: 21
    - id: layer_17/width_65k/average_l0_233
      path: layer_17/width_65k/average_l0_233
      l0: 233
    - id: layer_17/width_65k/average_l0_38
      path: layer_17/width_65k/average_l0_38
      l0: 38
    - id: layer_17/width_65k/average_l0_68
      path: layer_17/width_65k/average_l0_68
      l0: 68
    - id: layer_18/width_65k/average_l0_116
      path: layer_18/width_65k/average_l0_116
      l0: 116
    - id: layer_18/width_65k/average_l0_117
      path: layer_18/width_65k/average_l0_117
      l0: 117
    - id: layer_18/width_65k/average_l0_21
      path: layer_18/width_65k/average_l0_21
      l0: 21
    - id: layer_18/width_65k/average_l0_216
      path: layer_18/width_65k/average_l0_216
      l0: 216
    - id: layer_18/width_65k/average_l0_36
      path: layer_18/width_65k/average_l0_36
      l0: 36
    - id: layer_18/width_65k/average_l0_64
      path: layer_18/width_65k/average_l0_64
      l0: 64
    - id: layer_19/width_65k/average_l0_115
      path: layer_19/width_65k/average_l0_115
      l0: 115
    - id: layer_19/width_65k/average_l0_21
      path: layer_19/width_65k/average_l0_21
      l0: 21
      neuronpedia: gemma-2-2b/19-gemmascope-res-65k__l0-21
    - id: layer_19/width_65k/average_l0_216
      path: layer_19/width_65k/average_l0_216
      l0: 216
      neuronpedia: gemma-2-2b/19-gemmascope-res-65k__l0-216
    - id: layer_19/width_65k/average_l0_35
      path: layer_19/width_65k/average_l0_35
      l0: 35
      neuronpedia: gemma-2-2b/19-gemmascope-res-65k__l0-35
    - id: layer_19/width_65k/average_l0_63
      path: layer_19/width_65k/average_l0_63
      l0: 63
      neuronpedia: gemma-2-2b/19-gemmascope-res-65k__l0-63
    - id: layer_20/width_65k/average_l0_114
      path: layer_20/width_65k/average_l0_114
      l0: 114
    - id: layer_20/width_65k/average_l0_20
      path: layer_20/width_65k/average_l0_20
      l0: 20
    - id: layer_20/width_65k/average_l0_221
      path: layer_20/width_65k/average_l0_221
      l0: 221
    - id: layer_20/width_65k/average_l0_34
      path: layer_20/width_65k/average_l0_34
      l0: 34
    - id: layer_20/width_65k/average_l0_61
      path: layer_20/width_65k/average_l0_61
      l0: 61
    - id: layer_21/width_65k/average_l0_111
      path: layer_21/width_65k/average_l0_111
      l0: 111
    - id: layer_21/width_65k/average_l0_112
      path: layer_21/width_65k/average_l0_112
      l0: 112
    - id: layer_21/width_65k/average_l0_20
      path: layer_21/width_65k/average_l0_20
      l0: 20
    - id: layer_21/width_65k/average_l0_225
      path: layer_21/width_65k/average_l0_225
      l0: 225
    - id: layer_21/width_65k/average_l0_33
      path: layer_21/width_65k/average_l0_33
      l0: 33
    - id: layer_21/width_65k/average_l0_61
      path: layer_21/width_65k/average_l0_61
      l0: 61
    - id: layer_22/width_65k/average_l0_116
      path: layer_22/width_65k/average_l0_116
      l0: 116
    - id: layer_22/width_65k/average_l0_117
      path: layer_22/width_65k/average_l0_117
      l0: 117
    - id: layer_22/width_65k/average_l0_20
      path: layer_22/width_65k/average_l0_20
      l0: 20
    - id: layer_22/width_65k/average_l0_248
      path: layer_22/width_65k/average_l0_248
      l0: 248
    - id: layer_22/width_65k/average_l0_33
      path: layer_22/width_65k/average_l0_33
      l0: 33
    - id: layer_22/width_65k/average_l0_62
      path: layer_22/width_65k/average_l0_62
      l0: 62
    - id: layer_23/width_65k/average_l0_123
      path: layer_23/width_65k/average_l0_123
      l0: 123
    - id: layer_23/width_65k/average_l0_124
      path: layer_23/width_65k/average_l0_124
      l0: 124
    - id: layer_23/width_65k/average_l0_20
      path: layer_23/width_65k/average_l0_20
      l0: 20
    - id: layer_23/width_65k/average_l0_272
      path: layer_23/width_65k/average_l0_272
      l0: 272
    - id: layer_23/width_65k/average_l0_35
      path: layer_23/width_65k/average_l0_35
      l0: 35
    - id: layer_23/width_65k/average_l0_64
      path: layer_23/width_65k/average_l0_64
      l0: 64
    - id: layer_24/width_65k/average_l0_124
      path: layer_24/width_65k/average_l0_124
      l0: 124
    - id: layer_24/width_65k/average_l0_19
      path: layer_24/width_65k/average_l0_19
      l0: 19
    - id: layer_24/width_65k/average_l0_273
      path: layer_24/width_65k/average_l0_273
      l0: 273
    - id: layer_24/width_65k/average_l0_34
      path: layer_24/width_65k/average_l0_34
      l0: 34
    - id: layer_24/width_65k/average_l0_63
      path: layer_24/width_65k/average_l0_63
      l0: 63
    - id: layer_25/width_65k/average_l0_15
      path: layer_25/width_65k/average_l0_15
      l0: 15
    - id: layer_25/width_65k/average_l0_197
      path: layer_25/width_65k/average_l0_197
      l0: 197
    - id: layer_25/width_65k/average_l0_26
      path: layer_25/width_65k/average_l0_26
      l0: 26
    - id: layer_25/width_65k/average_l0_48
      path: layer_25/width_65k/average_l0_48
      l0: 48
    - id: layer_25/width_65k/average_l0_93
      path: layer_25/width_65k/average_l0_93
      l0: 93
llama_scope_lxr_8x:
  repo_id: fnlp/Llama3_1-8B-Base-LXR-8x
  model: meta-llama/Llama-3.1-8B
  conversion_func: llama_scope
  saes:
    - id: l0r_8x
      path: Llama3_1-8B-Base-L0R-8x
      l0: 50
      neuronpedia: llama3.1-8b/0-llamascope-res-32k
      norm_scaling_factor: 58.935251798561154
    - id: l1r_8x
      path: Llama3_1-8B-Base-L1R-8x
      l0: 50
      neuronpedia: llama3.1-8b/1-llamascope-res-32k
      norm_scaling_factor: 39.76699029126213
    - id: l2r_8x
      path: Llama3_1-8B-Base-L2R-8x
      l0: 50
      neuronpedia: llama3.1-8b/2-llamascope-res-32k
      norm_scaling_factor: 27.30666666666667
    - id: l3r_8x
      path: Llama3_1-8B-Base-L3R-8x
      l0: 50
      neuronpedia: llama3.1-8b/3-llamascope-res-32k
      norm_scaling_factor: 20.177339901477833
    - id: l4r_8x
      path: Llama3_1-8B-Base-L4R-8x
      l0: 50
      neuronpedia: llama3.1-8b/4-llamascope-res-32k
      norm_scaling_factor: 16.125984251968504
    - id: l5r_8x
      path: Llama3_1-8B-Base-L5R-8x
      l0: 50
      neuronpedia: llama3.1-8b/5-llamascope-res-32k
      norm_scaling_factor: 13.653333333333334
    - id: l6r_8x
      path: Llama3_1-8B-Base-L6R-8x
      l0: 50
      neuronpedia: llama3.1-8b/6-llamascope-res-32k
      norm_scaling_factor: 11.976608187134502
    - id: l7r_8x
      path: Llama3_1-8B-Base-L7R-8x
      l0: 50
      neuronpedia: llama3.1-8b/7-llamascope-res-32k
      norm_scaling_factor: 10.835978835978835
    - id: l8r_8x
      path: Llama3_1-8B-Base-L8R-8x
      l0: 50
      neuronpedia: llama3.1-8b/8-llamascope-res-32k
      norm_scaling_factor: 10.138613861386139
    - id: l9r_8x
      path: Llama3_1-8B-Base-L9R-8x
      l0: 50
      neuronpedia: llama3.1-8b/9-llamascope-res-32k
      norm_scaling_factor: 9.266968325791856
    - id: l10r_8x
      path: Llama3_1-8B-Base-L10R-8x
      l0: 50
      neuronpedia: llama3.1-8b/10-llamascope-res-32k
      norm_scaling_factor: 8.827586206896552
    - id: l11r_8x
      path: Llama3_1-8B-Base-L11R-8x
      l0: 50
      neuronpedia: llama3.1-8b/11-llamascope-res-32k
      norm_scaling_factor: 8.462809917355372
    - id: l12r_8x
      path: Llama3_1-8B-Base-L12R-8x
      l0: 50
      neuronpedia: llama3.1-8b/12-llamascope-res-32k
      norm_scaling_factor: 7.937984496124031
    - id: l13r_8x
      path: Llama3_1-8B-Base-L13R-8x
      l0: 50
      neuronpedia: llama3.1-8b/13-llamascope-res-32k
      norm_scaling_factor: 7.26241134751773
    - id: l14r_8x
      path: Llama3_1-8B-Base-L14R-8x
      l0: 50
      neuronpedia: llama3.1-8b/14-llamascope-res-32k
      norm_scaling_factor: 6.69281045751634
    - id: l15r_8x
      path: Llama3_1-8B-Base-L15R-8x
      l0: 50
      neuronpedia: llama3.1-8b/15-llamascope-res-32k
      norm_scaling_factor: 5.91907514450867
    - id: l16r_8x
      path: Llama3_1-8B-Base-L16R-8x
      l0: 50
      neuronpedia: llama3.1-8b/16-llamascope-res-32k
      norm_scaling_factor: 5.278350515463917
    - id: l17r_8x
      path: Llama3_1-8B-Base-L17R-8x
      l0: 50
      neuronpedia: llama3.1-8b/17-llamascope-res-32k
      norm_scaling_factor: 4.633484162895928
    - id: l18r_8x
      path: Llama3_1-8B-Base-L18R-8x
      l0: 50
      neuronpedia: llama3.1-8b/18-llamascope-res-32k
      norm_scaling_factor: 4.129032258064516
    - id: l19r_8x
      path: Llama3_1-8B-Base-L19R-8x
      l0: 50
      neuronpedia: llama3.1-8b/19-llamascope-res-32k
      norm_scaling_factor: 3.7372262773722627
    - id: l20r_8x
      path: Llama3_1-8B-Base-L20R-8x
      l0: 50
      neuronpedia: llama3.1-8b/20-llamascope-res-32k
      norm_scaling_factor: 3.4133333333333336
    - id: l21r_8x
      path: Llama3_1-8B-Base-L21R-8x
      l0: 50
      neuronpedia: llama3.1-8b/21-llamascope-res-32k
      norm_scaling_factor: 2.9767441860465116
    - id: l22r_8x
      path: Llama3_1-8B-Base-L22R-8x
      l0: 50
      neuronpedia: llama3.1-8b/22-llamascope-res-32k
      norm_scaling_factor: 2.680628272251309
    - id: l23r_8x
      path: Llama3_1-8B-Base-L23R-8x
      l0: 50
      neuronpedia: llama3.1-8b/23-llamascope-res-32k
      norm_scaling_factor: 2.4150943396226414
    - id: l24r_8x
      path: Llama3_1-8B-Base-L24R-8x
      l0: 50
      neuronpedia: llama3.1-8b/24-llamascope-res-32k
      norm_scaling_factor: 2.1880341880341883
    - id: l25r_8x
      path: Llama3_1-8B-Base-L25R-8x
      l0: 50
      neuronpedia: llama3.1-8b/25-llamascope-res-32k
      norm_scaling_factor: 2.0237154150197627
    - id: l26r_8x
      path: Llama3_1-8B-Base-L26R-8x
      l0: 50
      neuronpedia: llama3.1-8b/26-llamascope-res-32k
      norm_scaling_factor: 1.8156028368794326
    - id: l27r_8x
      path: Llama3_1-8B-Base-L27R-8x
      l0: 50
      neuronpedia: llama3.1-8b/27-llamascope-res-32k
      norm_scaling_factor: 1.673202614379085
    - id: l28r_8x
      path: Llama3_1-8B-Base-L28R-8x
      l0: 50
      neuronpedia: llama3.1-8b/28-llamascope-res-32k
      norm_scaling_factor: 1.5058823529411764
    - id: l29r_8x
      path: Llama3_1-8B-Base-L29R-8x
      l0: 50
      neuronpedia: llama3.1-8b/29-llamascope-res-32k
      norm_scaling_factor: 1.3763440860215055
    - id: l30r_8x
      path: Llama3_1-8B-Base-L30R-8x
      l0: 50
      neuronpedia: llama3.1-8b/30-llamascope-res-32k
      norm_scaling_factor: 1.2018779342723005
    - id: l31r_8x
      path: Llama3_1-8B-Base-L31R-8x
      l0: 50
      neuronpedia: llama3.1-8b/31-llamascope-res-32k
      norm_scaling_factor: 0.8590604026845637
llama_scope_lxr_32x:
  repo_id: fnlp/Llama3_1-8B-Base-LXR-32x
  model: meta-llama/Llama-3.1-8B
  conversion_func: llama_scope
  saes:
    - id: l0r_32x
      path: Llama3_1-8B-Base-L0R-32x
      l0: 50
      neuronpedia: llama3.1-8b/0-llamascope-res-131k
      norm_scaling_factor: 58.935251798561154
    - id: l1r_32x
      path: Llama3_1-8B-Base-L1R-32x
      l0: 50
      neuronpedia: llama3.1-8b/1-llamascope-res-131k
      norm_scaling_factor: 39.9609756097561
    - id: l2r_32x
      path: Llama3_1-8B-Base-L2R-32x
      l0: 50
      neuronpedia: llama3.1-8b/2-llamascope-res-131k
      norm_scaling_factor: 27.30666666666667
    - id: l3r_32x
      path: Llama3_1-8B-Base-L3R-32x
      l0: 50
      neuronpedia: llama3.1-8b/3-llamascope-res-131k
      norm_scaling_factor: 20.177339901477833
    - id: l4r_32x
      path: Llama3_1-8B-Base-L4R-32x
      l0: 50
      neuronpedia: llama3.1-8b/4-llamascope-res-131k
      norm_scaling_factor: 16.125984251968504
    - id: l5r_32x
      path: Llama3_1-8B-Base-L5R-32x
      l0: 50
      neuronpedia: llama3.1-8b/5-llamascope-res-131k
      norm_scaling_factor: 13.653333333333334
    - id: l6r_32x
      path: Llama3_1-8B-Base-L6R-32x
      l0: 50
      neuronpedia: llama3.1-8b/6-llamascope-res-131k
      norm_scaling_factor: 11.976608187134502
    - id: l7r_32x
      path: Llama3_1-8B-Base-L7R-32x
      l0: 50
      neuronpedia: llama3.1-8b/7-llamascope-res-131k
      norm_scaling_factor: 10.835978835978835
    - id: l8r_32x
      path: Llama3_1-8B-Base-L8R-32x
      l0: 50
      neuronpedia: llama3.1-8b/8-llamascope-res-131k
      norm_scaling_factor: 10.138613861386139
    - id: l9r_32x
      path: Llama3_1-8B-Base-L9R-32x
      l0: 50
      neuronpedia: llama3.1-8b/9-llamascope-res-131k
      norm_scaling_factor: 9.266968325791856
    - id: l10r_32x
      path: Llama3_1-8B-Base-L10R-32x
      l0: 50
      neuronpedia: llama3.1-8b/10-llamascope-res-131k
      norm_scaling_factor: 8.827586206896552
    - id: l11r_32x
      path: Llama3_1-8B-Base-L11R-32x
      l0: 50
      neuronpedia: llama3.1-8b/11-llamascope-res-131k
      norm_scaling_factor: 8.427983539094651
    - id: l12r_32x
      path: Llama3_1-8B-Base-L12R-32x
      l0: 50
      neuronpedia: llama3.1-8b/12-llamascope-res-131k
      norm_scaling_factor: 7.937984496124031
    - id: l13r_32x
      path: Llama3_1-8B-Base-L13R-32x
      l0: 50
      neuronpedia: llama3.1-8b/13-llamascope-res-131k
      norm_scaling_factor: 7.26241134751773
    - id: l14r_32x
      path: Llama3_1-8B-Base-L14R-32x
      l0: 50
      neuronpedia: llama3.1-8b/14-llamascope-res-131k
      norm_scaling_factor: 6.69281045751634
    - id: l15r_32x
      path: Llama3_1-8B-Base-L15R-32x
      l0: 50
      neuronpedia: llama3.1-8b/15-llamascope-res-131k
      norm_scaling_factor: 5.91907514450867
    - id: l16r_32x
      path: Llama3_1-8B-Base-L16R-32x
      l0: 50
      neuronpedia: llama3.1-8b/16-llamascope-res-131k
      norm_scaling_factor: 5.278350515463917
    - id: l17r_32x
      path: Llama3_1-8B-Base-L17R-32x
      l0: 50
      neuronpedia: llama3.1-8b/17-llamascope-res-131k
      norm_scaling_factor: 4.633484162895928
    - id: l18r_32x
      path: Llama3_1-8B-Base-L18R-32x
      l0: 50
      neuronpedia: llama3.1-8b/18-llamascope-res-131k
      norm_scaling_factor: 4.129032258064516
    - id: l19r_32x
      path: Llama3_1-8B-Base-L19R-32x
      l0: 50
      neuronpedia: llama3.1-8b/19-llamascope-res-131k
      norm_scaling_factor: 3.7372262773722627
    - id: l20r_32x
      path: Llama3_1-8B-Base-L20R-32x
      l0: 50
      neuronpedia: llama3.1-8b/20-llamascope-res-131k
      norm_scaling_factor: 3.4133333333333336
    - id: l21r_32x
      path: Llama3_1-8B-Base-L21R-32x
      l0: 50
      neuronpedia: llama3.1-8b/21-llamascope-res-131k
      norm_scaling_factor: 2.9767441860465116
    - id: l22r_32x
      path: Llama3_1-8B-Base-L22R-32x
      l0: 50
      neuronpedia: llama3.1-8b/22-llamascope-res-131k
      norm_scaling_factor: 2.680628272251309
    - id: l23r_32x
      path: Llama3_1-8B-Base-L23R-32x
      l0: 50
      neuronpedia: llama3.1-8b/23-llamascope-res-131k
      norm_scaling_factor: 2.4150943396226414
    - id: l24r_32x
      path: Llama3_1-8B-Base-L24R-32x
      l0: 50
      neuronpedia: llama3.1-8b/24-llamascope-res-131k
      norm_scaling_factor: 2.1974248927038627
    - id: l25r_32x
      path: Llama3_1-8B-Base-L25R-32x
      l0: 50
      neuronpedia: llama3.1-8b/25-llamascope-res-131k
      norm_scaling_factor: 2.0237154150197627
    - id: l26r_32x
      path: Llama3_1-8B-Base-L26R-32x
      l0: 50
      neuronpedia: llama3.1-8b/26-llamascope-res-131k
      norm_scaling_factor: 1.8156028368794326
    - id: l27r_32x
      path: Llama3_1-8B-Base-L27R-32x
      l0: 50
      neuronpedia: llama3.1-8b/27-llamascope-res-131k
      norm_scaling_factor: 1.6623376623376624
    - id: l28r_32x
      path: Llama3_1-8B-Base-L28R-32x
      l0: 50
      neuronpedia: llama3.1-8b/28-llamascope-res-131k
      norm_scaling_factor: 1.5058823529411764
    - id: l29r_32x
      path: Llama3_1-8B-Base-L29R-32x
      l0: 50
      neuronpedia: llama3.1-8b/29-llamascope-res-131k
      norm_scaling_factor: 1.3763440860215055
    - id: l30r_32x
      path: Llama3_1-8B-Base-L30R-32x
      l0: 50
      neuronpedia: llama3.1-8b/30-llamascope-res-131k
      norm_scaling_factor: 1.2075471698113207
    - id: l31r_32x
      path: Llama3_1-8B-Base-L31R-32x
      l0: 50
      neuronpedia: llama3.1-8b/31-llamascope-res-131k
      norm_scaling_factor: 0.8648648648648649
`;
