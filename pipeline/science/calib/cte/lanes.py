"""One read-noise smoothing sweep of LANES columns at once, written as LLVM vector code.

Why: a column's sweep (:func:`.kernels._smooth`) is a chain of dependent adds (the sequential
rnz^2 sum that decides when the column stops), so one column runs at the add latency. LANES
columns side by side are LANES independent chains in one SIMD register. numba's auto-vectoriser
does not vectorise that loop (aliasing between the arrays, branches for the clips), so the sweep
is emitted here as ``<LANES x double>`` IR: every lane does exactly its column's IEEE operations
in its column's order (fsub, fdiv, fcmp, select; no fast-math, no fused multiply-add), so the
result is bit-identical to the scalar kernel. LLVM lowers the vectors to what the CPU has (one
zmm register per 8 lanes with AVX-512, two ymm with AVX2, SSE2 otherwise): same results.

Layout: ``chg``, ``rsz``, ``rnz`` are (rows, LANES) C-contiguous float64; ``lo``, ``hi`` int64
(LANES,) the rows each lane smooths (lo > hi: a lane that does nothing); ``acc`` float64
(2 * LANES,) receives the sweep's NUM (rnz^2 sum) then DEN (flagged rows) per lane.

numba caches the compiled kernels under :mod:`.kernels`'s source stamp only: after changing this
module (LANES, the sweep), delete the ``kernels.*.nbi``/``.nbc`` files of the numba cache.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Columns per block: 8 float64 fill one AVX-512 register.
LANES = 8


class _Vec:
    """IR helpers for (rows, LANES) float64 arrays and lane vectors inside one codegen call."""

    def __init__(self, builder: ir.IRBuilder) -> None:
        self.b = builder
        self.vd = ir.VectorType(ir.DoubleType(), LANES)
        self.vi = ir.VectorType(ir.IntType(64), LANES)
        self.i64 = ir.IntType(64)
        self.zero = self.const(0.0)
        self.fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(self.vd, [self.vd]),
                                                   f"llvm.fabs.v{LANES}f64")

    def const(self, x: float) -> ir.Constant:
        return ir.Constant(self.vd, [x] * LANES)

    def row(self, data: ir.Value, j: ir.Value, ty: ir.Type | None = None) -> ir.Value:
        """Pointer to row ``j`` (LANES elements) of a (rows, LANES) array."""
        return self.b.bitcast(self.b.gep(data, [self.b.mul(j, self.i64(LANES))]), (ty or self.vd).as_pointer())

    def load(self, data: ir.Value, j: ir.Value, ty: ir.Type | None = None) -> ir.Value:
        return self.b.load(self.row(data, j, ty), align=8)

    def store(self, value: ir.Value, data: ir.Value, j: ir.Value) -> None:
        self.b.store(value, self.row(data, j), align=8)

    def splat(self, x: ir.Value, ty: ir.VectorType) -> ir.Value:
        v = self.b.insert_element(ir.Constant(ty, ir.Undefined), x, self.i64(0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        return self.b.shuffle_vector(v, ir.Constant(ty, ir.Undefined), mask)


@intrinsic
def sweep(typingctx, chg, rsz, rnz, lo, hi, acc, j1, j2, rnn, clip):  # type: ignore[no-untyped-def]
    """Rows ``j1`` .. ``j2`` of one sweep of :func:`.kernels._smooth` in every lane: rnz and rsz
    updated in place, NUM and DEN to ``acc``. Reads rows j1 - 1 .. j2 + 2 of ``rsz``."""
    sig = types.void(chg, rsz, rnz, lo, hi, acc, j1, j2, rnn, clip)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        v = _Vec(builder)
        p_chg, p_rsz, p_rnz, p_lo, p_hi, p_acc = (
            context.make_array(signature.args[i])(context, builder, args[i]).data for i in range(6))
        first, last, rnn_s, clip_s = args[6:]
        one = v.i64(1)
        rnn, clip = v.splat(rnn_s, v.vd), v.splat(clip_s, v.vd)
        nclip = builder.fneg(clip)
        lo_v, hi_v = v.load(p_lo, v.i64(0), v.vi), v.load(p_hi, v.i64(0), v.vi)

        def inside(j):  # type: ignore[no-untyped-def]
            jv = v.splat(j, v.vi)
            return builder.and_(builder.icmp_signed(">=", jv, lo_v), builder.icmp_signed("<=", jv, hi_v))

        def dd(s0, s1, s2, j):  # type: ignore[no-untyped-def]
            """dd(j) = s1 - (s2 + s0) / 2 clipped to +-clip where |dd| < rnn inside, else 0; DEN step."""
            d = builder.fsub(s1, builder.fdiv(builder.fadd(s2, s0), v.const(2.0)))
            flag = builder.and_(inside(j), builder.fcmp_ordered("<", builder.call(v.fabs, [d]), rnn))
            d = builder.select(builder.fcmp_ordered(">", d, clip), clip,
                               builder.select(builder.fcmp_ordered("<", d, nclip), nclip, d))
            return builder.select(flag, d, v.zero), builder.select(flag, v.const(1.0), v.zero)

        # rolling state: old rsz(j), rsz(j+1); dd(j-1), dd(j); NUM, DEN (promoted to registers)
        state = {k: cgutils.alloca_once(builder, v.vd, name=k) for k in ("s1", "s2", "dp", "dc", "num", "den")}
        s1, s2 = v.load(p_rsz, first), v.load(p_rsz, builder.add(first, one))
        dc, step = dd(v.load(p_rsz, builder.sub(first, one)), s1, s2, first)
        for k, x in (("s1", s1), ("s2", s2), ("dp", v.zero), ("dc", dc), ("num", v.zero), ("den", step)):
            builder.store(x, state[k])
        with cgutils.for_range_slice(builder, first, builder.add(last, one), one, inc=True) as (j, _):
            s1, s2 = builder.load(state["s1"]), builder.load(state["s2"])
            s3 = v.load(p_rsz, builder.add(j, v.i64(2)))
            dn, step = dd(s1, s2, s3, builder.add(j, one))
            builder.store(builder.fadd(builder.load(state["den"]), step), state["den"])
            # row j: -dd(j-1)/4, then +dd(j)/2, then -dd(j+1)/4, as the scalar sweep adds them
            r = builder.fsub(v.load(p_rnz, j), builder.fmul(v.const(0.25), builder.load(state["dp"])))
            r = builder.fadd(r, builder.fmul(v.const(0.5), builder.load(state["dc"])))
            r = builder.fsub(r, builder.fmul(v.const(0.25), dn))
            v.store(r, p_rnz, j)
            here = inside(j)
            v.store(builder.select(here, builder.fsub(v.load(p_chg, j), r), s1), p_rsz, j)
            builder.store(builder.fadd(builder.load(state["num"]), builder.select(here, builder.fmul(r, r), v.zero)),
                          state["num"])
            builder.store(builder.load(state["dc"]), state["dp"])
            builder.store(dn, state["dc"])
            builder.store(s2, state["s1"])
            builder.store(s3, state["s2"])
        v.store(builder.load(state["num"]), p_acc, v.i64(0))
        v.store(builder.load(state["den"]), p_acc, one)
        return context.get_dummy_value()

    return sig, codegen
