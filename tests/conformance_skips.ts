// The ONNX node-test cases sqz does not pass, each with its reason: the one place they are
// listed. tests/onnx_node_conformance_test.ts runs every other case and fails on any mismatch.
export const SKIPPED: Readonly<Record<string, string>> = {};
