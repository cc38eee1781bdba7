/**
 * Resolving a growth request into the grown sizes and the insertion positions of new blocks.
 *
 * @module
 */
import { type FamilyInfo, type ModelDims, type StackInfo, stacksOf } from './families.js';
import type { DepthSpec, GrowthSpec } from './grow.js';
import { fail } from './stage.js';

function isInt(x: number): boolean {
  return Number.isInteger(x) && x > 0;
}

/** Resolves a {@link GrowthSpec} into the grown sizes and the insertion positions of new blocks. */
export function resolveGrowth(
  info: ModelDims,
  spec: GrowthSpec,
): {
  /** The grown sizes. */
  dims: ModelDims;
  /** Small-model block indices each new block is inserted before, ascending (empty without depth growth). */
  insertAt: number[];
} {
  const { dModel: d, nHeads: H, headDim: hd, dFF: F, nLayers: N } = info;
  let d2 = spec.dModel ?? (spec.width !== undefined ? d * spec.width : undefined);
  if (d2 !== undefined && !isInt(d2)) {
    fail(`d_model ${d} × width ${spec.width} = ${d2} is not a whole number`);
  }
  let H2 = spec.heads;
  let hd2 = spec.headDim;
  if (d2 === undefined) {
    H2 ??= H;
    hd2 ??= hd;
    d2 = H2 * hd2;
  } else if (H2 === undefined && hd2 === undefined) {
    hd2 = hd;
    H2 = d2 / hd;
    if (!isInt(H2)) {
      fail(
        `d_model ${d2} is not a multiple of the head dim ${hd}: give heads or headDim (--heads, --head-dim; d_model = heads × head dim)`,
      );
    }
  } else if (H2 === undefined) {
    H2 = d2 / hd2!;
  } else if (hd2 === undefined) {
    hd2 = d2 / H2;
  }
  if (!isInt(H2!) || !isInt(hd2!) || H2! * hd2! !== d2) {
    fail(`d_model ${d2} must equal heads (${H2}) × head dim (${hd2}) in this model family`);
  }
  if (d2 < d) fail(`growth cannot shrink d_model (${d} → ${d2})`);
  if (H2! < H) fail(`growth cannot remove heads (${H} → ${H2}); merging heads is not function-preserving`);
  if (hd2! < hd || hd2! % hd !== 0) {
    fail(
      `the head dim can only grow by an integer factor (${hd} → ${hd2}); a non-integer head-dim change has no exact construction here`,
    );
  }
  let F2 = spec.dFF ?? (spec.ffn !== undefined ? F * spec.ffn : Math.round((F * d2) / d));
  if (!isInt(F2)) fail(`d_ff ${F} × ffn ${spec.ffn} = ${F2} is not a whole number`);
  if (F2 < F) fail(`growth cannot shrink d_ff (${F} → ${F2})`);
  F2 = Math.round(F2);
  let insertAt: number[] = [];
  const dep = spec.depth;
  if (dep !== undefined) {
    const o: DepthSpec = typeof dep === 'number' ? { factor: dep } : dep;
    if (o.insertAt) {
      insertAt = [...o.insertAt].sort((a, b) => a - b);
      for (const p of insertAt)
        if (!Number.isInteger(p) || p < 0 || p > N) fail(`insertAt ${p} is not in [0, ${N}]`);
      if (o.layers !== undefined && o.layers !== N + insertAt.length)
        fail(`depth: layers ${o.layers} ≠ ${N} + ${insertAt.length} insertions`);
    } else {
      const N2 = o.layers ?? (o.factor !== undefined ? N * o.factor : N);
      if (!Number.isInteger(N2))
        fail(`depth factor ${o.factor} × ${N} layers is not a whole number of layers`);
      if (N2 < N) fail(`growth cannot remove layers (${N} → ${N2})`);
      const m = N2 - N;
      const placement = o.placement ?? 'interleave';
      for (let j = 0; j < m; j++) {
        insertAt.push(
          placement === 'top'
            ? N
            : placement === 'bottom'
              ? 0
              : Math.min(N, Math.max(1, Math.ceil(((j + 1) * N) / m))),
        );
      }
    }
  }
  return {
    dims: { dModel: d2, nHeads: H2!, headDim: hd2!, dFF: F2, nLayers: N + insertAt.length },
    insertAt,
  };
}

/**
 * The insertion positions of new blocks per stack (Growth guide, "Encoder-only and encoder-decoder models"):
 * one entry for a single-stack model; for an encoder-decoder, the stacks `spec.depth.stack` names (default
 * both, each by the same factor). `layers` and `insertAt` count one stack's blocks, so they need a stack.
 */
export function resolveStackDepths(
  info: FamilyInfo,
  spec: GrowthSpec,
): {
  /** The stack that grows. */
  stack: StackInfo['name'];
  /** Its block indices each new block is inserted before, ascending. */
  insertAt: number[];
}[] {
  const stacks = stacksOf(info);
  const dep = spec.depth;
  if (dep === undefined) return [];
  const o: DepthSpec = typeof dep === 'number' ? { factor: dep } : dep;
  const which = o.stack ?? 'both';
  if (which !== 'both' && !stacks.some((s) => s.name === which))
    fail(
      `depth.stack "${which}": this model has ${stacks.length === 1 ? `one ${stacks[0]!.name} stack` : `the stacks ${stacks.map((s) => s.name).join(', ')}`}`,
    );
  const chosen = stacks.filter((s) => which === 'both' || s.name === which);
  if (chosen.length > 1 && (o.layers !== undefined || o.insertAt !== undefined))
    fail(
      'depth of an encoder-decoder: layers and insertAt count the blocks of one stack; name it with stack "encoder" or "decoder" (--stack), or give a factor (--depth) for both',
    );
  return chosen.map((s) => ({
    stack: s.name,
    insertAt: resolveGrowth({ ...info, nLayers: s.layers }, { depth: o }).insertAt,
  }));
}
