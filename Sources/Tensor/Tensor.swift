// Module Tensor: fp32 compute, bf16/f16/NF4 storage, BLAS kernels with gradients, safetensors.
