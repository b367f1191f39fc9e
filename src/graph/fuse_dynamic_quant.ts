// Dynamic int8 MatMul fusion: what onnxruntime's quantize_dynamic (and sqz's int8 dynamic)
// writes per MatMul,
//
//   (x_q, x_s, x_z) = DynamicQuantizeLinear(x)
//   acc = MatMulInteger(x_q, W_q, x_z, W_z) → Cast(float) → Mul(·, Mul(x_s, W_s))
//
// becomes one ai.sqz QGemm(x_q, x_s, x_z, W_q, W_s, W_z) with a dequantized f32 output, whose
// a_scale is a run-time input: the int8 GEMM then stores f32(acc)·f32(x_s·W_s[n]) directly,
// the same bits as Cast then Mul, without the i32 tensor or the two extra passes. The
// DynamicQuantizeLinear stays (several MatMuls may share it). Session-only.
import { type Graph, Node } from "./ir.ts";
import { SQZ_DOMAIN } from "./qdq.ts";
import { onlyReader } from "./match.ts";

const FLOAT = 1;

export function fuseDynamicQuantMatMul(g: Graph, accept: (n: Node) => boolean): number {
  let count = 0;
  for (const mm of [...g.nodes]) {
    if (mm.op !== "MatMulInteger" || mm.domain || mm.inputs.length < 3) continue;
    const [xq, wq, xz, wz] = mm.inputs;
    const dql = xq?.producer;
    if (!dql || dql.op !== "DynamicQuantizeLinear" || dql.domain) continue;
    if (xz !== dql.outputs[2] || !wq?.constant || (wz && !wz.constant)) continue;
    const acc = mm.outputs[0];
    const cast = acc.consumers[0];
    if (!cast || cast.op !== "Cast" || cast.attrs.to !== FLOAT || !onlyReader(g, acc, cast)) {
      continue;
    }
    const accf = cast.outputs[0];
    const mul = accf.consumers[0];
    if (!mul || mul.op !== "Mul" || mul.domain || !onlyReader(g, accf, mul)) continue;
    const sc = mul.inputs[0] === accf ? mul.inputs[1] : mul.inputs[0];
    const scMul = sc?.producer;
    if (!scMul || scMul.op !== "Mul" || scMul.domain || !onlyReader(g, sc, mul)) continue;
    const [s0, s1] = scMul.inputs;
    const xs = dql.outputs[1];
    const ws = s0 === xs ? s1 : s1 === xs ? s0 : undefined;
    const n = wq.constant.dims[1];
    if (!ws?.constant || ws.constant.type !== "float32") continue;
    if (ws.constant.data.length !== 1 && ws.constant.data.length !== n) continue;
    const out = mul.outputs[0];
    const q = new Node(`${mm.name}::QGemm`, "QGemm", SQZ_DOMAIN, [xq, xs, xz, wq, ws, wz], []);
    q.outputs = [out];
    if (!accept(q)) continue;
    for (const x of [mm, cast, mul, scMul]) g.removeNode(x);
    g.addNode(q);
    count++;
  }
  if (count) g.topoSort();
  return count;
}
