// Pooling kernels ABI (max, average, global average; f32 and int8). Filled in by the pooling work.
export const SQZ_POOL_ABI: i32 = 1;
