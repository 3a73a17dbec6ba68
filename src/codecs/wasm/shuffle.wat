;; SIMD byte unshuffle (HDF5 shuffle filter) for 8- and 4-byte elements, in a shared memory: the
;; reduction workers' arena, where the kernel then sums the output in place (src/codecs/shuffle-simd.ts).
;; Input: `size` planes of n bytes each (plane b holds byte b of every element); output: the first
;; $count elements ($count a multiple of 16; the caller does the rest). Compiled by `node scripts/build-wasm.mjs`.
(module
  (import "env" "memory" (memory 1))

  ;; 16 elements of 8 bytes per step: a byte, 16-bit and 32-bit interleave of the eight planes.
  (func (export "unshuffle8") (param $src i32) (param $dst i32) (param $n i32) (param $count i32)
    (local $i i32)
    (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128)
    (local $p4 v128) (local $p5 v128) (local $p6 v128) (local $p7 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $b4 v128) (local $b5 v128) (local $b6 v128) (local $b7 v128)
    (local $at i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $at (i32.add (local.get $src) (local.get $i)))
        (local.set $p0 (v128.load (local.get $at)))
        (local.set $p1 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p2 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p3 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p4 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p5 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p6 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p7 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        ;; bytes of plane pairs: a0 = p0/p1 elements 0..7, a1 = 8..15, and so on
        (local.set $a0 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $p0) (local.get $p1)))
        (local.set $a1 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $p0) (local.get $p1)))
        (local.set $a2 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $p2) (local.get $p3)))
        (local.set $a3 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $p2) (local.get $p3)))
        (local.set $a4 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $p4) (local.get $p5)))
        (local.set $a5 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $p4) (local.get $p5)))
        (local.set $a6 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $p6) (local.get $p7)))
        (local.set $a7 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $p6) (local.get $p7)))
        ;; 16-bit pairs: b0 = bytes 0..3 of elements 0..3, b1 = 4..7, b2 = 8..11, b3 = 12..15
        (local.set $b0 (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $a0) (local.get $a2)))
        (local.set $b1 (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $a0) (local.get $a2)))
        (local.set $b2 (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $a1) (local.get $a3)))
        (local.set $b3 (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $a1) (local.get $a3)))
        ;; and bytes 4..7 of the same elements
        (local.set $b4 (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $a4) (local.get $a6)))
        (local.set $b5 (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $a4) (local.get $a6)))
        (local.set $b6 (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $a5) (local.get $a7)))
        (local.set $b7 (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $a5) (local.get $a7)))
        ;; 32-bit halves into whole elements, two per store
        (local.set $at (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 3))))
        (v128.store offset=0 (local.get $at) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $b0) (local.get $b4)))
        (v128.store offset=16 (local.get $at) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $b0) (local.get $b4)))
        (v128.store offset=32 (local.get $at) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $b1) (local.get $b5)))
        (v128.store offset=48 (local.get $at) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $b1) (local.get $b5)))
        (v128.store offset=64 (local.get $at) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $b2) (local.get $b6)))
        (v128.store offset=80 (local.get $at) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $b2) (local.get $b6)))
        (v128.store offset=96 (local.get $at) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $b3) (local.get $b7)))
        (v128.store offset=112 (local.get $at) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $b3) (local.get $b7)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))

  ;; 16 elements of 4 bytes per step: a byte and a 16-bit interleave of the four planes.
  (func (export "unshuffle4") (param $src i32) (param $dst i32) (param $n i32) (param $count i32)
    (local $i i32) (local $at i32)
    (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $at (i32.add (local.get $src) (local.get $i)))
        (local.set $p0 (v128.load (local.get $at)))
        (local.set $p1 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p2 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $p3 (v128.load (local.tee $at (i32.add (local.get $at) (local.get $n)))))
        (local.set $a0 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $p0) (local.get $p1)))
        (local.set $a1 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $p0) (local.get $p1)))
        (local.set $a2 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $p2) (local.get $p3)))
        (local.set $a3 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $p2) (local.get $p3)))
        (local.set $at (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2))))
        (v128.store offset=0 (local.get $at) (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $a0) (local.get $a2)))
        (v128.store offset=16 (local.get $at) (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $a0) (local.get $a2)))
        (v128.store offset=32 (local.get $at) (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $a1) (local.get $a3)))
        (v128.store offset=48 (local.get $at) (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $a1) (local.get $a3)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))
)
