// Module Models: config.json structs, the architecture registry, Gemma 3 (SigLIP vision tower →
// multimodal projector → text decoder) with explicit backward, PEFT LoRA, adapters, generation.
//
// Public API (what Training, the CLI and the benchmarks call)
// ------------------------------------------------------------
// Loading
//   let model = try Gemma3Model.load(from: dir)       // config.json + model.safetensors | sharded index
//     · Gemma3ForConditionalGeneration and Gemma3ForCausalLM (ArchitectureRegistry, by `architectures`,
//       then `model_type`); key layouts: transformers 5.24's saved legacy form (language_model.model.*,
//       vision_tower.*), the Hub's vision_tower.vision_model.*, in-memory model.language_model.*.
//     · frozen weights stay memory-mapped in their stored dtype (BF16/F16/F32), widened in row tiles
//       inside the matmuls; a missing / mis-shaped tensor fails once, listing all of them.
// Choosing what trains
//   model.enableFullFineTuning()                       // every weight → fp32 trainable (tied head shared)
//   try model.applyLoRA(LoRASettings(r:alpha:dropout:targetModules:modulesToSave:useRSLoRA:), seed:)
//     · .allLinear = PEFT's all-linear on Gemma 3: every nn.Linear of the decoder (q,k,v,o,gate,up,down)
//       AND of the SigLIP tower (q,k,v,out_proj, fc1, fc2); not lm_head, not the projector, not the patch conv.
//     · modulesToSave ["lm_head","embed_tokens"]: independent fp32 trainable copies (untied).
//   try model.loadAdapter(from: dir) / try model.saveAdapter(to: dir)   // PEFT 0.21.2 folder format
//   try model.replaceFrozenLinearWeights { name, w in nf4(w) }           // QLoRA: NF4 storage hook
//   try model.saveWeights(to: dir)   // full checkpoint, LoRA merged, modules_to_save copies untied
//   try model.saveFullWeights(to: dir, maxShardSize:)   // full fine-tuning: save_pretrained's bytes (base key
//     layout, dot_natural_key shard order, model-0000i-of-0000n + index above max_shard_size, default 50 GB)
//   (Training's Gemma3Run.swift wraps all this as Training.TrainableModel + a Datasets BatchSource)
// Parameters (stable order = the model's named_parameters order)
//   model.trainableParameters: [Parameter]   name (HF / PEFT named_parameters, e.g.
//     "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight"),
//     shape, value / grad (fp32 UnsafeMutableBufferPointer), weightDecay (HF Trainer rule), inNormLayer.
//   model.zeroGrad()
// Steps
//   let r = try model.forwardBackward(batch, gradScale: s, gradientCheckpointing: false)
//     · ADDS ∂(s · Σ token CE)/∂θ into the grads; r.lossSum (Σ CE, fp32 logits, Double sum), r.tokenCount
//       (valid shifted targets = labels[:,1:] != −100), r.correctCount (argmax hits). transformers 5.x
//       ForCausalLMLoss: mean = lossSum/tokenCount; with num_items_in_batch N over a GA window use s = 1/N.
//   let e = try model.evaluate(batch, returnLogits: false)   // eval mode: no dropout, no grads
//   ModelBatch(batchSize:seqLen:inputIDs:attentionMask:tokenTypeIDs:labels:pixelValues:numImages:)
// Generation
//   try model.generate(prompt:tokenTypeIDs:pixelValues:numImages:maxNewTokens:sampling:stopIDs:onToken:)
//   (KV cache; sliding layers keep window − 1 keys; greedy / temperature, top-k, top-p).
// Facts: totalParameterCount, nonEmbeddingParameterCount, eosTokenIDs, randomState()/restoreRandomState().
//
// Numerics: fp32 throughout; matches transformers 5.24 eager fp32 (see Tests/ModelsTests).
// Kernels: module Tensor's (norms, gated GELU, RoPE, attention + AttentionMask, cross-entropy, avg-pool, sgemm*);
// Kernels+Extra.swift keeps only the glue (FBuf = TensorStorage, the loss path's chunk call).
import Foundation
