// Depthwise convolution kernels ABI (f32 and int8). Filled in by the depthwise work.
export const SQZ_DWCONV_ABI: i32 = 1;
