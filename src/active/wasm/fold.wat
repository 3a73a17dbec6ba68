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

  ;; Sums of `rows` short rows of n float64 each, the first at $ptr and each $step bytes after the
  ;; previous, written as float64 to $out: per row the four lanes (element j to lane j mod 4, from
  ;; +0), then (s0 + s1) + (s2 + s3), as kernel-fold.ts's sumShortRun does, so the sums are the same
  ;; bits. Returns 1 when an element equals $m0 (a NaN shows in its row's sum, for the caller).
  (func (export "rowSumsF64") (param $ptr i32) (param $rows i32) (param $step i32) (param $n i32) (param $m0 f64) (param $out i32) (result i32)
    (local $s01 v128) (local $s23 v128) (local $fill v128) (local $hit v128)
    (local $x v128) (local $y v128) (local $p i32) (local $end i32) (local $tail i32) (local $r i32)
    (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $v f64) (local $hitTail i32)
    (local.set $fill (f64x2.splat (local.get $m0)))
    (local.set $tail (i32.and (local.get $n) (i32.const 3)))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $s01 (v128.const i64x2 0 0))
        (local.set $s23 (v128.const i64x2 0 0))
        (local.set $p (local.get $ptr))
        (local.set $end (i32.add (local.get $ptr) (i32.shl (i32.sub (local.get $n) (local.get $tail)) (i32.const 3))))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $x (v128.load (local.get $p)))
            (local.set $y (v128.load offset=16 (local.get $p)))
            (local.set $s01 (f64x2.add (local.get $s01) (local.get $x)))
            (local.set $s23 (f64x2.add (local.get $s23) (local.get $y)))
            (local.set $hit
              (v128.or (local.get $hit)
                (v128.or (f64x2.eq (local.get $x) (local.get $fill)) (f64x2.eq (local.get $y) (local.get $fill)))))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (br $next)))
        (local.set $s0 (f64x2.extract_lane 0 (local.get $s01)))
        (local.set $s1 (f64x2.extract_lane 1 (local.get $s01)))
        (local.set $s2 (f64x2.extract_lane 0 (local.get $s23)))
        ;; the last n mod 4 elements, to lanes 0, 1, 2
        (if (i32.gt_u (local.get $tail) (i32.const 0))
          (then
            (local.set $v (f64.load (local.get $p)))
            (local.set $hitTail (i32.or (local.get $hitTail) (f64.eq (local.get $v) (local.get $m0))))
            (local.set $s0 (f64.add (local.get $s0) (local.get $v)))))
        (if (i32.gt_u (local.get $tail) (i32.const 1))
          (then
            (local.set $v (f64.load offset=8 (local.get $p)))
            (local.set $hitTail (i32.or (local.get $hitTail) (f64.eq (local.get $v) (local.get $m0))))
            (local.set $s1 (f64.add (local.get $s1) (local.get $v)))))
        (if (i32.gt_u (local.get $tail) (i32.const 2))
          (then
            (local.set $v (f64.load offset=16 (local.get $p)))
            (local.set $hitTail (i32.or (local.get $hitTail) (f64.eq (local.get $v) (local.get $m0))))
            (local.set $s2 (f64.add (local.get $s2) (local.get $v)))))
        (f64.store (local.get $out)
          (f64.add
            (f64.add (local.get $s0) (local.get $s1))
            (f64.add (local.get $s2) (f64x2.extract_lane 1 (local.get $s23)))))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $step)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))
    (i32.or (v128.any_true (local.get $hit)) (local.get $hitTail)))
)
