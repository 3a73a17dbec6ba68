;; SIMD folds for the chunk kernel (src/active/kernel-simd.ts). They read chunk data in place from
;; the memory of an ArenaPool, into which reads land, so the data is never copied for them.
;; Compiled to fold-bytes.ts by `node scripts/build-wasm.mjs` (test/active-kernel-simd.test.ts checks it).
(module
  (import "env" "memory" (memory 1))

  ;; Adds n float64 at $ptr (n a multiple of 4) to the four lane sums at $acc: the element at
  ;; position j goes to lane j mod 4, as in kernel-fold-loops.ts, so sums are bit-identical to
  ;; the JavaScript loop. Returns 1 when an element equals $m0 (the fill value; NaN never does).
  (func (export "sumF64") (param $ptr i32) (param $n i32) (param $m0 f64) (param $acc i32) (result i32)
    (local $s01 v128) (local $s23 v128) (local $fill v128) (local $hit v128)
    (local $x v128) (local $y v128) (local $end i32)
    (local.set $s01 (v128.load (local.get $acc)))
    (local.set $s23 (v128.load offset=16 (local.get $acc)))
    (local.set $fill (f64x2.splat (local.get $m0)))
    (local.set $end (i32.add (local.get $ptr) (i32.shl (local.get $n) (i32.const 3))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
        (local.set $x (v128.load (local.get $ptr)))
        (local.set $y (v128.load offset=16 (local.get $ptr)))
        (local.set $s01 (f64x2.add (local.get $s01) (local.get $x)))
        (local.set $s23 (f64x2.add (local.get $s23) (local.get $y)))
        (local.set $hit
          (v128.or (local.get $hit)
            (v128.or (f64x2.eq (local.get $x) (local.get $fill)) (f64x2.eq (local.get $y) (local.get $fill)))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 32)))
        (br $next)))
    (v128.store (local.get $acc) (local.get $s01))
    (v128.store offset=16 (local.get $acc) (local.get $s23))
    (v128.any_true (local.get $hit)))
)
